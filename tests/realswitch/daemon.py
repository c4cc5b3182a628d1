"""The real ``callflowd run -c CONFIG`` process, configured for the test switch.

Each test gets its own config and callflows in a temp dir; the process's stderr is
read line by line on a greenlet, so a test waits for a log line instead of sleeping.
"""

import ctypes
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import gevent
import yaml
from gevent.event import Event

FRONT_DESK = "+10005559999"  # matches the test switch's parking extension
UNROUTED = "+10005550100"  # parked too, but no callflow of ours has it
PHONE = "user/1000@127.0.0.1"
UNREGISTERED_PHONE = "user/1019@127.0.0.1"
VOICEMAIL_BOX = {"profile": "default", "domain": "127.0.0.1", "mailbox": "1000"}
CUSTOM_DATA = {"team": "front desk", "site": "lyon"}


_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1  # prctl(2)


def die_with_parent():
    """``preexec_fn`` for the tier's children (daemons, sipps): SIGTERM when the test process
    dies. A pytest killed by a timeout or a signal runs no teardown, and a daemon left behind
    stays on the switch, taking the next test's parked calls (seen: one dialling user/1019
    took a third of a load run's calls)."""
    parent = os.getppid()
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl: nobody will send the signal
        os._exit(1)


def front_desk_flow(webhook_uri, http_verb="post", custom_data=CUSTOM_DATA):
    """The spec's example: ring the front desk; on failure a webhook, then voicemail.

    ``http_verb`` None leaves the key out, as the spec's own flow does (Kazoo's default: GET)."""
    data = {"uri": webhook_uri}
    if http_verb is not None:
        data["http_verb"] = http_verb
    if custom_data:
        data["custom_data"] = custom_data
    return {
        "numbers": [FRONT_DESK],
        "flow": {
            "module": "device", "data": {"id": "front_desk_device_id"},
            "children": {"_": {
                "module": "webhook",
                "data": data,
                "children": {"_": {"module": "voicemail", "data": {"id": "front_desk_voicemail_box_id"}}},
            }},
        },
    }


class DaemonProcess:
    """One callflowd process against the real switch; ``stop()`` checks it exits cleanly."""

    def __init__(self, workdir, esl, documents, dial_string=PHONE, ring_timeout=20, webhooks=None,
                 default_reconnect=False, devices=None, hooks=None, log_level="debug", cluster=None,
                 shutdown_grace=None, settings=None, **switch_settings):
        self.workdir = pathlib.Path(workdir)
        self.config_path = self._write_config(esl, documents, dial_string, ring_timeout, webhooks or {},
                                              default_reconnect, switch_settings, devices or {}, log_level)
        more = {"hooks": hooks,  # lifecycle hooks (issue 7)
                "cluster": cluster,  # several daemons on the switch (issue 18): name, lease
                "shutdown_grace": shutdown_grace}
        more.update(settings or {})  # any other top-level settings (Kazoo documents: users, resources...)
        if any(value is not None for value in more.values()):
            config = yaml.safe_load(self.config_path.read_text())
            config.update((key, value) for key, value in more.items() if value is not None)
            self.config_path.write_text(yaml.safe_dump(config))
        self.lines = []
        self._changed = Event()
        self.process = None
        self._reader = None
        self.killed = False

    def _write_config(self, esl, documents, dial_string, ring_timeout, webhooks, default_reconnect,
                      switch_settings, devices, log_level):
        flows = self.workdir / "callflows.d"
        flows.mkdir(exist_ok=True)
        for name, document in documents.items():
            (flows / ("%s.json" % name)).write_text(json.dumps(document))
        host, port, password = esl
        config = {
            "freeswitch": {"host": host, "port": port, "password": password,
                           "connect_timeout": 3, "command_timeout": 5,
                           "reconnect": {"backoff_factor": 0.2, "backoff_max": 1}},
            "log_level": log_level,  # a load run logs as a deployment does: info
            "devices": {"front_desk_device_id": {"dial_string": dial_string, "timeout": ring_timeout}},
            "voicemail_boxes": {"front_desk_voicemail_box_id": dict(VOICEMAIL_BOX)},
            "webhooks": dict({"timeout": 2, "retries": 1, "backoff_factor": 0.2, "backoff_max": 1}, **webhooks),
            "callflows_dir": "callflows.d",
            "state_dir": str(self.workdir / "state"),  # the webhook outbox, one per test
        }
        config["devices"].update(devices)  # more phones (ring groups): id -> {dial_string, timeout}
        if default_reconnect:
            del config["freeswitch"]["reconnect"]
        config["freeswitch"].update(switch_settings)
        path = self.workdir / "callflowd.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def start(self, timeout=15.0):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "callflowd", "run", "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=die_with_parent,
        )
        self._reader = gevent.spawn(self._read_stderr)
        self.wait_for_line(r"connected to FreeSWITCH", timeout=timeout)
        return self

    def _read_stderr(self):
        for raw in self.process.stderr:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
            self._changed.set()
        self._changed.set()

    def log(self):
        return "\n".join(self.lines)

    def matching(self, pattern):
        regex = re.compile(pattern)
        return [line for line in self.lines if regex.search(line)]

    def wait_for_line(self, pattern, timeout=15.0):
        """The first log line matching ``pattern`` (a regex), waiting for it."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if regex.search(line):
                    return line
            remaining = deadline - time.monotonic()
            if self.process.poll() is not None and self._reader.dead:
                raise AssertionError("callflowd exited (%s) before logging %r:\n%s"
                                     % (self.process.returncode, pattern, self.log()))
            self._changed.clear()
            if remaining <= 0 or not self._changed.wait(remaining):
                raise TimeoutError("callflowd logged no line matching %r within %ss:\n%s"
                                   % (pattern, timeout, self.log()))

    def wait_for_count(self, pattern, count, timeout=15.0):
        """Wait until ``count`` log lines match ``pattern``."""
        deadline = time.monotonic() + timeout
        while len(self.matching(pattern)) < count:
            remaining = deadline - time.monotonic()
            self._changed.clear()
            if len(self.matching(pattern)) >= count:
                break
            if remaining <= 0 or not self._changed.wait(remaining):
                raise TimeoutError("callflowd logged %d lines matching %r, not %d, within %ss:\n%s"
                                   % (len(self.matching(pattern)), pattern, count, timeout, self.log()))

    def wait_flow_finished(self, uuid, timeout=30.0):
        return self.wait_for_line(r"call %s: callflow \S+ finished" % re.escape(uuid), timeout=timeout)

    def call_lines(self, uuid):
        return [line for line in self.lines if uuid in line]

    def stop(self, timeout=20.0):
        """SIGTERM; returns the exit status (the test asserts it is 0)."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            status = self.process.wait(timeout=5)
        self._reader.join(timeout=5)
        return status

    def kill(self):
        """SIGKILL, as a crash or ``kill -9`` would."""
        self.killed = True
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
