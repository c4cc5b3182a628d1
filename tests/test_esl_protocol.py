"""The wire format: framing, per-value decoding, and encoders that reproduce FreeSWITCH's bytes."""

import io
import json

import pytest

from callflowd.esl import names, protocol
from tests.doubles.replay_switch import capture_names, load_capture

pytestmark = pytest.mark.timeout(30)

PLAIN_PARK = (
    b"Event-Name: CHANNEL_PARK\n"
    b"Unique-ID: a15aa9fc-ed7f-477e-aa75-2621733b252f\n"
    b"Caller-Caller-ID-Name: sipp%20caller\n"
    b"Caller-Caller-ID-Number: %2B15551230000\n"
    b"\n"
)


def frames_of(data):
    return list(protocol.iter_frames(data))


# ------------------------------------------------------------------ framing


def test_a_frame_is_a_header_block_then_content_length_bytes():
    stream = io.BytesIO(
        b"Content-Type: auth/request\n\n"
        b"Content-Type: api/response\nContent-Length: 4\n\n+OK\n"
        b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n"
    )
    assert protocol.read_frame(stream) == ({"Content-Type": "auth/request"}, None)
    assert protocol.read_frame(stream) == (
        {"Content-Type": "api/response", "Content-Length": "4"}, b"+OK\n")
    assert protocol.read_frame(stream) == (
        {"Content-Type": "command/reply", "Reply-Text": "+OK accepted"}, None)
    assert protocol.read_frame(stream) is None


def test_a_body_may_hold_blank_lines_and_header_lookalikes():
    body = b"Reply-Text: not a header\n\nContent-Type: nor this\n"
    stream = io.BytesIO(b"Content-Type: api/response\nContent-Length: %d\n\n" % len(body)
                        + body + b"Content-Type: auth/request\n\n")
    assert protocol.read_frame(stream)[1] == body
    assert protocol.read_frame(stream) == ({"Content-Type": "auth/request"}, None)


def test_outer_frame_headers_are_not_percent_decoded():
    stream = io.BytesIO(b"Content-Type: command/reply\nReply-Text: -ERR a%20b\n\n")
    assert protocol.read_frame(stream)[0]["Reply-Text"] == "-ERR a%20b"


@pytest.mark.parametrize("cut", [b"Content-Type: api/resp",
                                 b"Content-Type: api/response\nContent-Length: 10\n\n+OK"])
def test_a_stream_ending_inside_a_frame_is_a_protocol_error(cut):
    with pytest.raises(protocol.ProtocolError):
        protocol.read_frame(io.BytesIO(cut))


def test_a_bad_content_length_is_a_protocol_error():
    with pytest.raises(protocol.ProtocolError):
        protocol.read_frame(io.BytesIO(b"Content-Type: api/response\nContent-Length: x\n\n"))


def test_stray_blank_lines_between_frames_are_skipped():
    stream = io.BytesIO(b"\n\nContent-Type: auth/request\n\n\n")
    assert protocol.read_frame(stream) == ({"Content-Type": "auth/request"}, None)
    assert protocol.read_frame(stream) is None


def test_a_command_block_ends_at_its_blank_line():
    stream = io.BytesIO(b"sendmsg abc\ncall-command: hangup\n\nexit\n\n")
    assert protocol.read_command(stream) == b"sendmsg abc\ncall-command: hangup\n\n"
    assert protocol.read_command(stream) == b"exit\n\n"
    assert protocol.read_command(stream) is None


# ------------------------------------------------------------------ plain events


def test_plain_values_are_percent_decoded_one_by_one():
    event = protocol.parse_plain_event(PLAIN_PARK)
    assert event.name == names.CHANNEL_PARK
    assert event[names.CALLER_CALLER_ID_NAME] == "sipp caller"
    assert event[names.CALLER_CALLER_ID_NUMBER] == "+15551230000"
    assert event.body is None
    assert event.content_type == names.EVENT_PLAIN


def test_a_caller_id_name_holding_a_newline_and_colon_changes_only_its_own_value():
    forged = PLAIN_PARK.replace(
        b"sipp%20caller", b"evil%0AUnique-ID%3A%20forged%0A%0AEvent-Name%3A%20HEARTBEAT")
    honest = protocol.parse_plain_event(PLAIN_PARK)
    event = protocol.parse_plain_event(forged)
    assert event[names.CALLER_CALLER_ID_NAME] == (
        "evil\nUnique-ID: forged\n\nEvent-Name: HEARTBEAT")
    assert event.uuid == "a15aa9fc-ed7f-477e-aa75-2621733b252f"
    assert event.name == names.CHANNEL_PARK
    assert event.body is None
    assert set(event.headers) == set(honest.headers)


