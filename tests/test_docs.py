"""The docs hold: every relative link resolves, every ``callflowd`` command shown is valid.

Checked in README.md, CHANGELOG.md, CONTRIBUTING.md and docs/*.md:

- a relative link ``[text](path#anchor)`` names a file or directory of the repository, and its
  anchor (in the same page or another ``.md``) is a heading there, by GitHub's slug rules;
- a ``callflowd ...`` command in a code block (fenced or indented; ``$ `` prompts, ``&&`` chains
  and paths such as ``.venv/bin/callflowd`` included) parses with the CLI's own argparse parser,
  in-process; ``check`` and ``simulate`` with a config that exists in the repository
  (``config/callflowd.yaml``) are run for real, against the built-in simulator, and must exit 0;
- a ``python -m tests.benchmarks[.module]`` command shown names only options its ``--help`` lists;
- the README stays a front door: at most 250 lines, linking every page of the manual, its
  Commands table naming every command and every option the CLI's parser has;
- every registered action has its section in docs/actions.md, every top-level setting its
  section in docs/configuration.md; docs/architecture.md names every module and has its three
  checklists.
"""

import contextlib
import io
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

from callflowd import cli

pytestmark = pytest.mark.timeout(30)

REPO = pathlib.Path(__file__).resolve().parent.parent
MANUAL = ("actions", "configuration", "webhooks", "operations", "testing", "architecture", "benchmarks")
README_MAX_LINES = 250

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def doc_files():
    files = [REPO / "README.md", REPO / "CHANGELOG.md", REPO / "CONTRIBUTING.md"]
    return files + sorted((REPO / "docs").glob("*.md"))


def _split(text):
    """(prose lines, code blocks as lists of lines): fenced blocks, and indented ones after a blank line."""
    prose, blocks, fenced, indented = [], [], None, None
    previous_blank = True
    for line in text.splitlines():
        if fenced is not None:
            if _FENCE.match(line):
                blocks.append(fenced)
                fenced = None
            else:
                fenced.append(line)
            continue
        if _FENCE.match(line):
            fenced = []
            indented = None
            continue
        if line.startswith("    ") and (indented is not None or previous_blank) and line.strip():
            if indented is None:
                indented = []
                blocks.append(indented)
            indented.append(line[4:])
            previous_blank = False
            continue
        if line.strip():
            indented = None
        prose.append(line)
        previous_blank = not line.strip()
    return prose, blocks


def slug(heading):
    """GitHub's anchor for a heading: the rendered text, lower case, punctuation dropped, spaces -> '-'."""
    text = _CODE_SPAN.sub(lambda m: m.group(2).strip(), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text only
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = re.sub(r"(\*\*|__|\*)", "", text)
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    """Every anchor of a markdown file's headings, with GitHub's -1, -2 suffixes for repeats."""
    prose, _ = _split(path.read_text(encoding="utf-8"))
    seen, result = {}, set()
    for line in prose:
        match = _HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else "%s-%d" % (base, count))
    return result


def links(path):
    prose, _ = _split(path.read_text(encoding="utf-8"))
    for line in prose:
        line = _CODE_SPAN.sub("", line)
        for match in _LINK.finditer(line):
            yield line, match.group(1)


def broken_links(path, root=REPO):
    """What is wrong with each relative link of ``path`` (a page inside ``root``)."""
    problems = []
    for _, target in links(path):
        if _EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        where = "%s: (%s)" % (path.relative_to(root), target)
        if not dest.exists():
            problems.append("%s: no such file %s" % (where, file_part))
        elif root not in dest.parents and dest != root:
            problems.append("%s: outside the repository" % where)
        elif anchor:
            if dest.suffix != ".md":
                problems.append("%s: an anchor into a file that is not markdown" % where)
            elif anchor not in anchors(dest):
                problems.append("%s: no heading with anchor #%s in %s" % (where, anchor, dest.name))
    return problems


