"""A logger adapter that puts the call uuid on every line about a call.

The uuid is outside text too: with sofia's ``inbound-use-callid-as-uuid`` it is the
caller's SIP Call-ID, so it is escaped like any other value (a ``%0A`` in a Unique-ID
once forged five log records). It also goes on the record as ``call_uuid``, a field
of its own in ``--log-format json``.
"""

import logging

from callflowd.logfmt import escape


class CallLog(logging.LoggerAdapter):
    """``call <uuid>: <message>``, with ``record.call_uuid`` set."""

    def __init__(self, logger, uuid):
        super().__init__(logger, {"call_uuid": uuid})
        self.prefix = "call %s: " % escape(uuid)

    def log(self, level, msg, *args, **kwargs):
        if not self.isEnabledFor(level):
            return
        extra = kwargs.get("extra")
        kwargs["extra"] = dict(self.extra, **extra) if extra else self.extra
        # A '%' in the uuid must not become a format directive when there are arguments.
        prefix = self.prefix.replace("%", "%%") if args else self.prefix
        self.logger.log(level, prefix + msg, *args, **kwargs)


def call_log(logger, uuid):
    return CallLog(logger, uuid)
