"""A fake FreeSWITCH event socket: real TCP on 127.0.0.1:0, the real wire format.

Interactive by default: it greets with auth/request, checks ``auth <password>``
and answers ``event``, ``noevents``, ``api``, ``bgapi``, ``sendmsg`` and
``exit`` with FreeSWITCH 1.10's texts (tests/fixtures/misc_protocol.plain.txt);
the test scripts the rest with ``api_replies``, ``hold()``, ``push()`` and
``drop()``.

With a Script made from a capture it replays that capture instead: the
greeting, then for the client's n-th command the capture's frames up to and
including its n-th reply, byte-exact, then after the last reply the rest of the
capture, and a close if FreeSWITCH closed. Commands past the script get the
interactive answers.
"""

import gzip
import pathlib
import re
import uuid

import gevent
import gevent.event
import gevent.lock
import gevent.pool
import gevent.queue
import gevent.socket

from callflowd.esl import names, protocol
from tests.doubles.loopback import LoopbackServer, close_socket

_REPLY_TYPES = (names.COMMAND_REPLY, names.API_RESPONSE)

FIXTURES = pathlib.Path(__file__).parent.parent / "fixtures"
_TIMELINE_RECV = re.compile(rb"^===== RECV frame \(.*\) t=[0-9.]+ len=([0-9]+) =====$", re.M)


# ---------------------------------------------------------------- captures


def capture_names():
    """Every recorded stream in tests/fixtures/ (not the .sent/.timeline companions)."""
    return sorted(
        path.name
        for path in FIXTURES.iterdir()
        if path.name.endswith((".txt", ".txt.gz"))
        and not path.name.endswith((".sent.txt", ".timeline.txt"))
    )


def load_capture(name):
    """The bytes FreeSWITCH sent, gunzipped, without the ``#####`` annotation lines."""
    data = (FIXTURES / name).read_bytes()
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    if b"#####" in data:
        data = b"".join(line for line in data.splitlines(keepends=True)
                        if not line.startswith(b"#####"))
    return data


def _companion(name, suffix):
    return FIXTURES / (name.removesuffix(".gz").removesuffix(".txt") + suffix)


def sent_commands(name):
    """The client's command blocks (bytes, each ending in a blank line), or None if not recorded."""
    path = _companion(name, ".sent.txt")
    if not path.exists():
        return None
    return [block + b"\n\n" for block in path.read_bytes().split(b"\n\n") if block]


def timeline_frame_lengths(name):
    """The recorder's byte length of each received frame, or None without a timeline."""
    path = _companion(name, ".timeline.txt")
    if not path.exists():
        return None
    return [int(length) for length in _TIMELINE_RECV.findall(path.read_bytes())]


class Script:
    """A capture cut at its replies: what to send on connect, per command, and at the end."""

    def __init__(self, greeting, replies, tail, hang_up):
        self.greeting = greeting
        self.replies = list(replies)
        self.tail = tail
        self.hang_up = hang_up

    @classmethod
    def from_capture(cls, data, hang_up=False):
        """Cut ``NAME.txt`` bytes; ``hang_up`` if FreeSWITCH closed the socket at the end."""
        frames = list(protocol.iter_frames(data))
        greeting, chunks, chunk = frames[0][2], [], []
        for headers, _, raw in frames[1:]:
            chunk.append(raw)
            if headers.get(names.CONTENT_TYPE) in _REPLY_TYPES:
                chunks.append(b"".join(chunk))
                chunk = []
        return cls(greeting, chunks, b"".join(chunk), hang_up)


class _Session:
    """One client connection; writes are serialised so pushes never split a reply."""

    def __init__(self, sock):
        self.sock = sock
        self.lock = gevent.lock.Semaphore()
        self.fmt = "plain"
        self.events = set()

    def send(self, data):
        with self.lock:
            self.sock.sendall(data)

    def close(self):
        close_socket(self.sock)


class _HungUp(Exception):
    """The fake switch closed this session."""


