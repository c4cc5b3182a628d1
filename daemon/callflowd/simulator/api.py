"""The ``api`` commands the simulator answers, with the text FreeSWITCH 1.10.12 replies.

Each command is ``command(server, arg) -> (reply text, a function to run once the reply is
queued, or None)``, listed in ``COMMANDS``; replies follow the misc_protocol and
api_replies_during_call captures (see ``captures``). Any other command: ``-ERR <command>
Command not found!``. ``show`` knows only ``calls``/``channels as json``.
"""

import json
import time

from callflowd.esl import protocol
from callflowd.simulator.causes import known_cause

VERSION = "1.10.12-release git a88d069 2024-08-02 21:02:27Z 64bit"
NO_SUCH_CHANNEL = "-ERR No such channel!\n"


def run(server, command, arg):
    """(text of the reply, a function to run once the reply is queued, or None)."""
    handler = COMMANDS.get(command.replace("-", "_")) if command else None
    if handler is None:
        return "-ERR %s Command not found!\n" % command, None
    return handler(server, arg or "")


def not_found(text):
    """True if ``text`` is the reply to an unknown command (no API event is fired for it)."""
    return "Command not found!" in text


def uptime_text(seconds):
    usec = int(seconds * 1000000)
    minutes, sec = divmod(usec // 1000000, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    years, days = divmod(days, 365)
    return "%d years, %d days, %d hours, %d minutes, %d seconds, %d milliseconds, %d microseconds" % (
        years, days, hours, minutes, sec, (usec // 1000) % 1000, usec % 1000)


def status(server, arg):
    live = len(server.calls)
    text = (
        "UP %s\n"
        "FreeSWITCH (Version %s) is ready\n"
        "%d session(s) since startup\n"
        "%d session(s) - peak %d, last 5min %d \n"
        "0 session(s) per Sec out of max 30, peak 2, last 5min 2 \n"
        "1000 session(s) max\n"
        "min idle cpu 0.00/99.53\n"
        "Current Stack Size/Max 240K/8192K\n"
    ) % (uptime_text(time.time() - server.started), VERSION, server.call_count, live, max(live, 1), live)
    return text, None


def show(server, arg):
    words = arg.split()
    what = words[0] if words else ""
    if what not in ("calls", "channels") or words[1:] != ["as", "json"]:
        return "-USAGE: show calls|channels as json (the simulator knows no other form)\n", None
    rows = [call.show_row(what) for call in server.calls.values()]
    if not rows:
        return '{"row_count": 0}\n', None  # misc_protocol: note the space, and the newline
    return json.dumps({"row_count": len(rows), "rows": rows}, separators=(",", ":")), None


def _live_call(server, words):
    call = server.calls.get(words[0]) if words else None
    return None if call is None or call.ended else call


def uuid_kill(server, arg):
    words = arg.split()
    call = _live_call(server, words)
    if call is None:
        return NO_SUCH_CHANNEL, None
    cause = known_cause(words[1] if len(words) > 1 else None)
    return "+OK\n", lambda: call.hangup(cause, "local")


def uuid_exists(server, arg):
    return ("true" if arg.strip() in server.calls else "false"), None


def uuid_getvar(server, arg):
    words = arg.split()
    call = server.calls.get(words[0]) if words else None
    if call is None:
        return NO_SUCH_CHANNEL, None
    if len(words) < 2:
        return "-USAGE: <uuid> <var>\n", None
    return call.variables.get(words[1], "_undef_"), None


def uuid_setvar(server, arg):
    words = arg.split(None, 2)
    call = server.calls.get(words[0]) if words else None
    if call is None:
        return NO_SUCH_CHANNEL, None
    if len(words) < 2:
        return "-USAGE: <uuid> <var> [value]\n", None
    call.set_variable(words[1], words[2] if len(words) > 2 else None)
    return "+OK\n", None


def uuid_setvar_multi(server, arg):
    """``uuid_setvar_multi <uuid> a=1;b=2``; ``name=`` unsets (as FreeSWITCH 1.10.12)."""
    words = arg.split(None, 1)
    call = server.calls.get(words[0]) if words else None
    if call is None:
        return NO_SUCH_CHANNEL, None
    if len(words) < 2:
        return "-USAGE: <uuid> <var>=<value>;<var>=<value>\n", None
    for item in words[1].split(";"):
        name, _, value = item.partition("=")
        if name:
            call.set_variable(name, value or None)  # stored as sent: FreeSWITCH decodes nothing
    return "+OK\n", None


def uuid_dump(server, arg):
    call = _live_call(server, arg.split())
    if call is None:
        return NO_SUCH_CHANNEL, None
    return "".join("%s: %s\n" % (name, protocol.url_encode(value)) for name, value in call.dump_pairs()), None


def hostname(server, arg):
    return server.hostname, None


def version(server, arg):
    return "FreeSWITCH Version 1.10.12-release+git~20240802T210227Z~a88d069d6f~64bit (%s)\n" % VERSION, None


def hash_(server, arg):
    """mod_hash's ``hash <verb>/<realm>/<key>[/<value>]`` (simulator/hashstore.py)."""
    return server.hash_store.hash(arg), None


def hash_dump(server, arg):
    return server.hash_store.dump(arg), None


COMMANDS = {
    "hash": hash_,
    "hash_dump": hash_dump,
    "hostname": hostname,
    "show": show,
    "status": status,
    "uuid_dump": uuid_dump,
    "uuid_exists": uuid_exists,
    "uuid_getvar": uuid_getvar,
    "uuid_kill": uuid_kill,
    "uuid_setvar": uuid_setvar,
    "uuid_setvar_multi": uuid_setvar_multi,
    "version": version,
}
