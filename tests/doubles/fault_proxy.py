"""A scripted event socket: a real TCP proxy on 127.0.0.1:0 in front of a (simulated) switch.

The daemon connects to the proxy; the proxy connects to the switch behind it
and forwards both ways, frame by frame towards the daemon and command by
command towards the switch, so it knows which reply answers which command
(replies come in command order). The test makes the current session go bad,
the way switches were seen to on a bad day (issue 6); a session opened
afterwards (the daemon reconnecting) is healthy again:

- ``go_silent()``: half-open TCP: nothing forwarded either way, nothing closed;
- ``swallow_commands()``: the switch stops reading and replying: commands
  are dropped, events still flow (HEARTBEAT included);
- ``delay_reply_to(text, seconds)``: the reply to the first command holding
  ``text`` (and what follows it) comes ``seconds`` late;
- ``inject(data)``: raw bytes to the daemon between two frames (a 1 GB
  Content-Length, a 64 MB header line, a malformed event, a reply nobody asked for).

Commands seen are in ``commands`` (str), for ``wait_for_command``; those whose reply
went on to the daemon in ``replied``, for ``wait_for_reply_to``.
"""

import collections

import gevent
import gevent.event
import gevent.lock
import gevent.pool
import gevent.socket

from callflowd.esl import names, protocol
from callflowd.esl.limits import FrameLimits
from tests.doubles.loopback import LoopbackServer, close_socket

# The proxy itself reads whatever the switch sends; its limits are not under test.
_WIDE_OPEN = FrameLimits(max_line=1 << 24, max_headers=1 << 16, max_body=1 << 28)
_REPLY_TYPES = (names.COMMAND_REPLY, names.API_RESPONSE)


class _Session:
    """One daemon connection and its connection to the switch."""

    def __init__(self, client, upstream):
        self.client = client
        self.upstream = upstream
        self.to_client = gevent.lock.Semaphore()
        self.silent = False
        self.swallowing = False
        self.swallow_from = None
        self.delays = []          # (text, seconds) still to apply
        self.unanswered = collections.deque()  # commands forwarded, in order

    def send_to_client(self, data):
        with self.to_client:
            self.client.sendall(data)

    def close(self):
        for sock in (self.client, self.upstream):
            close_socket(sock)


class FaultProxy(LoopbackServer):
    """``start()`` it in front of ``(host, port)``; point the daemon at ``address``."""

    def __init__(self, upstream):
        super().__init__()
        self.upstream = upstream
        self.commands = []
        self.replied = []
        self._changed = gevent.event.Event()

    # ------------------------------------------------------------ control

    @property
    def current(self):
        self.wait_for_sessions(1)
        return self.sessions[-1]

    def go_silent(self):
        """Half-open: forward nothing more on the current session, close nothing."""
        self.current.silent = True

    def swallow_commands(self, starting_with=None):
        """The switch stops reading: commands are dropped from now on (or from the first
        holding ``starting_with``); events still come."""
        if starting_with is None:
            self.current.swallowing = True
        else:
            self.current.swallow_from = starting_with

    def delay_reply_to(self, text, seconds):
        """The reply to the next command holding ``text`` comes ``seconds`` late (the stream waits)."""
        self.current.delays.append((text, seconds))

    def inject(self, data):
        """Send raw bytes to the daemon, between two frames of the current session."""
        self.current.send_to_client(data)

    def wait_for_sessions(self, count, timeout=5.0):
        """Wait until the daemon has opened ``count`` sessions (a reconnect makes one more)."""
        self._wait(lambda: len(self.sessions) >= count, timeout, "no session %d" % count)

    def wait_for_command(self, text, timeout=5.0):
        """The first command seen holding ``text``."""
        return self._wait(lambda: next((c for c in self.commands if text in c), None), timeout,
                          "no command holding %r" % text)

    def wait_for_reply_to(self, text, timeout=5.0):
        """The first command holding ``text`` whose reply was handed on to the daemon."""
        return self._wait(lambda: next((c for c in self.replied if text in c), None), timeout,
                          "no reply to a command holding %r" % text)

    def _wait(self, probe, timeout, message):
        with gevent.Timeout(timeout, AssertionError("%s within %ss" % (message, timeout))):
            while not (result := probe()):
                self._changed.clear()
                self._changed.wait()
        return result

    def _note_change(self):
        self._changed.set()

    # ------------------------------------------------------------ forwarding

    def _accept(self):
        while True:
            client, _ = self._server.accept()
            upstream = gevent.socket.create_connection(self.upstream)
            session = _Session(client, upstream)
            self.sessions.append(session)
            self._note_change()
            self._group.spawn(self._commands_up, session)
            self._group.spawn(self._frames_down, session)

    def _commands_up(self, session):
        stream = session.client.makefile("rb")
        try:
            while (block := protocol.read_command(stream)) is not None:
                text = block.decode("utf-8", "replace")
                self.commands.append(text)
                self._note_change()
                if session.swallow_from and session.swallow_from in text:
                    session.swallowing = True
                if session.silent or session.swallowing:
                    continue
                session.unanswered.append(text)
                session.upstream.sendall(block)
        except (OSError, protocol.ProtocolError):
            pass
        finally:
            if not session.silent:
                session.close()

    def _frames_down(self, session):
        stream = session.upstream.makefile("rb")
        try:
            while (frame := protocol.read_frame(stream, _WIDE_OPEN)) is not None:
                headers, body = frame
                answers = None
                if headers.get(names.CONTENT_TYPE) in _REPLY_TYPES and session.unanswered:
                    answers = session.unanswered.popleft()
                    self._maybe_delay(session, answers)
                if session.silent:
                    continue
                raw = "".join("%s: %s\n" % item for item in headers.items()).encode("utf-8") + b"\n"
                session.send_to_client(raw + (body or b""))
                if answers is not None:
                    self.replied.append(answers)
                    self._note_change()
        except (OSError, protocol.ProtocolError):
            pass
        finally:
            if not session.silent:
                session.close()

    @staticmethod
    def _maybe_delay(session, command):
        for index, (text, seconds) in enumerate(session.delays):
            if text in command:
                del session.delays[index]
                gevent.sleep(seconds)  # the switch is slow: this reply and all after it wait
                return
