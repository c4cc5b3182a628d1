"""Two daemons on one (simulated) switch: each call driven by exactly one, taken over when
its daemon dies or stops, never driven by a daemon that lost it.

The simulator keeps mod_hash's store as FreeSWITCH does (``api hash``, ``hash_dump``), so the
daemons race for each call there, as on the real switch (tests/realswitch/test_cluster_*).
"""

import collections

import gevent
import pytest

from callflowd.calls import hashdb, ownership
from callflowd.errors import ConfigError
from callflowd.flow.load import load_config
from callflowd.simulator import FreeswitchSimulator, Scenario
from callflowd.simulator import api as simulator_api
from tests.harness import FRONT_DESK, Daemon, front_desk_flow, write_config

pytestmark = pytest.mark.timeout(60)

LEASE = 1.0  # the shortest the config allows: takeovers within a test's patience


@pytest.fixture
def slow_switch():
    """A simulator at 1/5 speed: the front desk rings for 4 s (20 simulated), longer than a lease."""
    simulator = FreeswitchSimulator(time_scale=0.2)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def cluster(tmp_path, receiver):
    """``start(switch, name)``: a daemon named ``name`` in a cluster on ``switch``."""
    started = []

    def start(switch, name, lease=LEASE, workdir_name=None, **settings):
        workdir = tmp_path / (workdir_name or name)
        workdir.mkdir()
        flows = {"front-desk": front_desk_flow({"uri": receiver.url("/missed")})}
        daemon = Daemon(write_config(workdir, switch, flows, cluster={"name": name, "lease": lease},
                                     **settings)).start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.service.state.value != "stopped":
            daemon.stop()


def crash(daemon):
    """What SIGKILL leaves: nothing more is sent, nothing is released; the switch keeps the rest."""
    service = daemon.service
    service.ownership._group.kill(block=True)
    service.router.calls_group.kill(block=True)
    for link in service.links.values():
        link.stop()


def drivers(daemons, uuid):
    """The names of the daemons whose flow for ``uuid`` ran to its end."""
    return [daemon.service.ownership.name for daemon in daemons if uuid in daemon.finished]


def apps(sim_call):
    return [app for app, _ in sim_call.applications]


def test_two_daemons_drive_each_of_20_busy_calls_once(switch, receiver, cluster):
    daemons = [cluster(switch, "cf-a"), cluster(switch, "cf-b")]
    calls = [switch.place_call(FRONT_DESK, scenario=Scenario(device="busy", ring_seconds=0,
                                                                voicemail_seconds=1))
             for _ in range(20)]
    for sim_call in calls:
        sim_call.wait_ended(10)
    for sim_call in calls:
        assert apps(sim_call).count("bridge") == 1, sim_call.applications
        assert apps(sim_call).count("voicemail") == 1, sim_call.applications
    requests = receiver.wait_for(20, 10)
    assert sorted(request.fields["call_id"][0] for request in requests) == sorted(c.uuid for c in calls)
    gevent.sleep(0.3)  # a 21st webhook would be a duplicate: give it the chance to come
    assert len(receiver.requests) == 20
    by = collections.Counter()
    for sim_call in calls:
        daemons_driving = [d for d in daemons if sim_call.uuid in d.finished
                           and d.finished[sim_call.uuid].history]
        assert len(daemons_driving) == 1
        by[daemons_driving[0].service.ownership.name] += 1
    assert sum(by.values()) == 20
    # each call's claim was released once its flow ended (sent with the next lease write)
    gevent.sleep(LEASE / 2)
    assert not hashdb.parse_dump(switch.api("hash_dump", "db %s" % ownership.CLAIMS)[0], ownership.CLAIMS)


def test_the_loser_of_a_claim_leaves_the_call_alone_and_says_so_at_debug(switch, receiver, cluster, logs):
    cluster(switch, "cf-a")
    cluster(switch, "cf-b")
    sim_call = switch.place_call(FRONT_DESK, scenario=Scenario(device="busy", ring_seconds=0,
                                                               voicemail_seconds=1))
    sim_call.wait_ended(10)
    text = "call %s: another daemon drives this call; leaving it alone" % sim_call.uuid
    logs.wait_for(text)
    assert [record.levelname for record in logs.records if record.getMessage() == text] == ["DEBUG"]


