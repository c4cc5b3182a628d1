"""mod_hash's db as the simulator keeps it: ``api hash`` and ``api hash_dump``, replies as
FreeSWITCH 1.10.12's (mod_hash.c; checked in tests/realswitch/test_cluster_on_real_switch.py).

Several daemons on one switch race for each call here (callflowd.calls.ownership). A reply
with nothing in it (a missing key's ``select``, an empty dump) goes out as ``-ERR no reply``,
as the event socket sends an empty api output.
"""

NO_REPLY = "-ERR no reply\n"
USAGE = "-ERR Usage: hash insert|insert_ifempty|select|delete|delete_ifmatch/realm/key[/value]\n"


class HashStore:
    """``<realm>_<key>`` -> value, as mod_hash names its entries."""

    def __init__(self):
        self.entries = {}

    def hash(self, arg):
        """``hash <verb>/<realm>/<key>[/<value>]`` (split on ``/`` into at most 4 parts)."""
        parts = arg.strip().split("/", 3)
        if len(parts) < 3:
            return USAGE
        verb, key = parts[0].lower(), "%s_%s" % (parts[1], parts[2])
        value = parts[3] if len(parts) > 3 else None
        entries = self.entries
        if verb == "select":
            return entries.get(key) or NO_REPLY
        if verb == "delete":
            return "+OK\n" if entries.pop(key, None) is not None else "-ERR Not found\n"
        if value is None:
            return USAGE
        if verb == "insert":
            entries[key] = value
            return "+OK\n"
        if verb == "insert_ifempty":
            if key in entries:
                return "-ERR key already exists\n"
            entries[key] = value
            return "+OK\n"
        if verb == "delete_ifmatch":
            if key not in entries:
                return "-ERR Not found\n"
            if entries[key] != value:
                return "-ERR Doesn't match\n"
            del entries[key]
            return "+OK\n"
        return USAGE

    def dump(self, arg):
        """``hash_dump db [<realm>]``: ``D/<name>/<value>`` lines of the names holding ``<realm>_``."""
        words = arg.split()
        if not words or words[0] not in ("all", "limit", "db"):
            return "Usage: all|limit|db [<realm>]\n"
        if words[0] == "limit":
            return NO_REPLY
        prefix = words[1] + "_" if len(words) > 1 else ""
        return "".join("D/%s/%s\n" % (name, value) for name, value in self.entries.items()
                       if prefix in name) or NO_REPLY
