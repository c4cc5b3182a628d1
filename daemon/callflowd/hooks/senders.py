"""Which daemon of a cluster sends the lifecycle hooks of a channel no flow drives.

Every daemon on a switch sees every channel event; each hook event must go out once. A call a
flow drives is sent by its driver (hooks/lifecycle.py learns who from the router). Any other
channel (a B-leg the switch originates, an unrouted call, an outbound channel) goes to one
daemon picked from its uuid by rendezvous (highest-random-weight) hashing over the names of the
daemons whose lease on that switch is live: every daemon reads the same lease table
(calls/ownership.py), so every daemon picks the same one, with no message of its own and no
round trip per channel. When a daemon joins or dies only its own share moves.

The pick is made again at each event, from the lease table as it is then: a dead daemon's share
goes to the others once its lease lapses (``cluster.lease`` after its last renewal; after a
clean stop, at the others' next renewal); until then those hooks are not sent. A daemon whose
own lease lapsed (hung, cut off) sends no hook at all, not even of the calls it still drives:
the others count it dead and take its calls and its share over. A daemon counts a peer once it
has seen that peer's lease renewed (a lease left by a daemon that died before we started must not
take a share it would never send): for one renewal (``lease / 4``) after a daemon joins, it and
the others may both send some hooks. Twice rather than never.
"""

import hashlib


def weight(name, uuid):
    """The rendezvous weight of daemon ``name`` for channel ``uuid``: the same in every process
    (``hash()`` is salted per process, so not that)."""
    digest = hashlib.blake2b(("%s\n%s" % (name, uuid)).encode("utf-8", "surrogateescape"), digest_size=8)
    return int.from_bytes(digest.digest(), "big")


def sender_of(uuid, names):
    """The daemon among ``names`` that sends the hooks of channel ``uuid``."""
    return max(names, key=lambda name: (weight(name, uuid), name))


class Senders:
    """Answers "do I send the hooks of this channel no flow drives?" for daemon ``name``.

    ``live_names(switch)``: the names of the daemons whose lease on that switch is live, ours
    included while it is, or None when calls are not claimed there (a switch without mod_hash,
    not connected yet): then this daemon sends them all, as a daemon alone does. No
    ``live_names`` at all: claims are off (``cluster.claims: false``), every hook is ours.
    """

    def __init__(self, name=None, live_names=None):
        self.name = name
        self.cluster = live_names is not None
        self._live_names = live_names if live_names is not None else (lambda switch: None)

    def clustered(self, switch):
        """Calls on ``switch`` are claimed: a call's hooks wait for its claim to be decided."""
        return switch is not None and self._live_names(switch) is not None

    def live(self, switch):
        """This daemon may send hooks of channels on ``switch``: its lease there is live, or no
        other daemon's is (a daemon alone, no claims). A daemon hung or cut off past its lease
        sends nothing: the others count it dead and take its calls and its share over."""
        names = self._live_names(switch) if switch is not None else None
        return not names or self.name in names

    def mine(self, uuid, switch):
        """This daemon sends the hooks of channel ``uuid``, which no flow drives."""
        names = self._live_names(switch) if switch is not None else None
        if not names:  # no claims there, or nobody live that we know of (us included): ours
            return True
        return self.name in names and sender_of(uuid, names) == self.name
