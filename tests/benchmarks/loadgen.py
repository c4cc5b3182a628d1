"""A cheap FreeSWITCH for load: capture b's frames, rendered once, replayed with fresh uuids.

Run: ``.venv/bin/python -m tests.benchmarks.loadgen`` prints the port it listens on
(127.0.0.1, a free port), then takes orders on stdin, one a line, and answers each with one
line on stdout (``tests/benchmarks/bench_call_rate.py`` drives it that way):

    place N RATE      place N calls, RATE a second (0: as fast as it can); "placed SECONDS"
    stats             "stats {json}": calls placed and ended, CPU seconds, unexpected commands
    quit              close everything and exit

Why: the built-in simulator models a channel (state, variables, timers, a greenlet per call)
and renders every event from templates, so it costs more CPU per call than the daemon and
caps the rate issue 10 asks about (~230 calls/s on this machine). This peer models nothing:
it speaks the real event-socket protocol over TCP (auth/request, command/reply, api/response,
Content-Length framed text/event-plain) and answers the daemon's commands for the spec's flow
with the frames the real FreeSWITCH 1.10.12 sent in ``tests/fixtures/b_device_busy_voicemail
.plain.txt`` (park -> ``set continue_on_fail=true`` -> ``bridge`` to a phone answering 486 ->
``answer`` -> ``voicemail`` -> hangup), byte for byte except:

- uuids: per call, every uuid of the capture but the switch's Core-UUID is replaced by a
  fresh one of the same length (so Content-Length holds), and the Application-UUID of an
  application the client ran is the ``Event-UUID`` the client sent with it, as the real
  switch echoes it (capture g); without one, a fresh uuid;
- the destination number (``5559999`` in the capture) is the one asked for (``--number``),
  and an application's argument (Application-Data, current_application_data, the
  PRIVATE_COMMAND's execute-app-arg) is the one the client sent; both are substituted when a
  segment is first rendered for them and Content-Length recomputed, not per call;
- only the events a connection subscribed to are sent (as FreeSWITCH does), and the
  capture's system events (HEARTBEAT, API, RE_SCHEDULE, CUSTOM) are not replayed per call:
  a HEARTBEAT (the capture's) goes out every 20 s instead.

Per call it sends: on ``place``, the caller's frames up to CHANNEL_PARK; on each ``sendmsg
execute`` of ``set``, ``bridge``, ``answer``, ``voicemail``, ``+OK`` then the capture's
frames for that application (the bridge always fails USER_BUSY, the B leg's frames
included); after ``voicemail`` starts, the caller hangs up after ``--voicemail-seconds``
(default 0) with the capture's hangup frames; ``api uuid_setvar_multi``/``uuid_setvar``
answer ``+OK`` (no event, as on the real switch); ``sendmsg hangup`` and ``api uuid_kill``
hang the call up. Anything else a call is sent is answered ``+OK`` and counted in
``unexpected`` (a benchmark must check it is 0). What it does not model: variables the
client sets do not show in later events (the daemon never reads them back from events);
the B leg carries the capture's dial-string variables; timestamps, Event-Sequence and the
SIP Call-ID are the capture's; ``show channels as json`` lists no channels (no recovery against it);
``event json`` is not served (plain only).

It is one thread with an epoll loop and no gevent (a greenlet switch per command would cost
more than answering it), and while calls are up works in ticks of 0.5 ms: what arrived in a
tick is answered together, in one ``sendmsg`` per client. The switch logic (``Switch``)
does no I/O: tests drive it directly (tests/test_loadgen_fidelity.py).
"""

import argparse
import collections
import heapq
import itertools
import json
import os
import re
import select
import socket
import sys
import time
import uuid as uuidlib

from callflowd.esl import names, protocol
from callflowd.simulator.hashstore import HashStore
from tests.doubles.replay_switch import load_capture

CAPTURE = "b_device_busy_voicemail.plain.txt"
CAPTURE_DESTINATION = "5559999"
DESTINATION = "+10005559999"
HEARTBEAT_SECONDS = 20.0

# The applications the client ran in the capture, in order, and the segment each starts.
CLIENT_APPS = ("set", "bridge", "answer", "voicemail")

_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_IOV_MAX = 64  # buffers per sendmsg (Linux allows 1024; a full socket takes few)
_EVENT_HEAD = b"Content-Length: %d\nContent-Type: text/event-plain\n\n"

