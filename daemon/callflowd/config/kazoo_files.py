"""Every Kazoo document, read from the settings (``users:``, ``devices:``... ``account:``) and
from the folder beside the callflows (``callflows.d/users/*.json``..., ``callflows.d/account.json``,
``callflows.d/temporal_rules/*.json``), each parsed by ``kazoo_documents``; a bad one is a
ConfigError naming the file and the path.
"""

import os
from types import MappingProxyType

from callflowd.config import files
from callflowd.config.documents import check_json_shaped
from callflowd.config.fields import join
from callflowd.config.kazoo_documents import (
    aliases, document_id, parse_account, parse_device, parse_group, parse_media, parse_menu,
    parse_resource, parse_user, parse_vmbox, unwrap)
from callflowd.errors import ConfigError, InvalidData


# Config key (and folder beside the callflows) -> its parser.
PARSERS = {
    "devices": parse_device, "users": parse_user, "groups": parse_group, "menus": parse_menu,
    "media": parse_media, "resources": parse_resource, "vmboxes": parse_vmbox,
}
_NAMES = {"devices": "device", "users": "user", "groups": "group", "menus": "menu", "media": "media",
          "resources": "resource", "vmboxes": "vmbox"}
MEDIA_EXTENSIONS = (".wav", ".mp3", ".ogg", ".flac", ".au", ".raw")


def read_all(top, base, ours=lambda kind, entry: False):
    """``{kind: table}`` of every Kazoo document: ``account`` (an Account or None), then each
    kind of ``PARSERS`` from the settings (``top``, a ``config.fields.Section``) and from
    ``<callflows_dir>/<kind>/*.json``; ``resources`` a tuple in the order read. Ids are unique
    per kind; a document is found by its ``id`` and by its ``_id``. ``ours(kind, entry)`` says
    which entries of a settings table are callflowd's own (``devices:`` with a dial string),
    read elsewhere. Raises ConfigError naming the file and the path."""
    folder = os.path.join(base, top.string("callflows_dir")) if top.given("callflows_dir") else None
    account = None
    given = []
    if top.given("account"):
        check_json_shaped(top.raw["account"], top.source, "account", 0)
        given.append((top.raw["account"], top.source, "account"))
    if folder is not None and os.path.isfile(os.path.join(folder, "account.json")):
        source = os.path.normpath(os.path.join(top.string("callflows_dir"), "account.json"))
        text = files.read_text(os.path.join(folder, "account.json"), source)
        given.append((files.parse_json(text, source), source, ""))
    for raw, source, path in given:
        raw, path = _unwrapped(raw, path)
        if not isinstance(raw, dict):
            raise ConfigError("must be an object (an account document)", source, path or None)
        account = _parse(parse_account, raw, source, path)
    realm = account.realm if account is not None else ""
    found = {"account": account}
    for kind, parse in PARSERS.items():
        table = {}
        for raw, source, path, fallback in _raw_documents(top, folder, kind, ours):
            raw, path = _unwrapped(raw, path)
            if isinstance(raw, str) and kind == "media":  # media: {id: "/path/file.wav"}
                value, names = raw, (fallback,)
            else:
                if not isinstance(raw, dict):
                    raise ConfigError("must be an object (a %s document)" % _NAMES[kind], source, path or None)
                extra = (realm,) if kind in ("devices", "vmboxes") else ()
                value = _parse(parse, raw, source, path, fallback, *extra)
                if kind == "media":
                    value = value[1] or _media_file(folder, value[0])
                    if not value:
                        raise ConfigError("no sound for this media: give file (a path FreeSWITCH reads) or "
                                          "url, or put media/<id>.wav beside the callflows",
                                          source, path or None)
                names = aliases(raw) or (fallback,)
            for name in names:
                if name in table:
                    raise ConfigError("%s id %r is given twice" % (_NAMES[kind], name), source, path or None)
                table[name] = value
        if kind == "resources":
            found[kind] = tuple(dict.fromkeys(table.values()))  # one entry per document, in order
        else:
            found[kind] = MappingProxyType(table)
    return found


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


def _raw_documents(top, folder, kind, ours):
    """(raw document, source, path, fallback id) of one kind: the settings', then the folder's."""
    raw = top.raw.get(kind)
    if raw is not None:
        check_json_shaped(raw, top.source, kind, 0)
        if isinstance(raw, list):
            for index, entry in enumerate(raw):
                yield entry, top.source, "%s[%d]" % (kind, index), None
        elif isinstance(raw, dict):
            for key, entry in raw.items():
                if not ours(kind, entry):
                    yield entry, top.source, join(kind, key), key
        else:
            top.fail(kind, "must be a list of %s documents (or a table of them by id)" % _NAMES[kind])
    if folder is None or not os.path.isdir(os.path.join(folder, kind)):
        return
    written = top.string("callflows_dir")
    for name in sorted(os.listdir(os.path.join(folder, kind))):
        if not name.endswith(".json") or name.startswith("."):
            continue
        source = os.path.normpath(os.path.join(written, kind, name))
        document = files.parse_json(files.read_text(os.path.join(folder, kind, name), source), source)
        yield document, source, "", name[: -len(".json")]


# Keys a Kazoo temporal rule document carries beside the rule itself.
_RULE_DOCUMENT_KEYS = ("id", "_id", "flags", "ui_metadata", "metadata")


def temporal_rule_files(top, base):
    """``(rule id, rule mapping, source, path)`` of each ``<callflows_dir>/temporal_rules/*.json``,
    a Kazoo temporal rule document (its envelope, ids and ``pvt_*`` keys taken off)."""
    if not top.given("callflows_dir"):
        return
    folder = os.path.join(base, top.string("callflows_dir"))
    for raw, source, path, fallback in _raw_documents(top, folder, "temporal_rules", lambda *_: True):
        raw, path = _unwrapped(raw, path)
        if not isinstance(raw, dict):
            raise ConfigError("must be an object (a temporal rule document)", source, path or None)
        rule_id = _parse(document_id, raw, source, path, fallback)
        rule = {key: value for key, value in raw.items()
                if key not in _RULE_DOCUMENT_KEYS and not key.startswith("pvt_")}
        yield rule_id, rule, source, path
