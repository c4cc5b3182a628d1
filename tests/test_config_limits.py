"""A config can't hang or crash the loader: each hazard gives one line and exit 2, fast.

The hazards, as an operator met them: children aliasing the previous node 9
times per level (9^levels nodes), a billion-laughs ``custom_data``, a FIFO or a
device where a file should be, a 100,000-digit integer, and a pattern that
backtracks on a dialled number. Each goes through ``callflowd check`` as the
operator runs it.
"""

import contextlib
import io
import os
import subprocess
import sys
import time

import pytest

from callflowd.calls.routes import RouteTable
from callflowd.cli import main
from callflowd.config import files
from callflowd.config.files import MAX_FILE_BYTES, MAX_YAML_BYTES
from callflowd.flow.load import load_config
from callflowd.flow.parser import MAX_FLOW_NODES
from tests.test_config import FRONT_DESK, REPO, front_desk, write_config

pytestmark = pytest.mark.timeout(60)

FAST = 2.0  # seconds: the bound for any config, good or bad

HEAD = ("freeswitch: {password: x}\n"
        "voicemail_boxes: {box: {profile: default, domain: example.com, mailbox: '1'}}\n")


def check(path):
    """``callflowd check -c path`` in this process: (exit status, stdout, stderr, seconds)."""
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["check", "-c", str(path)])
    return status, out.getvalue(), err.getvalue(), time.monotonic() - started


def check_process(path):
    """``callflowd check -c path`` as a separate process, as systemd's ExecStartPre would run it."""
    return subprocess.run([sys.executable, "-m", "callflowd", "check", "-c", str(path)],
                          capture_output=True, text=True, timeout=30, cwd=REPO)


def refused(path):
    """The one line ``check`` printed for a refused config (asserting exit 2 and speed)."""
    status, out, err, seconds = check(path)
    assert status == 2, err
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert seconds < FAST
    return err.rstrip("\n")


def alias_tree(levels, fan_out=9):
    """Inline callflows whose each node's children alias the previous node ``fan_out`` times."""
    lines = [HEAD, "callflows:\n",
             "  - numbers: ['0']\n    flow: &l0 {module: voicemail, data: {id: box}}\n"]
    for level in range(1, levels + 1):
        children = ", ".join("'%d': *l%d" % (key, level - 1) for key in range(1, fan_out + 1))
        lines.append("  - numbers: ['%d']\n    flow: &l%d {module: voicemail, data: {id: box}, "
                     "children: {%s}}\n" % (level, level, children))
    return "".join(lines)


def test_a_tree_of_aliases_eleven_levels_deep_is_refused_at_the_first_alias(tmp_path):
    text = alias_tree(11)
    assert len(text) < 2600  # the 2.4 KB file
    path = write_config(tmp_path, documents={}, text=text)

    assert refused(path) == (
        "callflowd: %s: invalid YAML at line 7 column 68: YAML aliases (*l0) are not allowed; "
        "write the value out" % path)


def test_a_billion_laughs_custom_data_is_refused(tmp_path):
    lines = [HEAD, "devices: {d: {dial_string: user/1}}\n", "lol0: &a0 [%s]\n" % ", ".join(["lol"] * 9)]
    lines += ["lol%d: &a%d [%s]\n" % (n, n, ", ".join(["*a%d" % (n - 1)] * 9)) for n in range(1, 10)]
    lines.append("callflows: [{numbers: ['1'], flow: {module: webhook, "
                 "data: {uri: 'http://x/y', custom_data: {laughs: *a9}}}}]\n")
    path = write_config(tmp_path, documents={}, text="".join(lines))

    assert "YAML aliases (*a0) are not allowed" in refused(path)


