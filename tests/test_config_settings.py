"""The settings schema (``config/settings.py``, ``config/fields.py``): every bad setting gives one exact line.

Each test writes the good example with one setting broken (``tests.test_config.
write_config``) and checks the whole message: the file, the path inside it, and
what is wrong.
"""

from callflowd.flow.load import load_config
from tests.test_config import _DROP, error_for, with_device, with_freeswitch, write_config


# --- the password -----------------------------------------------------------------


def test_the_password_can_come_from_a_file_next_to_the_config(tmp_path):
    (tmp_path / "esl-password").write_text("  s3cret-from-file \n")
    path = write_config(tmp_path, freeswitch={"password_file": "esl-password"})

    assert load_config(path).freeswitch.password == "s3cret-from-file"


def test_the_password_can_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CALLFLOWD_TEST_ESL_PASSWORD", "s3cret-from-env")
    path = write_config(tmp_path, freeswitch={"password_env": "CALLFLOWD_TEST_ESL_PASSWORD"})

    assert load_config(path).freeswitch.password == "s3cret-from-env"


def test_the_password_never_shows_in_the_configs_repr(tmp_path):
    path = write_config(tmp_path, freeswitch={"password": "do-not-print-me"})

    assert "do-not-print-me" not in repr(load_config(path))


def test_a_missing_password_is_refused_rather_than_defaulted(tmp_path):
    path = write_config(tmp_path, freeswitch={"host": "127.0.0.1"})

    assert error_for(path) == "%s: freeswitch: give exactly one of password, password_file, password_env" % path


def test_two_passwords_are_refused(tmp_path):
    path = write_config(tmp_path, freeswitch={"password": "a", "password_env": "HOME"})

    assert error_for(path) == (
        "%s: freeswitch: give exactly one of password, password_file, password_env "
        "(got password, password_env)" % path)


def test_a_missing_password_file_is_named(tmp_path):
    path = write_config(tmp_path, freeswitch={"password_file": "nope"})

    assert error_for(path) == "%s: freeswitch.password_file: cannot read %s: No such file or directory" % (
        path, tmp_path / "nope")


def test_an_empty_password_file_is_refused(tmp_path):
    (tmp_path / "esl-password").write_text("\n")
    path = write_config(tmp_path, freeswitch={"password_file": "esl-password"})

    assert error_for(path) == "%s: freeswitch.password_file: %s is empty" % (path, tmp_path / "esl-password")


def test_an_unset_password_variable_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("CALLFLOWD_TEST_UNSET", raising=False)
    path = write_config(tmp_path, freeswitch={"password_env": "CALLFLOWD_TEST_UNSET"})

    assert error_for(path) == (
        "%s: freeswitch.password_env: environment variable CALLFLOWD_TEST_UNSET is not set" % path)


# --- bad YAML settings ---------------------------------------------------------------


def test_a_missing_config_file_is_named(tmp_path):
    path = str(tmp_path / "missing.yaml")

    assert error_for(path) == "%s: cannot read: No such file or directory" % path


def test_an_empty_config_file_is_refused(tmp_path):
    path = write_config(tmp_path, text="# nothing yet\n")

    assert error_for(path) == "%s: the file is empty" % path


def test_unparsable_yaml_is_refused_with_its_line_and_column(tmp_path):
    path = write_config(tmp_path, text="freeswitch:\n  password: x\n devices: {}\n")

    assert error_for(path) == (
        "%s: invalid YAML at line 3 column 2: expected <block end>, but found '<block mapping start>'" % path)


def test_a_duplicate_yaml_key_is_refused_not_silently_overwritten(tmp_path):
    path = write_config(tmp_path, text="freeswitch:\n  password: a\nfreeswitch:\n  password: b\n")

    assert error_for(path) == "%s: invalid YAML at line 3 column 1: duplicate key 'freeswitch'" % path


def test_an_octal_looking_yaml_number_is_refused_rather_than_misread(tmp_path):
    path = write_config(tmp_path, text=(
        "freeswitch: {password: x}\n"
        "voicemail_boxes:\n"
        "  box: {profile: default, domain: example.com, mailbox: 0123}\n"))

    assert error_for(path) == (
        "%s: invalid YAML at line 3 column 57: 0123 is not a plain decimal number "
        "(YAML would read it as 83); quote it if it is text" % path)


def test_a_config_that_is_not_a_mapping_is_refused(tmp_path):
    path = write_config(tmp_path, text="- freeswitch\n")

    assert error_for(path) == "%s: must be a mapping of settings, not a list" % path


def test_an_unknown_top_level_key_is_named(tmp_path):
    path = write_config(tmp_path, callflow_dir="callflows.d")

    assert error_for(path) == (
        "%s: unknown key 'callflow_dir' (known: freeswitch, switches, log_level, devices, voicemail_boxes, "
        "webhooks, callflows_dir, callflows, shutdown_grace, metrics, state_dir, hooks, routing, "
        "temporal_rules, account_id, cluster, account, users, groups, menus, media, resources, vmboxes, recordings_dir, "
        "prompts_dir)" % path)


def test_an_unknown_key_inside_a_section_is_named(tmp_path):
    path = write_config(tmp_path, freeswitch={"pasword": "ClueCon"})

    assert error_for(path) == (
        "%s: freeswitch: unknown key 'pasword' (known: name, host, port, connect_timeout, command_timeout, "
        "idle_timeout, reconnect, limits, switch_nodename, password, password_file, password_env)" % path)


