"""Where callflow documents come from, read but not yet parsed.

The settings' inline ``callflows:`` list first (each must be what JSON could say:
string keys, JSON values), then every ``*.json`` of ``callflows_dir`` by file name,
read strictly (``config.files``: no duplicate keys, bounded numbers and sizes).
``callflowd.flow.parser`` turns them into ``Callflow`` values.
"""

import dataclasses
import os

from callflowd.config import files
from callflowd.config.fields import join, kind
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


def read_documents(top, base):
    """The documents the settings' top ``Section`` names; ConfigError if there are none."""
    documents = []
    inline = top.value("callflows", [])
    if not isinstance(inline, list):
        top.fail("callflows", "must be a list of callflow documents, not %s" % kind(inline))
    for index, raw in enumerate(inline):
        prefix = "callflows[%d]" % index
        check_json_shaped(raw, top.source, prefix, 0)
        documents.append(Document(raw, top.source, prefix, prefix))
    if top.given("callflows_dir"):
        documents.extend(_directory_documents(top, base))
    if not documents:
        top.fail_here("no callflows: give callflows, or callflows_dir holding *.json documents")
    return documents


def _directory_documents(top, base):
    written = top.string("callflows_dir")
    folder = os.path.join(base, written)
    try:
        names = sorted(name for name in os.listdir(folder)  # account.json: the account (kazoo_documents)
                       if name.endswith(".json") and not name.startswith(".") and name != "account.json")
    except OSError as exc:
        top.fail("callflows_dir", "cannot read directory %s: %s" % (folder, exc.strerror or exc))
    total = 0
    for name in names:
        source = os.path.normpath(os.path.join(written, name))
        text = files.read_text(os.path.join(folder, name), source)
        total += len(text)
        if total > files.MAX_TOTAL_BYTES:
            top.fail("callflows_dir", "more than %d bytes of callflow documents in %s"
                     % (files.MAX_TOTAL_BYTES, folder))
        yield Document(files.parse_json(text, source), source, "", name[: -len(".json")])


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
