"""The ``webhook`` action's request as Kazoo 4.3 sends it, read from a real FreeSWITCH capture.

Kazoo's rules (cf_webhook.erl, kapps_call:to_proplist/1, kz_http_util:json_to_querystring/1,
kzd_webhook:verb/1 and retries/1) are checked one field, one encoding rule, one ``retries``
value at a time; the receiver's view is compared byte for byte.
"""

import urllib.parse

import pytest

from callflowd.actions import webhook
from callflowd.calls import facts as facts_module
from callflowd.calls.call import Call, Step
from callflowd.calls.facts import call_facts, kazoo_fields
from callflowd.calls.routes import normalize
from callflowd.config.model import Directory, WebhookSettings
from callflowd.errors import InvalidData
from callflowd.esl import protocol
from callflowd.webhooks import querystring, wire
from callflowd.webhooks.request import WebhookRequest
from tests.doubles.replay_switch import load_capture

pytestmark = pytest.mark.timeout(20)

CAPTURE = "b_device_busy_voicemail.plain.txt"  # a real FreeSWITCH 1.10.12: an outside call, parked
CALL_UUID = "736a8acb-9a16-4501-8911-d11dcb9bf9cd"
ACCOUNT_ID = "4fbd9ad1f5d7c9f0f3b5e1ea8c0d2a61"


def park_event(capture=CAPTURE, extra=b""):
    """The capture's CHANNEL_PARK, with ``extra`` header lines (percent-encoded) added at its end."""
    for headers, body, _ in protocol.iter_frames(load_capture(capture)):
        event = protocol.parse_frame(headers, body)
        if event.name == "CHANNEL_PARK":
            if not extra:
                return event
            text = body.rstrip(b"\n") + b"\n" + extra
            return protocol.parse_plain_event(text.decode("utf-8"))
    raise AssertionError("no CHANNEL_PARK in %s" % capture)


# -- each field, where it comes from ------------------------------------------------------

FROM_THE_CAPTURE = [
    # (field, value Kazoo's rules give for the captured channel; None: left out)
    ("account_db", None),  # no account_id in the config
    ("account_id", None),
    ("authorizing_id", None),  # no device rang yet
    ("authorizing_type", None),
    ("bridge_id", None),  # a Kazoo custom channel variable; plain FreeSWITCH has none
    ("call_bridged", False),
    ("call_direction", "inbound"),
    ("call_id", CALL_UUID),
    ("callee_id_name", None),  # Kazoo sends it empty; we leave it out
    ("callee_id_number", "5559999"),  # Kazoo: the To user when the route request has none
    ("caller_id_name", "sipp caller"),
    ("caller_id_number", "+15551230000"),
    ("custom_application_vars", None),
    ("custom_sip_headers", None),
    ("fetch_id", None),
    ("from", "+15551230000@127.0.0.1"),  # sip_from_uri is +15551230000@127.0.0.1:5070: no port
    ("from_realm", "127.0.0.1"),
    ("from_tag", "32225SIPpUAC1"),
    ("from_user", "+15551230000"),
    ("inception", "5559999@127.0.0.1"),  # outside_call=true: the request
    ("is_recording", False),
    ("is_call_forward", False),
    ("language", None),  # no default_language on the channel
    ("message_left", False),
    ("other_leg_call_id", None),
    ("owner_id", None),
    ("request", "5559999@127.0.0.1"),
    ("request_realm", "127.0.0.1"),
    ("request_user", "5559999"),
    ("resource_type", "audio"),
    ("switch_hostname", "vm"),
    ("switch_nodename", None),  # not set in the config
    ("switch_uri", "sip:127.0.0.1:5080"),
    ("switch_url", "sip:mod_sofia@127.0.0.1:5080"),
    ("to", "5559999@127.0.0.1"),
    ("to_realm", "127.0.0.1"),
    ("to_tag", None),  # the INVITE's To has no tag yet
    ("to_user", "5559999"),
]


