"""mod_hash's ``hash`` and ``hash_dump`` api, as command text in and facts out (no I/O).

The switch's own key-value store is what several daemons on one switch agree through
(calls/ownership.py). Facts, from mod_hash.c (FreeSWITCH 1.10.12) and checked on the
test switch (tests/realswitch/test_cluster_on_real_switch.py):

- ``hash insert_ifempty/<realm>/<key>/<value>`` takes the store's write lock, so of
  several at once exactly one answers ``+OK``; the others ``-ERR key already exists``.
- ``hash insert/...`` overwrites (``+OK``); ``hash delete/<realm>/<key>`` answers
  ``+OK`` or ``-ERR Not found``; ``hash delete_ifmatch/<realm>/<key>/<value>``
  ``+OK``, ``-ERR Doesn't match`` or ``-ERR Not found``.
- ``hash select/<realm>/<key>`` answers the bare value, and for a missing key writes
  nothing, which the event socket turns into ``-ERR no reply``.
- the entry's name is ``<realm>_<key>``; ``hash_dump db <realm>`` lists every entry whose
  name *contains* ``<realm>_``, one ``D/<realm>_<key>/<value>`` line each.
- the arguments are split on ``/`` (at most 4 parts), so a realm, key or value we write
  never holds a ``/``, a space or a newline (``check_word``).
- the store lives in the switch's memory: a restart of FreeSWITCH empties it (and ends
  every call with it).
"""

import re

_WORD = re.compile(r"^[A-Za-z0-9._:-]+$")
OK = "+OK"
MISSING = "-ERR no reply"


def check_word(text):
    """``text`` if it can be a realm, key or value as is; ValueError otherwise."""
    if not _WORD.match(text or ""):
        raise ValueError("%r: only letters, digits and . _ : - may be used" % (text,))
    return text


def insert_ifempty(realm, key, value):
    return "hash insert_ifempty/%s/%s/%s" % (realm, key, value)


def insert(realm, key, value):
    return "hash insert/%s/%s/%s" % (realm, key, value)


def select(realm, key):
    return "hash select/%s/%s" % (realm, key)


def delete(realm, key):
    return "hash delete/%s/%s" % (realm, key)


def delete_ifmatch(realm, key, value):
    return "hash delete_ifmatch/%s/%s/%s" % (realm, key, value)


def dump(realm):
    return "hash_dump db %s" % realm


def succeeded(reply):
    """True for the ``+OK`` of insert, insert_ifempty, delete and delete_ifmatch."""
    return reply.strip() == OK


def selected(reply):
    """The value ``hash select`` answered, or None for a missing key."""
    text = reply.strip()
    if not text or text.startswith("-ERR"):
        return None
    return text


def parse_dump(text, realm):
    """``{key: value}`` of ``realm`` from a ``hash_dump db <realm>`` answer.

    Other realms whose names merely contain ours (mod_hash matches with strstr) are left out.
    """
    prefix = "D/%s_" % realm
    entries = {}
    for line in text.splitlines():
        if not line.startswith(prefix):
            continue
        key, sep, value = line[len(prefix):].partition("/")
        if sep and key:
            entries[key] = value
    return entries