def test_a_call_whose_daemon_dies_while_it_rings_is_finished_by_the_other(slow_switch, receiver, cluster, logs):
    first = cluster(slow_switch, "cf-a")
    sim_call = slow_switch.place_call(FRONT_DESK, scenario=Scenario(device="no_answer", voicemail_seconds=2))
    logs.wait_for("call %s: executing bridge" % sim_call.uuid)
    second = cluster(slow_switch, "cf-b")
    crash(first)
    died = gevent.get_hub().loop.now()

    logs.wait_for("call %s: taking the call back on switch freeswitch" % sim_call.uuid, timeout=LEASE + 5)
    assert gevent.get_hub().loop.now() - died < LEASE + 5
    second.wait_finished(sim_call.uuid, timeout=20)
    sim_call.wait_ended(10)
    assert apps(sim_call).count("bridge") == 1
    assert apps(sim_call).count("voicemail") == 1
    (request,) = receiver.wait_for(1, 10)
    assert request.fields["call_id"] == [sim_call.uuid]
    assert second.service.ownership.taken_over == 1


def test_sigterm_hands_the_calls_over_at_once_when_another_daemon_is_up(slow_switch, receiver, cluster, logs):
    first = cluster(slow_switch, "cf-a", shutdown_grace=30)
    sim_call = slow_switch.place_call(FRONT_DESK, scenario=Scenario(device="no_answer", voicemail_seconds=2))
    logs.wait_for("call %s: executing bridge" % sim_call.uuid)
    second = cluster(slow_switch, "cf-b")
    gevent.sleep(LEASE / 2)  # the first sees the second's lease
    stopping = gevent.spawn(first.service.stop)
    stopping.join(timeout=5)
    assert stopping.dead, "the stop waited for the call instead of handing it over"
    logs.wait_for("handing 1 calls over")
    logs.wait_for("call %s: taking the call back" % sim_call.uuid, timeout=LEASE)
    second.wait_finished(sim_call.uuid, timeout=20)
    sim_call.wait_ended(10)
    assert apps(sim_call).count("bridge") == 1
    assert apps(sim_call).count("voicemail") == 1
    assert len(receiver.wait_for(1, 10)) == 1


def test_a_call_handed_over_twice_while_it_rings_still_rings_the_phone_once(slow_switch, receiver, cluster, logs):
    """The first taker goes on waiting for the bridge the first owner started; its step mark
    must keep saying so, or the second taker runs the node afresh: a second bridge."""
    first = cluster(slow_switch, "cf-a", shutdown_grace=30)
    sim_call = slow_switch.place_call(FRONT_DESK, scenario=Scenario(device="no_answer", voicemail_seconds=2))
    logs.wait_for("call %s: executing bridge" % sim_call.uuid)
    second = cluster(slow_switch, "cf-b", shutdown_grace=30)
    gevent.sleep(LEASE / 2)  # the first sees the second's lease
    first.service.stop()
    logs.wait_for("call %s: resuming: waiting for bridge, still running" % sim_call.uuid, timeout=LEASE + 5)
    third = cluster(slow_switch, "cf-c")
    gevent.sleep(LEASE / 2)  # the second sees the third's lease
    second.service.stop()
    logs.wait_for("call %s: taking the call back on switch freeswitch at flow of callflow front-desk "
                  "(was waiting for bridge)" % sim_call.uuid, timeout=LEASE + 5)
    third.wait_finished(sim_call.uuid, timeout=20)
    sim_call.wait_ended(10)
    assert apps(sim_call).count("bridge") == 1
    assert apps(sim_call).count("voicemail") == 1
    assert len({request.header("X-Callflowd-Delivery") for request in receiver.wait_for(1, 10)}) == 1