def test_a_forged_value_read_before_the_whole_dict_is_built_forges_nothing_either():
    forged = PLAIN_PARK.replace(
        b"sipp%20caller", b"evil%0AUnique-ID%3A%20forged%0A%0AEvent-Name%3A%20HEARTBEAT")
    event = protocol.parse_plain_event(forged)  # values decoded lazily, one by one
    assert event.get(names.UNIQUE_ID) == "a15aa9fc-ed7f-477e-aa75-2621733b252f"
    assert event.get(names.EVENT_NAME) == names.CHANNEL_PARK
    assert "forged" not in event
    assert event.get("Caller-Caller-ID-Name") == "evil\nUnique-ID: forged\n\nEvent-Name: HEARTBEAT"


@pytest.mark.parametrize("name", [name for name in capture_names() if ".plain" in name])
def test_each_value_read_alone_equals_the_same_value_in_the_whole_dict(name):
    for headers, body, _ in frames_of(load_capture(name)):
        if headers.get(names.CONTENT_TYPE) != names.EVENT_PLAIN:
            continue
        whole = protocol.parse_plain_event(body).headers
        for header in list(whole) + ["Content-Length", "No-Such-Header", "Unique"]:
            alone = protocol.parse_plain_event(body)  # a fresh event: nothing decoded yet
            assert alone.get(header, "missing") == whole.get(header, "missing"), header
            assert (header in alone) == (header in whole)


def test_plus_signs_stay_plus_signs():
    event = protocol.parse_plain_event(b"Event-Name: CUSTOM\nA: 1+2\nB: %2B1%20555\n\n")
    assert event["A"] == "1+2"
    assert event["B"] == "+1 555"


def test_a_plain_event_with_its_own_body_keeps_it_apart_from_its_headers():
    body = "line one\n\nVariable: not a header\nünïcode\n"
    raw = body.encode("utf-8")
    event = protocol.parse_plain_event(
        b"Event-Name: BACKGROUND_JOB\nJob-UUID: j1\nContent-Length: %d\n\n" % len(raw) + raw)
    assert event.name == names.BACKGROUND_JOB
    assert event.body == body
    assert set(event.headers) == {"Event-Name", "Job-UUID"}


def test_a_repeated_header_keeps_one_value():
    event = protocol.parse_plain_event(b"Event-Name: CODEC\nA: 1\nA: 1\n\n")
    assert event.headers == {"Event-Name": "CODEC", "A": "1"}


def test_plain_event_text_is_accepted_as_str_too():
    assert protocol.parse_plain_event(PLAIN_PARK.decode()).headers == (
        protocol.parse_plain_event(PLAIN_PARK).headers)


# ------------------------------------------------------------------ json events


def test_json_events_take_their_body_from_underscore_body():
    event = protocol.parse_json_event(json.dumps({
        "Event-Name": "BACKGROUND_JOB", "Job-UUID": "j1", "Content-Length": "4", "_body": "+OK\n",
    }).encode())
    assert event.headers == {"Event-Name": "BACKGROUND_JOB", "Job-UUID": "j1"}
    assert event.body == "+OK\n"
    assert event.content_type == names.EVENT_JSON


def test_json_array_headers_read_like_their_plain_form():
    event = protocol.parse_json_event(b'{"Event-Name":"CHANNEL_BRIDGE","legs":["a;x","b;y"]}')
    assert event["legs"] == "ARRAY::a;x|:b;y"


def test_a_json_event_must_be_an_object():
    with pytest.raises(ValueError):
        protocol.parse_json_event(b'["Event-Name"]')


# ------------------------------------------------------------------ dispatch


@pytest.mark.parametrize("frame, content_type, body", [
    (protocol.encode_auth_request(), names.AUTH_REQUEST, None),
    (protocol.encode_command_reply("+OK accepted"), names.COMMAND_REPLY, None),
    (protocol.encode_api_response("+OK\n"), names.API_RESPONSE, "+OK\n"),
    (protocol.encode_disconnect_notice(), names.DISCONNECT_NOTICE, protocol.GOODBYE),
    (protocol.encode_rude_rejection(), names.RUDE_REJECTION, protocol.ACCESS_DENIED),
])
def test_non_event_frames_keep_their_outer_headers_and_text_body(frame, content_type, body):
    event = protocol.parse_frame(*protocol.read_frame(io.BytesIO(frame)))
    assert event.content_type == content_type
    assert event[names.CONTENT_TYPE] == content_type
    assert event.body == body


@pytest.mark.parametrize("encode, content_type", [
    (protocol.encode_plain_event, names.EVENT_PLAIN),
    (protocol.encode_json_event, names.EVENT_JSON),
])
def test_event_frames_become_the_event_they_carry(encode, content_type):
    frame = encode([("Event-Name", "DTMF"), ("DTMF-Digit", "#")])
    event = protocol.parse_frame(*protocol.read_frame(io.BytesIO(frame)))
    assert event.content_type == content_type
    assert event.headers == {"Event-Name": "DTMF", "DTMF-Digit": "#"}


