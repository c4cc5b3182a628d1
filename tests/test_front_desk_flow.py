"""The spec's example, end to end: simulator switch <-> real daemon -> real webhook receiver."""

import pytest

from callflowd.demo.receiver import WebhookReceiver, free_port
from callflowd.simulator import FreeswitchSimulator, Scenario
from tests.harness import FRONT_DESK, WAIT, Daemon, front_desk_flow, write_config

pytestmark = pytest.mark.timeout(30)

VOICEMAIL = ("voicemail", "default example.com 1000")


@pytest.fixture
def daemon_for(tmp_path, switch):
    started = []

    def start(documents, webhooks=None):
        daemon = Daemon(write_config(tmp_path, switch, documents, webhooks)).start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def place(switch, daemon, device, **kwargs):
    sim_call = switch.place_call(kwargs.pop("destination", FRONT_DESK), scenario=Scenario(device=device), **kwargs)
    call = daemon.wait_finished(sim_call.uuid)
    sim_call.wait_ended(WAIT)
    return sim_call, call


def path_of(call):
    return [(step.module, step.outcome) for step in call.history]


def test_an_answered_call_stops_the_flow_and_sends_no_webhook(switch, receiver, daemon_for):
    daemon = daemon_for({"front-desk": front_desk_flow({"uri": receiver.url("/missed")})})
    sim_call, call = place(switch, daemon, "answer")
    assert path_of(call) == [("device", "stop")]
    assert [app for app, _ in sim_call.applications] == ["set", "bridge"]
    assert receiver.requests == []
    assert daemon.service.webhooks.stats.accepted == 0


def test_a_busy_front_desk_fires_the_webhook_then_goes_to_voicemail(switch, receiver, daemon_for):
    daemon = daemon_for({"front-desk": front_desk_flow({"uri": receiver.url("/frontdesk/missed_call")})})
    sim_call, call = place(switch, daemon, "busy")
    assert path_of(call) == [("device", "USER_BUSY"), ("webhook", "_"), ("voicemail", "_")]
    assert sim_call.applications == [
        ("set", "continue_on_fail=true"),
        ("bridge", "{originate_timeout=20}user/1000@example.com"),
        ("answer", None),
        VOICEMAIL,
    ]
    [request] = receiver.wait_for(1, WAIT)
    # no http_verb: Kazoo 4.3's default, a GET with the fields in the query string
    assert request.method == "GET" and request.path == "/frontdesk/missed_call"
    assert request.body == b"" and request.header("Content-Type") is None
    form = {name: values[0] for name, values in request.fields.items()}
    assert form["call_id"] == sim_call.uuid
    assert form["caller_id_number"] == "+15551230000"
    assert form["caller_id_name"] == "sipp caller"
    assert form["callflow_id"] == "front-desk"
    assert form["previous_action"] == "device" and form["previous_outcome"] == "USER_BUSY"
    assert form["call_direction"] == "inbound"


def test_an_unanswered_front_desk_fires_the_webhook_then_goes_to_voicemail(switch, receiver, daemon_for):
    daemon = daemon_for({"front-desk": front_desk_flow({"uri": receiver.url("/missed")})})
    sim_call, call = place(switch, daemon, "no_answer")
    assert path_of(call)[0] == ("device", "NO_ANSWER")
    assert sim_call.applications[-1] == VOICEMAIL
    [request] = receiver.wait_for(1, WAIT)
    assert request.fields["previous_outcome"] == ["NO_ANSWER"]


def test_a_cause_keyed_child_wins_over_the_default_branch(switch, receiver, daemon_for):
    document = front_desk_flow({"uri": receiver.url("/missed")})
    document["flow"]["children"]["USER_BUSY"] = {
        "module": "voicemail", "data": {"id": "front_desk_voicemail_box_id"}}
    daemon = daemon_for({"front-desk": document})
    sim_call, call = place(switch, daemon, "busy")
    assert path_of(call) == [("device", "USER_BUSY"), ("voicemail", "_")]
    assert receiver.requests == []


def test_skip_module_passes_over_the_webhook_to_voicemail(switch, receiver, daemon_for):
    daemon = daemon_for({"front-desk": front_desk_flow({"uri": receiver.url("/missed"), "skip_module": True})})
    sim_call, call = place(switch, daemon, "busy")
    assert path_of(call) == [("device", "USER_BUSY"), ("webhook", "skipped"), ("voicemail", "_")]
    assert sim_call.applications[-1] == VOICEMAIL
    assert daemon.service.webhooks.stats.accepted == 0


