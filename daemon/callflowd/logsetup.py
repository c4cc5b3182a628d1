"""Logging to stderr; no timestamps under systemd, where journald adds its own."""

import logging
import os
import sys


def configure(level="INFO", stream=None):
    stream = stream or sys.stderr
    under_journald = bool(os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"))
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not under_journald:
        fmt = "%(asctime)s " + fmt
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # urllib3 logs every webhook connection at DEBUG; the dispatcher already says what matters.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
