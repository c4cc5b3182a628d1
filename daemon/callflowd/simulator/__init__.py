"""A built-in FreeSWITCH for ``callflowd demo`` and the integration tests.

It speaks the real inbound event-socket protocol on 127.0.0.1 (a free port) over TCP, and the
frames it sends are cut from real FreeSWITCH 1.10.12 captures (tests/fixtures/, copied under
``templates/`` by ``extract.py``) with this call's values put in: same header names and order,
same percent-encoding, same event order per leg as the captures for the same commands.

    sim = FreeswitchSimulator(time_scale=0.01).start()
    call = sim.place_call(scenario=Scenario(device="busy"))
    ...                                   # the daemon drives the call with sendmsg
    call.wait_ended(timeout=5)
    sim.stop()

How it is built: ``server`` (sockets, subscriptions, api), ``call`` (one call's state machine
and applications), ``channel`` (the caller leg and the layout of its events), ``templates``
(captured frames and the rewriting of uuids, numbers, names and timestamps); the byte-exact
encoding is ``callflowd.esl.protocol``'s, the same code the daemon decodes with.

Not simulated (never sent): PRIVATE_COMMAND, RECORD_START/STOP, CUSTOM filestring::* and
vm::maintenance, MESSAGE_WAITING, RE_SCHEDULE, MODULE_UNLOAD, DTMF, the voicemail's codec
switches while recording and all but its first greeting PLAYBACK pair; ``show`` knows only
``calls``/``channels as json``; the B-leg cannot be addressed (sendmsg, uuid_kill); ``event
xml`` is answered but sent as plain; one endpoint per dial string.
"""

from callflowd.simulator.call import Scenario, SimulatedCall
from callflowd.simulator.server import FreeswitchSimulator

__all__ = ["FreeswitchSimulator", "Scenario", "SimulatedCall"]
