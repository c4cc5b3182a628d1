"""Kazoo's traversal rules, on a hand-written call double (no switch needed)."""

import types

import pytest

from callflowd.actions import REGISTRY
from callflowd.actions.outcome import STOP
from callflowd.errors import CallEnded
from callflowd.flow.executor import MAX_STEPS, run_callflow
from callflowd.flow.model import Callflow, Node

pytestmark = pytest.mark.timeout(10)


class FakeCall:
    uuid = "3f1c0e4e-0000-4000-8000-000000000001"

    def __init__(self):
        self.history = []
        self.ran = []
        self.hung_up = False
        import logging
        self.log = logging.LoggerAdapter(logging.getLogger("test.call"), {})

    ended = False

    def mark_step(self, position, with_first_command=False):
        self.position = position
        self.marked = getattr(self, "marked", []) + [position.node_path]

    def write_marks(self):
        pass

    def hangup(self, cause="NORMAL_CLEARING"):
        self.hung_up = True

    def hangup_reason(self):
        return "caller hung up"


def scripted(outcome):
    """An action module double whose handle returns (or raises) ``outcome``."""
    def handle(call, data):
        call.ran.append(data)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome
    return types.SimpleNamespace(handle=handle)


def node(name, children=None, skip=False, path="flow"):
    return Node(module=name, data=name, children=children or {}, skip=skip, path=path)


def run(flow, monkeypatch, **behaviour):
    for name, outcome in behaviour.items():
        monkeypatch.setitem(REGISTRY, name, scripted(outcome))
    call = FakeCall()
    run_callflow(call, Callflow(id="t", numbers=("1",), patterns=(), flow=flow))
    return call


def test_a_missing_branch_falls_back_to_the_default_child(monkeypatch):
    call = run(node("a", {"_": node("b")}), monkeypatch, a="NO_SUCH_KEY", b="_")
    assert call.ran == ["a", "b"]
    assert call.hung_up


def test_the_first_key_with_a_child_wins(monkeypatch):
    flow = node("a", {"sip:486": node("c"), "_": node("b")})
    call = run(flow, monkeypatch, a=("USER_BUSY", "sip:486", "_"), b="_", c="_")
    assert call.ran == ["a", "c"]
    assert call.history[0].outcome == "USER_BUSY"


def test_no_default_child_ends_the_flow_and_hangs_up(monkeypatch):
    call = run(node("a", {"USER_BUSY": node("b")}), monkeypatch, a="NO_ANSWER", b="_")
    assert call.ran == ["a"]
    assert call.hung_up


def test_stop_ends_the_flow_without_visiting_children(monkeypatch):
    call = run(node("a", {"_": node("b")}), monkeypatch, a=STOP, b="_")
    assert call.ran == ["a"]
    assert [s.outcome for s in call.history] == ["stop"]


def test_skip_module_goes_straight_to_the_default_child(monkeypatch):
    flow = node("a", {"_": node("b", {"_": node("c")}, skip=True)})
    call = run(flow, monkeypatch, a="_", b="_", c="_")
    assert call.ran == ["a", "c"]
    assert [s.outcome for s in call.history] == ["_", "skipped", "_"]


def test_a_crashing_action_is_logged_and_the_flow_goes_on_at_default(monkeypatch, caplog):
    flow = node("a", {"_": node("b")})
    call = run(flow, monkeypatch, a=RuntimeError("boom"), b="_")
    assert call.ran == ["a", "b"]
    [record] = [r for r in caplog.records if "failed; continuing" in r.getMessage()]
    assert record.exc_info and "boom" in str(record.exc_info[1])


def test_a_caller_hanging_up_ends_the_flow_quietly(monkeypatch, caplog):
    flow = node("a", {"_": node("b")})
    call = run(flow, monkeypatch, a=CallEnded("caller hung up (NORMAL_CLEARING)"), b="_")
    assert call.ran == ["a"]
    assert not call.hung_up
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "WARNING")]