def test_a_wide_flow_beyond_the_node_limit_is_refused(tmp_path):
    leaf = {"module": "voicemail", "data": {"id": "front_desk_voicemail_box_id"}}
    children = {str(key): dict(leaf) for key in range(MAX_FLOW_NODES)}
    document = {"numbers": ["1"], "flow": dict(leaf, children=children)}
    path = write_config(tmp_path, documents={"wide.json": document})

    assert refused(path) == (
        "callflowd: callflows.d/wide.json: flow.children.999: the flow has more than %d nodes" % MAX_FLOW_NODES)


def test_a_file_larger_than_the_limit_is_refused_without_being_parsed(tmp_path):
    path = write_config(tmp_path, documents={"big.json": " " * MAX_FILE_BYTES + "{}"})

    assert refused(path) == "callflowd: callflows.d/big.json: cannot read: larger than %d bytes" % MAX_FILE_BYTES


# --- only regular files --------------------------------------------------------------------


def test_a_fifo_as_the_config_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "callflowd.yaml"
    os.mkfifo(fifo)

    result = check_process(fifo)

    assert result.returncode == 2
    assert result.stderr == "callflowd: %s: cannot read: not a regular file (a FIFO)\n" % fifo


def test_a_fifo_as_the_password_file_is_refused(tmp_path):
    os.mkfifo(tmp_path / "esl-password")
    path = write_config(tmp_path, freeswitch={"password_file": "esl-password"})

    assert refused(path) == (
        "callflowd: %s: freeswitch.password_file: cannot read %s: not a regular file (a FIFO)" % (
            path, tmp_path / "esl-password"))


def test_a_device_as_the_password_file_is_refused_without_reading_it(tmp_path):
    path = write_config(tmp_path, freeswitch={"password_file": "/dev/zero"})

    assert refused(path) == (
        "callflowd: %s: freeswitch.password_file: cannot read /dev/zero: not a regular file "
        "(a character device)" % path)


def test_a_fifo_among_the_callflow_documents_is_refused(tmp_path):
    path = write_config(tmp_path)
    os.mkfifo(tmp_path / "callflows.d" / "zz.json")

    assert refused(path) == "callflowd: callflows.d/zz.json: cannot read: not a regular file (a FIFO)"


def test_a_directory_named_like_a_callflow_document_is_refused(tmp_path):
    path = write_config(tmp_path)
    (tmp_path / "callflows.d" / "old.json").mkdir()

    assert refused(path) == "callflowd: callflows.d/old.json: cannot read: not a regular file (a directory)"


# --- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("digits, problem", [
    (5000, "invalid YAML at line 1 column 33: a number with more than 30 digits"),  # past Python's 4,300
    (100000, "cannot read: larger than 65536 bytes"),
])
def test_a_huge_integer_in_the_yaml_is_one_line_and_exit_2(tmp_path, digits, problem):
    path = write_config(tmp_path, text="freeswitch: {password: x, port: %s}\n" % ("9" * digits))

    result = check_process(path)

    assert result.returncode == 2
    assert result.stderr == "callflowd: %s: %s\n" % (path, problem)


def test_a_hundred_thousand_digit_integer_in_a_callflow_document_is_refused(tmp_path):
    document = '{"numbers": ["1"], "flow": {"module": "device", "data": {"timeout": %s}}}' % ("9" * 100000)
    path = write_config(tmp_path, documents={"x.json": document})

    assert refused(path) == "callflowd: callflows.d/x.json: invalid JSON: a number with more than 30 digits"


def test_a_long_hexadecimal_number_is_refused_before_yaml_converts_it(tmp_path):
    path = write_config(tmp_path, text="freeswitch: {password: x, port: 0x%s}\n" % ("f" * 5000))

    assert refused(path).endswith(": a number with more than 30 digits")


@pytest.mark.parametrize("value", ["1.0e+308", "86401", ".inf"])
def test_a_timeout_beyond_an_hour_is_refused(tmp_path, value):
    path = write_config(tmp_path, text="freeswitch: {password: x, command_timeout: %s}\n" % value)

    assert refused(path).endswith(": freeswitch.command_timeout: must be %s" % (
        "a number greater than 0" if value == ".inf" else "at most 3600 seconds"))


