"""One client of the simulated event socket: its subscription, and the commands it sends.

What a client sees is what FreeSWITCH 1.10 sent in the captures (README of
tests/fixtures/): ``auth/request`` on connect; ``+OK accepted`` or ``-ERR invalid`` then a
disconnect notice and close (misc_bad_auth); ``event plain|json NAMES`` adding to the
subscription and switching the whole connection to the last format named; replies in command
order with events in between; ``exit``, ``api``, ``bgapi``, ``filter``, ``sendmsg`` answered as
in misc_protocol. One writer greenlet per connection, fed by a queue, so two frames never
interleave.
"""

import logging
import socket

import gevent.queue

from callflowd.esl import names, protocol
from callflowd.simulator import api, templates
from callflowd.simulator.causes import known_cause

log = logging.getLogger(__name__)

_CLOSE = object()


class Connection:
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
        text, after = api.run(self.server, command, arg.strip())
        self.send(protocol.encode_api_response(text))
        if after is not None:
            after()
        if not api.not_found(text):
            self.server.api_event(command, arg.strip())

    def _cmd_bgapi(self, rest, headers, body):
        command, _, arg = rest.partition(" ")
        job_uuid = headers.get("job-uuid") or templates.new_uuid()
        self.reply("+OK Job-UUID: %s" % job_uuid, [("Job-UUID", job_uuid)])
        # FreeSWITCH runs it on a thread of its own; done at once here, the BACKGROUND_JOB
        # still follows the reply and precedes the next one (the protocol and Event-UUID captures)
        self.server.background_job(job_uuid, command, arg.strip())

    def _cmd_sendmsg(self, rest, headers, body):
        uuid = rest.split()[0] if rest else ""
        call = self.server.calls.get(uuid)
        if call is None or call.ended:
            self.reply("%s [%s]" % (names.ERR_NO_SUCH_CHANNEL, uuid))  # misc_protocol
            return
        # sendmsg is only queued: +OK at once, the work after (the captures' README, fact 6)
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