def test_a_flow_longer_than_the_cap_is_stopped(monkeypatch):
    flow = node("a")
    for _ in range(MAX_STEPS + 5):
        flow = node("a", {"_": flow})
    call = run(flow, monkeypatch, a="_")
    assert len(call.ran) == MAX_STEPS


def test_nothing_runs_after_the_caller_has_hung_up(monkeypatch):
    def hangs_up(call, data):
        call.ran.append(data)
        call.ended = True
        return "_"
    monkeypatch.setitem(REGISTRY, "a", types.SimpleNamespace(handle=hangs_up))
    monkeypatch.setitem(REGISTRY, "b", scripted("_"))
    call = FakeCall()
    run_callflow(call, Callflow(id="t", numbers=("1",), patterns=(), flow=node("a", {"_": node("b")})))
    assert call.ran == ["a"]
    assert not call.hung_up


def test_losing_the_switch_mid_action_ends_the_flow_instead_of_trying_the_next_node(monkeypatch, caplog):
    from callflowd.errors import NotConnected
    call = run(node("a", {"_": node("b")}), monkeypatch, a=NotConnected("not connected to FreeSWITCH"), b="_")
    assert call.ran == ["a"]
    assert [s.outcome for s in call.history] == ["event socket error"]
    assert any("flow ends: event socket error" in r.getMessage() for r in caplog.records)


def jump(target, children=None, path="flow"):
    from callflowd.actions import callflow as callflow_action
    return Node(module="callflow", data=callflow_action.Data(callflow_id=target), children=children or {},
                path=path)


class MarkingCall(FakeCall):
    """Records what a real Call would write on the channel: callflow id and node path."""

    def mark_step(self, position, with_first_command=False):
        self.position = position
        self.marked = getattr(self, "marked", []) + [(position.callflow_id, position.node_path)]


def run_flows(flows, monkeypatch, max_jumps=50, **behaviour):
    for name, outcome in behaviour.items():
        monkeypatch.setitem(REGISTRY, name, scripted(outcome))
    call = MarkingCall()
    table = {flow.id: flow for flow in flows}
    run_callflow(call, flows[0], None, table, max_jumps)
    return call


def test_a_jumped_to_callflow_runs_then_the_flow_resumes_at_the_jumping_nodes_default_child(monkeypatch):
    main = Callflow(id="main", numbers=("1",), patterns=(),
                    flow=jump("other", {"_": node("a", path="flow.children._")}))
    other = Callflow(id="other", numbers=("2",), patterns=(), flow=node("b", {"_": node("c", path="flow.children._")}))
    call = run_flows([main, other], monkeypatch, a="_", b="_", c="_")
    assert call.ran == ["b", "c", "a"]
    assert [(s.callflow, s.module, s.outcome) for s in call.history] == [
        ("main", "callflow", "other"), ("other", "b", "_"), ("other", "c", "_"), ("main", "a", "_")]
    assert call.hung_up


def test_nodes_of_a_jumped_to_callflow_are_marked_with_that_callflows_id_for_recovery(monkeypatch):
    main = Callflow(id="main", numbers=("1",), patterns=(),
                    flow=jump("other", {"_": node("a", path="flow.children._")}))
    other = Callflow(id="other", numbers=("2",), patterns=(), flow=node("b", {"_": node("c", path="flow.children._")}))
    call = run_flows([main, other], monkeypatch, a="_", b="_", c="_")
    assert call.marked == [("main", "flow"), ("other", "flow"), ("other", "flow.children._"),
                           ("main", "flow.children._")]
    # what router.adopt does with such a mark: the node is found in the callflow it names
    assert other.node_at("flow.children._").module == "c"


