"""Walk a callflow for one call, with Kazoo's rules (cf_exe.erl).

The executor owns the tree: an action returns a key (or keys, in order of
preference) and the executor picks the child; a missing key falls back to
``_``; no child ends the flow and the call is hung up (a flow entered by a
``callflow`` jump ends by going back to the jumping node's ``_`` child, at
most ``max_callflow_jumps`` jumps per call); an action may hand over a flow it
fetched (``Branch``, a pivot), which is parsed as a configured flow is and the walk
goes on there (at ``_`` if it does not validate); ``skip_module`` goes
straight to ``_``; an action that raises is logged with its traceback and the
flow continues at ``_``; a caller who hangs up ends the flow quietly.

The walk's position (the callflow it is in, the way back out of jumps, how often
it reached a node) is the executor's own: at each step it hands the call a
``Position`` (``call.mark_step``), which the call writes on the channel as its
recovery mark and shows to the running action.
"""

import collections
import dataclasses
import logging

from callflowd.actions import REGISTRY
from callflowd.actions.outcome import DEFAULT, STOP, Branch, Jump, keys_of
from callflowd.calls.call import Step
from callflowd.errors import ActionTimeout, CallEnded, ConfigError, EslError
from callflowd.esl import names
from callflowd.flow.model import graft
from callflowd.flow.parser import parse_flow_json
from callflowd.logfmt import safe

log = logging.getLogger(__name__)

# Nodes run in one callflow before the executor calls it a loop (reset by each jump: the
# jump count bounds the rest).
MAX_STEPS = 50
# Kazoo's cf_exe caps callflow jumps (``callflow`` nodes) per call at 50; routing.
# max_callflow_jumps in the config.
MAX_JUMPS = 50


@dataclasses.dataclass(frozen=True)
class Position:
    """Where the walk is at one step; what the call's recovery mark says (calls/marker.py).

    ``returns``: where the jumps that led into this callflow go back to, outermost first,
    as (callflow id, node path or "" for "that callflow ends there"). ``visit``: how many
    times the walk has reached this node of this callflow, this time included.
    ``branches``: the node's child keys: an action like ``menu`` asks whether a branch
    exists (Kazoo's cf_exe:attempt) but never walks to it.
    """

    callflow_id: str
    node_path: str
    returns: tuple = ()
    visit: int = 1
    branches: frozenset = frozenset()


def run_callflow(call, callflow, start=None, callflows=None, max_jumps=MAX_JUMPS, returns=()):
    """Run ``callflow`` on ``call`` to its end; never raises for the call's own reasons.

    ``start`` is the node to begin at when a call is taken back after the daemon was
    restarted (``call.resuming`` then says what the switch was doing), and ``returns``
    the (Callflow, node or None) pairs its jumps go back to, outermost first. ``callflows``
    (id -> Callflow) is what a ``callflow`` node may jump to.
    """
    if start is None:  # the router's "parked call ... matches callflow" line said it at info
        call.log.debug("running callflow %s", callflow.id)
    else:
        call.log.info("taking back callflow %s at %s", callflow.id, start.path)
    if callflows is None:
        callflows = {callflow.id: callflow}
    try:
        _walk(call, callflow, start or callflow.flow, callflows, max_jumps, list(returns))
        call.hangup()
    except CallEnded as ended:
        # one line for the end and the tally: a line costs ~10 us of the daemon's CPU
        call.log.info("callflow %s finished after %d steps: %s", callflow.id, len(call.history), ended)
        return
    except EslError as exc:
        # the switch refused a step: the caller must not stay parked with nobody driving it
        call.log.error("flow ends: event socket error: %s; hanging up", exc)
        call.hangup(names.NORMAL_TEMPORARY_FAILURE)
    call.log.info("callflow %s finished after %d steps", callflow.id, len(call.history))