REPLY_OK = protocol.encode_command_reply("+OK")
API_OK = protocol.encode_api_response("+OK\n")
API_NO_CHANNEL = protocol.encode_api_response("-ERR No such channel!\n")


# ------------------------------------------------------------------------------- templates


class _Frame:
    """One event of the capture: its name, the leg it is about, its raw body, app and uuid."""

    __slots__ = ("name", "leg", "body", "app", "app_uuid")

    def __init__(self, name, leg, body, app, app_uuid):
        self.name, self.leg, self.body, self.app, self.app_uuid = name, leg, body, app, app_uuid


class Templates:
    """Capture b cut into per-call segments, rendered once per (subscription, argument).

    A rendered segment is one ``bytes`` with ``%(c)s``-style slots where the call's uuids
    go (every literal ``%`` doubled), so a call's frames are one ``template % values``.
    Segments: ``arrival`` (up to CHANNEL_PARK), one per client application (from its
    CHANNEL_EXECUTE to the next one's; voicemail's to the caller's CHANNEL_HANGUP), and
    ``hangup`` (from that CHANNEL_HANGUP to the end); ``hangup_idle`` is ``hangup`` without
    the running application's completion, for a call hung up between applications.
    """

    def __init__(self, capture=CAPTURE, destination=DESTINATION):
        data = load_capture(capture)
        frames = []
        for headers, body, _ in protocol.iter_frames(data):
            if headers.get(names.CONTENT_TYPE) != names.EVENT_PLAIN:
                continue
            event = protocol.parse_plain_event(body)
            frames.append(_Frame(event.get(names.EVENT_NAME), event.get(names.UNIQUE_ID), body,
                                 event.get(names.APPLICATION), event.get(names.APPLICATION_UUID)))
        park = next(i for i, f in enumerate(frames) if f.name == names.CHANNEL_PARK)
        self.caller = frames[park].leg
        self.core_uuid = protocol.parse_plain_event(frames[park].body).get(names.CORE_UUID)
        self.heartbeat = next(f.body for f in frames if f.name == names.HEARTBEAT)
        call_frames = [(i, f) for i, f in enumerate(frames) if f.leg]  # system events are not per call
        first = call_frames[0][0]
        starts = []  # (app, index of its CHANNEL_EXECUTE), the client's applications after the park
        wanted = list(CLIENT_APPS)
        for i, f in call_frames:
            if i > park and f.leg == self.caller and f.name == names.CHANNEL_EXECUTE and wanted and f.app == wanted[0]:
                starts.append((wanted.pop(0), i))
        if wanted:
            raise ValueError("%s: no CHANNEL_EXECUTE for %s after the park" % (capture, ", ".join(wanted)))
        hangup = next(i for i, f in call_frames
                      if i > starts[-1][1] and f.leg == self.caller and f.name == names.CHANNEL_HANGUP)
        bounds = [("arrival", first, park + 1)]
        for n, (app, start) in enumerate(starts):
            bounds.append((app, start, starts[n + 1][1] if n + 1 < len(starts) else hangup))
        bounds.append(("hangup", hangup, len(frames)))
        self.segments = {name: [f for i, f in call_frames if start <= i < stop] for name, start, stop in bounds}
        # the argument each client application ran with in the capture, as the events encode it
        self.capture_args = {}
        for app, start in starts:
            arg = protocol.parse_plain_event(frames[start].body).get(names.APPLICATION_DATA)
            self.capture_args[app] = protocol.url_encode(arg).encode() if arg else None
        self.client_app_uuids = {frames[start].app_uuid.encode() for _, start in starts}
        voicemail_uuid = frames[starts[-1][1]].app_uuid
        self.segments["hangup_idle"] = [
            f for f in self.segments["hangup"]
            if f.app_uuid != voicemail_uuid and b"\nexecute-app-name: voicemail\n" not in b"\n" + f.body]
        self.segments["heartbeat"] = [_Frame(names.HEARTBEAT, None, self.heartbeat, None, None)]
        # every other uuid gets a slot of its own: u0, u1, ... (fresh per call)
        self._slots = {self.caller.encode(): b"c", self.core_uuid.encode(): None}
        bleg = next((f.leg for _, f in call_frames if f.leg != self.caller), None)
        if bleg:
            self._slots[bleg.encode()] = b"b"
        for uuid in self.client_app_uuids:
            self._slots[uuid] = b"e"
        for _, f in call_frames:
            for match in _UUID.finditer(f.body):
                self._slots.setdefault(match.group(0), b"u%d" % len(self._slots))
        self.fresh_slots = sorted({s for s in self._slots.values() if s and s.startswith(b"u")})
        self._destination = (protocol.url_encode(CAPTURE_DESTINATION).encode(),
                             protocol.url_encode(destination).encode())
        self._cache = {}

    def render(self, segment, events, arg=None):
        """The segment's template for a connection subscribed to ``events`` (None: ALL),
        with the client's application argument ``arg`` (a str) where the capture had its own."""
        key = (segment, events, arg)
        template = self._cache.get(key)
        if template is None:
            template = self._cache[key] = self._render(segment, events, arg)
        return template

    def _render(self, segment, events, arg):
        old_arg = self.capture_args.get("voicemail" if segment.startswith("hangup") else segment)
        new_arg = protocol.url_encode(arg).encode() if arg is not None else None
        old_number = re.compile(rb"(?<![0-9+])" + re.escape(self._destination[0]) + rb"(?![0-9])")
        parts = []
        for frame in self.segments[segment]:
            if events is not None and frame.name not in events:
                continue
            body = old_number.sub(self._destination[1].replace(b"\\", b"\\\\"), frame.body)
            if old_arg and new_arg is not None:
                body = body.replace(b": " + old_arg + b"\n", b": " + new_arg + b"\n")
            raw = (_EVENT_HEAD % len(body) + body).replace(b"%", b"%%")
            parts.append(_UUID.sub(self._slot, raw))
        return b"".join(parts)

    def _slot(self, match):
        slot = self._slots.get(match.group(0))
        return match.group(0) if slot is None else b"%(" + slot + b")s"


