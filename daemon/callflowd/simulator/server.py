"""A FreeSWITCH event socket (inbound mode) on 127.0.0.1, over real TCP, for the demo and tests.

What a client sees is what FreeSWITCH 1.10 sent in the captures (README of
/work/shared/fixtures/freeswitch): ``auth/request`` on connect; ``+OK accepted`` or
``-ERR invalid`` then a disconnect notice and close (misc_bad_auth); ``event plain|json
NAMES`` adding to the subscription and switching the whole connection to the last format
named; replies in command order with events in between; ``exit``, ``api``, ``bgapi``,
``filter``, ``sendmsg`` answered as in misc_protocol.

Each connection has one writer greenlet fed by a queue, so two frames never interleave; an
event is encoded once per format and queued to every connection that wants it, in the order
it was fired, without yielding. Every greenlet (listener, connections, writers, calls, timers)
belongs to one ``gevent.pool.Group`` and is killed by ``stop()``.
"""

import json
import logging
import socket
import time

import gevent
import gevent.event
import gevent.pool
import gevent.queue
from gevent import socket as gsocket

from callflowd.esl import protocol
from callflowd.simulator import templates
from callflowd.simulator.call import Scenario, SimulatedCall, known_cause
from callflowd.simulator.hashstore import HashStore

log = logging.getLogger(__name__)

SHUTDOWN_TEXT = "The system is being shut down."
VERSION = "1.10.12-release git a88d069 2024-08-02 21:02:27Z 64bit"

_CLOSE = object()
_ENCODERS = {"plain": protocol.encode_plain_event, "json": protocol.encode_json_event}


