"""What an operator reads: one line per record, no forged lines, no secrets, in both formats."""

import io
import json
import logging
import os
import re

import pytest

from callflowd import logfmt, logsetup
from callflowd.calls.log import call_log

FORGED_UUID = "7f4b7a0e-0000\nINFO callflowd.service: service stopped"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} ")


@pytest.fixture
def capture(monkeypatch):
    """Configure logging into a buffer (or a real file, for JOURNAL_STREAM); restore afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)

    def configure(log_format="text", stream=None, level="DEBUG"):
        stream = stream or io.StringIO()
        logsetup.configure(level, stream=stream, log_format=log_format)
        return stream
    yield configure
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def test_text_lines_start_with_a_timestamp_outside_journald(capture):
    stream = capture()
    logging.getLogger("callflowd.service").info("service %s", "running")
    assert TIMESTAMP.match(stream.getvalue())
    assert stream.getvalue().endswith(" INFO callflowd.service: service running\n")


def test_under_journald_lines_carry_a_priority_and_no_timestamp(capture, monkeypatch, tmp_path):
    with open(tmp_path / "journal", "w") as stream:
        stat = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", "%d:%d" % (stat.st_dev, stat.st_ino))
        capture(stream=stream)
        logging.getLogger("callflowd.service").warning("reload refused")
        logging.getLogger("callflowd.service").info("service running")
    assert (tmp_path / "journal").read_text().splitlines() == [
        "<4>WARNING callflowd.service: reload refused",
        "<6>INFO callflowd.service: service running",
    ]


def test_a_journal_stream_that_is_not_our_stderr_keeps_timestamps(capture, monkeypatch, tmp_path):
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")
    with open(tmp_path / "log", "w") as stream:
        capture(stream=stream)
        logging.getLogger("callflowd").info("hello")
    assert TIMESTAMP.match((tmp_path / "log").read_text())


def test_json_is_one_object_per_line_with_the_call_uuid_as_a_field(capture):
    stream = capture("json")
    call_log(logging.getLogger("callflowd.calls.call"), "abc-123").info("bridge failed: %s", "USER_BUSY")
    logging.getLogger("callflowd.service").info("connected", extra={"switch": "fs1"})
    first, second = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert first["level"] == "INFO" and first["logger"] == "callflowd.calls.call"
    assert first["message"] == "call abc-123: bridge failed: USER_BUSY"
    assert first["call_uuid"] == "abc-123" and "time" in first
    assert second["switch"] == "fs1" and "call_uuid" not in second


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_uuid_with_a_line_break_cannot_forge_a_record(capture, log_format):
    stream = capture(log_format)
    log = call_log(logging.getLogger("callflowd.calls.call"), FORGED_UUID)
    log.info("parked call to %s from %s", "+1000\r\nERROR x: y", "\x1b[2Jcaller\u2028name")
    log.info("no arguments, %0A kept as text")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    if log_format == "json":
        record = json.loads(lines[0])
        assert record["call_uuid"] == "7f4b7a0e-0000\\nINFO callflowd.service: service stopped"
        text = record["message"]
    else:
        text = lines[0]
    assert "call 7f4b7a0e-0000\\nINFO callflowd.service: service stopped: parked call to " \
           "+1000\\r\\nERROR x: y from \\x1b[2Jcaller\\u2028name" in text
    assert "%0A kept as text" in lines[1]


def test_a_percent_in_the_uuid_is_not_a_format_directive(capture):
    stream = capture()
    call_log(logging.getLogger("callflowd.calls.call"), "a%sb%(x)s").info("step %d", 3)
    assert stream.getvalue().endswith("call a%sb%(x)s: step 3\n")


def test_a_traceback_is_indented_under_its_record(capture):
    stream = capture()
    try:
        raise ValueError("bad digits\nCRITICAL callflowd: forged")
    except ValueError:
        logging.getLogger("callflowd.flow.executor").exception("action %s failed", "menu")
    first, *rest = stream.getvalue().splitlines()
    assert first.endswith("ERROR callflowd.flow.executor: action menu failed")
    assert rest and all(line.startswith("  | ") for line in rest)
    assert "  | ValueError: bad digits" in rest


def test_uri_credentials_and_query_values_are_masked_where_they_stand():
    assert logfmt.redact("POST https://hooks:s3cr3t@example.com/a?id=1&token=abc&x=2") == \
        "POST https://***@example.com/a?id=***&token=***&x=***"
    assert logfmt.redact("GET http://example.com/?api_key=zz#f") == "GET http://example.com/?api_key=***"
    assert logfmt.redact("token as user: https://tok3n@example.com/") == "token as user: https://***@example.com/"
    assert logfmt.redact_uri("http://h:8080/p?lone&empty=") == "http://h:8080/p?***&empty="


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_secret_is_masked_where_it_stands_not_wherever_its_text_appears(capture, log_format):
    # A password of "x" (or "1234") must not eat pieces of ordinary words, uuids and ports.
    stream = capture(log_format)
    log = logging.getLogger("callflowd.webhooks.dispatcher")
    log.info("the outbox is empty; port 1234, call 12345678-1234")
    try:
        raise RuntimeError("refused by https://u:pw@h/hook?token=t0k")
    except RuntimeError:
        log.exception("failed")
    output = stream.getvalue()
    assert "the outbox is empty; port 1234, call 12345678-1234" in output
    assert ":pw@" not in output and "t0k" not in output
    assert "https://***@h/hook?token=***" in output


def test_escape_keeps_printable_text_and_cuts_long_values():
    assert logfmt.escape("Zoë Müller") == "Zoë Müller"
    assert logfmt.escape("a\nb\tc\x00") == "a\\nb\\tc\\x00"
    assert logfmt.escape("9" * 300) == "9" * 200 + "..."
    assert str(logfmt.safe("x\ry")) == "x\\ry"
