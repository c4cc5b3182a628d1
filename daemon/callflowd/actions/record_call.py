"""``record_call``: start or stop recording the call into a file (Kazoo's cf_record_call).

data (Kazoo 4.3 ``callflows.record_call``):
  ``action``            ``start`` (default) or ``stop`` (stops every recording of the call)
  ``format``            ``wav`` (callflowd's default: Kazoo's ``mp3`` needs FreeSWITCH's
                        mod_shout), ``mp3`` or ``mp4``
  ``media_name``        the file's name (default: 32 random hex digits, as Kazoo), the format's
                        extension added when missing; it goes in ``recordings_dir``
                        (default: FreeSWITCH's own ``${recordings_dir}``)
  ``time_limit``        seconds at most, 1-3600 (default 3600, Kazoo's cap)
  ``record_min_sec``    a shorter recording is thrown away (FreeSWITCH ``RECORD_MIN_SEC``)
  ``record_on_answer``  true: the recording starts when the call is answered
                        (``media_bug_answer_req``)
  ``record_sample_rate`` Hz (FreeSWITCH ``record_sample_rate``)
  ``label``             accepted (Kazoo puts it in the recording document's origin)
  not supported (accepted, ``check`` warns): ``url`` and ``method`` (uploading the file:
  callflowd leaves it where FreeSWITCH wrote it), ``record_on_bridge``,
  ``should_follow_transfer`` (callflowd makes no transfers), ``origin`` (read-only)

The file's path goes in later webhooks as ``recording_file``, with ``is_recording`` true.

Branches: ``_``, at once (the recording goes on while the flow does).

FreeSWITCH facts (mod_dptools): ``record_session <path> [+<seconds>]`` starts recording both
directions in the background and returns at once; ``stop_record_session all`` stops them.
"""

import dataclasses
import re
import secrets

from callflowd.config import fields
from callflowd.actions.outcome import DEFAULT
from callflowd.errors import InvalidData

FORMATS = ("wav", "mp3", "mp4")
MAX_SECONDS = 3600  # kz_media_util:max_recording_time_limit()
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
SUPPORTED = ("action", "format", "media_name", "time_limit", "record_min_sec", "record_on_answer",
             "record_sample_rate", "label")
NOT_SUPPORTED = ("url", "method", "record_on_bridge", "should_follow_transfer", "origin")


@dataclasses.dataclass(frozen=True)
class Data:
    action: str
    directory: str
    format: str
    media_name: str | None
    time_limit: int
    record_min_sec: int | None
    record_on_answer: bool
    sample_rate: int | None

    @classmethod
    def parse(cls, raw, directory):
        name = fields.text(raw, "media_name")
        if name is not None and not _NAME.fullmatch(name):
            raise InvalidData("media_name", "must be a file name: letters, digits, _ - and . (no /)")
        fmt = raw.get("format")
        return cls(
            action=fields.one_of(raw, "action", ("start", "stop"), "start"),
            directory=directory.recordings_dir or "${recordings_dir}",
            format=fields.one_of(raw, "format", FORMATS, "wav") if fmt is not None else "wav",
            media_name=name,
            time_limit=min(MAX_SECONDS, fields.integer_in(raw, "time_limit", MAX_SECONDS, 1, 1 << 30)),
            record_min_sec=fields.integer_in(raw, "record_min_sec", 0, 0, MAX_SECONDS) or None,
            record_on_answer=fields.boolean(raw, "record_on_answer", False),
            sample_rate=fields.integer_in(raw, "record_sample_rate", 0, 0, 192000) or None,
        )

    def path(self):
        name = self.media_name or secrets.token_hex(16)
        if not name.endswith("." + self.format):
            name = "%s.%s" % (name, self.format)
        return "%s/%s" % (self.directory.rstrip("/"), name)


# The FreeSWITCH applications it runs, and those a recovery mark names while they run (actions/__init__.py).
APPLICATIONS = ("set", "record_session", "stop_record_session")
LONG_APPLICATIONS = ()


def handle(call, data):
    if data.action == "stop":
        call.log.info("stopping the call's recordings")
        call.execute("stop_record_session", "all", timeout=call.command_timeout)
        return DEFAULT
    path = data.path()
    if data.record_min_sec:
        call.set_variable("RECORD_MIN_SEC", str(data.record_min_sec), ahead=True)
    if data.sample_rate:
        call.set_variable("record_sample_rate", str(data.sample_rate), ahead=True)
    if data.record_on_answer:
        call.set_variable("media_bug_answer_req", "true", ahead=True)
    call.log.info("recording the call to %s (at most %d s)", path, data.time_limit)
    call.execute("record_session", "%s +%d" % (path, data.time_limit), timeout=call.command_timeout)
    facts = getattr(call, "facts", None)
    if isinstance(facts, dict):
        facts["is_recording"] = True
        facts["recording_file"] = path
    return DEFAULT
