"""The simulator's FreeSWITCH applications: listed explicitly, each module registered.

Adding an application the simulator supports is one module in
``callflowd/simulator/applications/`` (or a function in its family's) and one line in
``REGISTRY``; these tests hold that the table and the files agree.
"""

import pathlib

import pytest

from callflowd import simulator
from callflowd.simulator import applications
from callflowd.simulator.applications import REGISTRY, Application

pytestmark = pytest.mark.timeout(10)

APPLICATIONS_DIR = pathlib.Path(applications.__file__).parent


def test_every_application_module_is_registered():
    modules = {path.stem for path in APPLICATIONS_DIR.glob("*.py") if path.stem != "__init__"}
    registered = {app.run.__module__.rsplit(".", 1)[-1] for app in REGISTRY.values()}
    assert modules == registered


def test_every_entry_is_an_application_run_from_its_module():
    for name, app in REGISTRY.items():
        assert isinstance(app, Application), name
        assert callable(app.run), name
        assert app.run.__module__.startswith("callflowd.simulator.applications."), name


def test_the_media_applications_are_the_ones_that_play_or_record():
    assert {name for name, app in REGISTRY.items() if app.media} == {
        "playback", "play_and_get_digits", "voicemail"}


def test_the_simulators_list_of_applications_is_the_registry():
    assert simulator.APPS is REGISTRY