def test_a_key_with_control_characters_stays_on_one_line(tmp_path):
    path = write_config(tmp_path, text='freeswitch: {password: x}\nwebhooks: {"a\\u2028b\\rc": 1}\n')

    assert refused(path) == (
        "callflowd: %s: webhooks: unknown key 'a\\u2028b\\rc' (known: timeout, retries, backoff_factor, "
        "backoff_max, retry_after_max, format, concurrency, concurrency_per_endpoint, outbox, breaker, proxy, "
            "secret, secret_file, secrets, process, allow, deny, max_age, retry_mode)" % path)


# --- patterns: dialled numbers are chosen by the caller ---------------------------------------


def test_a_pattern_that_would_backtrack_matches_a_long_number_in_linear_time(tmp_path):
    path = write_config(tmp_path, documents={"x.json": dict(FRONT_DESK, patterns=[r"^(\d+)+$"])})
    routes = RouteTable(load_config(path).callflows)

    started = time.monotonic()
    missed = routes.lookup("1" * 26 + "x")
    matched = routes.lookup("1" * 27)
    seconds = time.monotonic() - started

    assert missed is None
    assert matched.id == "x"
    assert seconds < 0.05


@pytest.mark.parametrize("pattern, reason", [
    (r"^(?=1)\d+$", "invalid perl operator: (?="),
    (r"^(\d)\1$", "invalid escape sequence: \\1"),
    (r"^(\d{100}){100}$", "invalid repetition size: {100}"),
])
def test_a_pattern_the_linear_time_engine_cannot_run_is_refused(tmp_path, pattern, reason):
    path = write_config(tmp_path, documents={"x.json": dict(front_desk(), patterns=[pattern])})

    assert refused(path) == (
        "callflowd: callflows.d/x.json: patterns[0]: invalid or unsafe regular expression: %s" % reason)


def test_a_refused_pattern_prints_only_our_line_not_the_engines_own_log(tmp_path):
    path = write_config(tmp_path, documents={"x.json": dict(FRONT_DESK, patterns=["^(\\d+$"])})

    result = check_process(path)

    assert result.returncode == 2
    assert result.stderr == (
        "callflowd: callflows.d/x.json: patterns[0]: invalid or unsafe regular expression: missing ): ^(\\d+$\n")


def test_a_yaml_config_larger_than_64_kib_is_refused_before_parsing(tmp_path):
    path = write_config(tmp_path, text="freeswitch: {password: x}\n" + "# padding\n" * 7000)

    assert refused(path) == "callflowd: %s: cannot read: larger than %d bytes" % (path, MAX_YAML_BYTES)


def test_callflow_documents_beyond_the_total_limit_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "MAX_TOTAL_BYTES", 1000)
    filler = dict(FRONT_DESK, name="x" * 600)
    path = write_config(tmp_path, documents={"a.json": filler, "b.json": dict(filler, numbers=["2"])})

    assert refused(path) == "callflowd: %s: callflows_dir: more than 1000 bytes of callflow documents in %s" % (
        path, tmp_path / "callflows.d")


def test_the_largest_yaml_allowed_is_checked_in_well_under_the_bound(tmp_path):
    text = "freeswitch: {password: x}\nx: [" + "1," * ((MAX_YAML_BYTES - 40) // 2) + "1]\n"
    path = write_config(tmp_path, text=text)

    assert refused(path).endswith(": unknown key 'x' (known: freeswitch, switches, log_level, devices, "
                                  "voicemail_boxes, webhooks, callflows_dir, callflows, shutdown_grace, metrics, "
                                  "state_dir, hooks, routing, temporal_rules, account_id, cluster, account, users, groups, menus, "
                                  "media, resources, vmboxes, recordings_dir, prompts_dir)")