def test_a_callflow_jumping_to_itself_is_hung_up_at_the_jump_limit(monkeypatch, caplog):
    loop = Callflow(id="loop", numbers=("1",), patterns=(), flow=jump("loop"))
    call = run_flows([loop], monkeypatch, max_jumps=5)
    assert [s.outcome for s in call.history] == ["loop"] * 5 + ["jump limit"]
    assert call.hung_up
    assert "callflow jump limit reached (5 jumps); hanging up" in caplog.text


def test_a_stop_inside_a_jumped_to_callflow_ends_the_whole_flow(monkeypatch):
    main = Callflow(id="main", numbers=("1",), patterns=(), flow=jump("other", {"_": node("a")}))
    other = Callflow(id="other", numbers=("2",), patterns=(), flow=node("b"))
    call = run_flows([main, other], monkeypatch, a="_", b=STOP)
    assert call.ran == ["b"]


def test_an_action_can_ask_which_branches_its_node_has(monkeypatch):
    seen = []
    monkeypatch.setitem(REGISTRY, "asks", types.SimpleNamespace(
        handle=lambda call, data: seen.append(call.position.branches) or "_"))
    monkeypatch.setitem(REGISTRY, "b", scripted("_"))
    call = FakeCall()
    run_callflow(call, Callflow(id="t", numbers=("1",), patterns=(),
                                flow=node("asks", {"1": node("b"), "timeout": node("b")})))
    assert seen == [frozenset({"1", "timeout"})]


def test_a_call_taken_back_inside_a_jump_still_returns_to_the_calling_callflow(monkeypatch):
    main = Callflow(id="main", numbers=("1",), patterns=(),
                    flow=jump("other", {"_": node("a", path="flow.children._")}))
    other = Callflow(id="other", numbers=("2",), patterns=(), flow=node("b", {"_": node("c", path="flow.children._")}))
    monkeypatch.setitem(REGISTRY, "a", scripted("_"))
    monkeypatch.setitem(REGISTRY, "c", scripted("_"))
    call = MarkingCall()
    run_callflow(call, other, other.node_at("flow.children._"), {"main": main, "other": other}, 50,
                 [(main, main.node_at("flow.children._"))])
    assert call.ran == ["c", "a"]
    assert call.marked == [("other", "flow.children._"), ("main", "flow.children._")]


def test_the_way_back_out_of_jumps_goes_on_the_channel_and_comes_back_from_it():
    import urllib.parse

    from callflowd.calls import marker
    from callflowd.esl import protocol

    returns = (("main menu;x", "flow.children.1"), ("loop", ""))
    text = marker.step_variables("host", "other", "flow", returns)
    assert ";" not in text.split("callflowd_returns=", 1)[1]
    # as uuid_dump gives them back: each stored value percent-encoded once more on the wire
    pairs = [item.split("=", 1) for item in text.split(";")]
    channel = protocol.parse_plain_event("".join(
        "variable_%s: %s\n" % (name, urllib.parse.quote(value, safe="")) for name, value in pairs))
    record = marker.Marker.from_channel(channel)
    assert record.returns == returns
    assert (record.callflow_id, record.node_path) == ("other", "flow")


def test_the_position_counts_each_visit_of_a_node_in_its_callflow(monkeypatch):
    # main jumps to "other" twice (loop -> other, back, loop again): each node of "other" is
    # reached twice, and the count the call's webhooks derive their delivery ids from says so
    seen = []
    monkeypatch.setitem(REGISTRY, "b", types.SimpleNamespace(
        handle=lambda call, data: seen.append((call.position.callflow_id, call.position.node_path,
                                                call.position.visit)) or "_"))
    second = jump("other", path="flow.children._")
    main = Callflow(id="main", numbers=("1",), patterns=(), flow=jump("other", {"_": second}))
    other = Callflow(id="other", numbers=("2",), patterns=(), flow=node("b"))
    run_callflow(MarkingCall(), main, None, {"main": main, "other": other})
    assert seen == [("other", "flow", 1), ("other", "flow", 2)]
