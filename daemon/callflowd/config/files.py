"""Read a config file or a callflow document: bounded, and strict where YAML and JSON are lax.

Only regular files are read: a FIFO or a device (as the config, ``password_file``
or ``callflows.d/*.json``) is refused from ``stat()`` without being opened, and
opened non-blocking in case one is swapped in between. Sizes are capped: the YAML
at ``MAX_YAML_BYTES`` (PyYAML parses in pure Python: 1 MiB took 12 s and 380 MB),
each JSON document at ``MAX_FILE_BYTES`` and all of them at ``MAX_TOTAL_BYTES``.

The parsers refuse what would surprise an operator or cost without bound:

- YAML 1.1 reads ``0123`` as octal 83 and ``1:30`` as 90: such numbers are
  refused (quote them); dates stay strings.
- Duplicate keys (YAML or JSON) are refused; both parsers would keep the last.
- YAML aliases (``*name``) are refused: nine aliases of the previous node per
  level made 9^levels nodes, and a "billion laughs" ``custom_data`` a billion
  values, from a 2 KB file. Without aliases a config is as big as its text.
- Numbers have at most ``fields.MAX_DIGITS`` digits (Python refuses to parse
  4,300 with a traceback). JSON's ``NaN`` and ``Infinity`` are refused.

Every failure is a ``ConfigError`` naming the file.
"""

import json
import os
import re
import stat

import yaml

from callflowd.config.fields import MAX_DIGITS, has_whitespace, one_line
from callflowd.errors import ConfigError

MAX_YAML_BYTES = 64 << 10  # the config file: a few KB is usual; big flows go in JSON documents
MAX_FILE_BYTES = 1 << 20  # a callflow document, a password file
MAX_TOTAL_BYTES = 16 << 20  # all the callflow documents together


def read_text(filename, source, limit=MAX_FILE_BYTES):
    """The UTF-8 text of ``filename``; ConfigError naming ``source`` if it can't be read."""
    try:
        data = read_regular_file(filename, limit)
    except Unreadable as exc:
        raise ConfigError("cannot read: %s" % exc, source) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError("not UTF-8 text (byte %d)" % exc.start, source) from None


class Unreadable(Exception):
    """Why a file was not read (``No such file or directory``, ``not a regular file (a FIFO)``)."""


_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _check_regular(mode):
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a file")
        raise Unreadable("not a regular file (%s)" % kind)


def read_regular_file(filename, limit=MAX_FILE_BYTES):
    """The bytes of ``filename``, a regular file of at most ``limit`` bytes.

    A FIFO would block ``open()`` until a writer came, and ``/dev/zero`` would
    never end: ``stat()`` first so such files are never opened; then open
    non-blocking and check again, in case one was put there in between.
    """
    try:
        _check_regular(os.stat(filename).st_mode)
        fd = os.open(filename, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise Unreadable(exc.strerror or exc) from None
    with os.fdopen(fd, "rb") as stream:
        try:
            _check_regular(os.fstat(fd).st_mode)
            data = stream.read(limit + 1)
        except OSError as exc:
            raise Unreadable(exc.strerror or exc) from None
    if len(data) > limit:
        raise Unreadable("larger than %d bytes" % limit)
    return data


class _YamlLoader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1's surprises: see the module docstring."""


# Dates stay strings: a copy of the resolvers without the timestamp one.
_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_PLAIN_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")


def _compose_node(loader, parent, index):
    """Refuse aliases before they are resolved: see the module docstring."""
    if loader.check_event(yaml.AliasEvent):
        event = loader.peek_event()
        raise yaml.composer.ComposerError(
            None, None, "YAML aliases (*%s) are not allowed; write the value out" % one_line(event.anchor)[:40],
            event.start_mark)
    return yaml.composer.Composer.compose_node(loader, parent, index)


def _construct_int(loader, node):
    text = loader.construct_scalar(node)
    if len(text) > MAX_DIGITS + 1:  # before int(): 4,300 digits raise, hex and octal have no limit
        raise yaml.constructor.ConstructorError(
            None, None, "a number with more than %d digits" % MAX_DIGITS, node.start_mark)
    if not _PLAIN_INT.fullmatch(text):
        raise yaml.constructor.ConstructorError(
            None, None, "%s is not a plain decimal number (YAML would read it as %s); "
            "quote it if it is text" % (text, yaml.SafeLoader.construct_yaml_int(loader, node)),
            node.start_mark)
    return int(text)


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:
            continue  # an unhashable key: SafeLoader reports it
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, "duplicate key %r" % (key,), key_node.start_mark)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_YamlLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_YamlLoader.construct_mapping = _construct_mapping
_YamlLoader.compose_node = _compose_node


def parse_yaml(text, source):
    try:
        return yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "not valid YAML"
        if mark is None:
            raise ConfigError("invalid YAML: %s" % problem, source) from None
        raise ConfigError("invalid YAML at line %d column %d: %s" % (
            mark.line + 1, mark.column + 1, problem), source) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow; no mark, a position
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - text.rfind("\n", 0, exc.position)
        raise ConfigError("invalid YAML at line %d column %d: unacceptable character #x%04x: %s" % (
            line, column, exc.character, exc.reason), source) from None
    except yaml.YAMLError as exc:
        raise ConfigError("invalid YAML: %s" % one_line(str(exc)), source) from None
    except RecursionError:
        raise ConfigError("invalid YAML: nested too deeply", source) from None


class _DuplicateKey(Exception):
    pass


def _json_object(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _json_constant(name):
    raise ValueError("%s is not valid JSON" % name)


def _json_int(text):
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ValueError("a number with more than %d digits" % MAX_DIGITS)
    return int(text)


def parse_json(text, source):
    try:
        return json.loads(text, object_pairs_hook=_json_object, parse_constant=_json_constant,
                          parse_int=_json_int)
    except json.JSONDecodeError as exc:
        raise ConfigError("invalid JSON at line %d column %d: %s" % (
            exc.lineno, exc.colno, exc.msg), source) from None
    except _DuplicateKey as exc:
        raise ConfigError("invalid JSON: duplicate key %r" % exc.args[0], source) from None
    except ValueError as exc:
        raise ConfigError("invalid JSON: %s" % exc, source) from None
    except RecursionError:
        raise ConfigError("invalid JSON: nested too deeply", source) from None


def one_value_from_file(section, key, base, what):
    """The one value held by the file a ``*_file`` setting names (a secret kept out of the
    config), stripped; fails on ``key`` when the file can't be read or holds anything else."""
    filename = os.path.join(base, section.string(key))
    try:  # a regular file only, bounded: a FIFO here must not hang the loader
        text = read_regular_file(filename, MAX_FILE_BYTES).decode("utf-8").strip()
    except (Unreadable, UnicodeDecodeError) as exc:
        section.fail(key, "cannot read %s: %s" % (filename, exc))
    if not text or has_whitespace(text):
        section.fail(key, "%s must hold %s, without spaces" % (filename, what))
    return text
