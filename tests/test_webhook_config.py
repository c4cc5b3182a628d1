"""The config of webhook delivery and lifecycle hooks: checked at load time, secrets kept out of flows."""

import copy

from callflowd.flow.load import load_config
from tests.test_config import FRONT_DESK, error_for, write_config


def with_webhook_data(**data):
    document = copy.deepcopy(FRONT_DESK)
    document["flow"]["children"]["_"]["data"].update(data)
    return {"front-desk.json": document}


def test_state_dir_is_taken_from_the_config_file_s_directory(tmp_path):
    config = load_config(write_config(tmp_path, state_dir="state"))
    assert config.state_dir == str(tmp_path / "state")


def test_without_state_dir_systemd_s_state_directory_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/callflowd-test")
    assert load_config(write_config(tmp_path)).state_dir == "/var/lib/callflowd-test"


def test_a_node_names_its_secret_and_format_and_the_secret_stays_in_the_config(tmp_path):
    config = load_config(write_config(
        tmp_path, documents=with_webhook_data(secret="crm", format="json"),
        webhooks={"secret": "global-secret", "secrets": {"crm": "crm-secret"}}))
    data = config.callflows[0].flow.child("_").data
    assert (data.secret, data.format) == ("crm", "json")
    assert config.directory.webhooks.secrets == {"": "global-secret", "crm": "crm-secret"}
    assert "crm-secret" not in repr(config)


def test_a_node_naming_a_secret_the_config_lacks_is_refused(tmp_path):
    path = write_config(tmp_path, documents=with_webhook_data(secret="nope"))
    assert error_for(path).endswith("flow.children._.data.secret: no secret named 'nope' in the config's "
                                    "webhooks.secrets")


def test_an_unknown_format_is_refused(tmp_path):
    path = write_config(tmp_path, documents=with_webhook_data(format="xml"))
    assert error_for(path).endswith("flow.children._.data.format: must be one of form, json")


def test_the_config_format_is_the_default_for_nodes(tmp_path):
    config = load_config(write_config(tmp_path, webhooks={"format": "json"}))
    assert config.callflows[0].flow.child("_").data.format == "json"


def test_a_secret_file_holds_the_global_secret(tmp_path):
    (tmp_path / "webhook-secret").write_text("from-a-file\n")
    config = load_config(write_config(tmp_path, webhooks={"secret_file": "webhook-secret"}))
    assert config.directory.webhooks.secrets[""] == "from-a-file"


def test_hooks_are_parsed_with_their_filters(tmp_path):
    config = load_config(write_config(tmp_path, webhooks={"secrets": {"crm": "x"}}, hooks=[
        {"events": ["channel_create", "channel_destroy"], "uri": "https://hooks.example.com/calls",
         "format": "json", "secret": "crm", "retries": 4, "callflow_ids": ["front-desk"],
         "direction": "inbound", "numbers": ["+10005559999"]}]))
    [hook] = config.hooks
    assert hook.events == {"channel_create", "channel_destroy"}
    # retries: 4 attempts in all, as Kazoo counts them (3 after the first)
    assert (hook.format, hook.secret, hook.retry.total, hook.direction) == ("json", "crm", 3, "inbound")
    assert (hook.callflow_ids, hook.numbers) == (("front-desk",), ("+10005559999",))


def test_a_hook_on_an_unknown_event_is_refused(tmp_path):
    path = write_config(tmp_path, hooks=[{"events": ["channel_park"], "uri": "https://h.example.com/"}])
    assert error_for(path).endswith("hooks[0].events[0]: must be one of channel_create, channel_answer, "
                                    "channel_bridge, channel_destroy")


def test_a_hook_without_an_http_uri_is_refused(tmp_path):
    path = write_config(tmp_path, hooks=[{"events": ["channel_destroy"], "uri": "ftp://h.example.com/"}])
    assert error_for(path).endswith("hooks[0].uri: must be an http:// or https:// URI")


def test_per_endpoint_concurrency_may_not_exceed_the_total(tmp_path):
    path = write_config(tmp_path, webhooks={"concurrency": 10, "concurrency_per_endpoint": 20})
    assert error_for(path).endswith("webhooks.concurrency_per_endpoint: must be between 1 and 10")


def test_delivery_in_a_process_of_its_own_is_a_flag(tmp_path):
    assert load_config(write_config(tmp_path, webhooks={"process": True})).directory.webhooks.process is True
    path = write_config(tmp_path, webhooks={"process": "yes"})
    assert error_for(path).endswith("webhooks.process: must be true or false")


def test_allow_and_deny_take_networks_and_host_patterns(tmp_path):
    config = load_config(write_config(tmp_path, webhooks={
        "allow": ["10.0.0.0/8", "2001:db8::/32", "*.Example.com", "bücher.example"],
        "deny": ["10.9.9.9"]}))
    destinations = config.directory.webhooks.destinations
    assert destinations.verdict("hooks.example.com", "10.1.2.3", fetched=False) is None
    assert destinations.verdict("xn--bcher-kva.example", "192.0.2.1", fetched=False) is None
    assert destinations.verdict("other.test", "192.0.2.1", fetched=False) == "not in webhooks.allow"
    assert destinations.verdict("hooks.example.com", "10.9.9.9", fetched=False) == "denied by webhooks.deny"


def test_by_default_only_a_fetched_flow_is_kept_from_loopback_link_local_and_metadata(tmp_path):
    destinations = load_config(write_config(tmp_path)).directory.webhooks.destinations
    for address in ("127.0.0.1", "::1", "169.254.169.254", "fe80::1", "::ffff:127.0.0.1", "0.0.0.0"):
        assert destinations.verdict("h", address, fetched=False) is None
        assert destinations.verdict("h", address, fetched=True) is not None
    assert destinations.verdict("h", "192.0.2.7", fetched=True) is None


def test_a_bad_allow_or_deny_entry_is_refused_with_its_path(tmp_path):
    path = write_config(tmp_path, webhooks={"deny": ["10.0.0.0/8", "not a host"]})
    assert "webhooks.deny[1]: 'not a host' is neither a network" in error_for(path)
    path = write_config(tmp_path, webhooks={"allow": {"a": 1}})
    assert "webhooks.allow: must be a list" in error_for(path)


def test_the_proxy_must_be_an_http_uri(tmp_path):
    path = write_config(tmp_path, webhooks={"proxy": "socks5://127.0.0.1:1080"})
    assert "webhooks.proxy: must be an http:// or https:// URI" in error_for(path)
    path = write_config(tmp_path, webhooks={"proxy": "https://proxy.example:3128"})
    assert "webhooks.proxy: must be an http:// proxy" in error_for(path)
