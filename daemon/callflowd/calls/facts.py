"""The facts of a call, under Kazoo's snake_case names, read once from its CHANNEL_PARK.

These go into webhook requests as they are; every value came from the switch or
the caller, so it is data, never a header name or a routing decision.
"""

from callflowd.esl import names


def call_facts(park_event):
    """A dict of Kazoo-style call fields from a CHANNEL_PARK event."""
    get = park_event.get
    return {
        "call_id": get(names.UNIQUE_ID, ""),
        "caller_id_name": get(names.CALLER_CALLER_ID_NAME, ""),
        "caller_id_number": get(names.CALLER_CALLER_ID_NUMBER, ""),
        "callee_id_name": get(names.CALLER_CALLEE_ID_NAME, ""),
        "callee_id_number": get(names.CALLER_CALLEE_ID_NUMBER, ""),
        "call_direction": get(names.CALL_DIRECTION, ""),
        "from": get(names.VAR_SIP_FROM_URI, ""),
        "to": get(names.VAR_SIP_TO_URI, ""),
        "request": get(names.VAR_SIP_REQ_URI, ""),
        # Kazoo marks calls that came from outside the switch "off-net".
        "inception": "off-net" if get(names.VAR_OUTSIDE_CALL) == "true" else "on-net",
        "destination_number": get(names.CALLER_DESTINATION_NUMBER, ""),
        "context": get(names.CALLER_CONTEXT, ""),
        "switch_hostname": get(names.HOSTNAME, ""),
        "switch_core_uuid": get(names.CORE_UUID, ""),
        "sip_call_id": get(names.VAR_SIP_CALL_ID, ""),
    }
