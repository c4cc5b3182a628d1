"""A whole debug-level run of the real process, read as an operator (or a log shipper) would.

The switch has a real password, the webhook URI carries credentials and a token, the caller
ID carries a line break and a terminal escape: none of the secrets may appear anywhere in
stderr, and every line must be a record of its own.
"""

import json
import re
import signal

import pytest
import yaml

from callflowd.simulator import FreeswitchSimulator, Scenario
from tests.doubles.notify import NotifySocket
from tests.doubles.process import DaemonProcess
from tests.harness import FRONT_DESK, front_desk_flow, write_config

pytestmark = pytest.mark.timeout(60)

ESL_PASSWORD = "Esl-Pa55-Zq81"
HOOK_PASSWORD = "Hook-Pa55-Wx42"
HOOK_TOKEN = "Tok-Qy93-Secret"
FORGED_NAME = "Mallory\nERROR callflowd.service: service stopped\x1b[31m"
TEXT_RECORD = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")


@pytest.fixture
def switch():
    simulator = FreeswitchSimulator(password=ESL_PASSWORD, time_scale=0.01)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def config(tmp_path, switch, receiver):
    uri = receiver.url("/m").replace("http://", "http://hooks:%s@" % HOOK_PASSWORD) + "?token=" + HOOK_TOKEN
    path = write_config(tmp_path, switch, {"front-desk": front_desk_flow({"uri": uri, "http_verb": "post"})})
    document = yaml.safe_load(path.read_text())
    del document["freeswitch"]["password"]
    document["freeswitch"]["password_file"] = "esl-password"
    (tmp_path / "esl-password").write_text(ESL_PASSWORD + "\n")
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_debug_run_logs_no_secret_and_no_forged_line(switch, receiver, config, tmp_path, log_format):
    notify = NotifySocket()
    daemon = DaemonProcess(config, "--log-level", "debug", "--log-format", log_format,
                           env={"NOTIFY_SOCKET": notify.address})
    try:
        notify.wait_for("READY", "1", timeout=20)
        call = switch.place_call(FRONT_DESK, caller_id_name=FORGED_NAME, scenario=Scenario(device="busy"))
        call.wait_ended(15)
        request = receiver.wait_for(1, 15)[0]
        assert request.header("authorization", "").startswith("Basic ")  # the credentials were used
        # A bad reload, whose error names the file, on the way.
        (tmp_path / "callflows.d" / "front-desk.json").write_text("{")
        daemon.signal(signal.SIGHUP)
        daemon.wait_for("reload refused")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait_exit() == 0
    finally:
        daemon.kill()
        notify.close()

    output = daemon.log
    for secret in (ESL_PASSWORD, HOOK_PASSWORD, HOOK_TOKEN):
        assert secret not in output
    assert "Traceback" not in output
    assert len(daemon.matching("DEBUG")) >= 3  # debug lines were really on
    if log_format == "json":
        records = [json.loads(line) for line in daemon.lines]
        about_call = [r for r in records if call.uuid in r["message"]]
        assert about_call and all(r.get("call_uuid") == call.uuid for r in about_call)
        messages = [r["message"] for r in records]
    else:
        assert all(TEXT_RECORD.match(line) or line.startswith("  | ") for line in daemon.lines), output
        messages = daemon.lines
    assert sum(1 for m in messages if m.endswith("service stopped")) == 1
    assert any("Mallory\\nERROR callflowd.service: service stopped\\x1b[31m" in m for m in messages)
    # The webhook's own lines mask the userinfo and every query value: http://***@host/m?token=***
    assert any("http://***@127.0.0.1:%d/m?token=***" % receiver.port in m for m in messages)
