"""Fields as Kazoo 4.3 writes them into a query string or a form body (``kz_http_util``).

Kazoo's ``webhooks_util:do_fire`` sends a GET to ``uri ++ "?" ++ json_to_querystring(Data)``
and a POST with the same string as its ``application/x-www-form-urlencoded`` body. The
rules, read from ``core/kazoo_web/src/kz_http_util.erl`` (branch 4.3):

* pairs are joined with ``&`` in the object's order;
* a value is percent-encoded by ``urlencode/1``: letters, digits and ``. - ~ _`` stay,
  a space becomes ``+``, every other byte of its UTF-8 form becomes ``%XX`` (upper-case
  hex) -- the same bytes as Python's ``urllib.parse.quote_plus``;
* ``true``/``false`` are written as such; an integer in decimal; a float as Erlang's
  ``float_to_list`` cut two digits after the point (``1.5`` -> ``1.50``, and, since the
  cut is on the mantissa, ``100.5`` -> ``1.00``: Kazoo's, kept so a receiver sees what
  Kazoo would send);
* an object nests its keys in brackets: ``crm[account]=ACME``, ``crm[a][b]=1``;
* a list repeats its key with ``[]``: ``tags[]=vip&tags[]=gold``,
  ``crm[tags][]=vip``; an empty object or list writes nothing, but still takes its
  place between two ``&`` (``a=1&&b=2``), as Kazoo's fold does.

One deliberate difference: Kazoo writes keys raw, so a key holding ``&``, ``=`` or a
space would break the string apart; here each key (and each nested key inside the
brackets) is encoded like a value. For the keys Kazoo itself sends (``call_id``,
``custom_sip_headers[x_account]``...) and any key of letters, digits, ``. - ~ _`` the
bytes are the same.

Values that Kazoo's encoder cannot write (``null`` inside an object, an object or a list
inside a list) are refused where a callflow is loaded (``actions/webhook.py``), not here.
"""

import math
import urllib.parse


class Unencodable(ValueError):
    """A value Kazoo's encoder has no rule for (``null`` nested, a list or object in a list)."""


def encode(fields):
    """``fields`` (``(key, value)`` pairs, values str/bool/int/float/dict/list) as one string."""
    return "&".join(_pair("", str(key), value) for key, value in fields)


def _pair(prefix, key, value):
    name = _name(prefix, key)
    if isinstance(value, dict):
        return "&".join(_pair(name, str(k), v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "&".join("%s[]=%s" % (name, scalar(item)) for item in value)
    return "%s=%s" % (name, scalar(value))


def _name(prefix, key):
    key = urllib.parse.quote_plus(key, safe="")
    return "%s[%s]" % (prefix, key) if prefix else key


def scalar(value):
    """One value as Kazoo's ``urlencode/1`` writes it."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return erlang_float(value)
    if isinstance(value, str):
        return urllib.parse.quote_plus(value, safe="")
    raise Unencodable("no query-string form for %s" % type(value).__name__)


def erlang_float(value):
    """``float_to_list(V)`` cut at two digits after its point, as ``kz_http_util:urlencode/1``.

    ``float_to_list`` writes 20 digits after the point in scientific notation
    (``1.50000000000000000000e+00``); Kazoo keeps up to two characters after the ``.``.
    """
    if not math.isfinite(value):
        raise Unencodable("no query-string form for %r" % value)
    text = "%.20e" % value
    point = text.index(".")
    return urllib.parse.quote_plus(text[:point + 3], safe="")


def check(value, nested=False, in_list=False):
    """Raise ``Unencodable`` for what Kazoo's encoder can't write; ``value`` as custom_data holds it."""
    if value is None:
        if nested:
            raise Unencodable("null inside an object or a list")
        return
    if isinstance(value, dict):
        if in_list:
            raise Unencodable("an object inside a list")
        for item in value.values():
            check(item, nested=True)
    elif isinstance(value, list):
        if in_list:
            raise Unencodable("a list inside a list")
        for item in value:
            check(item, nested=True, in_list=True)
    elif isinstance(value, float) and not math.isfinite(value):
        raise Unencodable("a number that is not finite")
