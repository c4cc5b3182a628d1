"""A FreeSWITCH event socket (inbound mode) on 127.0.0.1, over real TCP, for the demo and tests.

The switch as a whole: the listening socket and its clients (``connection.Connection``
speaks to each), the live calls (``call.SimulatedCall``), the system events (HEARTBEAT,
SHUTDOWN, API, BACKGROUND_JOB) and the ``api`` commands (``api``). An event is encoded once
per format and queued to every connection that wants it, in the order it was fired, without
yielding. Every greenlet (listener, connections, writers, calls, timers)
belongs to one ``gevent.pool.Group`` and is killed by ``stop()``.
"""

import logging
import socket
import time

import gevent
import gevent.event
import gevent.pool
from gevent import socket as gsocket

from callflowd.esl import protocol
from callflowd.simulator import api, captures, templates
from callflowd.simulator.call import SimulatedCall
from callflowd.simulator.connection import Connection
from callflowd.simulator.hashstore import HashStore
from callflowd.simulator.scenario import Scenario

log = logging.getLogger(__name__)

SHUTDOWN_TEXT = "The system is being shut down."

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
        self.call_count = 0  # calls placed since start
        self._sessions = 0
        self.started = time.time()
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
        self.started = time.time()
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
        self.call_count += 1
        call = SimulatedCall(self, self.call_count, destination, caller_id_number, caller_id_name,
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
        source = templates.load(captures.SHUTDOWN)
        frame = source.find("system", "SHUTDOWN")
        self.emit(self._system_rewriter().frame(frame, source, templates.now_usec()))
        for conn in list(self._connections):
            conn.close_after(protocol.encode_disconnect_notice(reason + "\n"))

    def clients_changed(self):
        self._clients_changed.set()

    # -- events ----------------------------------------------------------------------------------

    def skip_unwanted(self, name):
        """True, with its Event-Sequence number taken, if no client could want event ``name``.

        Rendering an event costs more than the daemon spends on it: an event no client
        subscribed to is never rendered. Filters and CUSTOM subclasses are not looked
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
        source = templates.load(captures.PHONE_BUSY_THEN_VOICEMAIL)
        frame = source.find("system", "HEARTBEAT")
        while True:
            gevent.sleep(self.heartbeat_seconds * self.time_scale)
            uptime = time.time() - self.started
            overrides = {
                "Up-Time": api.uptime_text(uptime),
                "Uptime-msec": str(int(uptime * 1000)),
                "Session-Count": str(len(self._calls)),
                "Session-Since-Startup": str(self.call_count),
            }
            self.emit(self._system_rewriter().frame(frame, source, templates.now_usec(), overrides))

    # -- the listener ----------------------------------------------------------------------------

    def _accept_loop(self):
        while True:
            try:
                sock, address = self._listener.accept()
            except OSError:
                return
            conn = Connection(self, sock)
            self._connections.append(conn)
            self.spawn(conn.run)

    def forget(self, conn):
        if conn in self._connections:
            self._connections.remove(conn)
        self.clients_changed()

    # -- api ---------------------------------------------------------------------------------------

    def api(self, command, arg):
        """Run an api command: (text of the reply, a function to run once the reply is queued)."""
        return api.run(self, command, arg)

    def background_job(self, job_uuid, command, arg):
        """bgapi: run the command, then fire BACKGROUND_JOB with its output (misc_protocol)."""
        text, after = api.run(self, command, arg)
        if after is not None:
            after()
        if not api.not_found(text):
            self.api_event(command, arg)
        source = templates.load(captures.PROTOCOL)
        frame = source.find("system", "BACKGROUND_JOB")
        pairs = [(k, v) for k, v in self._system_rewriter().frame(frame, source, templates.now_usec())
                 if k not in ("Job-UUID", "Job-Command")]
        pairs.append(("Job-UUID", job_uuid))
        pairs.append(("Job-Command", command))
        if arg:
            pairs.append(("Job-Command-Arg", arg))  # the Event-UUID capture
        self.emit(pairs, text)

    def api_event(self, command, arg):
        """The API event FreeSWITCH fires for every api command (the answered and rings-out captures)."""
        source = templates.load(captures.PHONE_BUSY_THEN_VOICEMAIL)
        frame = [f for f in source.frames if f.role == "system" and f.name == "API"][0]
        pairs = [(k, v) for k, v in self._system_rewriter().frame(frame, source, templates.now_usec())
                 if k not in ("API-Command", "API-Command-Argument")]
        pairs.append(("API-Command", command))
        if arg:
            pairs.append(("API-Command-Argument", arg))
        self.emit(pairs)
