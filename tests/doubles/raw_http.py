"""A hostile HTTP receiver: a raw TCP server on 127.0.0.1:0 that answers each request with bytes
a test scripts, exactly, however wrong they are.

Each request (its head read up to the empty line, then ``Content-Length`` bytes of body) is
recorded with the connection it came on, and answered with the next script of ``answers``, or
``DEFAULT`` when none is left. A script is a list of steps: bytes to send, ``("pause", seconds)``
(a receiver that is slow, not a synchronisation), ``CLOSE`` (close the connection at once) or
``RESET`` (close it with a TCP RST).
"""

import socket
import struct

import gevent
import gevent.server

DEFAULT = [b"HTTP/1.1 202 Accepted\r\nContent-Length: 4\r\n\r\nnext"]
CLOSE = "close"
RESET = "reset"


class Received:
    """One request: ``head`` (bytes, up to the empty line), ``body``, ``connection`` (1, 2, ...)."""

    def __init__(self, connection, head, body):
        self.connection = connection
        self.head = head
        self.body = body

    @property
    def request_line(self):
        return self.head.split(b"\r\n", 1)[0].decode("latin-1")

    def header(self, name):
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.decode("latin-1").partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


class RawReceiver:
    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests = []
        self.connections = 0
        self.arrived = gevent.event.Event()
        self._server = gevent.server.StreamServer(("127.0.0.1", 0), self._serve)
        self._server.start()
        self.port = self._server.server_port

    def url(self, path="/hook", scheme="http"):
        return "%s://127.0.0.1:%d%s" % (scheme, self.port, path)

    def stop(self):
        self._server.stop(timeout=0.5)

    def _serve(self, sock, _address):
        self.connections += 1
        connection = self.connections
        reader = sock.makefile("rb")
        try:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline(1 << 20)
                    if not line:
                        return
                    head += line
                request = Received(connection, head, b"")
                length = request.header("Content-Length")
                request.body = reader.read(int(length)) if length else b""
                self.requests.append(request)
                self.arrived.set()
                script = self.answers.pop(0) if self.answers else DEFAULT
                if not self._play(sock, script):
                    return
        except OSError:
            return
        finally:
            reader.close()
            sock.close()

    @staticmethod
    def _play(sock, script):
        """Play one script; False once the connection is closed."""
        for step in script:
            if step == CLOSE:
                return False
            if step == RESET:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return False
            if isinstance(step, tuple):
                gevent.sleep(step[1])  # a slow receiver, scripted
            else:
                sock.sendall(step)
        return True
