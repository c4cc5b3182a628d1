"""One ``callflowd check`` names every problem of every document (issue 15): the Kazoo documents
callflows point at and the callflows themselves, each with its file and path; a callflow naming
a document that was refused adds no second "unknown ..." line (config/problems.py)."""

import json

import pytest

from callflowd.errors import ConfigErrors
from callflowd.flow.load import load_config
from tests.test_cli import callflowd
from tests.test_config import FRONT_DESK, front_desk, write_config

pytestmark = pytest.mark.timeout(60)


def put(folder, name, document):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(document if isinstance(document, str) else json.dumps(document))


def problems_of(path):
    with pytest.raises(ConfigErrors) as raised:
        load_config(path)
    return [str(problem) for problem in raised.value.problems]


def test_one_check_lists_every_bad_kazoo_document_and_every_bad_callflow_with_its_path(tmp_path):
    flows = tmp_path / "callflows.d"
    put(flows / "users", "alice.json", {"id": "alice", "enabled": "maybe"})
    put(flows / "users", "bob.json", '{"id": "bob", "first_name": }')
    put(flows / "menus", "main.json", {"data": {"id": "main", "retries": 0}})
    config = write_config(tmp_path, documents={"front-desk.json": front_desk(http_verb="put")})

    result = callflowd("check", "-c", config)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "callflowd: callflows.d/users/alice.json: enabled: must be true or false",
        "callflowd: callflows.d/users/bob.json: invalid JSON at line 1 column 29: Expecting value",
        "callflowd: callflows.d/menus/main.json: data.retries: must be between 1 and 100",
        "callflowd: callflows.d/front-desk.json: flow.children._.data.http_verb: must be one of get, post",
    ]
    assert "Traceback" not in result.stderr


def test_the_same_documents_made_good_pass_check(tmp_path):
    flows = tmp_path / "callflows.d"
    put(flows / "users", "alice.json", {"id": "alice", "enabled": "false"})
    put(flows / "users", "bob.json", {"id": "bob", "first_name": "Bob"})
    put(flows / "menus", "main.json", {"data": {"id": "main", "retries": 2}})
    flow = {"numbers": ["2001"], "flow": {"module": "user", "data": {"id": "bob"},
                                          "children": {"_": {"module": "menu", "data": {"id": "main"}}}}}
    config = write_config(tmp_path, documents={"front-desk.json": FRONT_DESK, "bob.json": flow})

    result = callflowd("check", "-c", config)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("config ok: %s: 2 callflows" % config)


def test_a_callflow_naming_a_broken_document_shows_only_that_documents_problem(tmp_path):
    flows = tmp_path / "callflows.d"
    put(flows / "users", "alice.json", {"id": "alice", "enabled": "maybe"})
    put(flows / "users", "bob.json", "not json")  # its id is its file name
    put(flows / "menus", "main.json", {"id": "main", "retries": 0})
    flow = {"numbers": ["2001"], "flow": {
        "module": "user", "data": {"id": "alice"}, "children": {
            "_": {"module": "ring_group", "data": {"endpoints": [{"id": "bob", "endpoint_type": "user"}]},
                  "children": {"_": {"module": "menu", "data": {"id": "main"}}}}}}}
    jump = {"numbers": ["2002"], "flow": {"module": "callflow", "data": {"id": "alice-line"}}}
    documents = {"alice-line.json": flow, "jump.json": jump}

    assert problems_of(write_config(tmp_path, documents=documents)) == [
        "callflows.d/users/alice.json: enabled: must be true or false",
        "callflows.d/users/bob.json: invalid JSON at line 1 column 1: Expecting value",
        "callflows.d/menus/main.json: retries: must be between 1 and 100",
    ]  # no "unknown user", "unknown menu", nor "unknown callflow 'alice-line'" for the jump


def test_a_reference_to_an_id_nobody_gave_is_still_refused_beside_a_broken_document(tmp_path):
    put(tmp_path / "callflows.d" / "users", "alice.json", {"id": "alice", "enabled": "maybe"})
    documents = {"a.json": {"numbers": ["1"], "flow": {"module": "user", "data": {"id": "alice"}}},
                 "b.json": {"numbers": ["2"], "flow": {"module": "user", "data": {"id": "carol"}}}}

    assert problems_of(write_config(tmp_path, documents=documents)) == [
        "callflows.d/users/alice.json: enabled: must be true or false",
        "callflows.d/b.json: flow.data.id: unknown user 'carol'",
    ]