class FreeswitchSimulator:
    """A fake FreeSWITCH: one listening socket, its clients, its calls."""

    def __init__(self, password="ClueCon", hostname="sim", time_scale=1.0, heartbeat_seconds=20.0):
        self.password = password
        self.hostname = hostname
        self.time_scale = time_scale
        self.heartbeat_seconds = heartbeat_seconds
        self.core_uuid = templates.new_uuid()
        self.host = "127.0.0.1"
        self.port = None
        self.received = []
        self._group = gevent.pool.Group()
        self._listener = None
        self._connections = []
        self._calls = {}
        self.hash_store = HashStore()  # mod_hash's db (api hash, hash_dump)
        self._sequence = 0
        self._call_count = 0
        self._sessions = 0
        self._started = time.time()
        self._clients_changed = gevent.event.Event()
        self._stopped = False

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self):
        """Listen on 127.0.0.1, a free port; ``.port`` is set on return."""
        listener = gsocket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, 0))
        listener.listen(64)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._started = time.time()
        self.spawn(self._accept_loop)
        if self.heartbeat_seconds:
            self.spawn(self._heartbeat_loop)
        log.info("freeswitch simulator listening on %s:%d", self.host, self.port)
        return self

    def stop(self):
        """Disconnect notice to every client, close everything, kill every greenlet."""
        if self._stopped:
            return
        self._stopped = True
        self.disconnect_clients(SHUTDOWN_TEXT)
        if self._listener is not None:
            self._listener.close()
        # give the writers a moment to flush the notices, then kill what is left
        writers = [c.writer for c in self._connections if c.writer is not None]
        gevent.joinall(writers, timeout=1.0)
        self._group.kill(block=True, timeout=2.0)
        for conn in list(self._connections):
            conn.close_socket()
        log.info("freeswitch simulator stopped")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def spawn(self, func, *args):
        greenlet = self._group.spawn(func, *args)
        greenlet.link_exception(self._crashed)
        return greenlet

    def spawn_later(self, seconds, func, *args):
        greenlet = gevent.Greenlet(func, *args)
        greenlet.link_exception(self._crashed)
        self._group.add(greenlet)
        greenlet.start_later(seconds)
        return greenlet

    @staticmethod
    def _crashed(greenlet):
        log.error("simulator greenlet %r crashed", greenlet, exc_info=greenlet.exc_info)

    # -- calls -----------------------------------------------------------------------------------

    def place_call(self, destination="+10005559999", caller_id_number="+15551230000",
                   caller_id_name="sipp caller", scenario=None):
        """A call arrives in context ``public``: its events up to CHANNEL_PARK are sent now."""
        self._call_count += 1
        call = SimulatedCall(self, self._call_count, destination, caller_id_number, caller_id_name,
                             scenario if scenario is not None else Scenario())
        self._calls[call.uuid] = call
        call.arrive()
        log.info("call %s placed to %s from %s (%s)", call.uuid, destination, caller_id_number,
                 call.scenario.device)
        return call

    def next_session_id(self):
        """FreeSWITCH numbers sessions (variable_session_id) from 1 since startup."""
        self._sessions += 1
        return str(self._sessions)

    def call_ended(self, call):
        self._calls.pop(call.uuid, None)

    @property
    def calls(self):
        """The live calls, by uuid."""
        return dict(self._calls)

    # -- clients ---------------------------------------------------------------------------------

    def wait_for_clients(self, count=1, timeout=5.0):
        """Block until ``count`` clients are authenticated and subscribed to something."""
        deadline = time.monotonic() + timeout
        while True:
            ready = sum(1 for c in self._connections if c.authed and c.subscribed and not c.closing)
            if ready >= count:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("%d of %d clients subscribed after %s s" % (ready, count, timeout))
            self._clients_changed.clear()
            self._clients_changed.wait(remaining)

    def disconnect_clients(self, reason=SHUTDOWN_TEXT):
        """Like a switch shutdown: SHUTDOWN event, disconnect notice, close (shutdown_sigterm)."""
        source = templates.load("shutdown_sigterm")
        frame = source.find("system", "SHUTDOWN")
        self.emit(self._system_rewriter().frame(frame, source, templates.now_usec()))
        for conn in list(self._connections):
            conn.close_after(protocol.encode_disconnect_notice(reason + "\n"))

    def clients_changed(self):
        self._clients_changed.set()

    # -- events ----------------------------------------------------------------------------------

    def skip_unwanted(self, name):
        """True, with its Event-Sequence number taken, if no client could want event ``name``.

        Rendering an event costs more than the daemon spends on it (issue 10): an event no
        client subscribed to is never rendered. Filters and CUSTOM subclasses are not looked
        at here (``wants`` still is, at ``emit``), so this never skips a wanted event.
        """
        for conn in self._connections:
            if conn.authed and not conn.closing and (conn.all_events or name in conn.events):
                return False
        self._sequence += 1  # FreeSWITCH numbers every event, sent or not
        return True

    def emit(self, pairs, body=None):
        """Fire one event: number it, queue it to every client that wants it. Never yields."""
        self._sequence += 1
        pairs = [(k, str(self._sequence) if k == "Event-Sequence" else v) for k, v in pairs]
        name = pairs[0][1]
        headers = dict(pairs)
        encoded = {}
        for conn in self._connections:
            if conn.wants(name, headers):
                fmt = conn.fmt
                if fmt not in encoded:
                    encoded[fmt] = _ENCODERS[fmt](pairs, body)
                conn.send(encoded[fmt])

    def _system_rewriter(self):
        return templates.Rewriter(lambda moment: 0, self.core_uuid, self.hostname)

    def _heartbeat_loop(self):
        source = templates.load("b_device_busy_voicemail")
        frame = source.find("system", "HEARTBEAT")
        while True:
            gevent.sleep(self.heartbeat_seconds * self.time_scale)
            uptime = time.time() - self._started
            overrides = {
                "Up-Time": _uptime_text(uptime),
                "Uptime-msec": str(int(uptime * 1000)),
                "Session-Count": str(len(self._calls)),
                "Session-Since-Startup": str(self._call_count),
            }
            self.emit(self._system_rewriter().frame(frame, source, templates.now_usec(), overrides))

    # -- the listener ----------------------------------------------------------------------------

    def _accept_loop(self):
        while True:
            try:
                sock, address = self._listener.accept()
            except OSError:
                return
            conn = _Connection(self, sock)
            self._connections.append(conn)
            self.spawn(conn.run)

    def forget(self, conn):
        if conn in self._connections:
            self._connections.remove(conn)
        self.clients_changed()

    # -- api ---------------------------------------------------------------------------------------

    def api(self, command, arg):
        """Run an api command: (text of the reply, a function to run once the reply is queued)."""
        handler = getattr(self, "_api_" + command.replace("-", "_"), None) if command else None
        if handler is None:
            return "-ERR %s Command not found!\n" % command, None
        return handler(arg or "")

    def _api_status(self, arg):
        uptime = time.time() - self._started
        live = len(self._calls)
        text = (
            "UP %s\n"
            "FreeSWITCH (Version %s) is ready\n"
            "%d session(s) since startup\n"
            "%d session(s) - peak %d, last 5min %d \n"
            "0 session(s) per Sec out of max 30, peak 2, last 5min 2 \n"
            "1000 session(s) max\n"
            "min idle cpu 0.00/99.53\n"
            "Current Stack Size/Max 240K/8192K\n"
        ) % (_uptime_text(uptime), VERSION, self._call_count, live, max(live, 1), live)
        return text, None

    def _api_show(self, arg):
        words = arg.split()
        what = words[0] if words else ""
        if what not in ("calls", "channels") or words[1:] != ["as", "json"]:
            return "-USAGE: show calls|channels as json (the simulator knows no other form)\n", None
        rows = []
        for call in self._calls.values():
            rows.append(call.show_row(what))
        if not rows:
            return '{"row_count": 0}\n', None  # misc_protocol: note the space, and the newline
        return json.dumps({"row_count": len(rows), "rows": rows}, separators=(",", ":")), None

    def _api_uuid_kill(self, arg):
        words = arg.split()
        call = self._calls.get(words[0]) if words else None
        if call is None or call.ended:
            return "-ERR No such channel!\n", None
        cause = known_cause(words[1] if len(words) > 1 else None)
        return "+OK\n", lambda: call.hangup(cause, "local")

    def _api_uuid_exists(self, arg):
        return ("true" if arg.strip() in self._calls else "false"), None

    def _api_uuid_getvar(self, arg):
        words = arg.split()
        call = self._calls.get(words[0]) if words else None
        if call is None:
            return "-ERR No such channel!\n", None
        if len(words) < 2:
            return "-USAGE: <uuid> <var>\n", None
        return call.variables.get(words[1], "_undef_"), None

    def _api_uuid_setvar(self, arg):
        words = arg.split(None, 2)
        call = self._calls.get(words[0]) if words else None
        if call is None:
            return "-ERR No such channel!\n", None
        if len(words) < 2:
            return "-USAGE: <uuid> <var> [value]\n", None
        call.set_variable(words[1], words[2] if len(words) > 2 else None)
        return "+OK\n", None

    def _api_uuid_setvar_multi(self, arg):
        """``uuid_setvar_multi <uuid> a=1;b=2``; ``name=`` unsets (as FreeSWITCH 1.10.12)."""
        words = arg.split(None, 1)
        call = self._calls.get(words[0]) if words else None
        if call is None:
            return "-ERR No such channel!\n", None
        if len(words) < 2:
            return "-USAGE: <uuid> <var>=<value>;<var>=<value>\n", None
        for item in words[1].split(";"):
            name, _, value = item.partition("=")
            if name:
                call.set_variable(name, value or None)  # stored as sent: FreeSWITCH decodes nothing
        return "+OK\n", None

    def _api_uuid_dump(self, arg):
        words = arg.split()
        call = self._calls.get(words[0]) if words else None
        if call is None or call.ended:
            return "-ERR No such channel!\n", None
        return "".join("%s: %s\n" % (name, protocol.url_encode(value)) for name, value in call.dump_pairs()), None

    def _api_hash(self, arg):
        return self.hash_store.hash(arg), None

    def _api_hash_dump(self, arg):
        return self.hash_store.dump(arg), None

    def _api_hostname(self, arg):
        return self.hostname, None

    def _api_version(self, arg):
        return "FreeSWITCH Version 1.10.12-release+git~20240802T210227Z~a88d069d6f~64bit (%s)\n" % VERSION, None

    def background_job(self, job_uuid, command, arg):
        """bgapi: run the command, then fire BACKGROUND_JOB with its output (misc_protocol)."""
        text, after = self.api(command, arg)
        if after is not None:
            after()
        if "Command not found!" not in text:
            self.api_event(command, arg)
        source = templates.load("misc_protocol")
        frame = source.find("system", "BACKGROUND_JOB")
        pairs = [(k, v) for k, v in self._system_rewriter().frame(frame, source, templates.now_usec())
                 if k not in ("Job-UUID", "Job-Command")]
        pairs.append(("Job-UUID", job_uuid))
        pairs.append(("Job-Command", command))
        if arg:
            pairs.append(("Job-Command-Arg", arg))  # capture g
        self.emit(pairs, text)

    def api_event(self, command, arg):
        """The API event FreeSWITCH fires for every api command (captures a, c2)."""
        source = templates.load("b_device_busy_voicemail")
        frame = [f for f in source.frames if f.role == "system" and f.name == "API"][0]
        pairs = [(k, v) for k, v in self._system_rewriter().frame(frame, source, templates.now_usec())
                 if k not in ("API-Command", "API-Command-Argument")]
        pairs.append(("API-Command", command))
        if arg:
            pairs.append(("API-Command-Argument", arg))
        self.emit(pairs)


