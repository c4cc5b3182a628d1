"""A call's fields as Kazoo 4.3 sends them in a callflow webhook (``kapps_call:to_proplist/1``).

Kazoo's ``cf_webhook`` sends ``kapps_call:to_json(Call)`` without ``Key-Value-Store``,
``Control-Queue``, ``Controller-Queue`` and ``Custom-Channel-Vars``, its keys normalised
(``Caller-ID-Number`` -> ``caller_id_number``, nested keys too). ``FIELDS`` is that list,
in that order. Here each comes from what plain FreeSWITCH gives (the CHANNEL_PARK, or a
``uuid_dump`` when a call is taken back), from the config, or from what the flow did;
what nobody gives is left out, never sent empty. docs/webhooks.md has the table.

Where Kazoo's ecallmgr reads the same switch, its rule is followed
(``ecallmgr_fs_router_util:route_req/4``, ``ecallmgr_util``): ``request`` is the request
user at the request host, ``from`` the channel's presence id or the From user at the From
host, ``custom_sip_headers`` the ``sip_h_*`` variables (the X-/P- headers the switch
kept from the INVITE) under their header names, ``custom_application_vars`` the
``cav_*`` variables. One deliberate difference, the issue's: ``from``/``to``/``request``
never carry a port (FreeSWITCH's ``sip_from_uri`` does: ``1000@127.0.0.1:5070``).

Every value came from the switch or the caller: data, never a header name or a routing
decision.
"""

from callflowd.esl import names
from callflowd.esl.event import headers_with_prefix

# kapps_call:to_proplist/1 (4.3), less what cf_webhook removes, normalised.
FIELDS = (
    "account_db", "account_id", "authorizing_id", "authorizing_type", "bridge_id", "call_bridged",
    "call_direction", "call_id", "callee_id_name", "callee_id_number", "caller_id_name",
    "caller_id_number", "custom_application_vars", "custom_sip_headers", "fetch_id", "from",
    "from_realm", "from_tag", "from_user", "inception", "is_recording", "is_call_forward", "language",
    "message_left", "other_leg_call_id", "owner_id", "request", "request_realm", "request_user",
    "resource_type", "switch_hostname", "switch_nodename", "switch_uri", "switch_url", "to",
    "to_realm", "to_tag", "to_user",
)
# Booleans of the kapps_call record: always there, false until the call makes them true.
FLAGS = ("call_bridged", "is_recording", "is_call_forward", "message_left")
# Kept beside Kazoo's for the ``pivot`` request (its fields predate these); never in a webhook.
PIVOT_EXTRAS = ("destination_number", "context", "switch_core_uuid", "sip_call_id")

_SIP_HEADER = "variable_sip_h_"
_APPLICATION_VAR = "variable_cav_"
_KAZOO_CCV_HEADER = "X-ecallmgr_"  # Kazoo's own channel vars riding a header: not a custom header
_PRESENCE_ID = "Channel-Presence-ID"
_DEFAULT_LANGUAGE = "variable_default_language"
_PROFILE_URL = "variable_sofia_profile_url"


def normalize_key(key):
    """Kazoo's ``kz_json:normalize_key/1``: ``-`` becomes ``_``, Latin capitals lower case."""
    return "".join("_" if c == "-" else c.lower() if "A" <= c <= "Z" or "\xc0" <= c <= "\xde" and c != "\xd7"
                   else c for c in key)


