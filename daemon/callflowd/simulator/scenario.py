"""What the simulated people do on a call: the caller, and the phones a bridge rings."""

import dataclasses

DEVICES = ("busy", "answer", "no_answer", "unregistered")


@dataclasses.dataclass(frozen=True)
class Scenario:
    """What the simulated people do. Seconds are simulated seconds (times ``time_scale``).

    device: what the bridged phone does: ``answer`` after ``ring_seconds``; ``busy`` (486)
    after ``ring_seconds`` (0: at once, as in the busy-then-voicemail capture); ``no_answer``
    rings until the ring limit; ``unregistered``: no phone, USER_NOT_REGISTERED at once.
    talk_seconds: once bridged, the caller hangs up after this long.
    caller_hangup_after: if set, the caller hangs up this long after the last application
    started (whatever it is).
    voicemail_seconds: the caller hangs up this long into ``voicemail`` (unless
    caller_hangup_after is set).
    digits: what the caller keys in, one string per prompt of ``play_and_get_digits`` (each
    try of it takes the next one); ``""`` or none left: nothing, the try times out. Keys go
    out as DTMF events shaped like the digits-entered capture; a terminator (``#``) ends the
    entry.
    phones: per dialled user, what that phone does (``{"1000": "busy"}``), for dial strings
    with several endpoints (ring groups); a user not named does what ``device`` says.
    authenticated_as: a directory user (``"1000"``): the call comes from that registered user on
    the ``internal`` profile, authenticated by the switch (``variable_sip_authorized: true``),
    as the real switch shows it; None (the default): from outside, the ``external`` profile,
    context ``public``, no authentication (the captures' call).
    """

    device: str = "answer"
    ring_seconds: float = 1.5
    talk_seconds: float = 4.0
    caller_hangup_after: float = None
    voicemail_seconds: float = 8.0
    digits: tuple = ()
    phones: tuple = ()  # of (user, behaviour); a dict is accepted and frozen
    authenticated_as: str = None

    def phone(self, user, endpoint=None):
        """What the phone of ``user`` does; a key naming the whole endpoint
        (``+14155550000@127.0.0.1:5099``, a carrier) wins over the user alone."""
        phones = dict(self.phones)
        if endpoint is not None:
            target = endpoint.split("/")[-1]
            if target in phones:
                return phones[target]
        return phones.get(user, self.device)

    def __post_init__(self):
        if self.device not in DEVICES:
            raise ValueError("scenario device must be one of %s, not %r" % (", ".join(DEVICES), self.device))
        for name in ("ring_seconds", "talk_seconds", "voicemail_seconds"):
            if getattr(self, name) < 0:
                raise ValueError("scenario %s must not be negative" % name)
        if self.caller_hangup_after is not None and self.caller_hangup_after < 0:
            raise ValueError("scenario caller_hangup_after must not be negative")
        if isinstance(self.phones, dict):
            object.__setattr__(self, "phones", tuple(sorted(self.phones.items())))
        for user, behaviour in self.phones:
            if behaviour not in DEVICES:
                raise ValueError("scenario phone %s must be one of %s, not %r"
                                 % (user, ", ".join(DEVICES), behaviour))
        if isinstance(self.digits, (list, str)):
            object.__setattr__(self, "digits", tuple([self.digits] if isinstance(self.digits, str)
                                                     else self.digits))
