"""``callflowd simulate``: the operator's own config, one simulated call, what FreeSWITCH and the web server get."""

import copy
import re
import subprocess
import sys

import pytest

from tests.test_config import FRONT_DESK, REPO, write_config

pytestmark = pytest.mark.timeout(60)

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# The spec's example (config/callflowd.yaml + config/callflows.d/front-desk.json), front desk busy.
BUSY_FRONT_DESK = """\
call <uuid> from +15551230000 to +10005559999: callflow front-desk (callflows.d/front-desk.json), the phone is busy

path taken:
  1. device    at flow                         -> USER_BUSY
  2. webhook   at flow.children._              -> _
  3. voicemail at flow.children._.children._   -> _

commands FreeSWITCH received:
  1. sendmsg <uuid>
       call-command: execute
       execute-app-name: set
       execute-app-arg: continue_on_fail=true
       Event-UUID: <uuid>
  2. sendmsg <uuid>
       call-command: execute
       execute-app-name: bridge
       execute-app-arg: {originate_timeout=20}user/1000@example.com
       Event-UUID: <uuid>
  3. sendmsg <uuid>
       call-command: execute
       execute-app-name: answer
       Event-UUID: <uuid>
  4. sendmsg <uuid>
       call-command: execute
       execute-app-name: voicemail
       execute-app-arg: default example.com 1000
       Event-UUID: <uuid>
  (and 5 recovery records: api uuid_setvar_multi <uuid> callflowd_...=...)

webhooks that would be sent (not sent; --webhook-to URL sends them):
  GET http://my.ser.ver/frontdesk/missed_call  (the fields below in its query string)
    account_db = account%2F3a%2F8e%2F7d1c2b4f4e6a9c0d1e2f3a4b5c6d
    account_id = 3a8e7d1c2b4f4e6a9c0d1e2f3a4b5c6d
    authorizing_id = front_desk_device_id
    authorizing_type = device
    call_bridged = false
    call_direction = inbound
    call_id = <uuid>
    callee_id_number = +10005559999
    caller_id_name = sipp caller
    caller_id_number = +15551230000
    from = +15551230000@127.0.0.1
    from_realm = 127.0.0.1
    from_tag = 32225SIPpUAC1
    from_user = +15551230000
    inception = +10005559999@127.0.0.1
    is_recording = false
    is_call_forward = false
    message_left = false
    request = +10005559999@127.0.0.1
    request_realm = 127.0.0.1
    request_user = +10005559999
    resource_type = audio
    switch_hostname = sim
    switch_uri = sip:127.0.0.1:5080
    switch_url = sip:mod_sofia@127.0.0.1:5080
    to = +10005559999@127.0.0.1
    to_realm = 127.0.0.1
    to_user = +10005559999
    callflow_id = front-desk
    previous_action = device
    previous_outcome = USER_BUSY

hangup cause: NORMAL_CLEARING
"""


def simulate(*args, config="config/callflowd.yaml"):
    return subprocess.run([sys.executable, "-m", "callflowd", "simulate", "-c", str(config), *args],
                          capture_output=True, text=True, timeout=50, cwd=REPO)


def test_the_spec_example_with_a_busy_front_desk_prints_path_commands_and_the_webhook():
    result = simulate("--number", "+10005559999", "--device", "busy")

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert UUID.sub("<uuid>", result.stdout) == BUSY_FRONT_DESK


def test_the_call_uuid_is_the_same_in_the_header_the_commands_and_the_webhook():
    result = simulate("--number", "+10005559999", "--device", "busy")

    call_uuid = UUID.search(result.stdout).group()
    assert result.stdout.count("sendmsg %s\n" % call_uuid) == 4
    assert "call_id = %s\n" % call_uuid in result.stdout


def test_an_answering_front_desk_stops_the_flow_and_sends_no_webhook():
    result = simulate("--number", "+10005559999", "--device", "answer")

    assert result.returncode == 0, result.stderr
    assert "path taken:\n  1. device    at flow                         -> stop\n\ncommands" in result.stdout
    assert "execute-app-name: voicemail" not in result.stdout
    assert "webhooks that would be sent (not sent; --webhook-to URL sends them):\n  (none)\n" in result.stdout


@pytest.mark.parametrize("device, outcome", [
    ("no_answer", "NO_ANSWER"), ("not_registered", "USER_NOT_REGISTERED")])
