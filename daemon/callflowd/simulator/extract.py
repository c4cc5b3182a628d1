"""Cut the simulator's templates out of the real FreeSWITCH captures (a developer tool).

    python -m callflowd.simulator.extract /work/shared/fixtures/freeswitch

Each template file holds frames copied byte for byte from one capture, each under a marker line
``##### <role> <label> (frame <n> of <capture>)``: role is ``caller`` (the inbound leg),
``bleg`` (the leg the bridge created) or ``system`` (no Unique-ID). The simulator replays the
B-leg and system frames with substitutions, and uses the caller frames as layouts and as the
source of the variable changes each step makes (see templates.py).

Media noise the daemon never needs (CUSTOM filestring::*, RECORD_*, RE_SCHEDULE,
PRIVATE_COMMAND, all but the first PLAYBACK_START/STOP pair and DTMF event, the rig's own ``api`` calls)
is left out.
"""

import pathlib
import sys

from callflowd.esl import protocol
from callflowd.simulator import captures

# capture file -> (template name, first caller event to keep, roles to keep); see ``captures``
SOURCES = {
    captures.PHONE_BUSY_THEN_VOICEMAIL + ".plain.txt": (
        captures.PHONE_BUSY_THEN_VOICEMAIL, None, ("caller", "bleg", "system")),
    captures.PHONE_ANSWERS + ".plain.txt": (
        captures.PHONE_ANSWERS, "CHANNEL_EXECUTE:bridge", ("caller", "bleg")),
    captures.PHONE_RINGS_OUT + ".plain.txt": (
        captures.PHONE_RINGS_OUT, "CHANNEL_EXECUTE:bridge", ("caller", "bleg")),
    captures.PHONE_BUSY_ENDS_CALL + ".plain.txt": (
        captures.PHONE_BUSY_ENDS_CALL, "CHANNEL_EXECUTE:bridge", ("caller",)),
    captures.DIGITS_ENTERED + ".plain.txt": (
        captures.DIGITS_ENTERED, "CHANNEL_EXECUTE:play_and_get_digits", ("caller",)),
    captures.PROTOCOL + ".plain.txt": (captures.PROTOCOL, None, ("system",)),
    captures.SHUTDOWN + ".plain.txt": (captures.SHUTDOWN, None, ("system",)),
}

# the answer's two CODEC events; one PLAYBACK pair and one HEARTBEAT as layouts
KEEP_AT_MOST = {"CODEC": 2, "PLAYBACK_START": 1, "PLAYBACK_STOP": 1, "HEARTBEAT": 1, "DTMF": 1}

DROPPED = {
    "CUSTOM", "RECORD_START", "RECORD_STOP", "RE_SCHEDULE", "PRIVATE_COMMAND", "MODULE_UNLOAD", "UNPUBLISH",
}


def label_of(headers):
    """A short label for an event: its name plus what tells same-named events apart."""
    name = headers["Event-Name"]
    if name == "CHANNEL_STATE":
        return "%s:%s" % (name, headers["Channel-State"])
    if name == "CHANNEL_CALLSTATE":
        return "%s:%s>%s" % (name, headers["Original-Channel-Call-State"], headers["Channel-Call-State"])
    if name in ("CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE"):
        return "%s:%s" % (name, headers["Application"])
    return name


def select(data, first_caller_label, roles):
    """Yield (role, label, index, raw frame bytes) for the frames worth keeping."""
    caller_uuid = None
    started = first_caller_label is None
    seen = {}
    for index, (head, body, raw) in enumerate(protocol.iter_frames(data), 1):
        if head.get("Content-Type") != "text/event-plain":
            continue
        headers = dict(protocol.plain_event_pairs(body)[0])
        uuid = headers.get("Unique-ID")
        if uuid and caller_uuid is None:
            caller_uuid = uuid
        role = "system" if not uuid else ("caller" if uuid == caller_uuid else "bleg")
        label = label_of(headers)
        if not started:
            if role == "caller" and label == first_caller_label:
                started = True
            else:
                continue
        if role not in roles or headers["Event-Name"] in DROPPED:
            continue
        limit = KEEP_AT_MOST.get(headers["Event-Name"])
        if limit is not None:
            key = (role, headers["Event-Name"])
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > limit:
                continue
        if role == "system" and headers["Event-Name"] == "API" and first_caller_label is not None:
            continue
        yield role, label, index, raw


def main(argv):
    source_dir = pathlib.Path(argv[1] if len(argv) > 1 else "/work/shared/fixtures/freeswitch")
    out_dir = pathlib.Path(__file__).parent / "templates"
    out_dir.mkdir(exist_ok=True)
    for capture, (name, first, roles) in SOURCES.items():
        data = (source_dir / capture).read_bytes()
        chunks = []
        for role, label, index, raw in select(data, first, roles):
            chunks.append(b"##### %s %s (frame %d of %s)\n" % (
                role.encode(), label.encode(), index, capture.encode()))
            chunks.append(raw)
        (out_dir / (name + ".txt")).write_bytes(b"".join(chunks))
        print("%s: %d frames" % (name, len(chunks) // 2))


if __name__ == "__main__":
    main(sys.argv)
