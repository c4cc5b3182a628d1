"""A logger adapter that puts the call uuid on every line about a call."""

import logging


class CallLog(logging.LoggerAdapter):
    """``call <uuid>: <message>``; the uuid is the switch's, never caller-controlled text."""

    def process(self, msg, kwargs):
        return "call %s: %s" % (self.extra["uuid"], msg), kwargs


def call_log(logger, uuid):
    return CallLog(logger, {"uuid": uuid})
