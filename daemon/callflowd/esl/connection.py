"""One inbound event-socket connection to FreeSWITCH, with a timeout on every step.

Ours from the socket up; greenswitch is not used (esl/__init__.py says why).

- connect and authenticate within ``connect_timeout`` (esl/handshake.py);
- commands written whole under a lock, each reply matched to its command
  (esl/commands.py), each wait bounded by ``command_timeout``;
- frames read within ``limits`` (esl/limits.py) and decoded by esl/protocol.py,
  which splits a header block before it decodes a value (a caller-controlled
  value can't forge headers); events handed to ``on_event`` in order from one
  greenlet, yielding to the rest of the process every few frames (esl/pacing.py);
  an exception in ``on_event`` is logged with its traceback and the next event goes on;
- liveness: TCP keepalive on the socket; FreeSWITCH's HEARTBEAT (every 20 s,
  subscribed by the link) keeps frames coming, so no frame at all for
  ``idle_timeout``, or no reply to the oldest command for ``idle_timeout``, declares
  the connection dead; so does a write that cannot complete in its command's time;
- ``close()`` says ``exit`` and waits for ``+OK bye`` at most EXIT_TIMEOUT.

Errors are callflowd.errors'. An EslConnection is one TCP session: to reconnect,
make a new one (esl/link.py does).

Why one file: the handshake, command framing, limits and pacing are already their own modules;
what is left is one session's state, lock and three greenlets, which share every field and
read best in one place.
"""

import collections
import logging
import socket
import time

import gevent
import gevent.event
import gevent.lock
import gevent.pool
import gevent.queue

from callflowd.errors import CommandTimeout, EslError, NotConnected, ReplyLost
from callflowd.esl import commands, handshake, names, pacing, protocol
from callflowd.esl.limits import DEFAULT_LIMITS

log = logging.getLogger(__name__)

# How long close() waits for ``+OK bye``.
EXIT_TIMEOUT = 1.0

_NEW, _CONNECTING, _UP, _LOST, _CLOSED = "new", "connecting", "up", "lost", "closed"


class _Lost:
    """Queued after the last event, so on_disconnect comes after every event before it."""

    __slots__ = ("reason",)

    def __init__(self, reason):
        self.reason = reason


