"""FreeSWITCH event, header and variable names, and the replies we test for, in one place.

Checked against the FreeSWITCH 1.10 captures in tests/fixtures/. Application names
(``bridge``, ``playback``...) are not here: each action module declares the ones it
runs (actions/__init__.py).
"""

# Content-Type values of frames (mod_event_socket)
AUTH_REQUEST = "auth/request"
COMMAND_REPLY = "command/reply"
API_RESPONSE = "api/response"
EVENT_PLAIN = "text/event-plain"
EVENT_JSON = "text/event-json"
DISCONNECT_NOTICE = "text/disconnect-notice"
RUDE_REJECTION = "text/rude-rejection"

# Event names
CHANNEL_CREATE = "CHANNEL_CREATE"
CHANNEL_PARK = "CHANNEL_PARK"
CHANNEL_UNPARK = "CHANNEL_UNPARK"
CHANNEL_EXECUTE = "CHANNEL_EXECUTE"
CHANNEL_EXECUTE_COMPLETE = "CHANNEL_EXECUTE_COMPLETE"
CHANNEL_ANSWER = "CHANNEL_ANSWER"
CHANNEL_BRIDGE = "CHANNEL_BRIDGE"
CHANNEL_UNBRIDGE = "CHANNEL_UNBRIDGE"
CHANNEL_HANGUP = "CHANNEL_HANGUP"
CHANNEL_HANGUP_COMPLETE = "CHANNEL_HANGUP_COMPLETE"
CHANNEL_DESTROY = "CHANNEL_DESTROY"
DTMF = "DTMF"
BACKGROUND_JOB = "BACKGROUND_JOB"
HEARTBEAT = "HEARTBEAT"
SHUTDOWN = "SHUTDOWN"

# What the daemon subscribes to: only what drives a flow.
SUBSCRIBED_EVENTS = (
    CHANNEL_PARK,
    CHANNEL_EXECUTE,  # tells whether a sendmsg whose reply never came was taken (calls/call.py)
    CHANNEL_EXECUTE_COMPLETE,
    CHANNEL_ANSWER,
    CHANNEL_BRIDGE,
    CHANNEL_UNBRIDGE,
    CHANNEL_HANGUP,
    CHANNEL_HANGUP_COMPLETE,
    DTMF,
    BACKGROUND_JOB,
    HEARTBEAT,
    SHUTDOWN,
)

# Headers
CONTENT_TYPE = "Content-Type"
CONTENT_LENGTH = "Content-Length"
REPLY_TEXT = "Reply-Text"
EVENT_NAME = "Event-Name"
EVENT_SUBCLASS = "Event-Subclass"
UNIQUE_ID = "Unique-ID"
CORE_UUID = "Core-UUID"
CALL_DIRECTION = "Call-Direction"
HOSTNAME = "FreeSWITCH-Hostname"
APPLICATION = "Application"
APPLICATION_DATA = "Application-Data"
APPLICATION_RESPONSE = "Application-Response"
APPLICATION_UUID = "Application-UUID"
CALLER_DESTINATION_NUMBER = "Caller-Destination-Number"
# "true" when sofia authenticated the caller (digest against the directory, or an auth ACL)
SIP_AUTHORIZED = "variable_sip_authorized"
CALLER_CALLER_ID_NAME = "Caller-Caller-ID-Name"
CALLER_CALLER_ID_NUMBER = "Caller-Caller-ID-Number"
CALLER_CALLEE_ID_NAME = "Caller-Callee-ID-Name"
CALLER_CALLEE_ID_NUMBER = "Caller-Callee-ID-Number"
CALLER_CONTEXT = "Caller-Context"
CALLER_CHANNEL_CREATED_TIME = "Caller-Channel-Created-Time"
HANGUP_CAUSE = "Hangup-Cause"
DTMF_DIGIT = "DTMF-Digit"
JOB_UUID = "Job-UUID"
CONTENT_DISPOSITION = "Content-Disposition"
EVENT_UUID = "Event-UUID"  # on a sendmsg: comes back as the Application-UUID of its events
EVENT_DATE_TIMESTAMP = "Event-Date-Timestamp"
CALLER_CHANNEL_ANSWERED_TIME = "Caller-Channel-Answered-Time"
CALLER_CHANNEL_HANGUP_TIME = "Caller-Channel-Hangup-Time"
OTHER_LEG_UNIQUE_ID = "Other-Leg-Unique-ID"
CHANNEL_STATE = "Channel-State"
ANSWER_STATE = "Answer-State"