class Uuids:
    """Fresh uuids, cheaply: a random prefix for the run and a counter (36 characters)."""

    def __init__(self):
        self._prefix = str(uuidlib.uuid4())[:24].encode()
        self._count = 0

    def __call__(self):
        self._count += 1
        return self._prefix + b"%012x" % self._count


# ------------------------------------------------------------------------------- the switch


class Connection:
    """One client as the switch sees it; ``write(bytes)`` is the I/O shell's (or a test's)."""

    def __init__(self, write):
        self.write = write
        self.authed = False
        self.events = frozenset()  # subscribed event names; None: ALL
        self.closing = False

    @property
    def subscribed(self):
        return self.events is None or bool(self.events)


class _Call:
    __slots__ = ("values", "app", "ended", "arg")

    def __init__(self, values):
        self.values = values
        self.app = None       # the client application running (its events' segment), or None
        self.arg = None       # voicemail's argument, for the hangup frames
        self.ended = False


class Switch:
    """The protocol and the per-call script; no I/O: ``place``/``command``/``due`` write to
    connections through their ``write``. ``timers`` holds (when, seq, uuid) hangups."""

    def __init__(self, templates=None, password="ClueCon", voicemail_seconds=0.0, clock=time.monotonic):
        self.templates = templates or Templates()
        self.password = password
        self.voicemail_seconds = voicemail_seconds
        self.clock = clock
        self.connections = []
        self.calls = {}
        self.hash_store = HashStore()  # mod_hash: the daemon claims each call here
        self.timers = []
        self.placed = 0
        self.ended = 0
        self.unexpected = []  # (first line of the command, what was odd), the first 20
        self.unexpected_count = 0
        self._uuids = Uuids()
        self._seq = 0

    # -- clients

    def connect(self, write):
        connection = Connection(write)
        self.connections.append(connection)
        write(protocol.encode_auth_request())
        return connection

    def disconnect(self, connection):
        if connection in self.connections:
            self.connections.remove(connection)

    def broadcast(self, segment, values, arg=None):
        for connection in self.connections:
            if connection.authed and not connection.closing and connection.subscribed:
                template = self.templates.render(segment, connection.events, arg)
                if template:
                    connection.write(template % values)

    # -- calls

    def place(self):
        """A call arrives and is parked: its frames up to CHANNEL_PARK go out now."""
        uuids = self._uuids
        caller = uuids()
        values = {b"c": caller, b"b": uuids(), b"e": b""}
        for slot in self.templates.fresh_slots:
            values[slot] = uuids()
        self.calls[caller.decode()] = _Call(values)
        self.placed += 1
        self.broadcast("arrival", values)
        return caller.decode()

    def hang_up(self, uuid):
        call = self.calls.pop(uuid, None)
        if call is None or call.ended:
            return False
        call.ended = True
        self.ended += 1
        if call.app == "voicemail":
            self.broadcast("hangup", call.values, call.arg)
        else:
            self.broadcast("hangup_idle", call.values)
        return True

    def due(self):
        """Run the timers that are due; the seconds until the next one, or None."""
        now = self.clock()
        while self.timers and self.timers[0][0] <= now:
            _, _, uuid = heapq.heappop(self.timers)
            self.hang_up(uuid)
        return self.timers[0][0] - now if self.timers else None

    # -- commands

    def command(self, connection, block):
        """One command block (bytes, without its blank line) from ``connection``."""
        line, _, rest = block.partition(b"\n")
        verb, _, arg = line.partition(b" ")
        if verb == b"sendmsg":
            return self._sendmsg(connection, arg.strip().decode(), rest, line)
        if verb == b"api":
            return self._api(connection, arg.decode())
        text = line.decode("utf-8", "replace")
        if verb == b"auth":
            if arg.decode() == self.password:
                connection.authed = True
                connection.write(protocol.encode_command_reply("+OK accepted"))
            else:
                connection.write(protocol.encode_command_reply("-ERR invalid")
                                 + protocol.encode_disconnect_notice(protocol.GOODBYE))
                connection.closing = True
            return
        if not connection.authed:
            connection.write(protocol.encode_command_reply("-ERR command not found"))
            return
        if verb == b"event":
            words = arg.decode().split()
            if words and words[0].lower() in ("plain", "json", "xml"):
                fmt = words.pop(0).lower()
            else:
                fmt = "plain"
            if fmt != "plain":
                self._unexpected(text, "only event plain is served")
            if "ALL" in (word.upper() for word in words) or connection.events is None:
                connection.events = None
            else:
                connection.events = connection.events | {word.upper() for word in words}
            connection.write(protocol.encode_command_reply("+OK event listener enabled %s" % fmt))
        elif verb == b"noevents":
            connection.events = frozenset()
            connection.write(protocol.encode_command_reply("+OK no longer listening for events"))
        elif verb == b"exit":
            connection.write(protocol.encode_command_reply("+OK bye")
                             + protocol.encode_disconnect_notice(protocol.GOODBYE))
            connection.closing = True
        elif verb == b"filter":
            self._unexpected(text, "filters are not applied")
            connection.write(protocol.encode_command_reply("+OK filter added. [%s]" % arg.decode()))
        elif verb in (b"linger", b"nolinger"):
            connection.write(protocol.encode_command_reply(
                "+OK will linger" if verb == b"linger" else "+OK will not linger"))
        else:
            connection.write(protocol.encode_command_reply("-ERR command not found"))

    def _unexpected(self, line, why):
        self.unexpected_count += 1
        if len(self.unexpected) < 20:
            self.unexpected.append((line, why))

    def _sendmsg(self, connection, uuid, rest, line):
        call = self.calls.get(uuid)
        if call is None:
            connection.write(protocol.encode_command_reply("-ERR invalid session id [%s]" % uuid))
            return
        headers = {}
        for header in rest.split(b"\n"):
            name, _, value = header.partition(b": ")
            headers[name.lower()] = value
        connection.write(REPLY_OK)
        command = headers.get(b"call-command", b"execute").lower()
        if command == b"hangup":
            self.hang_up(uuid)
            return
        app = headers.get(b"execute-app-name", b"").decode()
        if command != b"execute" or app not in CLIENT_APPS:
            self._unexpected(line.decode() + " " + app, "not in the spec's flow: no events sent")
            return
        arg = headers.get(b"execute-app-arg")
        arg = arg.decode() if arg is not None else None
        values = call.values
        values[b"e"] = headers.get(b"event-uuid") or self._uuids()
        call.app = app
        if app == "voicemail":
            call.arg = arg
        self.broadcast(app, values, arg)
        if app == "voicemail":
            if self.voicemail_seconds:
                self._seq += 1
                heapq.heappush(self.timers, (self.clock() + self.voicemail_seconds, self._seq, uuid))
            else:
                self.hang_up(uuid)
        else:
            call.app = None  # set, bridge and answer end within their segment

    def _api(self, connection, text):
        command, _, arg = text.partition(" ")
        if command in ("uuid_setvar_multi", "uuid_setvar"):
            target = arg.split(" ", 1)[0]
            connection.write(API_OK if target in self.calls else API_NO_CHANNEL)
        elif command == "uuid_kill":
            target = arg.split(" ", 1)[0]
            if target in self.calls:
                connection.write(API_OK)
                self.hang_up(target)
            else:
                connection.write(API_NO_CHANNEL)
        elif command == "show" and arg.strip() in ("channels as json", "calls as json"):
            connection.write(protocol.encode_api_response('{"row_count": 0}\n'))
        elif command == "hash":  # several daemons race for each call here (calls/ownership.py)
            connection.write(protocol.encode_api_response(self.hash_store.hash(arg)))
        elif command == "hash_dump":
            connection.write(protocol.encode_api_response(self.hash_store.dump(arg)))
        elif command == "uuid_exists":
            connection.write(protocol.encode_api_response("true" if arg.strip() in self.calls else "false"))
        else:
            self._unexpected("api " + text, "not served")
            connection.write(protocol.encode_api_response("-ERR %s Command not found!\n" % command))

    def heartbeat(self):
        for connection in self.connections:
            if connection.authed and not connection.closing and (
                    connection.events is None or names.HEARTBEAT in connection.events):
                connection.write(self.templates.render("heartbeat", connection.events) % {})

    def stats(self):
        return {"placed": self.placed, "ended": self.ended, "live": len(self.calls),
                "unexpected": self.unexpected_count, "unexpected_first": self.unexpected}