def _uptime_text(seconds):
    usec = int(seconds * 1000000)
    minutes, sec = divmod(usec // 1000000, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    years, days = divmod(days, 365)
    return "%d years, %d days, %d hours, %d minutes, %d seconds, %d milliseconds, %d microseconds" % (
        years, days, hours, minutes, sec, (usec // 1000) % 1000, usec % 1000)


class _Connection:
    """One inbound event-socket client."""

    def __init__(self, server, sock):
        self.server = server
        self.sock = sock
        self.queue = gevent.queue.Queue()
        self.writer = None
        self.authed = False
        self.closing = False
        self.fmt = "plain"
        self.all_events = False
        self.events = set()
        self.subclasses = set()
        self.filters = []

    @property
    def subscribed(self):
        return self.all_events or bool(self.events)

    def wants(self, name, headers):
        if not self.authed or self.closing:
            return False
        if not (self.all_events or name in self.events):
            return False
        if name == "CUSTOM" and self.subclasses and not self.all_events:
            if headers.get("Event-Subclass") not in self.subclasses:
                return False
        if self.filters:
            return any(headers.get(h) == v for h, v in self.filters)
        return True

    # -- writing ---------------------------------------------------------------------------------

    def send(self, data):
        if not self.closing:
            self.queue.put(data)

    def close_after(self, last_frame):
        """Queue a last frame (a disconnect notice), then close; nothing is sent after it."""
        if self.closing:
            return
        self.queue.put(last_frame)
        self.queue.put(_CLOSE)
        self.closing = True
        self.server.clients_changed()

    def _write_loop(self):
        try:
            while True:
                item = self.queue.get()
                if item is _CLOSE:
                    break
                self.sock.sendall(item)
        except OSError as exc:
            log.debug("simulator client gone while writing: %s", exc)
        finally:
            # the reader sees EOF and closes the socket
            self.closing = True
            self._shutdown()

    def _shutdown(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close_socket(self):
        self.closing = True
        self._shutdown()
        self.sock.close()

    # -- reading ---------------------------------------------------------------------------------

    def run(self):
        self.writer = self.server.spawn(self._write_loop)
        self.send(protocol.encode_auth_request())
        reader = self.sock.makefile("rb")
        try:
            while not self.closing:
                command = self._read_command(reader)
                if command is None:
                    break
                self._handle(*command)
        except OSError as exc:
            # also how a blocked read ends when the writer shuts the socket down after a
            # disconnect notice (gevent cancels the wait with EBADF)
            log.debug("simulator connection closed while reading: %s", exc)
        finally:
            reader.close()
            if not self.closing:
                self.queue.put(_CLOSE)
                self.closing = True
            if self.writer is not None:
                self.writer.join(timeout=1.0)
            self.close_socket()
            self.server.forget(self)

    def _read_command(self, reader):
        """(first line, {lower-case header: value}, body, raw text) or None at EOF."""
        lines = []
        while True:
            line = reader.readline()
            if not line:
                return None
            line = line.decode("utf-8", "replace").rstrip("\r\n")
            if line == "":
                if lines:
                    break
                continue
            lines.append(line)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = None
        raw = "\n".join(lines)
        if "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                length = 0
            body = reader.read(length).decode("utf-8", "replace")
            raw += "\n\n" + body
        self.server.received.append(raw)
        return lines[0].strip(), headers, body

    # -- commands --------------------------------------------------------------------------------

    def reply(self, text, extra=()):
        self.send(protocol.encode_command_reply(text, extra))

    def _handle(self, line, headers, body):
        verb, _, rest = line.partition(" ")
        verb = verb.lower()
        rest = rest.strip()
        if not self.authed:
            if verb == "auth":
                if rest == self.server.password:
                    self.authed = True
                    self.reply("+OK accepted")
                    self.server.clients_changed()
                else:
                    # misc_bad_auth: -ERR invalid, the goodbye notice, close
                    self.reply("-ERR invalid")
                    self.close_after(protocol.encode_disconnect_notice(protocol.GOODBYE))
            else:
                self.reply("-ERR command not found")
            return
        handler = getattr(self, "_cmd_" + verb, None)
        if handler is None:
            self.reply("-ERR command not found")  # misc_protocol
            return
        handler(rest, headers, body)

    def _cmd_auth(self, rest, headers, body):
        self.reply("+OK accepted")

    def _cmd_event(self, rest, headers, body):
        words = rest.split()
        fmt = words[0].lower() if words else ""
        if fmt not in ("plain", "json", "xml"):
            # "event ALL" without a format: FreeSWITCH takes plain
            words.insert(0, "plain")
            fmt = "plain"
        self.fmt = "json" if fmt == "json" else "plain"  # xml is sent as plain: not simulated
        custom = False
        for word in words[1:]:
            upper = word.upper()
            if upper == "ALL":
                self.all_events = True
            elif upper == "CUSTOM":
                custom = True
                self.events.add("CUSTOM")
            elif custom and not word.isupper():
                self.subclasses.add(word)
            else:
                self.events.add(upper)
        self.reply("+OK event listener enabled %s" % fmt)
        self.server.clients_changed()

    def _cmd_noevents(self, rest, headers, body):
        self.all_events = False
        self.events.clear()
        self.subclasses.clear()
        self.reply("+OK no longer listening for events")
        self.server.clients_changed()

    def _cmd_nixevent(self, rest, headers, body):
        for word in rest.split():
            if word.upper() == "ALL":
                self.all_events = False
                self.events.clear()
            else:
                self.events.discard(word.upper())
        self.reply("+OK events nixed")
        self.server.clients_changed()

    def _cmd_filter(self, rest, headers, body):
        words = rest.split(None, 1)
        if words and words[0].lower() == "delete":
            header, _, value = (words[1] if len(words) > 1 else "").partition(" ")
            self.filters = [(h, v) for h, v in self.filters if not (h == header and v == value.strip())]
            self.reply("+OK filter deleted. [%s][%s]" % (header, value.strip()))
            return
        header, _, value = rest.partition(" ")
        self.filters.append((header, value.strip()))
        self.reply("+OK filter added. [%s]=[%s]" % (header, value.strip()))

    def _cmd_exit(self, rest, headers, body):
        self.reply("+OK bye")
        self.close_after(protocol.encode_disconnect_notice(protocol.GOODBYE))

    def _cmd_linger(self, rest, headers, body):
        self.reply("+OK will linger")

    def _cmd_nolinger(self, rest, headers, body):
        self.reply("+OK will not linger")

    def _cmd_api(self, rest, headers, body):
        command, _, arg = rest.partition(" ")
        text, after = self.server.api(command, arg.strip())
        self.send(protocol.encode_api_response(text))
        if after is not None:
            after()
        if "Command not found!" not in text:
            self.server.api_event(command, arg.strip())

    def _cmd_bgapi(self, rest, headers, body):
        command, _, arg = rest.partition(" ")
        job_uuid = headers.get("job-uuid") or templates.new_uuid()
        self.reply("+OK Job-UUID: %s" % job_uuid, [("Job-UUID", job_uuid)])
        # FreeSWITCH runs it on a thread of its own; done at once here, the BACKGROUND_JOB
        # still follows the reply and precedes the next one (misc_protocol, g)
        self.server.background_job(job_uuid, command, arg.strip())

    def _cmd_sendmsg(self, rest, headers, body):
        uuid = rest.split()[0] if rest else ""
        call = self.server.calls.get(uuid)
        if call is None or call.ended:
            self.reply("-ERR invalid session id [%s]" % uuid)  # misc_protocol
            return
        # sendmsg is only queued: +OK at once, the work after (README fact 6)
        self.reply("+OK")
        command = headers.get("call-command", "").lower()
        if command == "execute":
            arg = headers.get("execute-app-arg")
            if arg is None and body is not None:
                arg = body
            call.execute(headers.get("execute-app-name", ""), arg, headers.get("event-uuid"))
        elif command == "hangup":
            call.hangup(known_cause(headers.get("hangup-cause")), "local")
        else:
            log.info("simulator ignores sendmsg call-command %r", command)