def test_the_table_covers_every_field_of_kapps_call_to_proplist():
    assert tuple(name for name, _ in FROM_THE_CAPTURE) == facts_module.FIELDS


@pytest.mark.parametrize("field, expected", FROM_THE_CAPTURE, ids=[name for name, _ in FROM_THE_CAPTURE])
def test_each_kazoo_field_of_a_real_parked_call(field, expected):
    fields = dict(kazoo_fields(call_facts(park_event(), e164=normalize)))
    if expected is None:
        assert field not in fields
    else:
        assert fields[field] == expected


@pytest.mark.parametrize("field, expected", [
    ("account_id", ACCOUNT_ID),
    ("account_db", "account%2F4f%2Fbd%2F9ad1f5d7c9f0f3b5e1ea8c0d2a61"),  # kz_util:format_account_db/1
    ("switch_nodename", "freeswitch@fs1.example.com"),
])
def test_fields_the_config_gives(field, expected):
    facts = call_facts(park_event(), account_id=ACCOUNT_ID, switch_nodename="freeswitch@fs1.example.com")
    assert dict(kazoo_fields(facts))[field] == expected


def test_request_user_is_normalised_to_e164_as_kazoo_does():
    event = park_event(extra=b"variable_sip_req_user: 4155552671\n")
    assert dict(kazoo_fields(call_facts(event, e164=normalize)))["request_user"] == "+14155552671"


def test_an_internal_call_has_no_inception():
    event = park_event(extra=b"variable_outside_call: false\n")
    assert "inception" not in dict(kazoo_fields(call_facts(event)))


def test_a_registered_callers_presence_id_is_its_from():
    event = park_event(extra=b"Channel-Presence-ID: 1001%40127.0.0.1\n")
    fields = dict(kazoo_fields(call_facts(event)))
    assert (fields["from"], fields["from_user"], fields["from_realm"]) == ("1001@127.0.0.1", "1001", "127.0.0.1")


def test_custom_sip_headers_are_the_sip_h_variables_under_normalised_names():
    event = park_event(extra=b"variable_sip_h_X-Account-ID: ACME%2042\nvariable_sip_h_X-ecallmgr_Owner: k\n"
                             b"variable_sip_h_P-Asserted-Identity: %3Csip%3A1000%40x%3E\n"
                             b"variable_sip_h_Diversion: %3Csip%3A2000%40x%3E\nvariable_sip_i_x-other: z\n")
    headers = dict(kazoo_fields(call_facts(event)))["custom_sip_headers"]
    # ecallmgr_util:custom_sip_headers/1: later first, Diversion gathered, Kazoo's own left out
    assert list(headers.items()) == [("diversions", ["<sip:2000@x>"]),
                                     ("p_asserted_identity", "<sip:1000@x>"), ("x_account_id", "ACME 42")]


def test_custom_application_vars_are_the_cav_variables_sorted():
    event = park_event(extra=b"variable_cav_zone: eu\nvariable_cav_Tier: ARRAY%3A%3Agold%7C%3Avip\n")
    cavs = dict(kazoo_fields(call_facts(event)))["custom_application_vars"]
    assert list(cavs.items()) == [("tier", ["gold", "vip"]), ("zone", "eu")]


def test_the_device_the_flow_rang_authorises_the_call_and_a_bridge_is_noted():
    facts = call_facts(park_event())
    facts_module.note_device(facts, "front_desk_device_id", owner_id="5a1c")
    completion = protocol.parse_plain_event("variable_last_bridge_to: 9eff8a67\n")
    facts_module.note_bridge(facts, completion)
    fields = dict(kazoo_fields(facts))
    assert (fields["authorizing_id"], fields["authorizing_type"], fields["owner_id"]) == (
        "front_desk_device_id", "device", "5a1c")
    assert (fields["call_bridged"], fields["other_leg_call_id"]) == (True, "9eff8a67")