def shown_commands(path):
    """Each ``callflowd`` command in the file's code blocks, as its argument list (program name dropped)."""
    _, blocks = _split(path.read_text(encoding="utf-8"))
    for block in blocks:
        for line in block:
            line = line.strip()
            if line.startswith("$ "):
                line = line[2:]
            for segment in re.split(r"&&|;|\|\|", line):
                try:
                    words = shlex.split(segment, comments=True)
                except ValueError:
                    continue
                if words[:2] in (["python", "-m"], ["python3", "-m"]) or (
                        len(words) > 2 and words[0].endswith("/python") and words[1] == "-m"):
                    words = words[2:]
                if words and words[0].rsplit("/", 1)[-1] == "callflowd":
                    yield segment.strip(), words[1:]


def shown_benchmark_commands(path):
    """Each ``python -m tests.benchmarks[.module] ...`` in the file's code blocks: (module, options)."""
    _, blocks = _split(path.read_text(encoding="utf-8"))
    for block in blocks:
        for line in block:
            for segment in re.split(r"&&|;|\|\|", line.strip()):
                try:
                    words = shlex.split(segment, comments=True)
                except ValueError:
                    continue
                if len(words) > 2 and words[0].rsplit("/", 1)[-1].startswith("python") and words[1] == "-m" \
                        and words[2].split(".")[:2] == ["tests", "benchmarks"]:
                    yield words[2], [word.split("=")[0] for word in words[3:] if word.startswith("-")]


def _parse(argv):
    """Parse with the CLI's own parser; (ok, what argparse said)."""
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(io.StringIO()):
            cli._parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code == 0, said.getvalue().strip()
    return True, ""


def _config_in_repo(argv):
    for flag in ("-c", "--config"):
        if flag in argv[:-1]:
            candidate = REPO / argv[argv.index(flag) + 1]
            return candidate if candidate.is_file() else None
    return None


def test_readme_is_a_front_door():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, "README.md has %d lines; the manual goes in docs/" % len(lines)
    targets = {target.partition("#")[0] for _, target in links(REPO / "README.md")}
    for page in MANUAL:
        assert (REPO / "docs" / (page + ".md")).is_file(), "docs/%s.md is missing" % page
        assert "docs/%s.md" % page in targets, "README.md does not link docs/%s.md" % page
    assert {"CHANGELOG.md", "CONTRIBUTING.md"} <= targets


def test_the_readme_opens_with_the_demo_and_test_commands_ci_runs():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    demo = "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/callflowd demo"
    tests = "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest"
    assert text.index(demo) < text.index(tests) < text.index("\n## ")
    assert tests in (REPO / ".ci" / "run").read_text(encoding="utf-8")


def test_every_action_has_its_section_in_actions_md():
    from callflowd.actions import REGISTRY

    found = anchors(REPO / "docs" / "actions.md")
    assert [module for module in sorted(REGISTRY) if slug(module) not in found] == []


def test_every_top_level_setting_has_its_section_in_configuration_md():
    from callflowd.config.settings import TOP_KEYS

    prose, _ = _split((REPO / "docs" / "configuration.md").read_text(encoding="utf-8"))
    headings = [match.group(2) for match in map(_HEADING.match, prose) if match]
    assert [key for key in TOP_KEYS if not any("`%s`" % key in heading for heading in headings)] == []


def test_architecture_names_every_module():
    """docs/architecture.md says where things live: every module is named there (an action and a
    simulated application are covered by their registries, one module each)."""
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    package = REPO / "daemon" / "callflowd"
    unnamed = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if path.name == "__init__.py" or relative.parts[0] == "actions" or relative.parts[:2] == (
                "simulator", "applications"):
            continue
        if "`%s`" % path.stem not in text and str(relative) not in text:
            unnamed.append(str(relative))
    assert unnamed == [], "name these modules in docs/architecture.md's layer table"


def test_contributing_names_every_benchmark():
    text = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
    benchmarks = sorted(path.stem for path in (REPO / "tests" / "benchmarks").glob("bench_*.py"))
    assert [name for name in benchmarks if "`%s`" % name not in text] == []


def test_architecture_has_the_three_checklists():
    found = anchors(REPO / "docs" / "architecture.md")
    for wanted in ("checklist-a-new-action", "checklist-a-new-webhook-format", "checklist-a-new-switch-fault"):
        assert wanted in found


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(path):
    if not path.exists():
        pytest.fail("%s is missing" % path.relative_to(REPO))
    assert broken_links(path) == []


