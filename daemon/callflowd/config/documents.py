"""Where callflow documents come from, read but not yet parsed.

The settings' inline ``callflows:`` list first (each must be what JSON could say:
string keys, JSON values), then every ``*.json`` of ``callflows_dir`` by file name,
read strictly (``config.files``: no duplicate keys, bounded numbers and sizes).
``callflowd.flow.parser`` turns them into ``Callflow`` values. A document that can't be
read is one problem among the others (config/problems.py), not the end of the read.
"""

import dataclasses
import os

from callflowd.config import files
from callflowd.config.fields import join, kind
from callflowd.config.model import CALLFLOW
from callflowd.config.problems import Problems
from callflowd.errors import ConfigError

# Nesting deeper than this in an inline document is refused before it is parsed
# (the parser allows flows 100 nodes deep, each node a few levels).
MAX_NESTING = 400


@dataclasses.dataclass(frozen=True)
class Document:
    """One callflow document: its JSON value, where it came from, and its id if it has none.

    ``prefix`` is where the document sits in ``source`` (``callflows[2]``; "" for a
    file of its own), so errors name ``callflows[2].flow.data.id``.
    """

    raw: object
    source: str
    prefix: str
    fallback_id: str


def read_documents(top, base, problems=None):
    """The documents the settings' top ``Section`` names; ConfigError if there are none.

    One that can't be read (not UTF-8, not JSON, not what JSON could say) goes to
    ``problems`` (config/problems.py: its ids refused as a callflow's) and the others are
    still read; without ``problems`` it raises. A ``callflows_dir`` that can't be listed,
    or holds more than ``files.MAX_TOTAL_BYTES``, raises at once.
    """
    collected = Problems() if problems is None else problems
    documents = []
    inline = top.value("callflows", [])
    if not isinstance(inline, list):
        top.fail("callflows", "must be a list of callflow documents, not %s" % kind(inline))
    for index, raw in enumerate(inline):
        prefix = "callflows[%d]" % index
        with collected.collecting(CALLFLOW, _ids(raw, prefix)):
            check_json_shaped(raw, top.source, prefix, 0)
            documents.append(Document(raw, top.source, prefix, prefix))
    files_found = 0
    if top.given("callflows_dir"):
        found, files_found = _directory_documents(top, base, collected)
        documents.extend(found)
    if problems is None:
        collected.raise_if_any()
    if not inline and not files_found:
        top.fail_here("no callflows: give callflows, or callflows_dir holding *.json documents")
    return documents


def _ids(raw, fallback):
    """The ids a callflow document would have had, for the references to it."""
    return [fallback] + [raw.get(key) for key in ("id", "_id") if isinstance(raw, dict)
                         and isinstance(raw.get(key), str)]


def _directory_documents(top, base, problems):
    """``(documents, how many files there were)``: the readable ones, the others in ``problems``."""
    written = top.string("callflows_dir")
    folder = os.path.join(base, written)
    try:
        names = sorted(name for name in os.listdir(folder)  # account.json: the account (kazoo_documents)
                       if name.endswith(".json") and not name.startswith(".") and name != "account.json")
    except OSError as exc:
        top.fail("callflows_dir", "cannot read directory %s: %s" % (folder, exc.strerror or exc))
    total = 0
    documents = []
    for name in names:
        source = os.path.normpath(os.path.join(written, name))
        fallback = name[: -len(".json")]
        text = None
        with problems.collecting(CALLFLOW, [fallback]):
            text = files.read_text(os.path.join(folder, name), source)
        if text is None:
            continue
        total += len(text)
        if total > files.MAX_TOTAL_BYTES:
            top.fail("callflows_dir", "more than %d bytes of callflow documents in %s"
                     % (files.MAX_TOTAL_BYTES, folder))
        with problems.collecting(CALLFLOW, [fallback]):
            documents.append(Document(files.parse_json(text, source), source, "", fallback))
    return documents, len(names)


def check_json_shaped(value, source, path, depth):
    """A document given in YAML must be what the JSON would be: string keys, JSON values."""
    if depth > MAX_NESTING:
        raise ConfigError("nested too deeply", source, path)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError("key %r must be a string (quote it)" % (key,), source, path)
            check_json_shaped(item, source, join(path, key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json_shaped(item, source, "%s[%d]" % (path, index), depth + 1)
    elif not (value is None or isinstance(value, (str, int, float, bool))):
        raise ConfigError("%s is not a JSON value" % type(value).__name__, source, path)
