"""``resources``: call a number outside through the account's carriers (Kazoo's cf_resources
plus stepswitch, which picks the carriers and bridges).

data (Kazoo 4.3 ``callflows.resources``; ``offnet`` is the same with ``use_local_resources``
false, and callflowd has one set of resources for both):
  ``to_did``                the number to call (default: the dialled number, E.164-normalised
                            with ``routing.e164_converters`` unless ``bypass_e164``)
  ``bypass_e164`` / ``do_not_normalize``  true: the number as it was dialled
  ``timeout``               seconds each carrier may take to answer (default: FreeSWITCH's 60)
  ``ringback``              what the caller hears meanwhile (a media id, file or tone)
  ``outbound_flags``        flags a resource must all have (its ``flags``; ``ignore_flags``
                            resources match any; ``require_flags`` ones need flags given)
  ``caller_id_type``        which of the account's ``caller_id`` to send (default ``external``;
                            an emergency resource sends ``emergency``); none given: the caller's
  ``custom_sip_headers``    {name: value}: SIP headers added to every carrier leg
  ``ignore_early_media``    true: the caller hears our ringback, not the carrier's early media
  ``emit_account_id``       true: ``X-Account-ID: <account id>`` on every carrier leg
  not supported (accepted, ``check`` warns): ``dynamic_flags``, ``format_from_uri``,
  ``from_uri_realm``, ``hunt_account_id``, ``resource_type``, ``use_local_resources``

Which carriers (stepswitch_resources.erl): every enabled resource one of whose ``rules``
matches the number (and one of its ``cid_rules`` the caller's number, when it has some),
with the flags asked for; each enabled gateway of it is one leg, dialled with the part of
the number the rule matched (its largest capture group, else the whole match) between the
gateway's ``prefix`` and ``suffix``. Legs are tried one after another (``|``: failover), the
resources in ``weight_cost`` order (lowest first), a resource's gateways in their order.
A leg is ``sofia/<custom_sip_interface, default external>/<number>@<server>[:<port>]`` (the
port only when not 5060), the gateway's ``route`` URI when it has one, or
``sofia/gateway/<name>/<number>`` when the gateway names a FreeSWITCH gateway
(``freeswitch_gateway``, ours); ``username``/``password`` answer the carrier's challenge
(``sip_auth_username``/``sip_auth_password``), ``progress_timeout`` limits ringing
before early media (``leg_progress_timeout``).

Branches: answered and then ended -> the flow stops. No carrier matches ->
``NO_ROUTE_DESTINATION`` (``sip:404``). Failed: the child keyed by the cause, else by
``sip:<code>``; with neither, Kazoo answers the caller with the cause's default response
(when the node has no ``_`` child; actions/responses.py) and stops: a failed call out does
not go on at ``_``.
"""

import dataclasses

from callflowd.actions import endpoints, responses
from callflowd.config import fields
from callflowd.actions.endpoints import ANSWERED
from callflowd.actions.outcome import DEFAULT, STOP
from callflowd.calls.routes import Normalizer
from callflowd.config.kazoo_documents import sip_headers
from callflowd.errors import InvalidData

NO_ROUTE = ("NO_ROUTE_DESTINATION", "sip:404")
SUPPORTED = ("to_did", "bypass_e164", "do_not_normalize", "timeout", "ringback", "outbound_flags",
             "caller_id_type", "custom_sip_headers", "ignore_early_media", "emit_account_id")
NOT_SUPPORTED = ("dynamic_flags", "format_from_uri", "from_uri_realm", "hunt_account_id", "resource_type",
                 "use_local_resources")
DEFAULT_PROFILE = "external"
# FreeSWITCH rings a leg at most 60 s unless told (tests/fixtures/c_device_no_answer_call_timeout_in_braces);
# each carrier is one leg.
DEFAULT_LEG_SECONDS = 60


@dataclasses.dataclass(frozen=True)
class Data:
    resources: tuple  # of config.documents.Resource, enabled, in weight order
    to_did: str | None
    bypass_e164: bool
    timeout: int | None
    ringback: str | None
    flags: tuple
    caller_id_type: str
    headers: tuple
    ignore_early_media: bool
    account: object  # config.documents.Account or None
    emit_account_id: bool
    normalize: object  # calls.routes.Normalizer

    @classmethod
    def parse(cls, raw, directory):
        flags = raw.get("outbound_flags")
        if flags is not None and (not isinstance(flags, list) or not all(isinstance(f, str) for f in flags)):
            raise InvalidData("outbound_flags", "must be a list of strings")
        resources = sorted((r for r in directory.resources if r.enabled), key=lambda r: r.weight)
        return cls(
            resources=tuple(resources),
            to_did=fields.text(raw, "to_did"),
            bypass_e164=fields.boolean(raw, "bypass_e164", False) or fields.boolean(raw, "do_not_normalize", False),
            timeout=fields.integer_in(raw, "timeout", None, 1, 3600) if raw.get("timeout") is not None else None,
            ringback=directory.media_path(fields.text(raw, "ringback")),
            flags=tuple(flags or ()),
            caller_id_type=fields.text(raw, "caller_id_type", "external"),
            headers=sip_headers(raw),
            ignore_early_media=fields.boolean(raw, "ignore_early_media", False),
            account=directory.account,
            emit_account_id=fields.boolean(raw, "emit_account_id", False),
            normalize=Normalizer(directory.converters),
        )