def test_every_callflowd_command_shown_parses():
    shown = [(path, text, argv) for path in doc_files() if path.exists() for text, argv in shown_commands(path)]
    assert len(shown) >= 5, "the docs show callflowd commands; the scanner found %d" % len(shown)
    refused = []
    for path, text, argv in shown:
        ok, said = _parse(argv)
        if not ok:
            refused.append("%s: %s: %s" % (path.relative_to(REPO), text, said.splitlines()[-1:]))
    assert refused == []


def test_every_benchmark_option_shown_exists():
    """The benchmark commands shown (CONTRIBUTING.md, docs/) name options their --help lists."""
    shown = {}
    for path in doc_files():
        if path.exists():
            for module, options in shown_benchmark_commands(path):
                shown.setdefault(module, set()).update(options)
    assert "tests.benchmarks" in shown, "the docs show the benchmark command"
    unknown = []
    for module, options in sorted(shown.items()):
        done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=25)
        assert done.returncode == 0, "%s --help: %s" % (module, done.stdout[-300:])
        listed = set(re.findall(r"--[a-z][a-z0-9-]*", done.stdout))
        unknown += ["%s %s" % (module, option) for option in sorted(options) if option not in listed]
    assert unknown == []


def test_the_readme_commands_table_lists_every_option_of_every_command():
    import argparse

    table = {}
    for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines():
        match = re.match(r"\| `callflowd (\w+)([^`]*)`", line)
        if match:
            table[match.group(1)] = set(re.findall(r"--[a-z][a-z0-9-]*", match.group(2)))
    commands = next(action for action in cli._parser()._actions if isinstance(action, argparse._SubParsersAction))
    parsers = {name: sub for name, sub in commands.choices.items()}
    assert sorted(table) == sorted(parsers), "the README's Commands table names every command"
    for name, sub in parsers.items():
        options = {option for action in sub._actions for option in action.option_strings
                   if option.startswith("--") and option != "--help"}
        options -= {"--config", "--verbose"}  # shown as -c FILE and -v
        assert table[name] == options, "README Commands table, callflowd %s" % name


def test_check_and_simulate_shown_with_the_shipped_config_run():
    runs = {}
    for path in doc_files():
        if not path.exists():
            continue
        for text, argv in shown_commands(path):
            if argv and argv[0] in ("check", "simulate") and _config_in_repo(argv) and "--webhook-to" not in argv:
                runs.setdefault(tuple(argv), "%s: %s" % (path.relative_to(REPO), text))
    assert any(argv[0] == "simulate" for argv in runs), "no simulate command with the shipped config is shown"
    children = {argv: subprocess.Popen([sys.executable, "-m", "callflowd"] + list(argv), cwd=REPO,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for argv in runs}
    failed = []
    for argv, child in children.items():
        out, err = child.communicate(timeout=25)
        if child.returncode != 0:
            failed.append("%s: exit %d: %s" % (runs[argv], child.returncode, (err or out).strip()[-300:]))
    assert failed == []


def test_the_checker_can_fail(tmp_path):
    """The scanner finds what it must: a broken anchor, a missing file, a bad option, an indented command."""
    page = tmp_path.resolve() / "page.md"
    page.write_text("# Title\n\n## A `code` heading: yes\n\nsee [x](#a-code-heading-yes), [y](#nope),"
                    " [z](missing.md), [w](https://example.com/#x), `[not](a-link.md)`\n\n"
                    "    $ callflowd check -c config/callflowd.yaml\n    callflowd demo --scenario nobody\n\n"
                    "```sh\n.venv/bin/callflowd simulate --number 1 && echo done\n```\n", encoding="utf-8")
    problems = [p.split(": ", 2)[-1] for p in broken_links(page, root=tmp_path.resolve())]
    assert problems == ["no heading with anchor #nope in page.md", "no such file missing.md"]
    commands = [argv for _, argv in shown_commands(page)]
    assert commands == [["check", "-c", "config/callflowd.yaml"], ["demo", "--scenario", "nobody"],
                        ["simulate", "--number", "1"]]
    assert [_parse(argv)[0] for argv in commands] == [True, False, True]
    assert slug("`freeswitch` or `switches` (one is required)") == "freeswitch-or-switches-one-is-required"
    assert slug("Where we differ from Kazoo 4.3 (temporal_route, pivot)") == \
        "where-we-differ-from-kazoo-43-temporal_route-pivot"