class EslConnection:
    """An authenticated inbound event socket with timeouts on every step.

    ``on_event(event)`` gets every event, in arrival order, from one greenlet;
    ``on_disconnect(reason)`` is called once if an established connection is
    lost (not after close()). Commands may be sent from any greenlet.
    ``with EslConnection(...) as connection:`` connects, and closes at the end.
    """

    def __init__(self, host, port, password, *, connect_timeout=5.0, command_timeout=10.0,
                 idle_timeout=30.0, limits=DEFAULT_LIMITS, name=None,
                 on_event=None, on_disconnect=None):
        self.host = host
        self.port = port
        self.password = password
        self._state = _NEW
        self.name = name or "%s:%s" % (host, port)
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.idle_timeout = idle_timeout
        # A reply twice as late as a command may be is a switch that stopped answering
        # (or reading); a late one within that is only slow (calls/call.py copes).
        self.reply_stall = min(idle_timeout, 2 * command_timeout)
        self.limits = limits
        self._last_frame = time.monotonic()
        self._watchdog = None
        self.on_event = on_event
        self.on_disconnect = on_disconnect
        self.sock = None
        self.sock_file = None
        self._closing = False
        self._reason = None
        self._pending = collections.deque()
        self._write_lock = gevent.lock.Semaphore()
        self._events = gevent.queue.Queue()
        self._greenlets = gevent.pool.Group()

    # ------------------------------------------------------------ state

    @property
    def connected(self):
        """True from a successful connect() until the connection is lost or closed."""
        return self._state == _UP

    def __enter__(self):
        self.connect()
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.close()

    def __repr__(self):
        return "<EslConnection %s %s:%s %s>" % (self.name, self.host, self.port, self._state)

    # ------------------------------------------------------------ connect

    def connect(self):
        """Connect, wait for auth/request and authenticate, all within connect_timeout.

        Raises NotConnected (refused, timed out, closed, rejected by an ACL)
        or AuthenticationFailed; never hangs.
        """
        if self._state != _NEW:
            raise EslError("an EslConnection connects once; make a new one")
        self._state = _CONNECTING
        expired = NotConnected("no event-socket handshake from %s:%s within %ss"
                               % (self.host, self.port, self.connect_timeout))
        try:
            with gevent.Timeout(self.connect_timeout, expired):
                self.sock = handshake.open_socket(self.host, self.port)
                self.sock_file = self.sock.makefile("rb")
                handshake.authenticate(self.sock, self.sock_file, self.password, self.limits,
                                       self.host, self.port)
            if self._closing:
                raise NotConnected("closed while connecting to %s:%s" % (self.host, self.port))
        except BaseException:
            self._state = _CLOSED
            self._close_socket()
            raise
        self._state = _UP
        self._last_frame = time.monotonic()
        self._start_greenlets()
        log.info("switch %s: event socket connected to %s:%s", self.name, self.host, self.port)

    # ------------------------------------------------------------ commands

    def send(self, data, timeout=None):
        """Send one raw command (its lines, without the final blank line); return the reply Event.

        The escape hatch for commands without a method (filter, noevents...).
        """
        if "\r" in data or "\n\n" in data or data.endswith("\n"):
            raise EslError("a command must not hold a blank line or CR: %r" % data)
        return self._request((data + "\n\n").encode("utf-8"), data.partition("\n")[0], timeout)

    def api(self, command, timeout=None):
        """Run ``api <command>`` and return the api/response body (``-ERR ...`` included)."""
        reply = self._command("api " + command, timeout=timeout)
        if reply.content_type != names.API_RESPONSE:
            raise EslError("api %s: %s" % (command, reply.get(names.REPLY_TEXT)))
        return reply.body or ""

    def api_all(self, lines, timeout=None):
        """Run several ``api`` commands in one write and one wait; their bodies, in order.

        FreeSWITCH runs them one after the other, in the order written (``execute``
        says why), so a later one sees what an earlier one did.
        """
        replies = self._request_all([(commands.encode("api " + command), "api " + command)
                                     for command in lines], timeout)
        for command, reply in zip(lines, replies):
            if reply.content_type != names.API_RESPONSE:
                raise EslError("api %s: %s" % (command, reply.get(names.REPLY_TEXT)))
        return [reply.body or "" for reply in replies]

    def bgapi(self, command, timeout=None):
        """Start ``bgapi <command>``; return its Job-UUID (the BACKGROUND_JOB event's too)."""
        reply = self._command("bgapi " + command, timeout=timeout)
        text = self._check_reply(reply, "bgapi " + command)
        # misc_protocol.plain.txt: "Reply-Text: +OK Job-UUID: <uuid>" plus a Job-UUID header
        return reply.get(names.JOB_UUID) or text.partition("Job-UUID: ")[2].strip()

    def execute(self, uuid, app, arg=None, event_uuid=None, timeout=None, before=()):
        """Queue application ``app`` on channel ``uuid`` with sendmsg.

        The ``+OK`` only means queued (protocol fact 6); the app's end is a
        CHANNEL_EXECUTE_COMPLETE whose Application-UUID is ``event_uuid``
        (g_event_uuid_playback_bgapi.json).

        ``before``: commands written in the same write, ahead of the sendmsg, and
        answered in one wait: an ``api`` command (a str, without ``api``) or another
        application for the same channel, not waited for (app, arg, event_uuid).
        Their replies are returned, in order: an api/response body, or a sendmsg's
        Reply-Text; a ``-ERR`` among them is a reply, not an error. FreeSWITCH runs
        each ``api`` to its end before it reads the next command: mod_event_socket's
        listener reads one command at a time and runs an ``api`` in its own thread
        (``parse_command``: ``api_exec(NULL, &acs)``, ``acs.bg = 0``), so whatever
        it sets on the channel is set before the app is queued; queued applications
        run in the order they were queued.
        """
        line = "sendmsg " + uuid
        batch = [(commands.encode("api " + item), "api " + item) if item.__class__ is str
                 else (commands.encode(line, commands.execute_headers(*item)), line) for item in before]
        batch.append((commands.encode(line, commands.execute_headers(app, arg, event_uuid)), line))
        replies = self._request_all(batch, timeout)
        self._check_reply(replies[-1], "execute %s on %s" % (app, uuid))
        return [reply.body or "" if reply.content_type == names.API_RESPONSE
                else reply.get(names.REPLY_TEXT, "") for reply in replies[:-1]]

    def hangup(self, uuid, cause=names.NORMAL_CLEARING, timeout=None):
        """Hang channel ``uuid`` up with ``cause`` (b_device_busy_voicemail.plain.sent.txt)."""
        reply = self._command("sendmsg " + uuid, commands.hangup_headers(cause), timeout=timeout)
        self._check_reply(reply, "hangup %s" % uuid)

    def subscribe(self, event_names, fmt="plain", timeout=None):
        """Add ``event_names`` to the subscription; the whole connection switches to ``fmt``."""
        if fmt not in ("plain", "json"):
            raise ValueError("event format must be plain or json, not %r" % fmt)
        if isinstance(event_names, str):
            event_names = event_names.split()
        if not event_names:
            raise ValueError("no event names to subscribe to")
        line = "event %s %s" % (fmt, " ".join(event_names))
        self._check_reply(self._command(line, timeout=timeout), line)

    @staticmethod
    def _check_reply(reply, what):
        text = reply.get(names.REPLY_TEXT, "")
        if text.startswith(names.ERR):
            raise EslError("%s: %s" % (what, text))
        return text

    def _command(self, line, headers=(), timeout=None):
        return self._request(commands.encode(line, headers), line, timeout)

    def _request(self, raw, what, timeout):
        """Write a command and wait for its reply, all within ``timeout``."""
        return self._request_all(((raw, what),), timeout)[0]

    def _request_all(self, batch, timeout):
        """Write (raw, what) commands in one write; wait for all their replies within ``timeout``.

        The slots are queued under the same lock as the write, so the queue's
        order is the wire's; a slot whose waiter timed out stays queued and
        takes its late reply, so the replies after it stay matched. Replies come
        in command order, so once the last is in, every one is.
        """
        timeout = self.command_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        slots = [commands.Pending(what) for _, what in batch]
        last = slots[-1]
        what = last.command
        if not self._write_lock.acquire(timeout=timeout):
            # the greenlet holding the lock loses the connection at its own deadline
            raise NotConnected("%s: not sent within %ss, writes are stuck" % (what, timeout))
        try:
            if self._state != _UP:
                raise NotConnected("%s: not connected (%s)" % (what, self._reason or self._state))
            self._pending.extend(slots)
            self._write(batch[0][0] if len(batch) == 1 else b"".join(raw for raw, _ in batch),
                        what, deadline)
            sent_at = time.monotonic()  # no yield since sendall returned: see commands.Pending.refuses
            overdue_at = sent_at + max(timeout, self.reply_stall)
            for slot in slots:
                slot.sent_at, slot.overdue_at = sent_at, overdue_at
        finally:
            self._write_lock.release()
        result = last.result
        try:
            result.get(timeout=max(0.0, deadline - time.monotonic()))
        except gevent.Timeout:
            for slot in slots:
                slot.abandoned = not slot.result.ready()
            raise CommandTimeout("%s: no reply within %ss" % (what, timeout),
                                 late_reply=result) from None
        return [slot.result.get() for slot in slots]

    def _write(self, raw, what, deadline):
        """sendall before the deadline; a failed or cut-short write leaves the stream unusable.

        A command nearly always fits in the socket's buffer at once: that first try
        needs no timer (``timeout=0.0``: gevent raises instead of waiting); only
        what is left after it is written under the deadline's timer.
        """
        try:
            sent = self.sock.send(raw, 0, timeout=0.0)
        except BlockingIOError:
            sent = 0
        except OSError as err:
            self._lose("write failed: %s" % err)
            raise NotConnected("%s: write failed: %s" % (what, err)) from err
        if sent == len(raw):
            return
        raw = memoryview(raw)[sent:]
        timer = gevent.Timeout(max(0.0, deadline - time.monotonic()))
        timer.start()
        try:
            self.sock.sendall(raw)
        except OSError as err:
            self._lose("write failed: %s" % err)
            raise NotConnected("%s: write failed: %s" % (what, err)) from err
        except BaseException as err:
            # timed out or killed mid-write: part of the command may be on the
            # wire, and the next command would be read as its continuation.
            # Without its blank line FreeSWITCH never runs it: "never sent".
            if err is timer:
                self._lose("write of %r did not complete in time: FreeSWITCH is not reading" % what)
                raise NotConnected("%s: could not be written in time" % what) from None
            self._lose("write of %r interrupted" % what)
            raise
        finally:
            timer.close()

    # ------------------------------------------------------------ greenlets

    def _start_greenlets(self):
        """Spawn the reader and the dispatcher into our Group, each linked to a crash logger."""
        for run in (self._receive, self._dispatch):
            greenlet = self._greenlets.spawn(run)
            greenlet.link_exception(self._crashed)
        self._watchdog = self._greenlets.spawn(self._watch)
        self._watchdog.link_exception(self._crashed)

    def _crashed(self, greenlet):
        log.error("switch %s: event-socket greenlet %s crashed; dropping the connection",
                  self.name, greenlet, exc_info=greenlet.exc_info)
        self._lose("internal error: %r" % (greenlet.exception,))

    def _receive(self):
        """Read frames until the connection ends: replies to their commands, events to the queue."""
        reason = "connection closed by FreeSWITCH"
        read_frame = protocol.read_frame
        limits = self.limits
        stream = self.sock_file
        monotonic = time.monotonic
        count = 0
        try:
            while (frame := read_frame(stream, limits)) is not None:
                self._last_frame = monotonic()
                ending = self._handle_frame(*frame)
                if ending:
                    reason = ending
                    break
                count += 1
                if count % pacing.YIELD_EVERY == 0:
                    pacing.pause()
        except protocol.FrameTooLarge as err:
            reason = "refused a frame: %s" % err
        except (OSError, protocol.ProtocolError) as err:
            reason = "connection broken: %s" % err
        finally:
            self._close_socket()
        self._lose(reason)

    def _handle_frame(self, headers, body):
        """Route one frame; return None to go on, or why the connection ends."""
        content_type = headers.get(names.CONTENT_TYPE)
        if content_type in (names.EVENT_PLAIN, names.EVENT_JSON):
            try:
                event = protocol.parse_frame(headers, body)
            except (ValueError, RecursionError) as err:
                # one event lost, not the connection: the framing around it was sound
                log.warning("switch %s: dropping an undecodable %s event (%s): %s", self.name,
                            content_type, str(err)[:80], protocol.excerpt(body or b""))
            else:
                self._events.put(event)
        elif content_type in (names.COMMAND_REPLY, names.API_RESPONSE):
            self._resolve(protocol.parse_frame(headers, body))
        elif content_type == names.DISCONNECT_NOTICE:
            return self._disconnect_notice(protocol.parse_frame(headers, body))
        elif content_type == names.RUDE_REJECTION:
            return "rejected by FreeSWITCH: %s" % (body or b"").decode("utf-8", "replace").strip()
        else:
            log.debug("switch %s: ignoring a %s frame", self.name, protocol.excerpt(content_type or ""))
        return None

    def _disconnect_notice(self, notice):
        # Content-Disposition: linger means FreeSWITCH keeps the socket open a while.
        if notice.get(names.CONTENT_DISPOSITION) == "linger":
            log.info("switch %s: event socket lingering: %s", self.name, (notice.body or "").strip())
            return None
        return "disconnect notice: %s" % " ".join((notice.body or "").split())

    def _resolve(self, reply):
        """Hand a reply to the oldest command, unless it provably isn't that command's."""
        slot = self._pending[0] if self._pending else None
        why = "no command is waiting" if slot is None else slot.refuses(reply)
        if why:
            text = reply.get(names.REPLY_TEXT) or reply.body or reply.content_type or ""
            log.warning("switch %s: dropping a reply nobody asked for (%s): %s", self.name, why,
                        protocol.excerpt(text))
            return
        self._pending.popleft()
        if slot.abandoned:
            log.info("switch %s: late reply to %r, which had timed out: %s", self.name, slot.command,
                     protocol.excerpt(reply.get(names.REPLY_TEXT) or reply.content_type or ""))
        slot.result.set(reply)

    def _watch(self):
        """Declare the connection dead when FreeSWITCH goes quiet for idle_timeout.

        Quiet means no frame at all for idle_timeout (FreeSWITCH sends a
        HEARTBEAT every 20 s, so a half-open TCP session shows as silence), or
        no reply to the oldest command sent within ``reply_stall`` (or its own
        longer timeout): a switch that stopped reading, or answering.
        """
        idle = self.idle_timeout
        while self._state == _UP:
            now = time.monotonic()
            due = self._last_frame + idle
            reason = None
            if now >= due:
                reason = ("no frame from FreeSWITCH for %.1fs (no HEARTBEAT either): "
                          "the connection is dead" % (now - self._last_frame))
            oldest = self._pending[0] if self._pending else None
            if oldest is not None and oldest.sent_at is not None:
                due = min(due, oldest.overdue_at)
                if reason is None and now >= oldest.overdue_at:
                    reason = ("no reply to %r for %.1fs: FreeSWITCH is not answering"
                              % (oldest.command, now - oldest.sent_at))
            if reason:
                self._lose(reason)
                return
            # a command sent from now on is overdue no earlier than now + reply_stall
            gevent.sleep(max(0.01, min(due, now + self.reply_stall) - now))

    def _dispatch(self):
        """Hand events to on_event in arrival order; after the last one, report the loss."""
        get = self._events.get
        count = 0
        while not self._closing:
            item = get()
            if isinstance(item, _Lost):
                self._notify_disconnect(item.reason)
                return
            self._deliver(item)
            count += 1
            if count % pacing.YIELD_EVERY == 0:
                pacing.pause()

    def _deliver(self, event):
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception:
            log.exception("switch %s: on_event failed for %r; going on with the next event", self.name, event)

    def _notify_disconnect(self, reason):
        if self.on_disconnect is None or self._closing:
            return
        try:
            self.on_disconnect(reason)
        except Exception:
            log.exception("switch %s: on_disconnect failed for %r", self.name, reason)

    # ------------------------------------------------------------ ending

    def _lose(self, reason):
        """The connection is gone: fail every waiting command and queue one report."""
        if self._state != _UP:
            return
        self._state = _LOST
        self._reason = reason
        while self._pending:
            slot = self._pending.popleft()
            # sent, never answered: it may have run (errors.ReplyLost)
            slot.result.set_exception(ReplyLost("%s: %s" % (slot.command, reason), late_reply=slot.result))
        self._shutdown_socket()  # wakes the reader if it is not us
        if self._watchdog is not None and self._watchdog is not gevent.getcurrent():
            self._watchdog.kill(block=False)
        if self._closing:
            log.info("switch %s: event socket closed: %s", self.name, reason)
        else:
            log.warning("switch %s: event socket lost: %s", self.name, reason)
            self._events.put(_Lost(reason))

    def close(self):
        """Say ``exit`` if connected, stop the greenlets, close the socket. Idempotent."""
        if self._closing or self._state == _CLOSED:
            return
        self._closing = True
        if self._state == _CONNECTING:
            self._shutdown_socket()  # connect() fails and cleans up after itself
            return
        if self._state == _UP:
            try:
                self._request(b"exit\n\n", "exit", min(EXIT_TIMEOUT, self.command_timeout))
            except EslError as err:
                log.debug("switch %s: no clean exit: %s", self.name, err)
        self._lose("closed by callflowd")
        current = gevent.getcurrent()
        for greenlet in list(self._greenlets):
            if greenlet is not current:
                self._greenlets.killone(greenlet, block=True, timeout=EXIT_TIMEOUT)
        self._close_socket()
        self._state = _CLOSED

    def join(self, timeout=None):
        """Wait until the reader and dispatcher have ended (after a loss or close)."""
        return self._greenlets.join(timeout=timeout)

    def _shutdown_socket(self):
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _close_socket(self):
        # Only the reader, or code that has stopped it, may close sock_file: a
        # BufferedReader closed under a pending read raises "reentrant call".
        for closable in (self.sock_file, self.sock):
            if closable is not None:
                try:
                    closable.close()
                except OSError:
                    pass