def test_a_webhook_to_a_receiver_that_comes_up_late_is_delivered_on_retry(switch, daemon_for, logs):
    port = free_port()
    late = WebhookReceiver(port=port)
    daemon = daemon_for({"front-desk": front_desk_flow({"uri": "http://127.0.0.1:%d/missed" % port})},
                        webhooks={"backoff_factor": 0.3, "backoff_max": 0.3})
    try:
        sim_call, call = place(switch, daemon, "busy")
        assert sim_call.applications[-1] == VOICEMAIL  # the call did not wait for the webhook
        logs.wait_for("webhook not sent (connection refused)")
        late.start()
        [request] = late.wait_for(1, WAIT)
        assert request.fields["call_id"] == [sim_call.uuid]
        logs.wait_for("webhook delivered")
    finally:
        late.stop()


def test_a_receiver_down_for_good_still_lets_the_call_reach_voicemail(switch, daemon_for, logs):
    uri = "http://127.0.0.1:%d/missed" % free_port()
    daemon = daemon_for({"front-desk": front_desk_flow({"uri": uri, "retries": 1})},
                        webhooks={"max_age": 0.5, "backoff_factor": 0.1})
    sim_call, call = place(switch, daemon, "busy")
    assert sim_call.applications[-1] == VOICEMAIL
    # a host that isn't there spends no attempt: it waits up to max_age, then is dropped
    line = logs.wait_for("webhook dropped: its receiver was not available")
    assert sim_call.uuid in line and uri in line


def test_get_sends_the_fields_as_a_query_string(switch, receiver, daemon_for):
    daemon = daemon_for({"front-desk": front_desk_flow({"uri": receiver.url("/missed?source=pbx"),
                                                        "http_verb": "get"})})
    sim_call, _ = place(switch, daemon, "busy")
    [request] = receiver.wait_for(1, WAIT)
    assert request.method == "GET"
    assert request.query["source"] == ["pbx"]
    assert request.query["call_id"] == [sim_call.uuid]
    assert request.body == b""


def test_custom_data_overwrites_call_fields(switch, receiver, daemon_for):
    custom = {"caller_id_name": "Front desk line", "ticket": 42, "tags": ["a", "b"]}
    daemon = daemon_for({"front-desk": front_desk_flow({"uri": receiver.url("/m"), "custom_data": custom})})
    place(switch, daemon, "busy")
    [request] = receiver.wait_for(1, WAIT)
    assert request.fields["caller_id_name"] == ["Front desk line"]
    assert request.fields["ticket"] == ["42"]
    assert request.fields["tags[]"] == ["a", "b"]  # Kazoo's json_to_querystring
    assert request.fields["caller_id_number"] == ["+15551230000"]


def test_a_number_without_a_callflow_is_logged_and_left_alone(switch, receiver, daemon_for, logs):
    daemon_for({"front-desk": front_desk_flow({"uri": receiver.url("/m")})})
    sim_call = switch.place_call("+19995550000", scenario=Scenario(device="busy"))
    line = logs.wait_for("no callflow for number")
    assert sim_call.uuid in line and "+19995550000" in line
    assert sim_call.applications == []
    assert not sim_call.ended


def test_a_caller_id_name_with_encoded_newline_and_colon_changes_only_itself(switch, receiver, daemon_for, logs):
    evil = "Mallory\nUnique-ID: 00000000-0000-0000-0000-000000000000\nCaller-Destination-Number: 911"
    daemon = daemon_for({"front-desk": front_desk_flow({"uri": receiver.url("/m")})})
    sim_call, call = place(switch, daemon, "busy", caller_id_name=evil)
    assert call.uuid == sim_call.uuid
    assert path_of(call)[0] == ("device", "USER_BUSY")
    [request] = receiver.wait_for(1, WAIT)
    assert request.fields["caller_id_name"] == [evil]
    assert request.fields["call_id"] == [sim_call.uuid]
    assert request.fields["request_user"] == [FRONT_DESK]
    parked = logs.wait_for("parked call")
    assert "\n" not in parked and "Mallory\\nUnique-ID" in parked


def test_a_caller_who_hangs_up_while_the_desk_rings_ends_the_flow_quietly(receiver, tmp_path, logs):
    # Slower time here: the hangup must land while the phone rings (0.5 s in, of 2 s), not before.
    with FreeswitchSimulator(time_scale=0.1) as switch:
        flow = front_desk_flow({"uri": receiver.url("/m")})
        daemon = Daemon(write_config(tmp_path, switch, {"front-desk": flow})).start()
        try:
            sim_call = switch.place_call(FRONT_DESK, scenario=Scenario(device="no_answer", caller_hangup_after=5))
            call = daemon.wait_finished(sim_call.uuid)
        finally:
            daemon.stop()
    assert path_of(call) == [("device", "ORIGINATOR_CANCEL")]
    assert [app for app, _ in sim_call.applications] == ["set", "bridge"]
    assert daemon.service.webhooks.stats.accepted == 0
    assert logs.matching("finished after 1 steps: caller hung up")
    assert not [r for r in logs.records if r.levelname in ("ERROR", "CRITICAL")]
