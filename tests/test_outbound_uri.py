"""The one check and encoder of every outbound URI (``config/uri.py``): webhook nodes, lifecycle
hooks, pivot's ``voice_url`` and ``webhooks.proxy`` all pass through it, at load and at send."""

import pytest

from callflowd.config import uri


@pytest.mark.parametrize("text, host_header, target", [
    ("http://hooks.example/in", "hooks.example", "/in"),
    ("https://hooks.example:443/in", "hooks.example", "/in"),
    ("http://hooks.example:8080", "hooks.example:8080", "/"),
    ("http://HOOKS.Example./in", "hooks.example", "/in"),
    ("http://[2001:db8::1]:8080/in", "[2001:db8::1]:8080", "/in"),
    ("http://Bücher.example/straße", "xn--bcher-kva.example", "/stra%C3%9Fe"),
    ("http://h/a?x=[1]|2&n=Zoë", "h", "/a?x=%5B1%5D%7C2&n=Zo%C3%AB"),
    ("http://h/50%?q=100%&ok=%41", "h", "/50%25?q=100%25&ok=%41"),
    ("http://h/p?#frag", "h", "/p?"),
    ("http://h:/p", "h", "/p"),
])
def test_a_uri_goes_out_with_an_idna_host_and_every_byte_that_needs_it_percent_encoded(text, host_header, target):
    parsed = uri.parse(text)
    assert (parsed.host_header, parsed.target) == (host_header, target)


def test_credentials_become_a_basic_authorization_never_part_of_the_target():
    parsed = uri.parse("https://hook%20user:p%40ss@hooks.example/in")
    assert parsed.authorization == "Basic aG9vayB1c2VyOnBAc3M="  # "hook user:p@ss"
    assert "@" not in parsed.absolute and parsed.target == "/in"


@pytest.mark.parametrize("text, reason", [
    ("ftp://h/", "must be an http:// or https:// URI"),
    ("http:///x", "must be an http:// or https:// URI"),
    ("http://h:0/", "has an invalid port (1-65535)"),
    ("http://h:65536/", "has an invalid port (1-65535)"),
    ("http://h:8o/", "has an invalid port (1-65535)"),
    ("http://a..b/", "has an invalid host name"),
    ("http://[zz::1]/", "is not a valid URI: 'zz::1' does not appear to be an IPv4 or IPv6 address"),
    ("http://h/a b", "must not contain spaces or control characters"),
    ("http://h/\x00", "must not contain spaces or control characters"),
])
def test_a_uri_that_cannot_be_sent_is_refused_saying_why(text, reason):
    with pytest.raises(uri.InvalidURI) as refused:
        uri.parse(text)
    assert str(refused.value) == reason


def test_the_proxy_is_an_http_uri():
    assert uri.parse_proxy("http://u:p@proxy.example:3128").host_header == "proxy.example:3128"
    with pytest.raises(uri.InvalidURI):
        uri.parse_proxy("https://proxy.example:3128")
