"""callflowd: run Kazoo-style callflows on FreeSWITCH calls over the event socket."""

__version__ = "0.1.0"
