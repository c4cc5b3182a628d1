"""EslConnection on a bad day, against the fake switch over real TCP: limits, silence, stray replies."""

import io
import socket

import gevent
import gevent.socket
import pytest

from callflowd.errors import CommandTimeout, NotConnected
from callflowd.esl import protocol
from callflowd.esl.connection import EslConnection
from callflowd.esl.limits import FrameLimits
from tests.test_esl_connection import Recorder, dtmf, make_connection
from tests.doubles.replay_switch import ReplaySwitch

pytestmark = pytest.mark.timeout(20)

UUID = "811fed91-6a3d-4dc2-99eb-654109c215fe"
OTHER = "0b8a3f4e-1a2b-4c3d-9e8f-000000000000"


@pytest.fixture
def switch():
    with ReplaySwitch() as fake:
        yield fake


@pytest.fixture
def recorder():
    return Recorder()


def connect(switch, recorder, **kwargs):
    connection = make_connection(switch, recorder, **kwargs)
    connection.connect()
    return connection


# ---------------------------------------------------------------- limits, no I/O


def test_a_header_line_past_the_limit_is_refused_after_reading_only_the_limit():
    stream = io.BytesIO(b"Content-Type: " + b"x" * 10000 + b"\n\n")
    with pytest.raises(protocol.FrameTooLarge, match=r"header line longer than 100 bytes: 'Content-Type: xxx"):
        protocol.read_frame(stream, FrameLimits(max_line=100))
    assert stream.tell() == 101


def test_too_many_header_lines_are_refused():
    frame = b"".join(b"X-%d: 1\n" % n for n in range(20)) + b"\n"
    with pytest.raises(protocol.FrameTooLarge, match="more than 10 header lines"):
        protocol.read_frame(io.BytesIO(frame), FrameLimits(max_headers=10))


def test_a_content_length_past_the_limit_is_refused_before_any_body_is_read():
    stream = io.BytesIO(b"Content-Length: 1000000000\nContent-Type: api/response\n\n" + b"x" * 100)
    with pytest.raises(protocol.FrameTooLarge, match="Content-Length 1000000000 is over the 1048576-byte limit"):
        protocol.read_frame(stream)
    assert stream.read() == b"x" * 100


def test_a_negative_content_length_is_not_framing():
    with pytest.raises(protocol.ProtocolError, match="bad Content-Length '-5'"):
        protocol.read_frame(io.BytesIO(b"Content-Length: -5\n\n"))


def test_frames_at_the_limits_are_read_whole():
    body = b"y" * 64
    frame = b"Content-Type: api/response\nContent-Length: 64\n\n" + body
    assert protocol.read_frame(io.BytesIO(frame), FrameLimits(max_line=26, max_headers=2, max_body=64))[1] == body


def test_an_excerpt_is_short_and_escaped():
    assert protocol.excerpt(b"a\nb\x00" + b"z" * 100, size=6) == "'a\\nb\\x00zz'..."


# ---------------------------------------------------------------- over TCP


def test_an_oversized_frame_ends_the_connection_with_the_reason(switch, recorder):
    conn = connect(switch, recorder, limits=FrameLimits(max_body=1024))
    switch.push(b"Content-Type: api/response\nContent-Length: 2048\n\n")
    recorder.wait(lambda: recorder.lost)
    assert recorder.lost == ["refused a frame: Content-Length 2048 is over the 1024-byte limit ('api/response')"]
    conn.close()


def test_a_silent_switch_is_declared_dead_after_idle_timeout(switch, recorder):
    conn = connect(switch, recorder, idle_timeout=0.3)
    recorder.wait(lambda: recorder.lost)
    assert recorder.lost[0].startswith("no frame from FreeSWITCH for 0.3")
    assert not conn.connected
    conn.close()


def test_heartbeats_keep_a_quiet_connection_alive(switch, recorder):
    conn = connect(switch, recorder, idle_timeout=0.3)
    for sequence in range(8):
        switch.push(dtmf(sequence))
        recorder.wait(lambda: len(recorder.events) > sequence)
        gevent.sleep(0.1)  # the switch's own pace: an event every 0.1 s, under idle_timeout
    assert conn.connected and not recorder.lost
    conn.close()


def test_a_switch_that_stops_answering_commands_is_declared_dead(switch, recorder):
    conn = connect(switch, recorder, idle_timeout=5, command_timeout=0.2)  # stall after 0.4 s
    switch.hold("api slow")
    with pytest.raises(CommandTimeout):
        conn.api("slow")
    recorder.wait(lambda: recorder.lost)
    assert recorder.lost[0].startswith("no reply to 'api slow' for 0.4")
    conn.close()


def test_a_write_that_cannot_complete_in_time_is_a_lost_connection(recorder):
    with DeafSwitch() as deaf:
        conn = EslConnection(*deaf.address, "ClueCon", connect_timeout=2, command_timeout=0.3,
                             on_event=recorder.on_event, on_disconnect=recorder.on_disconnect)
        conn.connect()
        with pytest.raises(NotConnected, match="could not be written in time"):
            conn.api("echo " + "x" * (16 << 20))  # more than both socket buffers hold
        recorder.wait(lambda: recorder.lost)
        assert recorder.lost[0].endswith("did not complete in time: FreeSWITCH is not reading")
        conn.close()


class DeafSwitch:
    """Greets, accepts any password, then never reads another byte."""

    def __enter__(self):
        self.server = gevent.socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.address = self.server.getsockname()
        self.greenlet = gevent.spawn(self._serve)
        return self

    def _serve(self):
        sock, _ = self.server.accept()
        self.client = sock
        sock.sendall(protocol.encode_auth_request())
        protocol.read_command(sock.makefile("rb"))
        sock.sendall(protocol.encode_command_reply("+OK accepted"))

    def __exit__(self, *exc_info):
        self.greenlet.kill()
        self.server.close()


def test_the_socket_has_tcp_keepalive(switch, recorder):
    conn = connect(switch, recorder)
    assert conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    conn.close()


def test_a_reply_with_no_command_waiting_is_dropped(switch, recorder, logs):
    conn = connect(switch, recorder)
    switch.push(protocol.encode_command_reply("+OK stray"))
    logs.wait_for("dropping a reply nobody asked for (no command is waiting): '+OK stray'")
    switch.api_replies["status"] = "UP"
    assert conn.api("status") == "UP"
    conn.close()


def test_a_reply_of_the_wrong_kind_is_not_given_to_the_waiting_command(switch, recorder, caplog):
    conn = connect(switch, recorder)
    switch.hold("sendmsg")
    pending = gevent.spawn(conn.execute, UUID, "answer")
    switch.wait_for_command("sendmsg")
    switch.push(protocol.encode_api_response("+OK not yours"))
    switch.push(protocol.encode_command_reply("-ERR invalid session id [%s]" % OTHER))
    switch.release("sendmsg")
    pending.get(timeout=2)  # its own +OK, not the strays
    assert "api/response cannot answer 'sendmsg %s'" % UUID in caplog.text
    assert "it names channel %s, not %s" % (OTHER, UUID) in caplog.text
    conn.close()


def test_a_malformed_event_costs_only_that_event(switch, recorder, caplog):
    conn = connect(switch, recorder)
    body = b"[" * 100000
    switch.push(b"Content-Length: %d\nContent-Type: text/event-json\n\n%s" % (len(body), body) + dtmf(2))
    recorder.wait(lambda: recorder.events)
    assert [e["Event-Sequence"] for e in recorder.events] == ["2"]
    assert conn.connected
    assert "dropping an undecodable text/event-json event" in caplog.text
    conn.close()