# ------------------------------------------------------------------ encoders


def test_url_encode_escapes_what_freeswitch_escapes_and_nothing_else():
    unsafe = '\r\n #%&+:;<=>?@[\\]^`{|}"'
    assert protocol.url_encode(unsafe) == "".join("%%%02X" % ord(c) for c in unsafe)
    kept = "azAZ09!$'()*,-./_~"
    assert protocol.url_encode(kept) == kept
    assert protocol.url_encode("\x00\x1f\x7fé") == "%00%1F%7F%C3%A9"


def test_url_encode_leaves_an_existing_upper_case_escape_alone_like_freeswitch():
    # switch_url_encode() never double-encodes (signalwire/freeswitch issue #85)
    assert protocol.url_encode("100%41 %2c %") == "100%41%20%252c%20%25"


def test_encoded_plain_events_decode_to_what_was_encoded():
    headers = [("Event-Name", "CUSTOM"), ("Caller-Caller-ID-Name", "evil\nUnique-ID: x é+")]
    frame = protocol.encode_plain_event(headers, body="job output\n")
    event = protocol.parse_frame(*protocol.read_frame(io.BytesIO(frame)))
    assert list(event.headers.items()) == headers
    assert event.body == "job output\n"


def test_encode_command_refuses_line_breaks_anywhere():
    assert protocol.encode_command("sendmsg u", [("call-command", "hangup")]) == (
        b"sendmsg u\ncall-command: hangup\n\n")
    for line, headers in [("api status\nexit", ()), ("sendmsg u", [("a", "b\rc")]),
                          ("sendmsg u", [("a\n", "b")])]:
        with pytest.raises(ValueError):
            protocol.encode_command(line, headers)


def test_reply_encoders_match_the_captures_byte_for_byte():
    misc = load_capture("misc_protocol.plain.txt")
    bad_auth = load_capture("misc_bad_auth.txt")
    shutdown = load_capture("shutdown_sigterm.plain.txt")
    job = "c8f7cf93-9823-4553-9990-cd460639d00e"
    for frame in [
        protocol.encode_auth_request(),
        protocol.encode_command_reply("+OK accepted"),
        protocol.encode_command_reply("+OK Job-UUID: %s" % job, [("Job-UUID", job)]),
        protocol.encode_api_response("-ERR no_such_command Command not found!\n"),
        protocol.encode_command_reply("+OK bye") + protocol.encode_disconnect_notice(),
    ]:
        assert frame in misc
    refused = protocol.encode_command_reply("-ERR invalid") + protocol.encode_disconnect_notice()
    assert refused in bad_auth
    assert shutdown.endswith(protocol.encode_disconnect_notice("The system is being shut down.\n"))


# ------------------------------------------------------------------ round trip


def _drop_repeats(raw, content_type):
    """The captured frame without its repeated headers, which an Event keeps once.

    FreeSWITCH repeats a few headers, always with equal values (CODEC:
    Channel-Write-Codec-Name/-Rate; CHANNEL_HANGUP_COMPLETE: Hangup-Cause).
    """
    payload = raw.partition(b"\n\n")[2]
    if content_type == names.EVENT_JSON:
        seen = {}
        for name, value in json.loads(payload, object_pairs_hook=list):
            if seen.setdefault(name, value) is not value:
                assert seen[name] == value
                member = b",%s:%s" % (json.dumps(name).encode(), json.dumps(value).encode())
                before, found, after = payload.rpartition(member)
                assert found
                payload = before + after
    else:
        head, blank, body = payload.partition(b"\n\n")
        seen = {}
        for line in head.split(b"\n"):
            name, _, value = line.partition(b": ")
            assert seen.setdefault(name, value) == value
        lines = [b"%s: %s" % pair for pair in seen.items()]
        payload = b"\n".join(lines) + blank + body
    head = b"Content-Length: %d\nContent-Type: %s\n\n" % (len(payload), content_type.encode())
    return head + payload


EVENT_CAPTURES = [name for name in capture_names() if ".plain" in name or ".json" in name]


@pytest.mark.parametrize("name", EVENT_CAPTURES)
def test_reencoding_the_events_of_a_capture_gives_back_its_bytes(name):
    encoders = {names.EVENT_PLAIN: protocol.encode_plain_event,
                names.EVENT_JSON: protocol.encode_json_event}
    exact = repeats = 0
    for headers, body, raw in frames_of(load_capture(name)):
        event = protocol.parse_frame(headers, body)
        if event.content_type not in encoders:
            continue
        encoded = encoders[event.content_type](list(event.headers.items()), event.body)
        expected = _drop_repeats(raw, event.content_type)
        assert encoded == expected, event
        if expected == raw:
            exact += 1
        else:
            repeats += 1
    assert exact > 0
    assert repeats <= exact // 10