def test_a_duplicate_id_a_non_object_and_a_media_without_sound_are_each_listed(tmp_path):
    flows = tmp_path / "callflows.d"
    put(flows / "media", "hello.json", {"id": "hello", "name": "Hello"})  # no file, no url, no hello.wav
    put(flows / "groups", "sales.json", ["not", "an", "object"])
    config = write_config(tmp_path, users=[{"id": "u1"}, {"_id": "u1"}],
                          devices={"front_desk_device_id": {"dial_string": "user/1000@example.com"},
                                   "bad": {"dial_string": "user/1 000"}},
                          voicemail_boxes={"front_desk_voicemail_box_id": {"profile": "default"}})

    assert problems_of(config) == [
        "%s: users[1]: user id 'u1' is given twice" % config,
        "callflows.d/groups/sales.json: must be an object (a group document)",
        "callflows.d/media/hello.json: no sound for this media: give file (a path FreeSWITCH reads) or "
        "url, or put media/<id>.wav beside the callflows",
        "%s: devices.bad.dial_string: must not contain whitespace" % config,
        "%s: voicemail_boxes.front_desk_voicemail_box_id.domain: is required" % config,
    ]  # and the front desk's voicemail node, naming the refused box, adds nothing


def test_a_device_given_both_in_the_config_and_as_a_kazoo_document_is_a_problem_not_a_silent_choice(tmp_path):
    put(tmp_path / "callflows.d" / "devices", "front.json",
        {"id": "front_desk_device_id", "sip": {"username": "1001", "realm": "example.com"}})
    config = write_config(tmp_path, devices={"front_desk_device_id": {"dial_string": "user/1000@example.com"}})

    with pytest.raises(Exception) as raised:
        load_config(config)
    assert str(raised.value) == (
        "%s: devices.front_desk_device_id: id 'front_desk_device_id' is also given by a Kazoo document "
        "(devices/ beside the callflows, or devices: in the config); give each one its own id" % config)


def test_a_temporal_rule_document_that_is_refused_is_listed_and_not_named_unknown(tmp_path):
    put(tmp_path / "callflows.d" / "temporal_rules", "weekdays.json", {"id": "weekdays", "cycle": "fortnightly"})
    flow = {"numbers": ["2001"], "flow": {"module": "temporal_route", "data": {"rules": ["weekdays"]},
                                          "children": {"weekdays": {"module": "answer"}}}}

    [problem] = problems_of_one(write_config(tmp_path, documents={"hours.json": flow}))
    assert problem.startswith("callflows.d/temporal_rules/weekdays.json: cycle: ")


def problems_of_one(path):
    """The problems of a load that may have only one (a ConfigError, not ConfigErrors)."""
    try:
        load_config(path)
    except ConfigErrors as exc:
        return [str(problem) for problem in exc.problems]
    except Exception as exc:  # noqa: BLE001 - the one ConfigError, shown as the operator reads it
        return [str(exc)]
    raise AssertionError("the config was accepted")


def test_the_core_settings_still_stop_at_their_first_problem(tmp_path):
    put(tmp_path / "callflows.d" / "users", "alice.json", {"id": "alice", "enabled": "maybe"})
    config = write_config(tmp_path, webhooks={"retries": "many"})

    assert problems_of_one(config) == [
        "%s: webhooks.retries: must be an integer (or a string holding one), not 'many'" % config]


def test_each_problem_line_is_escaped_a_file_name_with_a_newline_included(tmp_path):
    put(tmp_path / "callflows.d" / "users", "evil\nname.json", "{")
    documents = {"front-desk.json": FRONT_DESK, "b.json": front_desk(http_verb="put")}

    result = callflowd("check", "-c", write_config(tmp_path, documents=documents))

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "callflowd: callflows.d/users/evil\\nname.json: invalid JSON at line 1 column 2: "
        "Expecting property name enclosed in double quotes",
        "callflowd: callflows.d/b.json: flow.children._.data.http_verb: must be one of get, post",
    ]
