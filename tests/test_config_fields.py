"""The validation rules (``config/fields.py``): one rule for numbers, in the settings and in callflow data alike."""

import pytest

from callflowd.config import fields
from callflowd.config.fields import Section
from callflowd.errors import ConfigError, InvalidData
from callflowd.flow.load import load_config
from tests.test_config import FRONT_DESK, error_for, with_device, with_freeswitch, write_config


@pytest.mark.parametrize("value, expected", [(20, 20), ("20", 20), (" 20 ", 20), ("+7", 7), ("-3", -3),
                                             ("9" * fields.MAX_DIGITS, int("9" * fields.MAX_DIGITS))])
def test_an_integer_may_be_written_as_a_string_holding_one(value, expected):
    assert fields.integer_value(value, "k") == expected


@pytest.mark.parametrize("value, message", [
    ("20s", "must be an integer (or a string holding one), not '20s'"),
    ("2.5", "must be an integer (or a string holding one), not '2.5'"),
    ("0x14", "must be an integer (or a string holding one), not '0x14'"),
    ("", "must be an integer (or a string holding one), not ''"),
    ("9" * (fields.MAX_DIGITS + 1), "must be an integer (or a string holding one), not '%s'" % ("9" * 31)[:40]),
    (True, "must be an integer"),
    (2.5, "must be an integer"),
    ([1], "must be an integer"),
])
def test_anything_else_is_not_an_integer(value, message):
    with pytest.raises(InvalidData) as raised:
        fields.integer_value(value, "k")
    assert (raised.value.key, raised.value.message) == ("k", message)


def test_a_setting_and_a_node_read_the_same_integer_string_the_same_way(tmp_path):
    document = dict(FRONT_DESK, flow=dict(FRONT_DESK["flow"], data={"id": "front_desk_device_id",
                                                                   "timeout": "25"}))
    config = load_config(write_config(tmp_path, freeswitch=with_freeswitch(port="8022"),
                                      devices=with_device(timeout="30"),
                                      documents={"front-desk.json": document}))

    assert config.freeswitch.port == 8022
    assert config.directory.devices["front_desk_device_id"].timeout == 30
    assert config.callflows[0].flow.data.timeout == 25


def test_a_setting_and_a_node_refuse_the_same_bad_integer_with_the_same_words(tmp_path):
    setting = error_for(write_config(tmp_path, devices=with_device(timeout="20s")))
    document = dict(FRONT_DESK, flow=dict(FRONT_DESK["flow"], data={"id": "front_desk_device_id",
                                                                   "timeout": "20s"}))
    node = error_for(write_config(tmp_path, documents={"front-desk.json": document}))

    assert setting.endswith("devices.front_desk_device_id.timeout: must be an integer "
                            "(or a string holding one), not '20s'")
    assert node.endswith("flow.data.timeout: must be an integer (or a string holding one), not '20s'")


def test_a_setting_and_a_node_take_true_and_false_as_strings_too(tmp_path):
    config = load_config(write_config(tmp_path, webhooks={"process": "true"}))

    assert config.directory.webhooks.process is True
    assert fields.boolean({"export": "false"}, "export", True) is False


def test_a_section_names_the_file_and_the_path_of_a_rules_error():
    section = Section({"outbox": {"max": "lots"}}, "callflowd.yaml", "webhooks", ("outbox",))

    with pytest.raises(ConfigError) as raised:
        section.section("outbox", ("max",)).integer("max", 10, 1, 100)
    assert str(raised.value) == ("callflowd.yaml: webhooks.outbox.max: must be an integer "
                                 "(or a string holding one), not 'lots'")


def test_choices_are_listed_in_their_order_and_a_table_of_them_sorted():
    with pytest.raises(InvalidData) as in_order:
        fields.one_of({"cycle": "hourly"}, "cycle", ("date", "daily", "weekly"), None)
    with pytest.raises(InvalidData) as sorted_:
        fields.one_of({"unit": "y"}, "unit", {"s": 1000, "ms": 1, "h": 3600000}, "s")
    assert in_order.value.message == "must be one of date, daily, weekly"
    assert sorted_.value.message == "must be one of h, ms, s"
