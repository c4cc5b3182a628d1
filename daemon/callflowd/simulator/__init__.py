"""A built-in FreeSWITCH for ``callflowd demo`` and the integration tests.

It speaks the real inbound event-socket protocol on 127.0.0.1 (a free port) over TCP, and the
frames it sends are cut from real FreeSWITCH 1.10.12 captures (tests/fixtures/, copied under
``templates/`` by ``extract.py``; ``captures`` names each by what it shows) with this call's
values put in: same header names and order, same percent-encoding, same event order per leg as
the captures for the same commands.

    sim = FreeswitchSimulator(time_scale=0.01).start()
    call = sim.place_call(scenario=Scenario(device="busy"))
    ...                                   # the daemon drives the call with sendmsg
    call.wait_ended(timeout=5)
    sim.stop()

How it is built, one job per module:

- ``server``: the switch: listening socket, clients, live calls, system events;
- ``connection``: one event-socket client: auth, subscriptions, filters, its commands;
- ``api``: the ``api``/``bgapi`` commands and their replies;
- ``call``: one call's life: arrival, the queue of applications, hangup, teardown;
- ``applications/``: the FreeSWITCH applications, one module per application or family,
  listed in ``applications.REGISTRY`` (``APPS`` here);
- ``dialstring``: a bridge's dial string and which endpoint decides it; ``bleg``: the phone's
  leg replayed from the captures and each bridge outcome on the caller;
- ``cdr``: the variables set at hangup (timestamps, durations, cause); ``causes``: hangup
  cause names, numbers and SIP mappings;
- ``scenario``: what the simulated caller and phones do;
- ``channel``: the caller leg and the layout of its events; ``templates``: captured frames
  and the rewriting of uuids, numbers, names and timestamps; ``captures``: which capture
  shows what; ``extract``: the developer tool that cuts the templates.

The simulator imports nothing of the daemon but the event socket's wire format
(``callflowd.esl.protocol``: the byte-exact encoding the daemon decodes with).

Held to the real switch: ``tests/realswitch/test_simulator_conformance.py`` runs busy, no
answer, answered and caller-cancel calls on a running FreeSWITCH 1.10.12 (sipp phones and
callers) and here, and compares per call the events the daemon receives and the headers it
reads (``Application``, ``Application-UUID``, ``Hangup-Cause``, ``Answer-State``,
``variable_originate_disposition``, ``variable_last_bridge_proto_specific_hangup_cause``...).
It models the switch's surprises that test found: the dialplan's ``set``/``export``
EXECUTE_COMPLETEs before CHANNEL_PARK, ``originate_disposition`` reading ``failure`` while a
bridge rings, the ``park`` EXECUTE_COMPLETE (not ours) only at hangup, and CHANNEL_HANGUP before
the bridge's EXECUTE_COMPLETE when the caller cancels.

Also modelled, for the callflow language: ``play_and_get_digits`` (the prompt's PLAYBACK pair,
the keys of ``Scenario.digits`` as DTMF events laid out like the digits-entered capture, ``var_name`` and
``read_result`` on its EXECUTE_COMPLETE, ``<var_name>_invalid`` for input failing the regexp,
the invalid file after a failed try); ``respond <code> [reason]`` (a 3xx-6xx on an unanswered call
hangs it up with sofia's cause for the code; ``SimulatedCall.responded`` keeps what was sent);
bridges to several endpoints (``,`` together, ``|`` in turn, ``[leg_delay_start,leg_timeout]``),
each phone doing what ``Scenario.phones`` says for its user; one B-leg is simulated, the one that
answered or the last that failed.

Not simulated (never sent): PRIVATE_COMMAND, RECORD_START/STOP, CUSTOM filestring::* and
vm::maintenance, MESSAGE_WAITING, RE_SCHEDULE, MODULE_UNLOAD, DTMF outside play_and_get_digits
(keys during ``playback`` do not cut it short), the voicemail's codec switches while recording and
all but its first greeting PLAYBACK pair; ``show`` knows only ``calls``/``channels as json``; the
B-leg cannot be addressed (sendmsg, uuid_kill); ``event xml`` is answered but sent as plain; the
losing legs of a multi-endpoint bridge; SIP itself (no 180/183 or 200 to a caller, no REGISTER:
``unregistered`` is a scenario, not a missing registration); the ``sps`` session rate limit; the
~1 s lag of ``show channels`` behind the events.
"""

from callflowd.simulator.applications import REGISTRY as APPS
from callflowd.simulator.call import SimulatedCall
from callflowd.simulator.scenario import Scenario
from callflowd.simulator.server import FreeswitchSimulator

__all__ = ["APPS", "FreeswitchSimulator", "Scenario", "SimulatedCall"]