def call_facts(channel, account_id=None, switch_nodename=None, e164=None):
    """The Kazoo fields ``channel`` (a CHANNEL_PARK or a ``uuid_dump``) gives, as a dict.

    ``account_id`` and ``switch_nodename`` come from the config when the operator set them;
    ``e164`` normalises ``request_user`` as Kazoo's ``to_e164`` does (the routing converters).
    Only fields with a value are in the dict; the four flags start false.
    """
    get = channel.get
    facts = dict.fromkeys(FLAGS, False)
    if account_id:
        facts["account_db"] = account_db(account_id)
        facts["account_id"] = account_id
    _put(facts, "call_direction", get(names.CALL_DIRECTION))
    _put(facts, "call_id", get(names.UNIQUE_ID))
    _put(facts, "callee_id_name", get(names.CALLER_CALLEE_ID_NAME))
    _put(facts, "caller_id_name", get(names.CALLER_CALLER_ID_NAME))
    _put(facts, "caller_id_number", get(names.CALLER_CALLER_ID_NUMBER))
    _put(facts, "custom_application_vars", application_vars(channel))
    _put(facts, "custom_sip_headers", sip_headers(channel))

    from_user, from_realm = get(names.VAR_SIP_FROM_USER), get(names.VAR_SIP_FROM_HOST)
    presence = _without_port(get(_PRESENCE_ID))
    if presence and "@" in presence:
        from_user, _, from_realm = presence.partition("@")
    _address(facts, "from", from_user, from_realm)
    _put(facts, "from_tag", get(names.VAR_SIP_FROM_TAG))

    request_user = get(names.VAR_SIP_REQ_USER) or get(names.CALLER_DESTINATION_NUMBER)
    request_realm = get(names.VAR_SIP_REQ_HOST)
    _address(facts, "request", request_user, request_realm)
    if request_user and e164 is not None:
        facts["request_user"] = e164(request_user)
    if get(names.VAR_OUTSIDE_CALL) == "true" and "request" in facts:
        facts["inception"] = facts["request"]  # Kazoo: the request of a call from outside; none inside
    _put(facts, "language", get(_DEFAULT_LANGUAGE))
    facts["resource_type"] = "audio"  # ecallmgr's default for a call (kzd_freeswitch:resource_type)
    _put(facts, "switch_hostname", get(names.HOSTNAME))
    _put(facts, "switch_nodename", switch_nodename)
    url = get(_PROFILE_URL)  # sip:mod_sofia@127.0.0.1:5080, as Kazoo's Switch-URL
    if url:
        facts["switch_url"] = url
        facts["switch_uri"] = "sip:" + url.split("@", 1)[1] if "@" in url else url
    _address(facts, "to", get(names.VAR_SIP_TO_USER) or request_user, get(names.VAR_SIP_TO_HOST) or request_realm)
    _put(facts, "to_tag", get(names.VAR_SIP_TO_TAG))
    # Kazoo: Callee-ID-Number defaults to the To user (kapps_call:from_route_req/2).
    _put(facts, "callee_id_number", get(names.CALLER_CALLEE_ID_NUMBER) or facts.get("to_user"))
    _put(facts, "destination_number", get(names.CALLER_DESTINATION_NUMBER))
    _put(facts, "context", get(names.CALLER_CONTEXT))
    _put(facts, "switch_core_uuid", get(names.CORE_UUID))
    _put(facts, "sip_call_id", get(names.VAR_SIP_CALL_ID))
    return facts


def kazoo_fields(facts):
    """``(name, value)`` pairs in Kazoo's order, for what ``facts`` holds."""
    return [(name, facts[name]) for name in FIELDS if name in facts]


def account_db(account_id):
    """``kz_util:format_account_db/1``: ``account%2Fab%2Fcd%2Fef...`` for a 32-hex account id."""
    return "account%%2F%s%%2F%s%%2F%s" % (account_id[:2], account_id[2:4], account_id[4:])


def note_device(facts, device_id, owner_id=None, kind="device"):
    """The flow rang ``device_id`` (a ``kind``: ``device``, or a ``user`` and its devices): it
    authorises the call, as a Kazoo device would; ``owner_id`` the user who owns it."""
    facts["authorizing_id"] = device_id
    facts["authorizing_type"] = kind
    if owner_id:
        facts["owner_id"] = owner_id
    else:
        facts.pop("owner_id", None)


def note_bridge(facts, completion):
    """A bridge's EXECUTE_COMPLETE said it connected: the call was bridged, to that leg."""
    facts["call_bridged"] = True
    other = completion.get(names.VAR_LAST_BRIDGE_TO) or completion.get(names.OTHER_LEG_UNIQUE_ID)
    _put(facts, "other_leg_call_id", other)


def sip_headers(channel):
    """``ecallmgr_util:custom_sip_headers/1``: each ``sip_h_<Header>`` variable under its header
    name, normalised (``X-Account-ID`` -> ``x_account_id``), later ones first as Kazoo's fold
    leaves them; ``Diversion`` headers gathered in a ``diversions`` list."""
    headers = []
    diversions = []
    for key, value in headers_with_prefix(channel, _SIP_HEADER):
        if not value:
            continue
        name = key[len(_SIP_HEADER):]
        if not name or name.startswith(_KAZOO_CCV_HEADER):
            continue
        if name == "Diversion":
            if not diversions:
                headers.append(("diversions", diversions))
            diversions.insert(0, value)
        else:
            headers.append((normalize_key(name), value))
    if not headers:
        return None
    headers.reverse()
    return dict(headers)


def application_vars(channel):
    """``ecallmgr_util:custom_application_vars/1``: ``cav_<name>`` variables, sorted by name;
    an ``ARRAY::a|:b`` value is a list."""
    found = {}
    for key, value in headers_with_prefix(channel, _APPLICATION_VAR):
        if value and len(key) > len(_APPLICATION_VAR):
            name = key[len(_APPLICATION_VAR):]
            found[normalize_key(name)] = value[7:].split("|:") if value.startswith("ARRAY::") else value
    if not found:
        return None
    return {name: found[name] for name in sorted(found)}


def _put(facts, name, value):
    if value:
        facts[name] = value


def _address(facts, name, user, realm):
    """``name`` = ``user@realm`` with its two parts, when both are known."""
    realm = _without_port(realm)
    if user and realm:
        facts[name] = "%s@%s" % (user, realm)
        facts[name + "_user"] = user
        facts[name + "_realm"] = realm


def _without_port(host):
    """``127.0.0.1:5070`` -> ``127.0.0.1``; ``[::1]:5060`` -> ``[::1]``; a bare IPv6 stays."""
    if not host:
        return host
    if host.startswith("["):
        end = host.find("]")
        return host[:end + 1] if end > 0 else host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host
