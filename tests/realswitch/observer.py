"""The test's own event-socket connection to the real switch: it watches, it cleans up.

Written apart from callflowd's ``esl`` package on purpose, from the wire format
(mod_event_socket: header lines, a blank line, a ``Content-Length`` body), so a
bug in the daemon's parser cannot hide itself in the test's view of the switch.
It records every channel event with its arrival time, answers ``api`` calls, and
lets a test wait for an event instead of sleeping.
"""

import logging
import socket
import time
import urllib.parse

import gevent
from gevent.event import Event
from gevent.lock import Semaphore
from gevent.queue import Empty, Queue

log = logging.getLogger(__name__)

WATCHED_EVENTS = ("CHANNEL_CREATE CHANNEL_PARK CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE "
                  "CHANNEL_ANSWER CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_HANGUP "
                  "CHANNEL_HANGUP_COMPLETE CHANNEL_DESTROY CHANNEL_PROGRESS_MEDIA DTMF")


class SwitchUnreachable(Exception):
    pass


class ObservedEvent(dict):
    """An event's headers (values percent-decoded), plus when the test saw it."""

    def __init__(self, headers, seen_at):
        super().__init__(headers)
        self.seen_at = seen_at

    @property
    def name(self):
        return self.get("Event-Name")

    @property
    def uuid(self):
        return self.get("Unique-ID")

    @property
    def switch_time(self):
        """The switch's own clock for the event, in seconds (Event-Date-Timestamp is in µs)."""
        return int(self["Event-Date-Timestamp"]) / 1e6


