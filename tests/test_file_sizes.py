"""Small files with one job (issue 17): no module of the package is over ``MAX_LINES`` lines,
unless its module docstring has a line starting with ``Why one file`` that says why splitting it
would only make it harder to read (CONTRIBUTING.md, Style)."""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "daemon" / "callflowd"
MAX_LINES = 500
MARKER = "Why one file"


def _explained(text):
    docstring = ast.get_docstring(ast.parse(text)) or ""
    return any(line.strip().startswith(MARKER) for line in docstring.splitlines())


def test_no_module_is_over_the_limit_without_saying_why():
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > MAX_LINES and not _explained(text):
            too_long.append("%s: %d lines" % (path.relative_to(PACKAGE.parent), lines))
    assert not too_long, ("over %d lines: split along its seams, or say in its module docstring, "
                          "on a line starting %r, why it is one file: %s"
                          % (MAX_LINES, MARKER, "; ".join(too_long)))


def test_the_marker_is_found_only_in_the_module_docstring():
    assert _explained('"""A module.\n\nWhy one file: one state machine.\n"""\nx = 1\n')
    assert not _explained('"""A module."""\n# Why one file: a comment does not count\n')
