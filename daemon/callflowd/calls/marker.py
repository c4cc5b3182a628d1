"""What the daemon writes on a channel it drives, so the switch remembers for it.

The switch is the source of truth across a cut socket or a daemon restart: before each
step the daemon sets channel variables saying whose call it is, which callflow, which
node, and (before a long application) which application it is waiting for and the
``Event-UUID`` it was sent with. ``uuid_dump`` gives them back as ``variable_<name>``.

Written with ``api uuid_setvar_multi <uuid> a=1;b=2`` (``name=`` with no value unsets,
checked on FreeSWITCH 1.10.12), most often in the same write as the step's first
application, ahead of it: FreeSWITCH runs an ``api`` to its end before it reads the next
command, so the marks are set before the application is queued (calls/call.py,
``mark_step``; esl/connection.py, ``execute``). Values are percent-encoded so a ``;``
or a space in a callflow id can't split the list.
"""

import dataclasses
import socket
import urllib.parse

from callflowd.esl import names

OWNER = "callflowd_owner"
CALLFLOW = "callflowd_callflow"
NODE = "callflowd_node"
WAITING = "callflowd_waiting"  # "<app>/<event uuid>" while a long application runs
# Inside a callflow entered by a ``callflow`` jump: where each jump goes back to, outermost
# first, as "<callflow>:<node path>" joined by ","; an empty path: that callflow ends there.
RETURNS = "callflowd_returns"

_SAFE = "._-/:"


def default_owner():
    """Which daemon a channel belongs to: this host's name (one daemon per host and switch)."""
    return socket.gethostname() or "callflowd"


@dataclasses.dataclass(frozen=True)
class Marker:
    owner: str
    callflow_id: str
    node_path: str
    waiting_app: str = None
    waiting_event_uuid: str = None
    returns: tuple = ()  # ((callflow id, node path or ""), ...), outermost first

    @classmethod
    def from_channel(cls, channel):
        """The marker in a ``uuid_dump`` (an Event of ``variable_*`` headers), or None."""
        get = channel.get
        owner, callflow_id, node_path = (get(names.variable(name)) for name in (OWNER, CALLFLOW, NODE))
        if not (owner and callflow_id and node_path):
            return None
        app, _, event_uuid = (get(names.variable(WAITING)) or "").partition("/")
        return cls(urllib.parse.unquote(owner), urllib.parse.unquote(callflow_id),
                   urllib.parse.unquote(node_path), app or None, event_uuid or None,
                   _returns(get(names.variable(RETURNS)) or ""))


def _value(text):
    return urllib.parse.quote(str(text), safe=_SAFE)


def step_variables(owner, callflow_id, node_path, returns=(), waiting=None):
    """``uuid_setvar_multi`` argument for the start of a step (no application awaited yet).

    ``returns``: where the jumps that led here go back to, ((callflow id, node path or ""), ...).
    ``waiting``: (app, event uuid) a call taken back is still waiting for at this node: kept,
    so that a second takeover before the app ends still waits for it instead of running the
    node afresh (a second bridge while the first one rings).
    """
    waiting_value = "%s/%s" % (_value(waiting[0]), _value(waiting[1])) if waiting else ""
    return "%s=%s;%s=%s;%s=%s;%s=%s;%s=%s" % (
        OWNER, _value(owner), CALLFLOW, _value(callflow_id), NODE, _value(node_path), WAITING,
        waiting_value, RETURNS, ",".join("%s:%s" % (_part(flow), _part(path)) for flow, path in returns))


def _part(text):
    return urllib.parse.quote(str(text), safe="._-/")


def _returns(text):
    out = []
    for item in text.split(","):
        flow, sep, path = item.partition(":")
        if sep and flow:
            out.append((urllib.parse.unquote(flow), urllib.parse.unquote(path)))
    return tuple(out)


def waiting_variables(app, event_uuid, extra=()):
    """``uuid_setvar_multi`` argument before a long application: what to wait for on recovery."""
    pairs = ["%s=%s/%s" % (WAITING, _value(app), _value(event_uuid))]
    pairs.extend("%s=%s" % (name, _value(value)) for name, value in extra)
    return ";".join(pairs)
