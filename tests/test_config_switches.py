"""The switches part of the config: one ``freeswitch:`` node or a ``switches:`` list, liveness and limits."""

from callflowd.esl.limits import FrameLimits
from callflowd.flow.load import load_config
from tests.test_config import _DROP, error_for, with_freeswitch, write_config


def test_a_single_freeswitch_section_is_one_switch_named_freeswitch_with_safe_defaults(tmp_path):
    config = load_config(write_config(tmp_path))
    [switch] = config.switches
    assert switch is config.freeswitch
    assert switch.name == "freeswitch"
    assert switch.idle_timeout == 30.0
    assert switch.limits == FrameLimits(max_line=65536, max_headers=256, max_body=1048576)


def test_idle_timeout_and_limits_are_read(tmp_path):
    path = write_config(tmp_path, freeswitch=with_freeswitch(
        name="edge-1", idle_timeout=45,
        limits={"max_line_bytes": 8192, "max_headers": 64, "max_body_bytes": 4194304}))
    switch = load_config(path).freeswitch
    assert (switch.name, switch.idle_timeout) == ("edge-1", 45.0)
    assert switch.limits == FrameLimits(max_line=8192, max_headers=64, max_body=4194304)


def test_a_switches_list_gives_one_switch_each_in_order(tmp_path):
    path = write_config(tmp_path, freeswitch=_DROP, switches=[
        {"name": "fs-a", "host": "10.0.0.1", "password": "a"},
        {"name": "fs-b", "host": "10.0.0.2", "port": 8022, "password_env": "HOME"}])
    config = load_config(path)
    assert [(s.name, s.host, s.port) for s in config.switches] == [
        ("fs-a", "10.0.0.1", 8021), ("fs-b", "10.0.0.2", 8022)]
    assert config.freeswitch.name == "fs-a"


def test_every_switch_in_a_list_needs_a_name(tmp_path):
    path = write_config(tmp_path, freeswitch=_DROP, switches=[{"host": "10.0.0.1", "password": "a"}])
    assert error_for(path).endswith("switches[0].name: is required")


def test_two_switches_with_one_name_are_refused(tmp_path):
    path = write_config(tmp_path, freeswitch=_DROP, switches=[
        {"name": "fs", "host": "10.0.0.1", "password": "a"}, {"name": "fs", "host": "10.0.0.2", "password": "a"}])
    assert error_for(path).endswith("switches[1].name: 'fs' names two switches")


def test_one_address_given_twice_is_refused(tmp_path):
    path = write_config(tmp_path, freeswitch=_DROP, switches=[
        {"name": "a", "password": "a"}, {"name": "b", "password": "a"}])
    assert error_for(path).endswith("switches[1].port: 127.0.0.1:8021 is given twice")


def test_freeswitch_and_switches_together_are_refused(tmp_path):
    path = write_config(tmp_path, switches=[{"name": "fs-a", "password": "a"}])
    assert "give freeswitch (one node) or switches (a list), not both" in error_for(path)


def test_an_empty_switches_list_is_refused(tmp_path):
    path = write_config(tmp_path, freeswitch=_DROP, switches=[])
    assert error_for(path).endswith("switches: must be a non-empty list of switches")


def test_a_tiny_body_limit_is_refused(tmp_path):
    path = write_config(tmp_path, freeswitch=with_freeswitch(limits={"max_body_bytes": 10}))
    assert error_for(path).endswith("freeswitch.limits.max_body_bytes: must be between 65536 and 1073741824")
