"""A built-in FreeSWITCH for ``callflowd demo`` and the integration tests.

It speaks the real inbound event-socket protocol on 127.0.0.1 over TCP, and the frames it sends
are cut from real FreeSWITCH 1.10.12 captures (/work/shared/fixtures/freeswitch) with this
call's values put in: same header names, order, percent-encoding and event order.

    sim = FreeswitchSimulator(time_scale=0.01).start()
    call = sim.place_call(scenario=Scenario(device="busy"))
    ...
    call.wait_ended(timeout=5)
    sim.stop()
"""

from callflowd.simulator.call import Scenario, SimulatedCall
from callflowd.simulator.server import FreeswitchSimulator

__all__ = ["FreeswitchSimulator", "Scenario", "SimulatedCall"]
