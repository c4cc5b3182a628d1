"""Opening an event socket: the TCP connection and the password exchange.

Both run inside the caller's timeout (EslConnection.connect); every failure is a
NotConnected (refused, closed, rejected by an ACL) or an AuthenticationFailed.
"""

import socket

import gevent.socket

from callflowd.errors import AuthenticationFailed, NotConnected
from callflowd.esl import commands, names, protocol

# TCP keepalive: probe after this idle time, then every interval, give up after count.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 10, 5, 3


def open_socket(host, port):
    """A TCP connection to ``host:port``, set for small commands and a peer that may vanish."""
    try:
        sock = gevent.socket.create_connection((host, port))
    except OSError as err:
        raise NotConnected("cannot connect to %s:%s: %s" % (host, port, err)) from err
    # small commands, each waiting for a reply: don't let Nagle hold them back
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # a peer that vanished (power, cable, NAT state) gets a reset after ~25 s
    # of silence even when HEARTBEATs are off; TCP_KEEP* are Linux names
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE), ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
                          ("TCP_KEEPCNT", KEEPALIVE_COUNT)):
        if hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
    return sock


def authenticate(sock, stream, password, limits, host, port):
    """Answer auth/request on ``sock`` (read through ``stream``) with ``password``.

    A wrong password gets ``-ERR invalid``, a disconnect notice and a close
    (misc_bad_auth.txt); an ACL refusal gets text/rude-rejection instead of
    auth/request.
    """
    greeting = _read_frame(stream, limits, host, port)
    if greeting.content_type == names.RUDE_REJECTION:
        raise NotConnected("FreeSWITCH at %s:%s refused the connection: %s"
                           % (host, port, (greeting.body or "").strip()))
    if greeting.content_type != names.AUTH_REQUEST:
        raise NotConnected("expected auth/request from %s:%s, got %s"
                           % (host, port, greeting.content_type))
    try:
        sock.sendall(commands.encode("auth %s" % password, what="the password"))
    except OSError as err:
        raise NotConnected("cannot write to %s:%s: %s" % (host, port, err)) from err
    reply = _read_frame(stream, limits, host, port)
    text = reply.get(names.REPLY_TEXT, "")
    if not text.startswith(names.OK):
        raise AuthenticationFailed("FreeSWITCH at %s:%s refused the password: %s"
                                   % (host, port, text or reply.content_type))


def _read_frame(stream, limits, host, port):
    try:
        frame = protocol.read_frame(stream, limits)
    except (OSError, protocol.ProtocolError) as err:
        raise NotConnected("event-socket handshake failed: %s" % err) from err
    if frame is None:
        raise NotConnected("FreeSWITCH at %s:%s closed the connection during the handshake"
                           % (host, port))
    return protocol.parse_frame(*frame)
