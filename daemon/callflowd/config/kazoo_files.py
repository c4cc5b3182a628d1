"""Every Kazoo document, read from the settings (``users:``, ``devices:``... ``account:``) and
from the folder beside the callflows (``callflows.d/users/*.json``..., ``callflows.d/account.json``,
``callflows.d/temporal_rules/*.json``), each parsed by ``kazoo_documents``. A bad one is a
ConfigError naming the file and the path, collected (config/problems.py) with the ids it
would have had, and the others are still read: one ``callflowd check`` names them all.
"""

import os
from types import MappingProxyType

from callflowd.config import files
from callflowd.config.documents import check_json_shaped
from callflowd.config.fields import join
from callflowd.config.kazoo_documents import (
    aliases, document_id, parse_account, parse_device, parse_group, parse_media, parse_menu,
    parse_resource, parse_user, parse_vmbox, unwrap)
from callflowd.config.problems import ALL
from callflowd.errors import ConfigError, InvalidData


# Config key (and folder beside the callflows) -> its parser.
PARSERS = {
    "devices": parse_device, "users": parse_user, "groups": parse_group, "menus": parse_menu,
    "media": parse_media, "resources": parse_resource, "vmboxes": parse_vmbox,
}
_NAMES = {"devices": "device", "users": "user", "groups": "group", "menus": "menu", "media": "media",
          "resources": "resource", "vmboxes": "vmbox"}
# Config key -> the kind a callflow's Reference names it by (config.model.Directory.tables).
REFERENCE_KINDS = dict(_NAMES, vmboxes="voicemail box")
MEDIA_EXTENSIONS = (".wav", ".mp3", ".ogg", ".flac", ".au", ".raw")


def read_all(top, base, problems, ours=lambda kind, entry: False):
    """``{kind: table}`` of every Kazoo document: ``account`` (an Account or None), then each
    kind of ``PARSERS`` from the settings (``top``, a ``config.fields.Section``) and from
    ``<callflows_dir>/<kind>/*.json``; ``resources`` a tuple in the order read. Ids are unique
    per kind; a document is found by its ``id`` and by its ``_id``. ``ours(kind, entry)`` says
    which entries of a settings table are callflowd's own (``devices:`` with a dial string),
    read elsewhere. A bad document (not JSON, not an object, a wrong key, an id given twice)
    is a ConfigError naming the file and the path, added to ``problems`` (config/problems.py)
    with its ids, and left out of its table: every document is read."""
    folder = os.path.join(base, top.string("callflows_dir")) if top.given("callflows_dir") else None
    account = _account(top, folder, problems)
    realm = account.realm if account is not None else ""
    found = {"account": account}
    for kind, parse in PARSERS.items():
        table = {}
        for entry in _raw_documents(top, folder, kind, ours, problems):
            ids = [entry.fallback]
            try:
                raw, path = _unwrapped(entry.read(), entry.path)
                if isinstance(raw, dict):
                    ids.extend(aliases(raw))
                names, value = _document(kind, parse, raw, entry.source, path, entry.fallback, realm, folder)
                for name in names:
                    if name in table:
                        raise ConfigError("%s id %r is given twice" % (_NAMES[kind], name), entry.source,
                                          path or None)
            except ConfigError as exc:
                problems.add(exc, REFERENCE_KINDS[kind], ids)
                continue
            for name in names:
                table[name] = value
        if kind == "resources":
            found[kind] = tuple(dict.fromkeys(table.values()))  # one entry per document, in order
        else:
            found[kind] = MappingProxyType(table)
    return found


def _account(top, folder, problems):
    """The account document, from the settings (``account:``) or ``<callflows_dir>/account.json``;
    None if there is none, or if it was refused (then its problem is in ``problems``)."""
    account = None
    given = []
    if top.given("account"):
        given.append(_Entry(top.source, "account", None, top.raw["account"]))
    if folder is not None and os.path.isfile(os.path.join(folder, "account.json")):
        source = os.path.normpath(os.path.join(top.string("callflows_dir"), "account.json"))
        given.append(_Entry(source, "", None, file=os.path.join(folder, "account.json")))
    for entry in given:
        try:
            raw, path = _unwrapped(entry.read(), entry.path)
            if not isinstance(raw, dict):
                raise ConfigError("must be an object (an account document)", entry.source, path or None)
            account = _parse(parse_account, raw, entry.source, path)
        except ConfigError as exc:
            problems.add(exc, "account", ALL)
    return account


