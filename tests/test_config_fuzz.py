"""Config fuzz: a few hundred mutated configs through ``callflowd check``; none may hang or crash it.

Each case starts from the shipped example (``config/callflowd.yaml`` and
``front-desk.json``) and breaks it, with a fixed seed so a failure replays:
text cut, doubled or spliced with YAML/JSON syntax (anchors and aliases,
brackets, tags, huge numbers, control characters), values swapped for odd
ones, or a file replaced by a FIFO or a device. ``check`` runs in this process
through ``callflowd.cli.main``, the console script's own entry point, so an
uncaught exception fails the case with its traceback; its output is captured
at the file descriptors (``capfd``), so a C library writing to stderr (RE2
logs its own errors unless told not to) counts as a second line.

Every case must exit 0 (and say ``config ok``, then a ``warning:`` line per thing accepted but not
run) or 2 (a ``callflowd: ...`` line per problem),
in under 2 seconds.
"""

import json
import os
import random
import time

import pytest
import yaml

from callflowd.cli import main
from tests.test_config import EXAMPLE_CONFIG, REPO

pytestmark = pytest.mark.timeout(300)

SEED = 8  # issue 8
CASES = 300
FAST = 2.0

BASE_YAML = EXAMPLE_CONFIG.read_text()
BASE_JSON = (REPO / "config" / "callflows.d" / "front-desk.json").read_text()

# Pieces spliced into the text: syntax that changes structure, and values that stress the checks.
TOKENS = [
    "&a ", "*a", "<<: *a", "[", "]", "{", "}", ": ", "- ", ",", "'", '"', "\n", "\n  ", "\t", "#",
    "!!python/object/apply:os.system ['true']", "!!binary aGk=", "!!set {a}", "? ", "|", ">", "---\n", "...\n",
    "0x" + "f" * 40, "9" * 5000, "-" + "9" * 31, "1.0e+400", ".nan", "0o17", "1:30", "2026-12-24", "~", "null",
    "\x00", "\x1b[2J", "\u2028", "\ufeff", "\udcff", "%", "\\", "é",
    '"patterns": ["^(\\\\d+)+$"], ', '"patterns": ["(?=x)"], ', '"children": {"_": ', '"custom_data": {"a": [[[',
]
VALUES = [
    None, True, 0, -1, 1, 65536, 10 ** 6, 2 ** 63, 1.5, 1e308, "", " ", "x" * 5000, "a\nb", "/dev/zero", "/",
    "callflows.d", "../../../../etc/passwd", [], {}, [[[[[[[[[[]]]]]]]]]], {"module": "device"},
    {"a": {"b": {"c": {"d": {}}}}}, ["^(\\d+)+$"], "(?<=1)2", "user/1000 @x", "get", "post", "voicemail",
]

PATTERNS = [r"^(\d+)+$", r"^(?=1)\d+$", r"^(\d)\1$", r"^(\d{100}){100}$", r"^[", r"^\+1\d{10}$", r"^2\d{3}$",
            "x" * 600, r"^(?P<n>\d+)$", r"(?<=1)2", r"\p{Greek}", r"^\C$", "\x00"]


def _splice(rng, text):
    """A text mutation: cut, double or insert at a random place."""
    if not text:
        return rng.choice(TOKENS)
    at = rng.randrange(len(text))
    span = rng.randint(1, 40)
    kind = rng.randrange(4)
    if kind == 0:
        return text[:at] + text[at + span:]
    if kind == 1:
        return text[:at] + text[at:at + span] * rng.randint(2, 50) + text[at:]
    if kind == 2:
        return text[:at] + rng.choice(TOKENS) + text[at:]
    return text[:at] + chr(rng.randrange(0x20, 0x7f)) + text[at + 1:]


