"""``sd_notify`` in a few lines of stdlib (after gunicorn/systemd.py).

Does nothing when not started by systemd with ``Type=notify`` (no NOTIFY_SOCKET).
"""

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(state):
    """Send ``state`` (``READY=1``, ``STOPPING=1``, ``STATUS=...``) to systemd, if it listens."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError as exc:
        log.warning("could not notify systemd (%s): %s", state, exc)
        return False
    return True