def _document(kind, parse, raw, source, path, fallback, realm, folder):
    """``(ids, value)`` of one document of ``kind``; raises ConfigError."""
    if isinstance(raw, str) and kind == "media":  # media: {id: "/path/file.wav"}
        return (fallback,), raw
    if not isinstance(raw, dict):
        raise ConfigError("must be an object (a %s document)" % _NAMES[kind], source, path or None)
    extra = (realm,) if kind in ("devices", "vmboxes") else ()
    value = _parse(parse, raw, source, path, fallback, *extra)
    if kind == "media":
        value = value[1] or _media_file(folder, value[0])
        if not value:
            raise ConfigError("no sound for this media: give file (a path FreeSWITCH reads) or "
                              "url, or put media/<id>.wav beside the callflows", source, path or None)
    return aliases(raw) or (fallback,), value


def _media_file(folder, media_id):
    """``<callflows_dir>/media/<id>.<ext>``, if there is one."""
    if folder is None:
        return None
    for extension in MEDIA_EXTENSIONS:
        candidate = os.path.join(folder, "media", media_id + extension)
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    return None


def _unwrapped(raw, path):
    inner = unwrap(raw)
    if inner is not raw:
        return inner, join(path, "data")
    return raw, path


def _parse(parse, raw, source, path, *args):
    try:
        return parse(raw, *args)
    except InvalidData as exc:
        raise ConfigError(exc.message, source, join(path, exc.key) if exc.key else path or None) from None


class _Entry:
    """One document still to read: given in the settings (``raw``) or a ``file`` beside the
    callflows; ``read()`` returns its JSON value or raises ConfigError naming ``source``."""

    def __init__(self, source, path, fallback, raw=None, file=None):
        self.source, self.path, self.fallback, self._raw, self._file = source, path, fallback, raw, file

    def read(self):
        if self._file is None:
            check_json_shaped(self._raw, self.source, self.path, 1)
            return self._raw
        return files.parse_json(files.read_text(self._file, self.source), self.source)


def _raw_documents(top, folder, kind, ours, problems):
    """The ``_Entry`` of each document of one kind: the settings', then the folder's. A settings
    table that is neither a list nor a table by id is one problem, all of that kind refused."""
    raw = top.raw.get(kind)
    if isinstance(raw, list):
        for index, entry in enumerate(raw):
            yield _Entry(top.source, "%s[%d]" % (kind, index), None, entry)
    elif isinstance(raw, dict):
        for key, entry in raw.items():
            if not isinstance(key, str):
                problems.add(ConfigError("key %r must be a string (quote it)" % (key,), top.source, kind),
                             REFERENCE_KINDS[kind], ALL)
            elif not ours(kind, entry):
                yield _Entry(top.source, join(kind, key), key, entry)
    elif raw is not None:
        problems.add(ConfigError("must be a list of %s documents (or a table of them by id)" % _NAMES[kind],
                                 top.source, kind), REFERENCE_KINDS[kind], ALL)
    yield from _folder_documents(top, folder, kind)


def _folder_documents(top, folder, kind):
    """The ``_Entry`` of each ``<callflows_dir>/<kind>/*.json``, by file name."""
    if folder is None or not os.path.isdir(os.path.join(folder, kind)):
        return
    written = top.string("callflows_dir")
    for name in sorted(os.listdir(os.path.join(folder, kind))):
        if not name.endswith(".json") or name.startswith("."):
            continue
        source = os.path.normpath(os.path.join(written, kind, name))
        yield _Entry(source, "", name[: -len(".json")], file=os.path.join(folder, kind, name))


# Keys a Kazoo temporal rule document carries beside the rule itself.
_RULE_DOCUMENT_KEYS = ("id", "_id", "flags", "ui_metadata", "metadata")


def temporal_rule_files(top, base, problems):
    """``(rule id, rule mapping, source, path)`` of each ``<callflows_dir>/temporal_rules/*.json``,
    a Kazoo temporal rule document (its envelope, ids and ``pvt_*`` keys taken off). One that
    can't be read, or is no object, or has a bad id, goes to ``problems`` instead."""
    if not top.given("callflows_dir"):
        return
    folder = os.path.join(base, top.string("callflows_dir"))
    for entry in _folder_documents(top, folder, "temporal_rules"):  # the settings': read_temporal_rules
        try:
            raw, path = _unwrapped(entry.read(), entry.path)
            if not isinstance(raw, dict):
                raise ConfigError("must be an object (a temporal rule document)", entry.source, path or None)
            rule_id = _parse(document_id, raw, entry.source, path, entry.fallback)
        except ConfigError as exc:
            problems.add(exc, "temporal rule", [entry.fallback])
            continue
        rule = {key: value for key, value in raw.items()
                if key not in _RULE_DOCUMENT_KEYS and not key.startswith("pvt_")}
        yield rule_id, rule, entry.source, path