def test_a_missing_freeswitch_section_is_refused(tmp_path):
    path = write_config(tmp_path, freeswitch=_DROP)

    assert error_for(path) == "%s: freeswitch: is required" % path


def test_a_port_out_of_range_is_refused(tmp_path):
    path = write_config(tmp_path, freeswitch=with_freeswitch(port=80210))

    assert error_for(path) == "%s: freeswitch.port: must be between 1 and 65535" % path


def test_a_zero_timeout_is_refused(tmp_path):
    path = write_config(tmp_path, freeswitch=with_freeswitch(command_timeout=0))

    assert error_for(path) == "%s: freeswitch.command_timeout: must be a number greater than 0" % path


def test_a_device_timeout_that_is_not_an_integer_is_refused(tmp_path):
    path = write_config(tmp_path, devices=with_device(timeout="20s"))

    assert error_for(path) == ("%s: devices.front_desk_device_id.timeout: must be an integer "
                               "(or a string holding one), not '20s'" % path)


def test_a_boolean_does_not_pass_as_an_integer(tmp_path):
    path = write_config(tmp_path, devices=with_device(timeout=True))

    assert error_for(path) == "%s: devices.front_desk_device_id.timeout: must be an integer" % path


def test_a_device_timeout_out_of_range_is_refused(tmp_path):
    path = write_config(tmp_path, devices=with_device(timeout=0))

    assert error_for(path) == "%s: devices.front_desk_device_id.timeout: must be between 1 and 3600" % path


def test_a_dial_string_with_a_line_break_is_refused(tmp_path):
    path = write_config(tmp_path, devices=with_device(dial_string="user/1000\nuser/1001"))

    assert error_for(path) == "%s: devices.front_desk_device_id.dial_string: must not contain whitespace" % path


def test_a_device_without_a_dial_string_is_refused(tmp_path):
    path = write_config(tmp_path, devices={"front_desk_device_id": {"timeout": 20}})

    assert error_for(path) == "%s: devices.front_desk_device_id.dial_string: is required" % path


def test_an_unknown_device_setting_is_named(tmp_path):
    path = write_config(tmp_path, devices=with_device(dialstring="user/1000"))

    assert error_for(path) == (
        "%s: devices.front_desk_device_id: unknown key 'dialstring' (known: dial_string, timeout, owner_id, "
        "enabled, name, custom_sip_headers, id)" % path)


def test_a_numeric_mailbox_becomes_a_string(tmp_path):
    boxes = {"front_desk_voicemail_box_id": {"profile": "default", "domain": "example.com", "mailbox": 1000}}

    config = load_config(write_config(tmp_path, voicemail_boxes=boxes))

    assert config.directory.voicemail_boxes["front_desk_voicemail_box_id"].mailbox == "1000"


def test_webhook_retries_that_are_not_an_integer_are_refused(tmp_path):
    path = write_config(tmp_path, webhooks={"retries": 2.5})

    assert error_for(path) == "%s: webhooks.retries: must be an integer" % path


def test_webhook_retries_above_five_attempts_are_refused(tmp_path):
    path = write_config(tmp_path, webhooks={"retries": 6})

    assert error_for(path) == "%s: webhooks.retries: must be between 1 and 5" % path


def test_account_id_must_be_a_kazoo_account_id(tmp_path):
    path = write_config(tmp_path, account_id="ACME")

    assert error_for(path) == "%s: account_id: must be a Kazoo account id: 32 lower-case hex digits" % path


def test_webhook_max_age_and_retry_mode_are_read(tmp_path):
    config = load_config(write_config(tmp_path, webhooks={"max_age": 90, "retry_mode": "kazoo"},
                                      account_id="4fbd9ad1f5d7c9f0f3b5e1ea8c0d2a61",
                                      freeswitch=with_freeswitch(switch_nodename="freeswitch@fs1")))
    assert (config.directory.webhooks.max_age, config.directory.webhooks.retry_mode) == (90.0, "kazoo")
    assert config.account_id == "4fbd9ad1f5d7c9f0f3b5e1ea8c0d2a61"
    assert config.freeswitch.switch_nodename == "freeswitch@fs1"


def test_webhook_max_age_is_bounded_to_a_week(tmp_path):
    path = write_config(tmp_path, webhooks={"max_age": 8 * 86400})

    assert error_for(path) == "%s: webhooks.max_age: must be at most 604800 seconds (a week)" % path


def test_an_unknown_log_level_is_refused(tmp_path):
    path = write_config(tmp_path, log_level="verbose")

    assert error_for(path) == "%s: log_level: must be one of debug, info, warning, error" % path


def test_a_missing_callflows_dir_is_named(tmp_path):
    path = write_config(tmp_path, callflows_dir="flows")

    assert error_for(path) == "%s: callflows_dir: cannot read directory %s: No such file or directory" % (
        path, tmp_path / "flows")


def test_a_config_without_any_callflow_is_refused(tmp_path):
    path = write_config(tmp_path, documents={}, callflows_dir=_DROP)

    assert error_for(path) == (
        "%s: no callflows: give callflows, or callflows_dir holding *.json documents" % path)


def test_shutdown_grace_defaults_to_30_seconds_and_is_bounded(tmp_path):
    assert load_config(write_config(tmp_path)).shutdown_grace == 30.0
    assert load_config(write_config(tmp_path, shutdown_grace=2.5)).shutdown_grace == 2.5
    path = write_config(tmp_path, shutdown_grace=7200)
    assert error_for(path) == "%s: shutdown_grace: must be at most 3600 seconds" % path
