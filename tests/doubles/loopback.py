"""What the test doubles that listen share: a TCP listener on 127.0.0.1:0 and its greenlets.

A subclass accepts connections in ``_accept`` (spawned by ``start``), keeps them in
``sessions`` and gives each a ``close()``; ``stop`` kills every greenlet, closes every
session, then the listener.
"""

import gevent.pool
import gevent.socket


class LoopbackServer:
    def __init__(self):
        self.sessions = []
        self._group = gevent.pool.Group()
        self._server = None

    def start(self):
        self._server = gevent.socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(8)
        self._group.spawn(self._accept)
        return self

    @property
    def address(self):
        return self._server.getsockname()

    def stop(self):
        self._group.kill(block=True, timeout=5)
        for session in self.sessions:
            session.close()
        if self._server is not None:
            self._server.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def _accept(self):
        raise NotImplementedError


def close_socket(sock):
    """Shut a socket down both ways (the peer sees EOF at once), then close it."""
    try:
        sock.shutdown(gevent.socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