# ------------------------------------------------------------------------------- the I/O shell


class _Client:
    """A socket, its read buffer and its unsent frames (a deque of chunks, sent with one
    scatter-gather ``sendmsg``: a backlog the client has not read yet is never copied)."""

    def __init__(self, sock):
        self.sock = sock
        self.fd = sock.fileno()
        self.inbox = b""
        self.outbox = collections.deque()
        self.writing = False  # registered for EPOLLOUT: the socket's buffer was full
        self.connection = None


class Server:
    """The loop: the listening socket, the clients, the control pipe, pacing and timers.

    While calls are up it works in ticks of ``tick_seconds`` (0.5 ms): what arrived in a tick
    is answered together and each client's replies and events go out in one ``sendmsg``. A
    wake-up and two syscalls per command would cost the generator more than everything else
    it does; the real switch is no quicker (capture b's events came ~20 ms after their
    ``sendmsg``). The daemon's own latency (event read -> command written) is not affected.
    """

    def __init__(self, switch, control=None, reply=None, tick_seconds=0.0005):
        self.switch = switch
        self.tick_seconds = tick_seconds
        self.loops = 0
        self.epoll = select.epoll()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.epoll.register(self.listener.fileno(), select.EPOLLIN)
        self.clients = {}  # fd -> _Client
        self.control = control
        self.reply = reply
        self._control_buffer = b""
        if control is not None:
            os.set_blocking(control.fileno(), False)
            self.epoll.register(control.fileno(), select.EPOLLIN)
        self.running = True
        self._pacing = None  # [start, rate, count, placed so far]
        self._next_heartbeat = time.monotonic() + HEARTBEAT_SECONDS

    def run(self):
        """While calls are up, work in ticks of ``tick_seconds``: sleep, then take everything
        the sockets have, answer it, place the calls due, write once per client. Idle, block."""
        monotonic = time.monotonic
        poll = self.epoll.poll
        clients = self.clients
        switch = self.switch
        listener = self.listener.fileno()
        control = self.control.fileno() if self.control is not None else -1
        readable = select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR
        last_tick = monotonic()
        while self.running:
            self.loops += 1
            now = monotonic()
            if self._pacing is not None or (switch.calls and clients):
                if last_tick + self.tick_seconds > now:
                    time.sleep(last_tick + self.tick_seconds - now)
                last_tick = now = monotonic()
                wait = 0.0
            else:
                wait = self._next_heartbeat - now
                if switch.timers:
                    wait = min(wait, switch.timers[0][0] - now)
            for fd, mask in poll(max(0.0, wait)):
                if fd == listener:
                    self._accept()
                elif fd == control:
                    self._control()
                else:
                    client = clients.get(fd)
                    if client is None:
                        continue
                    if mask & readable:
                        self._read(client)
                    if mask & select.EPOLLOUT and client.fd in clients:
                        self._flush(client)
            if self._pacing is not None:
                self._place_due()
            if switch.timers:
                switch.due()
            if now >= self._next_heartbeat:
                switch.heartbeat()
                self._next_heartbeat = now + HEARTBEAT_SECONDS
            self._flush_all()
        self.close()

    def close(self):
        for client in list(self.clients.values()):
            client.sock.close()
        self.listener.close()
        self.epoll.close()

    # -- pacing

    def start_placing(self, count, rate):
        self._pacing = [time.perf_counter(), rate, count, 0]

    def _place_due(self):
        """Place the calls due now (at most 50 a tick when not paced, so replies are read
        between); the seconds until the next one, or None."""
        if self._pacing is None:
            return None
        start, rate, count, placed = self._pacing
        if rate:
            due = min(count, int((time.perf_counter() - start) * rate) + 1)
        else:
            due = count
        target = min(due, placed + 50)
        place = self.switch.place
        while placed < target:
            place()
            placed += 1
        self._pacing[3] = placed
        if placed >= count:
            self._pacing = None
            self._answer("placed %.3f" % (time.perf_counter() - start))
            return None
        if not rate or due > placed:
            return 0.0
        return start + placed / rate - time.perf_counter()

    # -- sockets

    def _accept(self):
        sock, _ = self.listener.accept()
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = _Client(sock)
        self.clients[client.fd] = client
        client.connection = self.switch.connect(client.outbox.append)
        self.epoll.register(client.fd, select.EPOLLIN)

    def _read(self, client):
        try:
            data = client.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        buffer = client.inbox + data if client.inbox else data
        command = self.switch.command
        connection = client.connection
        while True:
            end = buffer.find(b"\n\n")
            if end < 0:
                break
            block = buffer[:end]
            stop = end + 2
            length = _content_length(block) if b"ength:" in block else 0
            if length:
                if len(buffer) < stop + length:
                    break
                stop += length  # a command's body (sendmsg with its arg as body): not used here
            buffer = buffer[stop:]
            block = block.lstrip(b"\n")
            if block:
                command(connection, block)
        client.inbox = buffer

    def _flush_all(self):
        for client in list(self.clients.values()):
            if client.outbox and not client.writing:  # a full socket is written on EPOLLOUT
                self._flush(client)

    def _flush(self, client):
        outbox = client.outbox
        while outbox:
            try:
                sent = client.sock.sendmsg(itertools.islice(outbox, _IOV_MAX))
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._drop(client)
                return
            while sent:
                size = len(outbox[0])
                if sent < size:
                    outbox[0] = memoryview(outbox[0])[sent:]
                    break
                outbox.popleft()
                sent -= size
            else:
                continue
            break  # cut short: the socket's buffer is full
        if not outbox and client.connection.closing:
            self._drop(client)
            return
        if bool(outbox) != client.writing:
            client.writing = bool(outbox)
            self.epoll.modify(client.fd, select.EPOLLIN | (select.EPOLLOUT if client.writing else 0))

    def _drop(self, client):
        self.switch.disconnect(client.connection)
        if self.clients.pop(client.fd, None) is not None:
            self.epoll.unregister(client.fd)
            client.sock.close()

    # -- control

    def _control(self):
        data = os.read(self.control.fileno(), 65536)
        if not data:
            self.running = False
            return
        self._control_buffer += data
        while b"\n" in self._control_buffer:
            line, _, self._control_buffer = self._control_buffer.partition(b"\n")
            self.order(line.decode().split())

    def order(self, words):
        if not words:
            return
        if words[0] == "place":
            self.start_placing(int(words[1]), float(words[2]))
        elif words[0] == "stats":
            times = os.times()
            self._answer("stats " + json.dumps(dict(self.switch.stats(), cpu=times.user + times.system,
                                                    cpu_user=times.user, cpu_system=times.system,
                                                    loops=self.loops)))
        elif words[0] == "quit":
            self.running = False
        else:
            self._answer("error unknown order %r" % words[0])

    def _answer(self, text):
        if self.reply is not None:
            self.reply(text)


def _content_length(block):
    found = block.lower().find(b"content-length:")
    if found < 0:
        return 0
    value = block[found + 15:].split(b"\n", 1)[0]
    try:
        return int(value.strip())
    except ValueError:
        return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", default=DESTINATION, help="the destination number (default %s)" % DESTINATION)
    parser.add_argument("--voicemail-seconds", type=float, default=0.0,
                        help="how long the caller stays in voicemail before hanging up (default 0)")
    parser.add_argument("--password", default="ClueCon")
    args = parser.parse_args()

    def reply(text):
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    switch = Switch(Templates(destination=args.number), password=args.password,
                    voicemail_seconds=args.voicemail_seconds)
    server = Server(switch, control=sys.stdin.buffer, reply=reply)
    reply(str(server.port))
    server.run()


if __name__ == "__main__":
    main()
