"""The FreeSWITCH applications the simulator runs, one module per application or family,
listed explicitly.

An application module holds the module docstring (the application's arguments as
mod_dptools/mod_sofia/mod_voicemail take them, what the simulation does and leaves out, and
the capture that shows it) and one function per application, ``run(call, data)``: ``call`` is
the ``SimulatedCall`` (see its module docstring for what an application may use), ``data`` the
application's argument (None if empty). It returns the ``Application-Response`` of the
EXECUTE_COMPLETE (None: ``_none_``). The call fires CHANNEL_EXECUTE before it and
CHANNEL_EXECUTE_COMPLETE after it; a hangup interrupts it (``call.wait`` returns True).

``REGISTRY`` maps the application's name (what ``sendmsg`` names in ``execute-app-name``) to
an ``Application``; ``media=True``: the application needs media, so on an unanswered channel
the call pre-answers (183) before its CHANNEL_EXECUTE, as FreeSWITCH does. An application not
in ``REGISTRY`` is "Invalid Application": the channel is hung up DESTINATION_OUT_OF_ORDER.

A new application: one module here (or a function in its family's), one line in ``REGISTRY``;
``tests/test_simulator_applications.py`` checks every module is registered.
"""

import dataclasses

from callflowd.simulator.applications import (
    answer,
    bridge,
    hangup,
    park,
    play_and_get_digits,
    playback,
    record_session,
    respond,
    sleep,
    switch_log,
    variables,
    voicemail,
)


@dataclasses.dataclass(frozen=True)
class Application:
    run: object  # run(call, data) -> Application-Response or None
    media: bool = False


REGISTRY = {
    "answer": Application(answer.answer),
    "bridge": Application(bridge.run),
    "export": Application(variables.export),
    "hangup": Application(hangup.run),
    "info": Application(switch_log.info),
    "log": Application(switch_log.log),
    "multiset": Application(variables.multiset),
    "park": Application(park.run),
    "play_and_get_digits": Application(play_and_get_digits.run, media=True),
    "playback": Application(playback.run, media=True),
    "pre_answer": Application(answer.pre_answer),
    "record_session": Application(record_session.start),
    "respond": Application(respond.run),
    "set": Application(variables.set),
    "sleep": Application(sleep.run),
    "stop_record_session": Application(record_session.stop),
    "unset": Application(variables.unset),
    "voicemail": Application(voicemail.run, media=True),
}
