"""``callflowd run`` as a real child process, with its stderr read as it comes."""

import os
import subprocess
import sys

import gevent
from gevent.event import Event


class DaemonProcess:
    """The daemon process; ``wait_for(text)`` waits for a stderr line instead of sleeping."""

    def __init__(self, config, *args, env=None):
        environment = dict(os.environ)
        for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "INVOCATION_ID"):
            environment.pop(name, None)
        environment.update(env or {})
        self.lines = []
        self._changed = Event()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "callflowd", "run", "-c", str(config), *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=environment)
        self._reader = gevent.spawn(self._read)

    def _read(self):
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            self._changed.set()
        self._changed.set()

    @property
    def log(self):
        return "\n".join(self.lines)

    def matching(self, text):
        return [line for line in self.lines if text in line]

    def wait_for(self, text, timeout=15.0):
        """The first stderr line containing ``text``."""
        while True:
            found = self.matching(text)
            if found:
                return found[0]
            if self._reader.dead:
                raise AssertionError("daemon exited without logging %r:\n%s" % (text, self.log))
            self._changed.clear()
            if not self._changed.wait(timeout):
                raise TimeoutError("no log line containing %r; got:\n%s" % (text, self.log))

    def signal(self, signum):
        self.process.send_signal(signum)

    def wait_exit(self, timeout=20.0):
        status = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return status

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._reader.join(timeout=5)