def test_no_field_is_ever_sent_empty():
    fields = kazoo_fields(call_facts(park_event(extra=b"variable_sip_to_tag: \nvariable_default_language: \n")))
    assert all(value not in ("", None) for _, value in fields)


# -- the request on the wire ----------------------------------------------------------------


def spec_request(data_raw, directory=None):
    """The request the spec's webhook node (after a busy device) makes for the captured call."""
    data = webhook.Data.parse(data_raw, directory or Directory(webhooks=WebhookSettings()))
    call = Call(CALL_UUID, call_facts(park_event(), e164=normalize), "front-desk", None, None)
    facts_module.note_device(call.facts, "front_desk_device_id")
    call.history.append(Step("device", "USER_BUSY", "flow", "front-desk"))
    return data, WebhookRequest(call_id=call.uuid, uri=data.uri, method=data.http_verb,
                                fields=webhook.request_fields(call, data.custom_data), retry=data.retry,
                                format=data.format, secret=None, delivery_id="d1")


SPEC_QUERY = (
    "authorizing_id=front_desk_device_id&authorizing_type=device&call_bridged=false&call_direction=inbound"
    "&call_id=736a8acb-9a16-4501-8911-d11dcb9bf9cd&callee_id_number=5559999&caller_id_name=sipp+caller"
    "&caller_id_number=%2B15551230000&from=%2B15551230000%40127.0.0.1&from_realm=127.0.0.1"
    "&from_tag=32225SIPpUAC1&from_user=%2B15551230000&inception=5559999%40127.0.0.1&is_recording=false"
    "&is_call_forward=false&message_left=false&request=5559999%40127.0.0.1&request_realm=127.0.0.1"
    "&request_user=5559999&resource_type=audio&switch_hostname=vm&switch_uri=sip%3A127.0.0.1%3A5080"
    "&switch_url=sip%3Amod_sofia%40127.0.0.1%3A5080&to=5559999%40127.0.0.1&to_realm=127.0.0.1"
    "&to_user=5559999&callflow_id=front-desk&previous_action=device&previous_outcome=USER_BUSY"
)


def test_the_spec_node_without_a_verb_sends_kazoos_get_byte_for_byte():
    data, request = spec_request({"uri": "http://my.ser.ver/frontdesk/missed_call"})
    assert data.http_verb == "get"
    out = wire.encode(request)
    assert out.method == "GET" and out.body is None
    assert out.url == "http://my.ser.ver/frontdesk/missed_call?" + SPEC_QUERY


def test_a_post_sends_the_same_string_as_a_form_body():
    _, request = spec_request({"uri": "http://my.ser.ver/m", "http_verb": "post"})
    out = wire.encode(request)
    assert (out.method, out.url, out.body) == ("POST", "http://my.ser.ver/m", SPEC_QUERY.encode("ascii"))
    assert out.headers["Content-Type"] == "application/x-www-form-urlencoded"


NESTED = {"crm": {"account": "ACME", "tags": ["vip", "gold"]}, "caller_id_name": "Desk", "n": 3,
          "ok": True, "caller_id_number": None}


def test_nested_custom_data_is_encoded_as_kazoos_json_to_querystring():
    _, request = spec_request({"uri": "http://h/m", "http_verb": "post", "custom_data": NESTED})
    body = wire.encode(request).body.decode("ascii")
    # a call key is replaced where it stands; null removes it; new keys come last, last first
    assert "&caller_id_name=Desk&from=" in body and "caller_id_number" not in body
    assert body.endswith("&previous_outcome=USER_BUSY&ok=true&n=3&crm[account]=ACME&crm[tags][]=vip"
                         "&crm[tags][]=gold")