def number_of(call, data):
    """The number to call: ``to_did``, else the dialled number (E.164 unless bypassed)."""
    if data.to_did:
        return data.to_did
    dialled = call.facts.get("destination_number", "")
    return dialled if data.bypass_e164 else data.normalize(dialled)


def matching(data, number, caller_number):
    """(resource, matched number) of every resource the call may use, in weight order."""
    out = []
    for resource in data.resources:
        if data.flags and not resource.ignore_flags and not all(f in resource.flags for f in data.flags if f):
            continue
        if not data.flags and resource.require_flags:
            continue
        matched = resource.match(number)
        if matched is None or not resource.caller_matches(caller_number):
            continue
        out.append((resource, matched))
    return out


def leg(gateway, matched, data, resource):
    """One carrier leg: ``[variables]target``."""
    variables = []
    if data.timeout:
        variables.append("leg_timeout=%d" % data.timeout)
    if gateway.progress_timeout:
        variables.append("leg_progress_timeout=%d" % gateway.progress_timeout)
    if gateway.username:
        variables.append("sip_auth_username=%s" % gateway.username)
    if gateway.password:
        variables.append("sip_auth_password=%s" % gateway.password)
    number, name = _caller_id(data, gateway.emergency or resource.emergency, gateway.caller_id_type)
    if number:
        variables.append("origination_caller_id_number=%s" % number)
    if name:
        variables.append("origination_caller_id_name=%s" % name)
    headers = gateway.sip_headers + data.headers
    if data.emit_account_id and data.account is not None and data.account.id:
        headers += (("X-Account-ID", data.account.id),)
    for header, value in headers:
        variables.append("sip_h_%s=%s" % (header, value))
    dialled = "%s%s%s" % (gateway.prefix, matched, gateway.suffix)
    if gateway.freeswitch_gateway:
        target = "sofia/gateway/%s/%s" % (gateway.freeswitch_gateway, dialled)
    elif gateway.route:
        target = "sofia/%s/%s" % (gateway.interface or DEFAULT_PROFILE, gateway.route.replace("sip:", "", 1))
    else:
        target = "sofia/%s/%s" % (gateway.interface or DEFAULT_PROFILE, gateway.uri(matched)[len("sip:"):])
    return ("[%s]" % ",".join(variables) if variables else "") + target


def _caller_id(data, emergency, gateway_type):
    account = data.account
    if account is None:
        return "", ""
    kinds = ("emergency", "external") if emergency else (gateway_type or data.caller_id_type, "external")
    for kind in kinds:
        number, name = account.caller_id_of(kind)
        if number or name:
            return number, name
    return "", ""


# Its first effect may be a respond or a bridge; the mark rides ahead of either (actions/__init__.py).
FIRST_EFFECT_IS_A_COMMAND = True


# The FreeSWITCH applications it runs, and those a recovery mark names while they run (actions/__init__.py).
APPLICATIONS = ("set", "bridge", "respond")
LONG_APPLICATIONS = ("bridge",)


def handle(call, data):
    number = number_of(call, data)
    found = matching(data, number, call.facts.get("caller_id_number", ""))
    legs = [leg(gateway, matched, data, resource) for resource, matched in found for gateway in resource.gateways]
    if not legs:
        call.log.info("no resource matches %s", number)
        return _failed(call, *NO_ROUTE)
    call.log.info("calling %s through %d carrier legs (%s)", number, len(legs),
                  ", ".join(resource.id for resource, _ in found))
    if data.ignore_early_media:
        call.set_variable("ignore_early_media", "true", ahead=True)
    seconds = (data.timeout or DEFAULT_LEG_SECONDS) * len(legs)
    disposition, sip_cause = endpoints.bridge(call, "|".join(legs), seconds, ringback=data.ringback)
    if disposition == ANSWERED or (disposition == "NORMAL_CLEARING" and sip_cause in (None, "sip:200")):
        call.log.info("call out to %s answered; bridge ended", number)
        return STOP
    endpoints.log_failure(call, "call out to %s" % number, disposition, sip_cause)
    return _failed(call, disposition, sip_cause)


def _failed(call, cause, code):
    """cf_resources ``handle_bridge_failure``: the cause's or the code's child, else stop."""
    for key in (cause, code):
        if key and key in call.position.branches:
            return (cause,) + ((code,) if code else ())
    if DEFAULT not in call.position.branches:
        responses.send_default(call, cause)
    return STOP