def test_a_claim_taken_back_by_a_namesake_restarted_since_our_last_lease_read_is_not_taken_again(
        switch, receiver, cluster):
    """cf-b released its lease (stopped) and came back under the same name, took its call back
    (claim generation 2) before our next renewal: our lease table still says cf-b released.
    The fresh lease beside the claim must tell us it is alive, or both daemons drive the call."""
    switch.api("hash", "insert/%s/cf-b/%s" % (ownership.LEASES, ownership.RELEASED))
    first = cluster(switch, "cf-a", lease=30.0)  # no renewal of ours during the test
    link = first.service.links["freeswitch"]
    state = first.service.ownership._switch(link)
    assert state.peers["cf-b"].value == ownership.RELEASED  # what our last read saw
    switch.api("hash", "insert/%s/cf-b/restarted.1" % ownership.LEASES)  # the new life's lease...
    switch.api("hash", "insert/%s/call-1/cf-b:2" % ownership.CLAIMS)  # ...then its take-back

    assert not first.service.ownership.take("call-1", link, only_from="cf-b")
    assert hashdb.selected(switch.api("hash", "select/%s/call-1" % ownership.CLAIMS)[0]) == "cf-b:2"
    assert first.service.ownership.take("call-1", link, only_from="cf-b") is False  # and stays so


def test_a_daemon_whose_lease_lapsed_leaves_the_call_to_the_one_that_took_it(slow_switch, receiver, cluster, logs):
    first = cluster(slow_switch, "cf-a")
    sim_call = slow_switch.place_call(FRONT_DESK, scenario=Scenario(device="no_answer", voicemail_seconds=2))
    logs.wait_for("call %s: executing bridge" % sim_call.uuid)
    second = cluster(slow_switch, "cf-b")
    first.service.ownership._group.kill(block=True)  # hung: no more renewals, the flow waits on
    logs.wait_for("call %s: taking the call back" % sim_call.uuid, timeout=LEASE + 5)

    # the bridge ends: both daemons see it; only the owner may take the next step
    logs.wait_for("call %s: another daemon took the call over while our lease" % sim_call.uuid, timeout=20)
    second.wait_finished(sim_call.uuid, timeout=20)
    sim_call.wait_ended(10)
    assert apps(sim_call).count("voicemail") == 1
    assert len(receiver.wait_for(1, 10)) == 1
    assert [step.module for step in first.wait_finished(sim_call.uuid).history] == ["device"]


def test_one_daemon_alone_needs_no_cluster_settings_and_holds_its_lease(switch, receiver, tmp_path):
    flows = {"front-desk": front_desk_flow({"uri": receiver.url("/missed")})}
    daemon = Daemon(write_config(tmp_path, switch, flows)).start()
    try:
        sim_call = switch.place_call(FRONT_DESK, scenario=Scenario(device="busy", ring_seconds=0,
                                                                   voicemail_seconds=1))
        daemon.wait_finished(sim_call.uuid)
        assert apps(sim_call).count("voicemail") == 1
        details = daemon.service.ownership.details()
        assert details["leases_held"] == 1 and details["peers"] == []
        assert daemon.service.status_text() == "running; freeswitch up"  # as a daemon alone always said
    finally:
        daemon.stop()


def test_a_switch_without_mod_hash_has_its_calls_driven_unclaimed(switch, receiver, tmp_path, logs,
                                                                   monkeypatch):
    monkeypatch.delitem(simulator_api.COMMANDS, "hash")  # as a FreeSWITCH built without mod_hash
    flows = {"front-desk": front_desk_flow({"uri": receiver.url("/missed")})}
    daemon = Daemon(write_config(tmp_path, switch, flows)).start()
    try:
        sim_call = switch.place_call(FRONT_DESK, scenario=Scenario(device="busy", ring_seconds=0,
                                                                   voicemail_seconds=1))
        daemon.wait_finished(sim_call.uuid)
        assert apps(sim_call).count("voicemail") == 1
        logs.wait_for("switch freeswitch has no mod_hash")
    finally:
        daemon.stop()