def test_in_a_gets_request_target_the_brackets_are_percent_encoded_and_parse_to_the_same_keys():
    _, get = spec_request({"uri": "http://h/m", "custom_data": NESTED})
    _, post = spec_request({"uri": "http://h/m", "http_verb": "post", "custom_data": NESTED})
    query = urllib.parse.urlsplit(wire.encode(get).url).query
    assert query.endswith("&crm%5Baccount%5D=ACME&crm%5Btags%5D%5B%5D=vip&crm%5Btags%5D%5B%5D=gold")
    assert urllib.parse.parse_qsl(query) == urllib.parse.parse_qsl(wire.encode(post).body.decode("ascii"))


@pytest.mark.parametrize("value, text", [
    ("a b&c=d/é", "a+b%26c%3Dd%2F%C3%A9"), (True, "true"), (False, "false"), (42, "42"), (-7, "-7"),
    (1.5, "1.50"), (2.25, "2.25"), (100.5, "1.00"),  # float_to_list/1 cut two digits after its point
    ("~._-", "~._-"),
])
def test_values_are_written_as_kazoos_urlencode(value, text):
    assert querystring.encode([("k", value)]) == "k=" + text


def test_empty_objects_and_lists_keep_their_place_between_ampersands_as_kazoo_does():
    assert querystring.encode([("a", 1), ("b", {}), ("c", []), ("d", 2)]) == "a=1&&&d=2"


def test_deeper_nesting_adds_brackets():
    assert querystring.encode([("a", {"b": {"c": 1}})]) == "a[b][c]=1"


@pytest.mark.parametrize("custom, why", [
    ({"crm": {"x": None}}, "null inside an object or a list"),
    ({"t": [{"a": 1}]}, "an object inside a list"),
    ({"t": [[1]]}, "a list inside a list"),
])
def test_custom_data_kazoo_cannot_encode_is_refused_at_load_time(custom, why):
    with pytest.raises(InvalidData) as raised:
        webhook.Data.parse({"uri": "http://h/m", "custom_data": custom}, Directory(webhooks=WebhookSettings()))
    assert why in raised.value.message


def test_a_json_post_may_carry_any_json_custom_data():
    data = webhook.Data.parse({"uri": "http://h/m", "http_verb": "post", "format": "json",
                               "custom_data": {"t": [{"a": None}]}}, Directory(webhooks=WebhookSettings()))
    assert data.custom_data["t"] == [{"a": None}]


# -- retries, as Kazoo reads them -----------------------------------------------------------


@pytest.mark.parametrize("retries, attempts", [
    (0, 1), (1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 5), (7, 5), (None, 3), ("4", 4), (-2, 1)])
def test_retries_is_kazoos_count_of_attempts_in_all(retries, attempts):
    raw = {"uri": "http://h/m"}
    if retries is not None:
        raw["retries"] = retries
    data = webhook.Data.parse(raw, Directory(webhooks=WebhookSettings()))
    assert data.retry.total + 1 == attempts


def test_kazoos_hook_headers_go_with_the_request():
    headers = webhook.kazoo_headers({"account_id": ACCOUNT_ID}, now=0)
    # X-Hook-ID: cf_webhook's _id, calendar:datetime_to_gregorian_seconds(calendar:local_time())
    offset = __import__("calendar").timegm(__import__("time").localtime(0))
    assert headers == (("X-Hook-ID", str(62167219200 + offset)), ("X-Account-ID", ACCOUNT_ID))
    request = WebhookRequest(call_id="c", uri="http://h/m", method="get", fields=(("a", "1"),),
                             retry=webhook_retry(), headers=headers)
    out = wire.encode(WebhookRequest.from_json("d", request.to_json()))  # kept in the outbox row
    assert out.headers["X-Hook-ID"] == headers[0][1] and out.headers["X-Account-ID"] == ACCOUNT_ID
    assert "X-Account-ID" not in dict(webhook.kazoo_headers({}))  # no account: not "undefined"


def webhook_retry():
    return WebhookSettings().retry_policy(3)