def _walk(call, callflow, node, callflows, max_jumps, returns):
    # returns: (callflow, node) pairs, where to go on when a jumped-to callflow ends
    jumps = len(returns)  # a call taken back inside jumps has made at least these
    steps = 0
    came_by = None  # (branch key, module) that led to ``node``: said on its "moving to" line
    way_back = _way_back(returns)
    visits = collections.Counter()  # (callflow id, node path) -> times reached
    while True:
        if node is None:
            if not returns:
                return
            callflow, node = returns.pop()
            came_by = None
            way_back = _way_back(returns)
            call.log.info("back in callflow %s at %s", callflow.id,
                          node.path if node is not None else "its end")
            continue
        steps += 1
        if steps > MAX_STEPS:
            call.log.error("flow exceeded %d steps in callflow %s; stopping", MAX_STEPS, callflow.id)
            return
        if node.skip:
            if node.module in REGISTRY:
                call.log.info("skipping action %s (skip_module)", node.module)
            else:  # cf_exe's "unknown callflow action": on to _ (check warned about it)
                call.log.warning("callflowd has no action %s; continuing at %s", safe(node.module), DEFAULT)
            call.history.append(Step(node.module, "skipped", node.path, callflow.id))
            came_by = (DEFAULT, node.module)
            node = node.child(DEFAULT)
            continue
        action = REGISTRY[node.module]
        visits[callflow.id, node.path] += 1
        call.mark_step(Position(callflow.id, node.path, way_back, visits[callflow.id, node.path],
                                frozenset(node.children)),
                       with_first_command=getattr(action, "FIRST_EFFECT_IS_A_COMMAND", False))
        outcome = _run_action(call, action, node, callflow, came_by)
        came_by = None
        call.write_marks()  # an action that ended without a command: the mark still goes out
        if isinstance(outcome, Branch):  # a fetched flow (pivot): Kazoo's cf_exe:branch
            fetched = _parse_fetched(call, outcome)
            if fetched is not None:
                call.history.append(Step(node.module, "branch", node.path, callflow.id))
                call.log.info("%s fetched a flow; continuing at its %s", node.module, fetched.module)
                node = graft(fetched, node)
                continue
            outcome = DEFAULT
        if outcome is STOP:
            call.history.append(Step(node.module, "stop", node.path, callflow.id))
            call.log.info("action %s stopped the flow", node.module)
            return
        if isinstance(outcome, Jump):
            target = callflows.get(outcome.callflow_id)
            if target is None:  # the loader checks ids; a bug if it happens, so say so
                call.log.error("no callflow %s to jump to; continuing at %s", outcome.callflow_id,
                               DEFAULT)
                outcome = DEFAULT
            elif jumps >= max_jumps:
                call.history.append(Step(node.module, "jump limit", node.path, callflow.id))
                call.log.error("callflow jump limit reached (%d jumps); hanging up", max_jumps)
                return
            else:
                jumps += 1
                call.history.append(Step(node.module, target.id, node.path, callflow.id))
                if call.ended:
                    raise CallEnded(call.hangup_reason())
                call.log.info("jumping to callflow %s (jump %d of at most %d)", target.id, jumps,
                              max_jumps)
                if outcome.back:  # Jump(back=False): Kazoo's cf_exe:branch, no way back
                    returns.append((callflow, node.child(DEFAULT)))
                callflow, node, steps = target, target.flow, 0
                way_back = _way_back(returns)
                continue
        key, node_next = choose_child(node, outcome)
        call.history.append(Step(node.module, (keys_of(outcome) or (key,))[0], node.path, callflow.id))
        if call.ended:
            raise CallEnded(call.hangup_reason())
        if node_next is None:
            call.log.info("no child for branch %s of %s; flow ends", key, node.module)
        else:  # the next "moving to action" line names the branch
            came_by = (key, node.module)
        node = node_next


def _way_back(returns):
    """``returns`` as a Position has it: (callflow id, node path or "") pairs."""
    return tuple((flow.id, node.path if node is not None else "") for flow, node in returns)


def _run_action(call, action, node, callflow, came_by=None):
    if came_by is None:
        call.log.info("moving to action %s (%s)", node.module, node.path)
    else:
        call.log.info("moving to action %s (%s) on branch %s of %s", node.module, node.path, *came_by)
    try:
        return action.handle(call, node.data)
    except CallEnded:
        call.history.append(Step(node.module, "call ended", node.path, callflow.id))
        raise
    except EslError:  # the switch can't be told anything more about this call
        call.history.append(Step(node.module, "event socket error", node.path, callflow.id))
        raise
    except ActionTimeout as exc:  # an app that never completed (or never started): the caller moves on
        call.log.warning("action %s timed out: %s; continuing at %s", node.module, exc, DEFAULT)
        return "error", DEFAULT
    except Exception:  # an action's bug must not strand the caller: log it and go on at "_"
        call.log.exception("action %s failed; continuing at %s", node.module, DEFAULT)
        return "error", DEFAULT


def _parse_fetched(call, branch):
    """The flow a ``Branch`` carries, parsed as a configured one; None (logged) if it does not validate."""
    try:
        flow = parse_flow_json(branch.document, branch.directory, branch.source)
    except ConfigError as exc:
        call.log.warning("%s answered a flow that does not validate: %s; continuing at %s",
                         branch.origin, safe(str(exc)), DEFAULT)
        return None
    call.log.info("%s answered a flow starting with %s", branch.origin, flow.module)
    return flow


def choose_child(node, outcome):
    """The first key of ``outcome`` the node has a child for, else ``_``."""
    for key in keys_of(outcome):
        child = node.child(key)
        if child is not None:
            return key, child
    return DEFAULT, node.child(DEFAULT)
