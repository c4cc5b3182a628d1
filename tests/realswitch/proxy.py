"""A TCP proxy the test controls, between the daemon and the switch's event socket.

``cut()`` closes every connection and refuses new ones until ``restore()``;
``freeze()`` stops forwarding without closing anything (a half-open peer: no FIN,
no data) until ``thaw()``. It listens on a free loopback port that stays the same
across cut and restore, so the daemon reconnects to the same address.
"""

import socket

from gevent.event import Event
from gevent.pool import Group
from gevent.server import StreamServer


class EslProxy:
    def __init__(self, upstream):
        self.upstream = upstream
        self.port = None
        self._server = None
        self._pipes = Group()
        self._sockets = []
        self._flowing = Event()
        self._flowing.set()
        self.accepted = 0

    def start(self):
        self._listen(self.port or 0)
        return self

    def _listen(self, port):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(16)
        self._server = StreamServer(listener, self._handle)
        self._server.start()
        self.port = self._server.server_port

    def stop(self):
        self.cut()

    def cut(self):
        """Close every connection and stop listening (the daemon's reconnects are refused)."""
        if self._server is not None:
            self._server.stop(timeout=0)
            self._server = None
        for sock in self._sockets:
            try:
                sock.close()
            except OSError:
                pass
        self._sockets.clear()
        self._pipes.kill(block=False)

    def restore(self):
        self._listen(self.port)

    def freeze(self):
        self._flowing.clear()

    def thaw(self):
        self._flowing.set()

    def _handle(self, client, address):
        self.accepted += 1
        upstream = socket.create_connection(self.upstream, timeout=5)
        upstream.settimeout(None)
        self._sockets.extend((client, upstream))
        self._pipes.spawn(self._pump, client, upstream)
        self._pump(upstream, client)

    def _pump(self, source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                self._flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.close()
                except OSError:
                    pass
