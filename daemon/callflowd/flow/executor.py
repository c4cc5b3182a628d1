"""Walk a callflow for one call, with Kazoo's rules (cf_exe.erl).

The executor owns the tree: an action returns a key (or keys, in order of
preference) and the executor picks the child; a missing key falls back to
``_``; an action may hand over a flow it fetched (``Branch``, a pivot) and the
walk goes on there; no child ends the flow and the call is hung up; ``skip_module`` goes
straight to ``_``; an action that raises is logged with its traceback and the
flow continues at ``_``; a caller who hangs up ends the flow quietly.
"""

import logging

from callflowd.actions import REGISTRY
from callflowd.actions.outcome import DEFAULT, STOP, Branch, keys_of
from callflowd.calls.call import Step
from callflowd.errors import ActionTimeout, CallEnded, EslError
from callflowd.flow.model import DEFAULT_BRANCH, graft

log = logging.getLogger(__name__)

# Kazoo caps the number of jumps in a flow; a flow this long is a loop.
MAX_STEPS = 50


def run_callflow(call, callflow, start=None):
    """Run ``callflow`` on ``call`` to its end; never raises for the call's own reasons.

    ``start`` is the node to begin at when a call is taken back after the daemon was
    restarted (``call.resuming`` then says what the switch was doing).
    """
    if start is None:
        call.log.info("running callflow %s", callflow.id)
    else:
        call.log.info("taking back callflow %s at %s", callflow.id, start.path)
    try:
        _walk(call, start or callflow.flow)
        call.hangup()
    except CallEnded as ended:
        call.log.info("flow ends: %s", ended)
    except EslError as exc:
        # the switch refused a step: the caller must not stay parked with nobody driving it
        call.log.error("flow ends: event socket error: %s; hanging up", exc)
        call.hangup("NORMAL_TEMPORARY_FAILURE")
    call.log.info("callflow %s finished after %d steps", callflow.id, len(call.history))


def _walk(call, node):
    steps = 0
    while node is not None:
        steps += 1
        if steps > MAX_STEPS:
            call.log.error("flow exceeded %d steps; stopping", MAX_STEPS)
            return
        if node.skip:
            call.log.info("skipping action %s (skip_module)", node.module)
            call.history.append(Step(node.module, "skipped", node.path))
            node = node.child(DEFAULT_BRANCH)
            continue
        call.mark_step(node)
        outcome = _run_action(call, node)
        if isinstance(outcome, Branch):  # a fetched flow (pivot): Kazoo's cf_exe:branch
            call.history.append(Step(node.module, "branch", node.path))
            call.log.info("%s fetched a flow; continuing at its %s", node.module, outcome.flow.module)
            node = graft(outcome.flow, node)
            continue
        if outcome is STOP:
            call.history.append(Step(node.module, "stop", node.path))
            call.log.info("action %s stopped the flow", node.module)
            return
        key, node_next = choose_child(node, outcome)
        call.history.append(Step(node.module, (keys_of(outcome) or (key,))[0], node.path))
        if call.ended:
            raise CallEnded(call.hangup_reason())
        if node_next is None:
            call.log.info("no child for branch %s of %s; flow ends", key, node.module)
        else:
            call.log.info("branch %s of %s leads to %s", key, node.module, node_next.module)
        node = node_next


def _run_action(call, node):
    call.log.info("moving to action %s (%s)", node.module, node.path)
    try:
        return REGISTRY[node.module].handle(call, node.data)
    except CallEnded:
        call.history.append(Step(node.module, "call ended", node.path))
        raise
    except EslError:  # the switch can't be told anything more about this call
        call.history.append(Step(node.module, "event socket error", node.path))
        raise
    except ActionTimeout as exc:  # an app that never completed (or never started): the caller moves on
        call.log.warning("action %s timed out: %s; continuing at %s", node.module, exc, DEFAULT)
        return "error", DEFAULT
    except Exception:  # an action's bug must not strand the caller: log it and go on at "_"
        call.log.exception("action %s failed; continuing at %s", node.module, DEFAULT)
        return "error", DEFAULT


def choose_child(node, outcome):
    """The first key of ``outcome`` the node has a child for, else ``_``."""
    for key in keys_of(outcome):
        child = node.child(key)
        if child is not None:
            return key, child
    return DEFAULT_BRANCH, node.child(DEFAULT_BRANCH)