def _paths(value, path=()):
    """Every place in a parsed document, as a tuple of keys and indexes."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, path + (index,))


def _replace(rng, document):
    """A structural mutation: one value, anywhere, swapped for an odd one (or deleted)."""
    paths = [path for path in _paths(document) if path]
    path = rng.choice(paths)
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and rng.random() < 0.2:
        del parent[path[-1]]
    else:
        parent[path[-1]] = rng.choice(VALUES)
    return document


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data):
        return True


def mutated_case(rng):
    """(config YAML text, front-desk.json text or a special file kind, password file kind)."""
    yaml_text, json_text, password = BASE_YAML, BASE_JSON, None
    kind = rng.randrange(10)
    if kind < 3:
        for _ in range(rng.randint(1, 4)):
            yaml_text = _splice(rng, yaml_text)
    elif kind < 5:
        for _ in range(rng.randint(1, 4)):
            json_text = _splice(rng, json_text)
    elif kind < 7:
        document = _replace(rng, yaml.safe_load(BASE_YAML))
        yaml_text = yaml.dump(document, Dumper=_NoAliasDumper, allow_unicode=True)
    elif kind < 8:
        json_text = json.dumps(_replace(rng, json.loads(BASE_JSON)))
    elif kind < 9:
        document = json.loads(BASE_JSON)
        document["patterns"] = rng.sample(PATTERNS, rng.randint(1, 3))
        json_text = json.dumps(document)
    else:
        special = rng.choice(["fifo", "/dev/zero", "/dev/null", "directory"])
        if rng.random() < 0.5:
            json_text = special
        else:
            password = special
    return yaml_text, json_text, password


def _place(path, content):
    """Write ``content`` at ``path``, or make it the special file it names."""
    if content == "fifo":
        os.mkfifo(path)
    elif content == "directory":
        path.mkdir()
    elif content.startswith("/dev/"):
        path.symlink_to(content)
    else:
        path.write_bytes(content.encode("utf-8", "surrogatepass"))


def write_case(folder, case):
    yaml_text, json_text, password = case
    (folder / "callflows.d").mkdir(parents=True)
    _place(folder / "callflows.d" / "front-desk.json", json_text)
    if password is not None:
        _place(folder / "esl-password", password)
        yaml_text = yaml_text.replace("  password: ClueCon", "  password_file: esl-password")
    _place(folder / "callflowd.yaml", yaml_text)
    return folder / "callflowd.yaml"


def check(path, capfd):
    capfd.readouterr()
    started = time.monotonic()
    status = main(["check", "-c", str(path)])
    seconds = time.monotonic() - started
    out, err = capfd.readouterr()
    return status, out, err, seconds


def test_hundreds_of_mutated_configs_each_exit_0_or_2_with_one_line_in_under_2_seconds(tmp_path, capfd):
    rng = random.Random(SEED)
    statuses = {0: 0, 2: 0}
    slowest = 0.0
    for number in range(CASES):
        path = write_case(tmp_path / ("case%03d" % number), mutated_case(rng))

        status, out, err, seconds = check(path, capfd)

        where = "case %d (seed %d): %r %r" % (number, SEED, out, err)
        assert status in (0, 2), where
        if status == 0:  # then one line per warning (a key or a module accepted but not run)
            lines = out.split("\n")
            assert err == "" and out.endswith("\n") and lines[0].startswith("config ok: "), where
            assert all(line.startswith("warning: ") for line in lines[1:-1]), where
            assert len(out.splitlines()) == out.count("\n"), where  # no other line break either
        else:  # one line per problem, each naming its document
            assert out == "" and err.endswith("\n"), where
            assert all(line.startswith("callflowd: ") for line in err.split("\n")[:-1]), where
            assert len(err.splitlines()) == err.count("\n"), where  # no other line break (\u2028, \x1c...) either
        assert "Traceback" not in err, where
        assert seconds < FAST, where
        statuses[status] += 1
        slowest = max(slowest, seconds)
    # The corpus must exercise both sides, or it proves little.
    assert statuses[0] >= 10 and statuses[2] >= CASES // 2, statuses
    with capfd.disabled():
        print("fuzz: %d cases, %d accepted, %d refused, slowest %.3fs" % (
            CASES, statuses[0], statuses[2], slowest))