def test_two_daemons_given_the_same_name_are_told_and_still_drive_each_call_once(switch, receiver, cluster, logs):
    first, second = cluster(switch, "twin"), cluster(switch, "twin", workdir_name="twin-2")
    logs.wait_for("another daemon is also called twin", timeout=3 * LEASE)
    calls = [switch.place_call(FRONT_DESK, scenario=Scenario(device="busy", ring_seconds=0, voicemail_seconds=1))
             for _ in range(5)]
    for sim_call in calls:
        sim_call.wait_ended(10)
        assert apps(sim_call).count("voicemail") == 1
    assert len(receiver.wait_for(5, 10)) == 5


def test_a_dump_is_read_for_its_own_realm_only():
    # mod_hash matches the realm with strstr: "callflowd_call_" is also inside "x_callflowd_call_y"
    text = ("D/callflowd_call_u1/cf-a:1\nD/callflowd_call_u2/cf-b:3\nD/callflowd_lease_cf-a/ab.7\n"
            "D/x_callflowd_call_u3/no\n")
    assert hashdb.parse_dump(text, "callflowd_call") == {"u1": "cf-a:1", "u2": "cf-b:3"}
    assert hashdb.parse_dump("-ERR no reply\n", "callflowd_call") == {}
    assert hashdb.selected("-ERR no reply\n") is None and hashdb.selected("cf-a:1") == "cf-a:1"
    assert ownership.parse_claim("cf-a.example:12") == ("cf-a.example", 12)
    assert ownership.parse_claim("odd") == ("odd", 0)


def test_a_name_that_could_split_a_hash_command_is_refused():
    for name in ("a/b", "a b", "", "a\nb"):
        with pytest.raises(ValueError):
            hashdb.check_word(name)


@pytest.mark.parametrize("settings, message", [
    ({"name": "cf a"}, "cluster.name: must not contain whitespace"),
    ({"name": "cf/a"}, "cluster.name: must be 1 to 64 letters, digits, '.', '_' or '-'"),
    ({"lease": 0.5}, "cluster.lease: must be between 1 and 60 seconds"),
    ({"claims": "yes"}, "cluster.claims: must be true or false"),
    ({"peers": ["x"]}, "cluster: unknown key 'peers' (known: claims, name, lease, outbox, outbox_file)"),
])
def test_a_bad_cluster_setting_is_one_line_naming_its_path(tmp_path, switch, receiver, settings, message):
    path = write_config(tmp_path, switch, {"front-desk": front_desk_flow({"uri": receiver.url("/m")})},
                        cluster=settings)
    with pytest.raises(ConfigError) as refused:
        load_config(str(path))
    assert str(refused.value) == "%s: %s" % (path, message)


def test_the_cluster_settings_have_defaults_a_daemon_alone_needs_nothing_of(tmp_path, switch, receiver):
    path = write_config(tmp_path, switch, {"front-desk": front_desk_flow({"uri": receiver.url("/m")})})
    settings = load_config(str(path)).cluster
    assert (settings.claims, settings.name, settings.lease) == (True, None, 5.0)


def test_two_daemons_stopped_together_do_not_both_hand_their_calls_to_the_other(slow_switch, receiver, cluster, logs):
    first, second = cluster(slow_switch, "cf-a"), cluster(slow_switch, "cf-b")
    calls = [slow_switch.place_call(FRONT_DESK, scenario=Scenario(device="no_answer", voicemail_seconds=2))
             for _ in range(4)]
    for sim_call in calls:
        logs.wait_for("call %s: executing bridge" % sim_call.uuid)
    stops = [gevent.spawn(daemon.service.stop, grace=15) for daemon in (first, second)]
    gevent.joinall(stops, timeout=30)
    assert all(stop.dead for stop in stops)
    # each saw the other leaving: no call handed to a daemon on its way out; each finished its own
    assert not logs.matching("calls over to the other daemons")
    for sim_call in calls:
        sim_call.wait_ended(1)
        assert apps(sim_call).count("voicemail") == 1, sim_call.applications
    assert len(receiver.wait_for(4, 10)) == 4
