"""How much one event-socket frame may hold before we refuse it, as a value.

FreeSWITCH's real frames are far below these (the captures' largest event,
a CHANNEL_HANGUP_COMPLETE with SDP, is ~12 KiB; its longest header line ~2
KiB; ~250 headers), so the defaults leave room for big SDP or many channel
variables while a broken or hostile peer can't make us reserve a gigabyte or
read one line for ever (tests/test_bad_day.py sends a 1 GB Content-Length and a
64 MB header line).
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class FrameLimits:
    """Upper bounds for one frame's outer header block and body, in bytes and lines."""

    max_line: int = 64 * 1024
    max_headers: int = 256
    max_body: int = 1024 * 1024

    def __post_init__(self):
        for name in ("max_line", "max_headers", "max_body"):
            if getattr(self, name) < 1:
                raise ValueError("%s must be >= 1" % name)


DEFAULT_LIMITS = FrameLimits()
