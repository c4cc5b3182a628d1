"""``play``: play media to the caller.

data (Kazoo 4.3 ``callflows.play``):
  ``id`` (required)  a media id (a ``media`` document), a file path, an http(s) URL or a
                     ``tone_stream://`` (see actions/media.py)
  ``answer``         answer first (default true; false plays as early media, 183)
  ``loop_count``     times to play it, 1-100 (default 1)
  ``terminators``    DTMF keys that cut the playback short (default: every key)

Branches: ``_`` (also when a key cut it short; the rest of the loop is then skipped).

FreeSWITCH facts: ``playback`` stops on the keys in the channel variable
``playback_terminators`` (default ``*``; ``none`` for none) and leaves the key used in
``playback_terminator_used``; on a channel without media it pre-answers (183) itself
(tests/fixtures/g_event_uuid_playback_bgapi.json.txt). Its EXECUTE_COMPLETE says ``FILE PLAYED`` when it played to the end.
"""

import dataclasses

from callflowd.actions import media
from callflowd.actions.outcome import DEFAULT
from callflowd.config import fields
from callflowd.esl import names

ANY_KEY = "1234567890*#"
MAX_LOOPS = 100
# A long announcement is still bounded.
MAX_PLAY_SECONDS = 3600


# The data keys it honours, and the keys of Kazoo's schema it accepts without doing them:
# ``check`` warns about each of those, and about any other key (flow/parser.py).
SUPPORTED = ("id", "answer", "loop_count", "terminators")
NOT_SUPPORTED = ("endless_playback",)


@dataclasses.dataclass(frozen=True)
class Data:
    media: str
    answer: bool
    loop_count: int
    terminators: str

    @classmethod
    def parse(cls, raw, directory):
        return cls(
            media=directory.media_path(media.reference(raw, "id", needed=True)),
            answer=fields.boolean(raw, "answer", True),
            loop_count=fields.integer_in(raw, "loop_count", 1, 1, MAX_LOOPS),
            terminators=media.terminators(raw, "terminators", ANY_KEY),
        )


# Its first effect is answer or ``set playback_terminators``: the step's recovery mark rides ahead of it (actions/__init__.py).
FIRST_EFFECT_IS_A_COMMAND = True


# The FreeSWITCH applications it runs, and those a recovery mark names while they run (actions/__init__.py).
APPLICATIONS = ("answer", "set", "playback")
LONG_APPLICATIONS = ("playback",)


def handle(call, data):
    if data.answer:
        call.answer()
    call.set_variable("playback_terminators", data.terminators or "none")
    for _ in range(data.loop_count):
        done = call.execute("playback", data.media, timeout=MAX_PLAY_SECONDS)
        used = done.get(names.VAR_PLAYBACK_TERMINATOR_USED)
        if used:
            call.log.info("playback cut short by key %s", used)
            break
    return DEFAULT
