"""Wait for a log line instead of sleeping: a handler that wakes waiters on a match."""

import logging

from gevent.event import Event


class LogWatcher(logging.Handler):
    def __init__(self, logger_name="callflowd"):
        super().__init__(level=logging.DEBUG)
        self.records = []
        self._changed = Event()
        self._logger = logging.getLogger(logger_name)

    def __enter__(self):
        self._logger.addHandler(self)
        self._old_level = self._logger.level
        self._logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc):
        self._logger.removeHandler(self)
        self._logger.setLevel(self._old_level)

    def emit(self, record):
        self.records.append(record)
        self._changed.set()

    def lines(self):
        return [record.getMessage() for record in self.records]

    def matching(self, text):
        return [line for line in self.lines() if text in line]

    def wait_for(self, text, timeout=5.0):
        """The first line containing ``text``, waiting for it to be logged."""
        while True:
            found = self.matching(text)
            if found:
                return found[0]
            self._changed.clear()
            if not self._changed.wait(timeout):
                raise TimeoutError("no log line containing %r; got:\n%s" % (text, "\n".join(self.lines())))

    def wait_until(self, predicate, timeout=5.0, what="condition"):
        """Wait until ``predicate()`` is true, re-checking whenever a line is logged."""
        while not predicate():
            self._changed.clear()
            if predicate():
                return
            if not self._changed.wait(timeout):
                raise TimeoutError("%s not reached within %gs; log:\n%s"
                                   % (what, timeout, "\n".join(self.lines()[-20:])))
