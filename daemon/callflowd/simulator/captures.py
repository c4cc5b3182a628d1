"""The real FreeSWITCH captures the simulator is cut from, named by what they show.

Each is a byte-exact recording of FreeSWITCH 1.10.12 under real SIP calls (sipp), kept in
``tests/fixtures/`` as ``<file>.plain.txt`` and described in ``tests/fixtures/README.md``;
``extract.py`` cuts the frames the simulator uses out of them into ``templates/<file>.txt``.
The files keep the names the recording rig gave them, whose leading letter is only the order
the scenarios were recorded in (``a``, ``b``, ``b2``, ``c2``, ``f``, ``g``...). The code calls
them by what the call did (name in the code: capture / template file: what happened):

- ``PHONE_ANSWERS``: ``a_device_answers``: bridge to user 1000, the phone rings 1.5 s and
  answers, the caller hangs up 4 s later (``NORMAL_CLEARING``);
- ``PHONE_BUSY_THEN_VOICEMAIL``: ``b_device_busy_voicemail``: ``set continue_on_fail=true``,
  the bridge fails 486 ``USER_BUSY`` at once, ``answer``, ``voicemail``, the caller hangs up
  8 s in;
- ``PHONE_BUSY_ENDS_CALL``: ``b2_device_busy_without_continue_on_fail``: the same 486
  without continue_on_fail: the bridge hangs the caller up itself;
- ``PHONE_RINGS_OUT``: ``c2_device_no_answer_originate_timeout``: ``{originate_timeout=5}``,
  the phone rings 5 s, ``NO_ANSWER``;
- ``DIGITS_ENTERED``: ``f_dtmf_play_and_get_digits``: ``answer``, ``play_and_get_digits``,
  the caller keys ``1 2 3 #``;
- ``PROTOCOL``: ``misc_protocol``: no call: subscriptions, ``bgapi`` and its BACKGROUND_JOB,
  api errors, filters;
- ``SHUTDOWN``: ``shutdown_sigterm``: FreeSWITCH stopped by SIGTERM.

In comments a capture goes by the same words ("the answered capture", "the busy-then-voicemail
capture", "the rings-out capture", "the busy-ends-call capture", "the digits-entered capture").
Cited in comments but not cut into templates: ``c_device_no_answer_call_timeout_in_braces``
(``{call_timeout=5}`` in a dial string is ignored: the bridge rings the default 60 s),
``g_event_uuid_playback_bgapi`` (a sendmsg ``Event-UUID`` comes back as ``Application-UUID``;
``playback`` answers ``FILE PLAYED``; ``bgapi`` with an argument), ``api_replies_during_call``
(``status`` and ``show channels|calls as json`` while a call is up).
"""

PHONE_ANSWERS = "a_device_answers"
PHONE_BUSY_THEN_VOICEMAIL = "b_device_busy_voicemail"
PHONE_BUSY_ENDS_CALL = "b2_device_busy_without_continue_on_fail"
PHONE_RINGS_OUT = "c2_device_no_answer_originate_timeout"
DIGITS_ENTERED = "f_dtmf_play_and_get_digits"
PROTOCOL = "misc_protocol"
SHUTDOWN = "shutdown_sigterm"

# The captures with a caller leg: their uuids, numbers and names are this call's once rewritten.
WITH_CALLER = (PHONE_ANSWERS, PHONE_BUSY_THEN_VOICEMAIL, PHONE_RINGS_OUT, PHONE_BUSY_ENDS_CALL)
# The captures with a B-leg (the phone the bridge rang).
WITH_BLEG = (PHONE_ANSWERS, PHONE_BUSY_THEN_VOICEMAIL, PHONE_RINGS_OUT)