class ReplaySwitch(LoopbackServer):
    """A scriptable fake FreeSWITCH: ``start()`` it, connect to ``address``, ``stop()`` it."""

    def __init__(self, password="ClueCon", script=None, greet=True):
        super().__init__()
        self.password = password
        self.script = script
        self.greet = greet
        self.api_replies = {}        # "status" -> body of its api/response
        self.unknown_uuids = set()   # sendmsg to these gets -ERR invalid session id
        self.received = []           # every command block, bytes, in arrival order
        self._held = {}              # command prefix -> gevent Event that releases it
        self._changed = gevent.event.Event()

    # ------------------------------------------------------------ control

    def hold(self, prefix):
        """Answer nothing (this command or any after it, like FreeSWITCH) until release()."""
        self._held[prefix] = gevent.event.Event()

    def release(self, prefix):
        self._held.pop(prefix).set()

    def push(self, data):
        """Send raw bytes (frames) to the latest client."""
        self.wait_connected()
        self.sessions[-1].send(data)

    def drop(self):
        """Close the latest client's connection (it sees EOF)."""
        self.wait_connected()
        self.sessions[-1].close()

    def wait_connected(self, timeout=5.0):
        self._wait(lambda: self.sessions, timeout, "no client connected")

    def wait_for_command(self, prefix, timeout=5.0):
        """Return the first received command block starting with ``prefix`` (bytes)."""
        raw = prefix.encode("utf-8")
        return self._wait(lambda: next((c for c in self.received if c.startswith(raw)), None),
                          timeout, "no %r command received" % prefix)

    def _wait(self, probe, timeout, message):
        with gevent.Timeout(timeout, AssertionError("%s within %ss" % (message, timeout))):
            while not (result := probe()):
                self._changed.wait()
        return result

    def _note_change(self):
        changed, self._changed = self._changed, gevent.event.Event()
        changed.set()

    # ------------------------------------------------------------ serving

    def _accept(self):
        while True:
            sock, _ = self._server.accept()
            self._group.spawn(self._serve, _Session(sock))

    def _serve(self, session):
        """Read commands as they come; a second greenlet answers them in order, like FreeSWITCH."""
        self.sessions.append(session)
        self._note_change()
        backlog = gevent.queue.Queue()
        self._group.spawn(self._answer_in_order, session, backlog)
        stream = session.sock.makefile("rb")
        try:
            if self.greet:
                greeting = self.script.greeting if self.script else protocol.encode_auth_request()
                session.send(greeting)
            while (block := protocol.read_command(stream)) is not None:
                self.received.append(block)
                self._note_change()
                backlog.put(block)
        except (OSError, protocol.ProtocolError):
            pass
        finally:
            backlog.put(None)
            stream.close()

    def _answer_in_order(self, session, backlog):
        try:
            while (block := backlog.get()) is not None:
                self._answer(session, block)
        except (OSError, _HungUp):
            pass
        finally:
            session.close()

    def _answer(self, session, block):
        line = block.decode("utf-8").partition("\n")[0]
        for prefix, gate in list(self._held.items()):
            if line.startswith(prefix):
                gate.wait()
        if self.script and self.script.replies:
            self._replay(session)
        else:
            self._respond(session, line)

    def _replay(self, session):
        session.send(self.script.replies.pop(0))
        if not self.script.replies:
            session.send(self.script.tail)
            if self.script.hang_up:
                raise _HungUp()

    def _respond(self, session, line):
        verb, _, rest = line.partition(" ")
        handler = getattr(self, "_on_" + verb, None)
        if handler is None:
            session.send(protocol.encode_command_reply("-ERR command not found"))
        else:
            handler(session, rest)

    # FreeSWITCH 1.10 texts below: misc_protocol.plain.txt, misc_bad_auth.txt

    def _on_auth(self, session, password):
        if password == self.password:
            session.send(protocol.encode_command_reply("+OK accepted"))
            return
        session.send(protocol.encode_command_reply("-ERR invalid")
                     + protocol.encode_disconnect_notice())
        raise _HungUp()

    def _on_event(self, session, rest):
        fmt, _, event_names = rest.partition(" ")
        session.fmt = fmt
        session.events.update(event_names.split())
        session.send(protocol.encode_command_reply("+OK event listener enabled %s" % fmt))

    def _on_noevents(self, session, rest):
        session.events.clear()
        session.send(protocol.encode_command_reply("+OK no longer listening for events"))

    def _api_result(self, command):
        if command in self.api_replies:
            return self.api_replies[command]
        return "-ERR %s Command not found!\n" % command.partition(" ")[0]

    def _on_api(self, session, command):
        session.send(protocol.encode_api_response(self._api_result(command)))

    def _on_bgapi(self, session, command):
        job = str(uuid.uuid4())
        session.send(protocol.encode_command_reply("+OK Job-UUID: %s" % job, [("Job-UUID", job)]))
        if session.events & {"ALL", names.BACKGROUND_JOB}:
            verb, _, arg = command.partition(" ")
            headers = [("Event-Name", names.BACKGROUND_JOB), ("Job-UUID", job),
                       ("Job-Command", verb)] + ([("Job-Command-Arg", arg)] if arg else [])
            if session.fmt == "json":
                event = protocol.encode_json_event(headers, self._api_result(command))
            else:
                event = protocol.encode_plain_event(headers, self._api_result(command))
            session.send(event)

    def _on_sendmsg(self, session, channel):
        if channel in self.unknown_uuids:
            session.send(protocol.encode_command_reply("-ERR invalid session id [%s]" % channel))
        else:
            session.send(protocol.encode_command_reply("+OK"))

    def _on_exit(self, session, rest):
        session.send(protocol.encode_command_reply("+OK bye") + protocol.encode_disconnect_notice())
        raise _HungUp()
