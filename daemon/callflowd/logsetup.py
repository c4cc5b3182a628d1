"""Logging to stderr, as text for people or JSON for log shippers.

- Under journald (``JOURNAL_STREAM`` names our stderr, systemd.exec(5)) lines carry no
  timestamp, journald adds its own, but a ``<N>`` syslog priority prefix, which journald
  strips and keeps as the entry's priority, so ``journalctl -p warning`` works.
  Anywhere else lines start with a timestamp.
- ``json``: one object per line, with ``call_uuid`` and ``switch`` as fields when the
  record has them.
- Either way every message is escaped and redacted here, whatever its arguments were:
  a record is one line (a traceback is indented under it, so nothing it contains can pass
  for a record of its own) and holds no hidden secret or URI password (``logfmt``).
"""

import json
import logging
import os
import sys
import time

from callflowd.logfmt import escape_line, redact, safe

FORMATS = ("text", "json")
# sd-daemon(3) priorities for journald's SyslogLevelPrefix=.
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


def configure(level="INFO", stream=None, log_format="text"):
    """Route every record (ours, greenswitch's, urllib3's) to one stderr handler."""
    if log_format not in FORMATS:
        raise ValueError("log format must be one of %s" % ", ".join(FORMATS))
    stream = stream or sys.stderr
    journal = under_journald(stream)
    formatter = JsonFormatter(timestamps=not journal) if log_format == "json" else TextFormatter(
        timestamps=not journal)
    formatter.priority_prefix = journal
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # urllib3 logs every webhook connection at DEBUG; the dispatcher already says what matters.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    return handler


def under_journald(stream):
    """True if ``stream`` is the journal stream systemd gave us (not merely inherited the variable)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        stat = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):  # no file behind it (a StringIO, a closed stream)
        return False
    return (stat.st_dev, stat.st_ino) == (int(device), int(inode))


def _call_uuid(record):
    """The record's call uuid: ``calls.log.CallLog`` sets it; lines written the house way
    without it (``log.info("call %s: ...", uuid, ...)``) give it as their first argument."""
    uuid = getattr(record, "call_uuid", None)
    if uuid is None and isinstance(record.msg, str) and record.msg.startswith("call %s:") \
            and isinstance(record.args, tuple) and record.args:
        uuid = record.args[0]
        uuid = uuid.value if isinstance(uuid, safe) else uuid
    return uuid


class _SafeFormatter(logging.Formatter):
    priority_prefix = False

    def __init__(self, timestamps=True):
        super().__init__()
        self.timestamps = timestamps
        self._second = None  # (whole second, its text): strftime once a second, not once a line

    def message(self, record):
        """The record's message: one line, escaped, redacted."""
        try:
            text = record.getMessage()
        except Exception as exc:  # a bad format string must not lose the record: show what we have
            text = "%r %% %r (unformattable: %s)" % (record.msg, record.args, exc)
        return escape_line(redact(text))

    def details(self, record):
        """Traceback and stack text, redacted; None if there is none."""
        parts = []
        if record.exc_info:
            parts.append(self.formatException(record.exc_info))
        elif record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(self.formatStack(record.stack_info))
        return redact("\n".join(parts)) if parts else None

    def prefix(self, record):
        return "<%d>" % _PRIORITY.get(record.levelno, 6) if self.priority_prefix else ""

    def timestamp(self, record):
        second = int(record.created)
        cached = self._second
        if cached is None or cached[0] != second:
            cached = self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(second)))
        return "%s.%03d" % (cached[1], record.msecs)


class TextFormatter(_SafeFormatter):
    """``[time ]LEVEL logger: message``, a traceback indented under it with ``| ``."""

    def format(self, record):
        line = "%s %s: %s" % (record.levelname, record.name, self.message(record))
        if self.timestamps:
            line = "%s %s" % (self.timestamp(record), line)
        details = self.details(record)
        if details:
            # Each traceback line is escaped and indented: a line break inside an exception
            # message must not start something that looks like a record.
            line += "".join("\n  | " + escape_line(part) for part in details.split("\n"))
        return self.prefix(record) + line


class JsonFormatter(_SafeFormatter):
    """One JSON object per line: time (unless journald), level, logger, message, call_uuid, switch."""

    def format(self, record):
        entry = {}
        if self.timestamps:
            entry["time"] = self.timestamp(record)
        entry["level"] = record.levelname
        entry["logger"] = record.name
        entry["message"] = self.message(record)
        for field, value in (("call_uuid", _call_uuid(record)), ("switch", getattr(record, "switch", None))):
            if value is not None:
                entry[field] = escape_line(redact(str(value)))
        details = self.details(record)
        if details:
            entry["exception"] = details
        # ensure_ascii: no raw U+2028 or control character can reach the stream.
        return self.prefix(record) + json.dumps(entry, ensure_ascii=True)