# Headers of a sendmsg command (mod_event_socket)
CALL_COMMAND = "call-command"
EXECUTE_APP_NAME = "execute-app-name"
EXECUTE_APP_ARG = "execute-app-arg"
HANGUP_CAUSE_ARG = "hangup-cause"

# Channel states that mean the channel is ending (Channel-State)
ENDING_CHANNEL_STATES = frozenset(("CS_HANGUP", "CS_REPORTING", "CS_DESTROY"))
ANSWER_STATE_HANGUP = "hangup"

# Channel variables (as event headers they carry the "variable_" prefix)
VARIABLE_PREFIX = "variable_"
ORIGINATE_DISPOSITION = "originate_disposition"
VAR_ORIGINATE_DISPOSITION = "variable_originate_disposition"
VAR_BRIDGE_TO = "variable_bridge_to"  # set only while the two legs are connected
VAR_CURRENT_APPLICATION = "variable_current_application"
VAR_OUTSIDE_CALL = "variable_outside_call"
VAR_HANGUP_CAUSE_Q850 = "variable_hangup_cause_q850"
VAR_PLAYBACK_TERMINATOR_USED = "variable_playback_terminator_used"
VAR_DIALSTATUS = "variable_DIALSTATUS"
VAR_LAST_BRIDGE_PROTO_CAUSE = "variable_last_bridge_proto_specific_hangup_cause"
VAR_SIP_FROM_URI = "variable_sip_from_uri"
VAR_SIP_TO_URI = "variable_sip_to_uri"
VAR_SIP_REQ_URI = "variable_sip_req_uri"
VAR_SIP_CALL_ID = "variable_sip_call_id"
VAR_SIP_FROM_USER = "variable_sip_from_user"
VAR_SIP_FROM_HOST = "variable_sip_from_host"
VAR_SIP_FROM_TAG = "variable_sip_from_tag"
VAR_SIP_TO_USER = "variable_sip_to_user"
VAR_SIP_TO_HOST = "variable_sip_to_host"
VAR_SIP_TO_TAG = "variable_sip_to_tag"
VAR_SIP_REQ_USER = "variable_sip_req_user"
VAR_SIP_REQ_HOST = "variable_sip_req_host"
VAR_LAST_BRIDGE_TO = "variable_last_bridge_to"

DIRECTION_INBOUND = "inbound"

# ``show channels as json``: {"row_count": N, "rows": [{column: value, ...}, ...]}
SHOW_ROWS = "rows"
COLUMN_UUID = "uuid"
COLUMN_DIRECTION = "direction"
COLUMN_CREATED_EPOCH = "created_epoch"
UNDEFINED = "_undef_"  # what uuid_getvar and a ${var} expansion give for a variable not set

# Hangup causes we send
NORMAL_CLEARING = "NORMAL_CLEARING"
NORMAL_TEMPORARY_FAILURE = "NORMAL_TEMPORARY_FAILURE"

# Reply texts
OK = "+OK"
ERR = "-ERR"
# mod_event_socket's answer to a sendmsg naming a uuid it does not have (the channel is gone),
# followed by `` [<uuid>]`` (misc_protocol.plain.txt)
ERR_NO_SUCH_CHANNEL = "-ERR invalid session id"


def variable(name):
    """The event header that carries channel variable ``name``."""
    return VARIABLE_PREFIX + name
