"""Kazoo's default responses to a failed call (kz_call_response.erl ``default_response``).

When ``resources``/``offnet`` fail and the node has no child for the cause nor for its SIP
code, Kazoo answers the caller with the cause's default response (unless the node has a
``_`` child: ``cf_util:send_default_response``) and stops. The code and reason phrase are
Kazoo's; its media (``fault-can_not_be_completed_as_dialed``, tones) is a Kazoo prompt that
plain FreeSWITCH has not got, and is not played.
"""

DEFAULTS = {
    "UNALLOCATED_NUMBER": (404, "No route to destination"),
    "NO_ROUTE_TRANSIT_NET": (404, "Invalid number"),
    "NO_ROUTE_DESTINATION": (404, "No route to destination"),
    "USER_BUSY": (486, "Number busy"),
    "NO_USER_RESPONSE": (408, "No response"),
    "NO_ANSWER": (480, "No answer"),
    "SUBSCRIBER_ABSENT": (480, "Subscriber absent"),
    "CALL_REJECTED": (603, "Call Rejected"),
    "NUMBER_CHANGED": (410, "Number changed"),
    "REDIRECTION_TO_NEW_DESTINATION": (410, "Redirection to new destination"),
    "EXCHANGE_ROUTING_ERROR": (483, "Exchange routing error"),
    "DESTINATION_OUT_OF_ORDER": (502, "Destination out of order"),
    "INVALID_NUMBER_FORMAT": (484, "Invalid number format"),
    "FACILITY_REJECTED": (510, "Facility rejected"),
    "NORMAL_UNSPECIFIED": (480, "Normal unspecified"),
    "NORMAL_CIRCUIT_CONGESTION": (503, "Normal circuit congestion"),
    "NETWORK_OUT_OF_ORDER": (503, "Network out of order"),
    "NORMAL_TEMPORARY_FAILURE": (503, "Normal temporary failure"),
    "SWITCH_CONGESTION": (503, "Switch congestion"),
    "REQUESTED_CHAN_UNAVAIL": (503, "Requested channel unavailable"),
    "OUTGOING_CALL_BARRED": (403, "Outgoing call barred"),
    "INCOMING_CALL_BARRED": (403, "Incoming call barred"),
    "BEARERCAPABILITY_NOTAUTH": (403, "Bearer capability not authorized"),
    "BEARERCAPABILITY_NOTAVAIL": (403, "Bearer capability not presently available"),
    "BEARERCAPABILITY_NOTIMPL": (488, "Bearer capability not implemented"),
    "UNKNOWN": (500, "Unknown error happened"),
    "FACILITY_NOT_IMPLEMENTED": (501, "Facility not implemented"),
    "SERVICE_NOT_IMPLEMENTED": (501, "Service not implemented"),
    "INCOMPATIBLE_DESTINATION": (488, "Incompatible destination"),
    "MANDATORY_IE_MISSING": (400, "Mandatory information missing"),
    "RECOVERY_ON_TIMER_EXPIRE": (504, "Recovery on timer expire"),
    "MANDATORY_IE_LENGTH_ERROR": (400, "Mandatory information missing"),
    "ORIGINATOR_CANCEL": (487, "Originator cancel"),
    "MEDIA_TIMEOUT": (504, "Media timeout"),
    "PROGRESS_TIMEOUT": (486, "Progress timeout"),
}


def send_default(call, cause):
    """Respond to the caller with the cause's default response, if Kazoo has one."""
    known = DEFAULTS.get(cause)
    if known is None:
        call.log.info("no default response for %s", cause)
        return
    code, message = known
    call.log.info("sending the default response for %s: %d %s", cause, code, message)
    call.execute("respond", "%d %s" % (code, message), timeout=call.command_timeout)
