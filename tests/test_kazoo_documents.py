"""Kazoo documents (config/kazoo_documents.py) as the API exports them, from files beside the
callflows and from the config: found by id and _id, Kazoo's readings kept."""

import json
import random

import pytest

from callflowd.actions import ring_group
from callflowd.errors import ConfigError
from callflowd.flow.load import load_config
from tests.test_config import write_config

pytestmark = pytest.mark.timeout(10)


def envelope(document):
    return {"data": document, "revision": "1-a", "request_id": "r", "status": "success"}


def put(folder, name, document):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(document))


def test_documents_beside_the_callflows_are_read_by_kind_and_found_by_id_or_id(tmp_path):
    flows = tmp_path / "callflows.d"
    put(flows, "account.json", envelope({"id": "4fbd9ad1f5d7c9f0f3b5e1ea8c0d2a61", "realm": "pbx.example",
                                         "timezone": "inherit"}))
    put(flows / "users", "ann.json", envelope({"_id": "u1", "first_name": "Ann", "pvt_type": "user"}))
    put(flows / "devices", "desk.json", envelope({"id": "d1", "owner_id": "u1", "sip": {"username": "201"}}))
    put(flows / "media", "hello.json", envelope({"id": "hello", "name": "Hello", "media_source": "upload"}))
    (flows / "media" / "hello.wav").write_bytes(b"RIFF")
    put(flows / "resources", "carrier.json", envelope({"id": "c1", "rules": ["^\\+1(\\d{10})$"],
                                                      "gateways": [{"server": "sip.example"}]}))
    flow = {"numbers": ["2001"], "flow": {"module": "user", "data": {"id": "u1"},
                                          "children": {"_": {"module": "play", "data": {"id": "hello"}}}}}
    config = load_config(write_config(tmp_path, documents={"ann.json": flow}))

    directory = config.directory
    assert directory.account.realm == "pbx.example" and directory.account.timezone == ""  # inherit
    assert config.account_id == "4fbd9ad1f5d7c9f0f3b5e1ea8c0d2a61"
    assert [leg.device.dial_string for leg in config.callflows[0].flow.data.legs] == ["user/201@pbx.example"]
    assert config.callflows[0].flow.child("_").data.media == str(flows / "media" / "hello.wav")
    assert directory.resources[0].match("+14155552671") == "4155552671"  # the largest capture group


def test_a_resource_rule_without_groups_matches_the_whole_number_and_disabled_gateways_are_dropped(tmp_path):
    config = load_config(write_config(tmp_path, resources=[
        {"id": "c1", "weight_cost": 500, "rules": ["^\\+44\\d+$"],
         "gateways": [{"server": "a.example", "port": "5070"}, {"server": "b.example", "enabled": "false"}]}]))

    [resource] = config.directory.resources
    assert resource.weight == 100  # clamped to 1-100, as stepswitch
    assert resource.match("+442071234567") == "+442071234567"
    assert resource.match("+33142") is None
    assert [gateway.uri("+44207") for gateway in resource.gateways] == ["sip:+44207@a.example:5070"]


def test_a_bad_document_is_refused_with_its_file_and_path(tmp_path):
    put(tmp_path / "callflows.d" / "resources", "bad.json", envelope({"id": "c1", "rules": ["(a)\\1"]}))
    with pytest.raises(ConfigError) as raised:
        load_config(write_config(tmp_path))
    assert str(raised.value).startswith(
        "callflows.d/resources/bad.json: data.rules[0]: invalid or unsafe regular expression")


def test_an_id_given_twice_is_refused(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_config(write_config(tmp_path, users=[{"id": "u1"}, {"_id": "u1"}]))
    assert str(raised.value).endswith("users[1]: user id 'u1' is given twice")


def test_weighted_random_draws_heavier_members_first_more_often():
    members = [ring_group.Member(leg=name, weight=weight) for name, weight in (("light", 1), ("heavy", 9))]
    rand = random.Random(15)
    first = [ring_group.weighted_random_order(members, rand)[0].leg for _ in range(1000)]
    assert 850 < first.count("heavy") < 950  # 9 chances in 10
    assert sorted(m.leg for m in ring_group.weighted_random_order(members, rand)) == ["heavy", "light"]


def test_temporal_rule_documents_beside_the_callflows_are_read_as_kazoo_exports_them(tmp_path):
    put(tmp_path / "callflows.d" / "temporal_rules", "weekdays.json", envelope({
        "id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "name": "Weekdays", "cycle": "weekly", "interval": 1,
        "wdays": ["monday", "tuesday", "wednesday", "thursday", "friday"], "time_window_start": "32400",
        "time_window_stop": 61200, "flags": [], "ui_metadata": {"origin": "voip"},
        "pvt_type": "temporal_rule"}))
    flow = {"numbers": ["2001"], "flow": {"module": "temporal_route", "data": {"timezone": "inherit"},
                                          "children": {"0f1e2d3c4b5a69788796a5b4c3d2e1f0": {"module": "answer"}}}}
    config = load_config(write_config(tmp_path, documents={"hours.json": flow}))

    assert list(config.directory.temporal_rules) == ["0f1e2d3c4b5a69788796a5b4c3d2e1f0"]
    assert [rule.id for rule in config.callflows[0].flow.data.rules] == ["0f1e2d3c4b5a69788796a5b4c3d2e1f0"]


def test_the_last_rule_listed_is_tried_first_as_stepswitch_compiles_them(tmp_path):
    config = load_config(write_config(tmp_path, resources=[
        {"id": "c1", "rules": ["^\\+1(\\d{10})$", "^\\+(\\d+)$"], "gateways": [{"server": "a.example"}]}]))

    assert config.directory.resources[0].match("+14155552671") == "14155552671"
