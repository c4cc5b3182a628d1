"""Hangup causes as FreeSWITCH names, numbers and maps them (switch_types.h, mod_sofia)."""

# Hangup causes and their numbers (hangup_cause_q850), from switch_types.h switch_call_cause_t
Q850 = {
    "UNALLOCATED_NUMBER": "1", "NO_ROUTE_DESTINATION": "3", "NORMAL_CLEARING": "16",
    "USER_BUSY": "17", "NO_USER_RESPONSE": "18", "NO_ANSWER": "19", "SUBSCRIBER_ABSENT": "20",
    "CALL_REJECTED": "21", "NUMBER_CHANGED": "22", "DESTINATION_OUT_OF_ORDER": "27",
    "INVALID_NUMBER_FORMAT": "28", "FACILITY_REJECTED": "29", "NORMAL_UNSPECIFIED": "31",
    "NORMAL_CIRCUIT_CONGESTION": "34", "NETWORK_OUT_OF_ORDER": "38",
    "NORMAL_TEMPORARY_FAILURE": "41", "SWITCH_CONGESTION": "42", "INCOMPATIBLE_DESTINATION": "88",
    "RECOVERY_ON_TIMER_EXPIRE": "102", "ORIGINATOR_CANCEL": "487", "LOSE_RACE": "502",
    "MANAGER_REQUEST": "503", "BLIND_TRANSFER": "600", "ATTENDED_TRANSFER": "601",
    "ALLOTTED_TIMEOUT": "602", "MEDIA_TIMEOUT": "604", "PICKED_OFF": "605",
    "USER_NOT_REGISTERED": "606", "PROGRESS_TIMEOUT": "607", "GATEWAY_DOWN": "609",
    "SYSTEM_SHUTDOWN": "701",
}

# sofia_glue_sip_cause_to_freeswitch(): the hangup cause for a SIP final response code
SIP_TO_CAUSE = {
    400: "NORMAL_TEMPORARY_FAILURE", 401: "CALL_REJECTED", 402: "CALL_REJECTED", 403: "CALL_REJECTED",
    404: "UNALLOCATED_NUMBER", 405: "SERVICE_UNAVAILABLE", 406: "SERVICE_NOT_IMPLEMENTED",
    408: "RECOVERY_ON_TIMER_EXPIRE", 410: "NUMBER_CHANGED", 480: "NO_USER_RESPONSE",
    484: "INVALID_NUMBER_FORMAT", 485: "NO_ROUTE_DESTINATION", 486: "USER_BUSY",
    487: "ORIGINATOR_CANCEL", 488: "INCOMPATIBLE_DESTINATION", 500: "NORMAL_TEMPORARY_FAILURE",
    501: "SERVICE_NOT_IMPLEMENTED", 502: "NETWORK_OUT_OF_ORDER", 503: "NORMAL_TEMPORARY_FAILURE",
    504: "RECOVERY_ON_TIMER_EXPIRE", 600: "USER_BUSY", 603: "CALL_REJECTED", 604: "NO_ROUTE_DESTINATION",
    606: "INCOMPATIBLE_DESTINATION",
}

# switch_ivr_originate.c: the DIALSTATUS a failed originate leaves on the caller.
DIALSTATUS = {"ORIGINATOR_CANCEL": "CANCEL", "USER_BUSY": "BUSY", "NO_ANSWER": "NOANSWER",
              "DESTINATION_OUT_OF_ORDER": "INVALIDARGS", "CALL_REJECTED": "DONTCALL"}

# switch_channel_handle_cause(): these never hang up the caller, continue_on_fail or not.
SURVIVABLE = frozenset(("NO_ANSWER", "NO_USER_RESPONSE", "ORIGINATOR_CANCEL"))


def known_cause(text, default="NORMAL_CLEARING"):
    """A hangup cause name as FreeSWITCH knows it; anything else becomes ``default``."""
    cause = (text or "").strip().upper()
    return cause if cause in Q850 else default


def q850(cause):
    """The cause's number as ``hangup_cause_q850`` shows it (16 for a name not in the table)."""
    return Q850.get(cause, "16")