class SwitchObserver:
    """One authenticated inbound connection, subscribed to the channel events."""

    def __init__(self, host, port, password="ClueCon", timeout=5.0, events=WATCHED_EVENTS, keep=None):
        """``events``: the names to subscribe to; ``keep``: the header names each recorded event
        keeps (all when None). A load run keeps a few: an event has ~150 headers, and
        decoding them all would cost the test more CPU than the daemon spends on the call."""
        self.host, self.port, self.password, self.timeout = host, port, password, timeout
        self.watched, self.keep = events, frozenset(keep) if keep else None
        self.events = []
        self._sock = None
        self._buffer = b""
        self._replies = Queue()
        self._abandoned = 0  # commands that timed out: their replies, when they come, are dropped
        self._changed = Event()
        self._command_lock = Semaphore()
        self._reader = None

    # -- connection ------------------------------------------------------------------

    def connect(self):
        try:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            headers, _ = self._read_frame()
            if headers.get("Content-Type") != "auth/request":
                raise SwitchUnreachable("no auth/request from %s:%d" % (self.host, self.port))
            self._sock.sendall(("auth %s\n\n" % self.password).encode())
            headers, _ = self._read_frame()
            if not headers.get("Reply-Text", "").startswith("+OK"):
                raise SwitchUnreachable("auth refused: %s" % headers.get("Reply-Text"))
        except OSError as exc:
            raise SwitchUnreachable("no event socket at %s:%d: %s" % (self.host, self.port, exc)) from exc
        self._sock.settimeout(None)
        self._reader = gevent.spawn(self._read_loop)
        self.command("event plain %s" % self.watched)
        return self

    def reconnect(self):
        """A new connection after the switch restarted (the recorded events are kept)."""
        self.close()
        self._buffer = b""
        self._replies = Queue()
        self._abandoned = 0
        return self.connect()

    def close(self):
        if self._reader is not None:
            self._reader.kill(block=False)
        if self._sock is not None:
            self._sock.close()

    def command(self, line):
        with self._command_lock:
            self._sock.sendall(("%s\n\n" % line).encode())
            # Replies come in order: one that comes after its command gave up (timed out, or its
            # greenlet was killed) must not answer the next command.
            try:
                return self._replies.get(timeout=self.timeout)
            except Empty:
                self._abandoned += 1
                raise TimeoutError("no reply to %r within %ss" % (line.split("\n")[0], self.timeout)) from None
            except BaseException:
                self._abandoned += 1
                raise

    def api(self, command):
        """The body of ``api <command>``, as text."""
        headers, body = self.command("api %s" % command)
        return body.decode("utf-8", "replace")

    # -- what the switch has -----------------------------------------------------------

    def channel_count(self):
        """``show channels count`` ends with ``N total.``."""
        text = self.api("show channels count").strip()
        return int(text.split()[0]) if text else 0

    def channel_uuids(self):
        text = self.api("show channels as delim |").strip()
        lines = text.splitlines()[1:]  # header row first; a trailing "N total." row last
        return [line.split("|", 1)[0] for line in lines if "|" in line]

    def kill_all_channels(self):
        """uuid_kill every channel there is; returns how many there were."""
        uuids = self.channel_uuids()
        for uuid in uuids:
            self.api("uuid_kill %s" % uuid)
        return len(uuids)

    def wait_no_channels(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            count = self.channel_count()
            if count == 0 or time.monotonic() > deadline:
                return count
            gevent.sleep(0.2)  # polling the switch's own table: no event says "table empty"

    # -- events ----------------------------------------------------------------------

    def find(self, name=None, uuid=None, since=0, **headers):
        return [event for event in self.events[since:]
                if (name is None or event.name == name) and (uuid is None or event.uuid == uuid)
                and all(event.get(key.replace("__", "-")) == value for key, value in headers.items())]

    def wait_for(self, name=None, uuid=None, timeout=15.0, since=0, **headers):
        """The first recorded event that matches; header names use ``__`` for ``-``."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.find(name, uuid, since, **headers)
            if found:
                return found[0]
            remaining = deadline - time.monotonic()
            self._changed.clear()
            if remaining <= 0 or not self._changed.wait(remaining):
                raise TimeoutError("no %s event for %s with %s within %ss" % (name, uuid, headers, timeout))

    def parked_call(self, destination, timeout=15.0, since=0):
        """The caller's channel: the CHANNEL_PARK of an inbound call to ``destination``."""
        return self.wait_for("CHANNEL_PARK", timeout=timeout, since=since,
                             Caller__Destination__Number=destination, Call__Direction="inbound")

    def applications(self, uuid):
        """The applications run on a channel after it was parked, in order."""
        parked = self.find("CHANNEL_PARK", uuid)
        start = self.events.index(parked[0]) if parked else 0
        return [event.get("Application") for event in self.find("CHANNEL_EXECUTE", uuid, since=start)]

    # -- the wire ---------------------------------------------------------------------

    def _read_loop(self):
        while True:
            try:
                headers, body = self._read_frame()
            except OSError as exc:
                log.warning("observer connection lost: %s", exc)
                return
            kind = headers.get("Content-Type")
            if kind in ("command/reply", "api/response"):
                if self._abandoned:
                    self._abandoned -= 1
                else:
                    self._replies.put((headers, body))
            elif kind == "text/event-plain":
                event_headers, _ = _split_headers(body, keep=self.keep)
                self.events.append(ObservedEvent(event_headers, time.monotonic()))
                self._changed.set()

    def _read_frame(self):
        head = self._read_until(b"\n\n")
        headers, _ = _split_headers(head, decode=False)
        length = int(headers.get("Content-Length", 0))
        body = self._read_exactly(length) if length else b""
        return headers, body

    def _read_until(self, marker):
        while marker not in self._buffer:
            self._fill()
        head, self._buffer = self._buffer.split(marker, 1)
        return head

    def _read_exactly(self, size):
        while len(self._buffer) < size:
            self._fill()
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _fill(self):
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("the switch closed the event socket")
        self._buffer += chunk


def _split_headers(data, decode=True, keep=None):
    """``Name: value`` lines up to the first blank line (only the ``keep`` names, if given);
    the rest is the body."""
    text = data.decode("utf-8", "replace")
    head, _, rest = text.partition("\n\n")
    headers = {}
    for line in head.split("\n"):
        name, sep, value = line.partition(": ")
        if sep and (keep is None or name in keep):
            headers[name] = urllib.parse.unquote(value) if decode else value
    return headers, rest
