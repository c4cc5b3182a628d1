"""A real systemd notify socket: an AF_UNIX datagram socket the daemon finds in NOTIFY_SOCKET."""

import os
import socket
import tempfile


class NotifySocket:
    """Binds a datagram socket (path or abstract) and reads sd_notify messages from it.

    Each message is kept as a dict (``{"READY": "1", "STATUS": "running"}``) in ``received``.
    """

    def __init__(self, abstract=False):
        self._dir = None
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "callflowd-test-%d-%s" % (os.getpid(), os.urandom(4).hex())
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            # sun_path holds 107 bytes: pytest's tmp_path can be longer, so a short directory.
            self._dir = tempfile.mkdtemp(prefix="cfd-notify-")
            self.address = os.path.join(self._dir, "notify")
            self.sock.bind(self.address)
        self.received = []

    def close(self):
        self.sock.close()
        if self._dir:
            try:
                os.unlink(self.address)
            except FileNotFoundError:
                pass
            os.rmdir(self._dir)

    def next(self, timeout=10.0):
        """The next message, waiting up to ``timeout`` seconds for it."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            raise TimeoutError("no notify message within %ss; got %r" % (timeout, self.received)) from None
        message = dict(line.partition("=")[::2] for line in data.decode("utf-8").split("\n") if line)
        self.received.append(message)
        return message

    def wait_for(self, key, value=None, timeout=10.0):
        """Read messages until one has ``key`` (equal to ``value`` if given); return it."""
        while True:
            message = self.next(timeout)
            if key in message and (value is None or message[key] == value):
                return message
