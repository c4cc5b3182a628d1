"""A raw event-socket client for the simulator's tests, and the frame helpers they share.

``RawClient`` is the team's frame reader over a plain socket (no greenswitch): it keeps every
frame and every byte it read, and lets a test wait for a frame that matches (never a sleep).
The ``sim`` and ``client`` fixtures are a simulator at 100x speed and a client logged in to it
with ``event plain ALL``. Events the simulator deliberately never sends (``NEVER_SENT``) are
taken out of the captures before comparing.
"""

import json
import pathlib
import re
import socket
import time

import gevent
import gevent.event
import pytest

from callflowd.esl import protocol
from callflowd.simulator import FreeswitchSimulator

_HERE = pathlib.Path(__file__).parent.parent / "fixtures"
CAPTURES = _HERE if (_HERE / "b_device_busy_voicemail.plain.txt").exists() else pathlib.Path(
    "/work/shared/fixtures/freeswitch")

NEVER_SENT = {"PRIVATE_COMMAND", "RECORD_START", "RECORD_STOP", "CUSTOM", "RE_SCHEDULE", "HEARTBEAT"}
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
WAIT = 10.0


class RawClient:
    """Reads every frame into ``frames``; lets a test wait for one that matches."""

    def __init__(self, sim):
        self.sock = socket.create_connection((sim.host, sim.port), timeout=WAIT)
        self.file = self.sock.makefile("rb")
        self.frames = []
        self.raw = bytearray()
        self.closed = gevent.event.Event()
        self._arrived = gevent.event.Event()
        self._reader = gevent.spawn(self._read)

    def _read(self):
        try:
            while True:
                start = len(self.raw)
                frame = protocol.read_frame(_Recorder(self.file, self.raw))
                if frame is None:
                    break
                self.frames.append((frame[0], frame[1], bytes(self.raw[start:])))
                self._arrived.set()
        except (OSError, protocol.ProtocolError):
            pass
        self.closed.set()
        self._arrived.set()

    def send(self, text):
        self.sock.sendall(text.encode("utf-8") + b"\n\n")

    def wait_for(self, predicate, timeout=WAIT, start=0):
        """The first frame from index ``start`` on for which predicate(headers, body) holds."""
        deadline = time.monotonic() + timeout
        index = start
        while True:
            while index < len(self.frames):
                headers, body, _ = self.frames[index]
                if predicate(headers, body):
                    return index
                index += 1
            if self.closed.is_set():
                raise AssertionError("connection closed before the frame came")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("no such frame within %s s" % timeout)
            self._arrived.clear()
            self._arrived.wait(remaining)

    def replies(self):
        return [(h, b) for h, b, _ in self.frames
                if h.get("Content-Type") in ("command/reply", "api/response", "auth/request",
                                             "text/disconnect-notice")]

    def wait_replies(self, count):
        self.wait_for(lambda h, b: len(self.replies()) >= count)
        return self.replies()

    def login(self, subscription="plain ALL"):
        self.send("auth ClueCon")
        self.send("event " + subscription)
        self.wait_replies(3)

    def events(self):
        """(name, value) pairs of each event, in order, whatever its format."""
        out = []
        for headers, body, _ in self.frames:
            if headers.get("Content-Type") == "text/event-plain":
                out.append(protocol.plain_event_pairs(body)[0])
            elif headers.get("Content-Type") == "text/event-json":
                out.append(json_pairs(body))
        return out

    def plain_events_raw(self):
        return [body for headers, body, _ in self.frames if headers.get("Content-Type") == "text/event-plain"]

    def close(self):
        self.sock.close()
        self._reader.kill()


class _Recorder:
    """A file wrapper that keeps every byte read, so a test can compare raw bytes."""

    def __init__(self, fileobj, sink):
        self._file = fileobj
        self._sink = sink

    def readline(self, size=-1):
        line = self._file.readline(size)
        self._sink.extend(line)
        return line

    def read(self, size):
        data = self._file.read(size)
        self._sink.extend(data)
        return data


def json_pairs(body):
    pairs = json.loads(body, object_pairs_hook=lambda items: items)
    return [(k, "ARRAY::" + "|:".join(v) if isinstance(v, list) else v) for k, v in pairs]


def is_event(name, application=None, uuid=None):
    def match(headers, body):
        if headers.get("Content-Type") != "text/event-plain":
            return False
        found = dict(protocol.plain_event_pairs(body)[0])
        return (found.get("Event-Name") == name
                and (application is None or found.get("Application") == application)
                and (uuid is None or found.get("Unique-ID") == uuid))
    return match


def leg_events(events, role):
    """The events of the first channel seen (caller) or of the others (bleg), minus NEVER_SENT."""
    legs = []
    out = []
    for pairs in events:
        headers = dict(pairs)
        uuid = headers.get("Unique-ID")
        if uuid is None or headers["Event-Name"] in NEVER_SENT:
            continue
        if uuid not in legs:
            legs.append(uuid)
        if (role == "caller") == (legs.index(uuid) == 0):
            out.append(pairs)
    return out


def captured_events(name):
    data = (CAPTURES / name).read_bytes()
    return [protocol.plain_event_pairs(body)[0] for headers, body, _ in protocol.iter_frames(data)
            if headers.get("Content-Type") == "text/event-plain"]


def without_voicemail_noise(events):
    """The busy-then-voicemail capture's voicemail: keep the first PLAYBACK pair, drop the recording's CODEC events."""
    out = []
    playbacks = 0
    in_voicemail = False
    for pairs in events:
        headers = dict(pairs)
        name = headers["Event-Name"]
        if name == "CHANNEL_EXECUTE" and headers.get("Application") == "voicemail":
            in_voicemail = True
        if name in ("PLAYBACK_START", "PLAYBACK_STOP"):
            playbacks += 1
            if playbacks > 2:
                continue
        if name == "CODEC" and in_voicemail:
            continue
        out.append(pairs)
    return out


def event_names(events):
    return ["%s %s" % (dict(p)["Event-Name"], dict(p).get("Application", "")) for p in events]


def header_names(pairs):
    return [name for name, _ in pairs]


def sendmsg(uuid, app, arg=None, event_uuid=None):
    lines = ["sendmsg %s" % uuid, "call-command: execute", "execute-app-name: %s" % app]
    if arg is not None:
        lines.append("execute-app-arg: %s" % arg)
    if event_uuid:
        lines.append("Event-UUID: %s" % event_uuid)
    return "\n".join(lines)


@pytest.fixture
def sim():
    simulator = FreeswitchSimulator(time_scale=0.01, heartbeat_seconds=None)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def client(sim):
    raw = RawClient(sim)
    raw.login()
    sim.wait_for_clients(1)
    yield raw
    raw.close()