def test_a_phone_that_does_not_pick_up_takes_the_webhook_then_voicemail(tmp_path, device, outcome):
    config = write_config(tmp_path, documents={"short.json": dict(FRONT_DESK, numbers=["5559999"])})

    result = simulate("--number", "5559999", "--device", device, config=config)

    assert result.returncode == 0, result.stderr
    assert "  1. device    at flow                         -> %s\n" % outcome in result.stdout
    assert "    previous_outcome = %s\n" % outcome in result.stdout
    assert result.stdout.endswith("hangup cause: NORMAL_CLEARING\n")


def test_a_webhook_uri_s_credentials_and_query_values_are_masked_in_the_output(tmp_path):
    document = copy.deepcopy(dict(FRONT_DESK, numbers=["5559999"]))
    document["flow"]["children"]["_"]["data"]["uri"] = "https://hook:Pa55-w0rd@hooks.example/in?token=T0k-en&x=1"
    config = write_config(tmp_path, documents={"short.json": document})

    result = simulate("--number", "5559999", "--device", "busy", config=config)

    assert result.returncode == 0, result.stderr
    assert "  GET https://***@hooks.example/in?token=***&x=***  (the fields below" in result.stdout
    assert "Pa55-w0rd" not in result.stdout and "T0k-en" not in result.stdout


def test_webhook_to_sends_each_webhook_to_that_server_keeping_its_path(receiver):
    result = simulate("--number", "+10005559999", "--device", "busy", "--webhook-to", receiver.url("/"))

    assert result.returncode == 0, result.stderr
    [request] = receiver.requests
    assert request.method == "GET" and request.path == "/frontdesk/missed_call"
    assert request.fields["previous_outcome"] == ["USER_BUSY"]
    assert "webhooks sent to %s:\n  GET %s  (the fields below" % (receiver.url("/"),
                                                               receiver.url("/frontdesk/missed_call")) \
        in result.stdout
    assert "    -> delivered: " in result.stdout


def test_a_config_with_metrics_on_a_port_in_use_simulates_without_touching_it(tmp_path, receiver):
    taken = int(receiver.url("/").rsplit(":", 1)[1].strip("/"))
    config = write_config(tmp_path, metrics={"port": taken})

    result = simulate("--number", "+10005559999", "--device", "answer", config=config)

    assert result.returncode == 0
    assert result.stderr == ""
    assert receiver.requests == []


def test_a_number_no_callflow_answers_says_so_and_exits_1():
    # the example's no_match callflow takes every all-digit number; a name is not one
    result = simulate("--number", "reception")

    assert result.returncode == 1
    assert result.stdout == "no callflow answers reception: a real call would be left parked\n"


def test_a_bad_config_is_one_line_and_exit_2(tmp_path):
    config = write_config(tmp_path, text="freeswitch: {password: x}\nlog_level: loud\n")

    result = simulate("--number", "1", config=config)

    assert result.returncode == 2
    assert result.stderr == "callflowd: %s: log_level: must be one of debug, info, warning, error\n" % config


def path_of(stdout):
    """The ``path taken`` lines as (module, outcome) pairs."""
    lines = stdout.split("path taken:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    return [(line.split()[1], line.split("-> ")[1]) for line in lines]


@pytest.mark.parametrize("moment, path", [
    ("2026-12-25T10:00 America/New_York", [("temporal_route", "christmas"), ("voicemail", "_")]),
    ("2026-12-24T10:00 America/New_York", [("temporal_route", "office_hours"), ("device", "USER_BUSY"),
                                           ("voicemail", "_")]),
])
def test_at_sets_the_time_the_temporal_route_reads(moment, path):
    result = simulate("--number", "+10005550300", "--device", "busy", "--at", moment)

    assert result.returncode == 0, result.stderr
    assert path_of(result.stdout) == path


def test_digits_are_what_the_caller_keys_in_at_the_menu():
    result = simulate("--number", "+10005550200", "--digits", "1")

    assert result.returncode == 0, result.stderr
    assert path_of(result.stdout)[:3] == [("set_variables", "_"), ("menu", "1"), ("ring_group", "stop")]


def test_a_time_that_is_no_time_is_one_line_and_exit_2():
    result = simulate("--number", "+10005550300", "--at", "christmas eve")

    assert result.returncode == 2
    assert "argument --at: not a time like '2026-12-24T18:00 Europe/Paris'" in result.stderr
    assert "Traceback" not in result.stderr
