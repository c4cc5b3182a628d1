"""The event-socket layer: everything between FreeSWITCH's mod_event_socket and a call.

- ``protocol`` (framing, decoding, encoding; no I/O), ``event`` (one decoded frame),
  ``limits`` (how big a frame may be), ``names`` (every FreeSWITCH event, header and
  variable name and the replies we test for);
- ``handshake`` (TCP connect and password), ``commands`` (the bytes of a command and the
  matching of replies to commands), ``pacing`` (how the socket's greenlets yield),
  ``connection`` (one TCP session: commands with timeouts, events in order, liveness);
- ``link`` (one switch: a succession of connections, reconnects with back-off).

greenswitch is not used. The connection began as a subclass of greenswitch's
``InboundESL`` and replaced, one gap at a time, every method that touches the socket:
connect and authenticate (greenswitch waits for auth/request without a timeout, lets
ConnectionRefusedError through and raises ValueError on a wrong password); ``send``
(no timeout, no lock, ``sock.send`` may write half a command, and a reply that comes
after its waiter gave up is handed to the next one); the reader (its ESLEvent
percent-decodes a header block before splitting it, so a caller-controlled value can
forge headers; a connection lost inside a body makes ``_read_socket`` spin; nobody
learns that the connection is gone); the dispatcher (handler exceptions go to the root
logger); ``stop`` (``exit`` without a timeout). All that was left of the base class was
a constructor setting four attributes and ``__enter__``/``__exit__``, so the connection
is ours outright. greenswitch stays in the ``test`` extra as the reference the
event-socket benchmarks measure our client against (docs/benchmarks.md).
"""
