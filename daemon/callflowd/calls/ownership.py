"""Several daemons on one switch: each call driven by exactly one, taken over when it dies.

The daemons agree through the switch itself, in mod_hash's store (calls/hashdb.py), with
no protocol of their own:

- **Claim.** When a call parks, every daemon that routes it tries
  ``hash insert_ifempty/callflowd_call/<uuid>/<name>:1``; exactly one gets ``+OK`` and
  drives the call, the others leave it alone (debug line). The value names the owner
  and a *generation*, raised by each takeover.
- **Lease.** Each daemon writes ``callflowd_lease/<name>`` = ``<instance>.<counter>`` every
  ``lease / 4`` seconds, and reads everybody's in the same write (``hash_dump``): one
  round trip per interval and switch, whatever the number of calls. A peer whose value
  has not changed for ``lease`` seconds of our own uninterrupted watching (or that wrote
  ``released`` at a clean stop) is dead.
- **Takeover.** The calls of a dead owner are listed from the claims; for each, the
  survivors race on ``hash insert_ifempty/callflowd_take/<uuid>:<generation>``: the
  winner writes the claim ``<name>:<generation + 1>`` and takes the call back at its
  node through the usual recovery (markers, ``uuid_dump``; calls/recovery.py).
- **Fence.** Before each mark and command the call asks ``fence(call)``: nothing to do
  while our own lease was renewed within ``lease / 2`` (a peer waits ``lease`` before it
  takes over). Otherwise, or after any renewal gap that long (a cut link, a hung
  process), the call is re-won with the same take race before it may act; lost, it ends
  quietly (``CallLost``) and the new owner drives it.
- **Release.** A call that ends deletes its claim (``delete_ifmatch``), sent in the next
  lease write. A flow killed at stop keeps its claim, for whoever takes the call over.

A switch without mod_hash answers ``-ERR hash Command not found``: the daemon says so once
and drives every call there unclaimed, as a single daemon does.

Why one file: claim, lease, takeover, fence and release are one protocol over the same
per-switch state (peers seen, pending releases, the last renewal), and the mod_hash wire is
already in calls/hashdb.py.
"""

import logging
import os
import time

import gevent
from gevent.event import Event
from gevent.pool import Group

from callflowd import metrics
from callflowd.calls import hashdb
from callflowd.calls.recovery import read_channel
from callflowd.errors import CallLost, EslError, NotConnected
from callflowd.logfmt import safe

log = logging.getLogger(__name__)

CLAIMS = "callflowd_call"  # <uuid> -> "<owner>:<generation>"
LEASES = "callflowd_lease"  # <daemon name> -> "<instance>.<counter>", or RELEASED
TAKES = "callflowd_take"  # "<uuid>:<generation>" -> the daemon that took that generation over
RELEASED = "released"
LEAVING = "leaving."  # the lease of a daemon that is stopping (still driving its calls)
DEFAULT_LEASE_SECONDS = 5.0
_NO_MOD_HASH = "Command not found"
CLAIM_PATIENCE_SECONDS = 60.0  # a parked call waits this long for its switch to take our claim
_MAX_PENDING = 10000  # releases waiting for the next lease write, per switch


def claim_value(owner, generation):
    return "%s:%d" % (owner, generation)


def parse_claim(value):
    """(owner, generation) of a claim's value; (value, 0) if it has no generation."""
    owner, sep, generation = (value or "").rpartition(":")
    if not sep or not generation.isdigit():
        return value, 0
    return owner, int(generation)


class _Peer:
    __slots__ = ("value", "changed_at", "seen_renewing")

    def __init__(self, value, changed_at, before=None):
        self.value = value  # None: no lease written (yet, or any more)
        self.changed_at = changed_at
        # its lease changed under our eyes (``before`` held another): surely alive, not a lease
        # left on the switch by a daemon that died before we started
        self.seen_renewing = before is not None and (before.value is not None or before.seen_renewing)


class _Switch:
    """What this daemon knows about one switch: its own lease there, and the peers'."""

    def __init__(self, link):
        self.link = link
        self.renewed_at = None  # monotonic time the last renewal that succeeded was sent
        self.watched_at = None  # monotonic time of the last read of the leases
        self.peers = {}  # name -> _Peer
        self.pending = []  # hash commands for the next lease write (releases)
        self.without_hash = False  # the switch has no mod_hash: calls go unclaimed
        self.scanning = None  # the greenlet taking over calls, while it runs
        self.keeper = None  # the greenlet renewing the lease
        self.beaten = Event()  # set when the renewal under way (or the next) is done
        self.dead_seen = frozenset()  # peers found dead at the last read
        self.written = None  # the value of our last lease write


class Ownership:
    """This daemon's claims and leases on every switch. ``router``: the CallRouter."""

    def __init__(self, name, lease=DEFAULT_LEASE_SECONDS, clock=time.monotonic):
        self.name = hashdb.check_word(name)
        self.lease = float(lease)
        self.interval = self.lease / 4
        self.fresh_for = self.lease / 2
        self.router = None
        self.instance = os.urandom(4).hex()
        self._clock = clock
        self._counter = 0
        self._held = {}  # uuid -> generation of the claims we hold
        self._suspect = set()  # uuids to win again before their next command (after a lease gap)
        self._taking = set()  # uuids being taken over now
        self._switches = {}  # switch name -> _Switch
        self._group = Group()
        self._stopping = Event()
        self.taken_over = 0
        self.duplicate_name = False  # another live daemon writes our lease: see _check_name
        self.leaving = False  # stopping: our lease says so, so peers stopping too keep their calls
        metrics.watch_cluster(self)

    # -- lifecycle (the service) -------------------------------------------------------------

    def attach(self, router):
        self.router = router
        router.ownership = self

    def on_connected(self, link):
        """A Service on_connected hook, before recovery: renew our lease at once, then look
        for calls claimed by us in a previous life (recovery takes back those it finds marked)."""
        state = self._switch(link)
        state.without_hash = False  # asked again at each connect: mod_hash may have been loaded
        self._beat(state)
        if not state.without_hash and state.scanning is None:
            state.scanning = self._spawn(self._scan, state)
        if state.keeper is None:
            state.keeper = self._spawn(self._keep, link)

    def stop(self):
        """Clean stop: the pending releases go out, and the lease says ``released`` so peers
        take over what is left at once."""
        self._stopping.set()
        self._group.kill(block=True, timeout=5)
        for state in self._switches.values():
            if state.without_hash or not state.link.connected:
                continue
            commands = state.pending + [hashdb.insert(LEASES, self.name, RELEASED)]
            state.pending = []
            try:
                state.link.api_all(commands, timeout=2)
            except EslError as exc:
                log.warning("switch %s: could not release our lease: %s; peers take over after %gs",
                            state.link.name, exc, self.lease)

    def announce_leaving(self, settle=True):
        """Stopping: our lease says ``leaving.`` from now on (renewed as before: we still drive our
        calls); then, with ``settle``, one renewal later, everybody's is read again. Two daemons
        stopped together each see the other leaving by then, and neither hands its calls to the
        other. A daemon with no calls to hand over only says it is leaving (no wait)."""
        self.leaving = True
        for state in self._switches.values():
            if state.link.connected and not state.without_hash:
                self._beat(state)
        if not settle:
            return
        gevent.sleep(self.interval)  # the others' "leaving" lands meanwhile, if they are stopping
        for state in self._switches.values():
            if state.link.connected and not state.without_hash:
                self._beat(state)

    def peers_up(self, links):
        """True if every switch in ``links`` has a live peer to hand our calls to."""
        now = self._clock()
        for link in links:
            state = self._switches.get(link.name)
            if state is None or state.without_hash or not self._alive_peers(state, now):
                return False
        return True

    def live_names(self, switch_name):
        """The daemons whose lease on ``switch_name`` is live: the peers' as of our last read of
        the leases (stopping ones too: they still see and drive calls; a read missed while we
        were hung ages nobody), ours while renewed within a lease (past that, the peers count
        us dead); None where calls go unclaimed (no mod_hash, not connected yet). Read-only:
        the hooks' senders ask it (hooks/senders.py).

        A peer counts once we have seen its lease renewed. A lease we only ever saw one value
        of may be a dead daemon's, left on the switch: counted, its share of the hooks would
        be lost for a lease after our start; not counted, a live peer's share is sent twice
        for one renewal at most. Twice beats never."""
        state = self._switches.get(switch_name)
        if state is None or state.without_hash:
            return None
        names = {name for name, peer in state.peers.items()
                 if peer.value is not None and peer.seen_renewing and not self._dead(peer, state.watched_at)}
        if state.renewed_at is not None and self._clock() - state.renewed_at < self.lease:
            names.add(self.name)
        return frozenset(names)

    # -- per call (the router and the call) ----------------------------------------------------

    def claim(self, call, patience=CLAIM_PATIENCE_SECONDS):
        """Race for a call that just parked: True if we won it (or the switch has no mod_hash).

        A claim not sent (the link down) is sent once the switch is back; one sent without an
        answer may have won, so the switch is asked whose the call is instead. After
        ``patience`` seconds without the switch the call is left parked, as unrouted.
        """
        link = call.switch
        state = self._switch(link)
        if state.without_hash:
            return True
        uuid = call.uuid
        deadline = self._clock() + patience
        sent = False
        while True:
            # not while the link is still taking back its calls: nothing goes out for a call before
            remaining = deadline - self._clock()
            if not link.connected and remaining > 0:
                call.log.info("switch %s is %s; the flow waits for that", link.name,
                              "back and taking back its calls" if link.taking_back else "down")
            if remaining <= 0 or not (link.connected or link.wait_up(remaining)):
                call.log.warning("could not claim the call within %gs; leaving it parked", patience)
                return False
            try:
                if sent:
                    return self._take(uuid, link, state, None)
                reply = link.api(hashdb.insert_ifempty(CLAIMS, uuid, claim_value(self.name, 1)))
                break
            except NotConnected as exc:
                call.log.warning("claim not sent (%s); sending it once the switch is back", exc)
            except EslError as exc:
                call.log.warning("claim not confirmed (%s); asking the switch whose the call is", exc)
                sent = True
        if _NO_MOD_HASH in reply:
            self._no_mod_hash(state)
            return True
        if hashdb.succeeded(reply):
            self._held[uuid] = 1
            return True
        metrics.claim_lost()
        call.log.debug("another daemon drives this call; leaving it alone")
        return False

    def take(self, uuid, link, only_from=None):
        """Win ``uuid`` over from whoever claimed it, if that one is us in a previous life or
        dead (``only_from``: only from that owner); True if we hold it now."""
        state = self._switch(link)
        if state.without_hash:
            return True
        if uuid in self._taking:
            return False
        self._taking.add(uuid)
        try:
            return self._take(uuid, link, state, only_from)
        except EslError as exc:
            log.warning("call %s: could not take the call over on switch %s: %s", uuid, link.name, exc)
            return False
        finally:
            self._taking.discard(uuid)

    def _take(self, uuid, link, state, only_from):
        value = hashdb.selected(link.api(hashdb.select(CLAIMS, uuid)))
        if value is None:  # nobody's (a claim lost with a restarted switch's store): race for it
            generation = self._held.get(uuid, 0) + 1
            won = hashdb.succeeded(link.api(hashdb.insert_ifempty(CLAIMS, uuid,
                                                                  claim_value(self.name, generation))))
            if won:
                self._held[uuid] = generation
            return won
        owner, generation = parse_claim(value)
        if only_from is not None and owner != only_from:
            return False
        if owner != self.name and (self._owner_alive(state, owner, self._clock())
                                   or self._renewed_since(state, link, owner)):
            log.debug("call %s: driven by %s, who is alive", uuid, safe(owner))
            return False
        if owner == self.name and self._held.get(uuid) == generation:
            return True  # ours already (taken back a moment ago by another path)
        if owner == self.name and (uuid in self._held or self.duplicate_name):
            return False  # a later generation was ours (taken from us since), or it is a namesake's
        won = hashdb.succeeded(link.api(hashdb.insert_ifempty(TAKES, "%s:%d" % (uuid, generation),
                                                              self.name)))
        if not won:
            log.debug("call %s: another daemon took it over first", uuid)
            return False
        link.api(hashdb.insert(CLAIMS, uuid, claim_value(self.name, generation + 1)))
        self._held[uuid] = generation + 1
        return True

    def fence(self, call):
        """Before a call's mark or command: return if we still own it, CallLost if not.

        Free while our lease on its switch is fresh; after a gap, one take race per call.
        EslError: the switch could not be asked (the caller waits for it and asks again).
        """
        uuid = call.uuid
        state = self._switches.get(call.switch.name)
        if state is None or state.without_hash:
            return
        generation = self._held.get(uuid)
        if generation is None:  # never won, or lost already
            raise CallLost("another daemon drives it")
        if uuid not in self._suspect and self._fresh(state):
            return
        if uuid not in self._suspect:
            # most often a renewal answered late (a busy switch): wait for the next one rather
            # than race for each call; a real gap marks the calls suspect (_beat)
            state.beaten.wait(self.fresh_for)
            if uuid not in self._suspect and self._fresh(state):
                return
        self._suspect.add(uuid)
        value = hashdb.selected(call.switch.api(hashdb.select(CLAIMS, uuid)))
        if value == claim_value(self.name, generation):
            won = hashdb.succeeded(call.switch.api(hashdb.insert_ifempty(
                TAKES, "%s:%d" % (uuid, generation), self.name)))
            if won:
                call.switch.api(hashdb.insert(CLAIMS, uuid, claim_value(self.name, generation + 1)))
                self._held[uuid] = generation + 1
                self._suspect.discard(uuid)
                call.log.info("still ours after a gap in our lease on switch %s; going on",
                              call.switch.name)
                return
        self._held.pop(uuid, None)
        self._suspect.discard(uuid)
        call.log.warning("another daemon took the call over while our lease on switch %s lapsed "
                         "(claim now %s); leaving it to that daemon", call.switch.name, safe(value))
        raise CallLost("another daemon took it over")

    def release(self, call):
        """The flow ended by itself: the claim goes with the next lease write. False if the
        call was not ours any more (taken over while our lease lapsed)."""
        generation = self._held.pop(call.uuid, None)
        self._suspect.discard(call.uuid)
        state = self._switches.get(call.switch.name)
        if state is None or state.without_hash:
            return True
        if generation is None:
            return False
        state.pending.append(hashdb.delete_ifmatch(CLAIMS, call.uuid, claim_value(self.name, generation)))
        state.pending.extend(hashdb.delete(TAKES, "%s:%d" % (call.uuid, earlier))
                             for earlier in range(1, generation))
        if len(state.pending) > _MAX_PENDING:
            del state.pending[:len(state.pending) - _MAX_PENDING]
            log.warning("switch %s: more than %d claims waiting to be released; the oldest are "
                        "left (a later takeover cleans them)", call.switch.name, _MAX_PENDING)
        return True

    def forget(self, call):
        """The flow was killed (stop): keep the claim on the switch for whoever takes over."""
        self._held.pop(call.uuid, None)
        self._suspect.discard(call.uuid)

    # -- reporting -------------------------------------------------------------------------

    @property
    def calls_owned(self):
        return len(self._held)

    def leases_held(self):
        now = self._clock()
        return sum(1 for state in self._switches.values()
                   if state.renewed_at is not None and now - state.renewed_at < self.lease)

    def details(self):
        """For /healthz and STATUS=: name, calls owned, leases held, taken over, live peers."""
        now = self._clock()
        return {"name": self.name, "lease_seconds": self.lease, "calls_owned": self.calls_owned,
                "leases_held": self.leases_held(), "switches": len(self._switches),
                "taken_over": self.taken_over, "duplicate_name": self.duplicate_name,
                "peers": sorted({name for state in self._switches.values()
                                 for name in self._alive_peers(state, now)})}

    # -- the lease, per switch ---------------------------------------------------------------

    def _switch(self, link):
        state = self._switches.get(link.name)
        if state is None or state.link is not link:
            state = self._switches[link.name] = _Switch(link)
        return state

    def _spawn(self, function, *args):
        greenlet = self._group.spawn(function, *args)
        greenlet.link_exception(lambda g: log.error("cluster: %s failed", function.__name__,
                                                    exc_info=g.exc_info))
        return greenlet

    def _fresh(self, state):
        """Our lease there was renewed within ``lease / 2``: no peer can take our calls yet."""
        return state.renewed_at is not None and self._clock() - state.renewed_at < self.fresh_for

    def _keep(self, link):
        """A renewal every ``interval``, counted from the start of the last (a slow answer does
        not push the next one back)."""
        state = self._switch(link)
        next_at = self._clock() + self.interval
        while not self._stopping.wait(max(0.0, next_at - self._clock())):
            next_at = self._clock() + self.interval
            if link.connected and not state.without_hash:
                self._beat(state)

    def _beat(self, state):
        beaten, state.beaten = state.beaten, Event()
        try:
            self._renew(state)
        finally:
            beaten.set()

    def _renew(self, state):
        """One write: renew our lease, read everybody's, send the releases waiting."""
        link = state.link
        self._counter += 1
        pending, state.pending = state.pending, []
        value = "%s%s.%d" % (LEAVING if self.leaving else "", self.instance, self._counter)
        commands = [hashdb.select(LEASES, self.name), hashdb.insert(LEASES, self.name, value),
                    hashdb.dump(LEASES)] + pending
        sent_at = self._clock()
        try:
            replies = link.api_all(commands, timeout=self.fresh_for)
        except EslError as exc:
            state.pending = pending + state.pending
            log.debug("switch %s: lease not renewed: %s", link.name, exc)
            return
        if _NO_MOD_HASH in replies[1]:
            self._no_mod_hash(state)
            return
        if not hashdb.succeeded(replies[1]):
            log.warning("switch %s: lease not renewed: %s", link.name, safe(replies[1].strip()))
            return
        self._check_name(state, hashdb.selected(replies[0]))
        state.written = value
        # This write landed before its answer, the last one after it was sent: if these are far
        # enough apart, a peer may have seen our lease unchanged for a lease (first write, a
        # cut, a hung process) and taken calls over meanwhile: each is won again before it acts.
        gap = self._clock() - state.renewed_at if state.renewed_at is not None else None
        if gap is None or gap >= self.lease - self.interval:
            lapsed = [uuid for uuid, call in self.router.calls.items() if call.switch is link] \
                if self.router is not None else []
            self._suspect.update(uuid for uuid in lapsed if uuid in self._held)
            if gap is not None:
                log.warning("switch %s: our lease was not renewed for %.1fs; %d calls are checked "
                            "before their next command", link.name, gap, len(lapsed))
        state.renewed_at = sent_at
        self._watch(state, hashdb.parse_dump(replies[2], LEASES), self._clock())

    def _check_name(self, state, found):
        """Our lease must hold what we wrote last: anything else was written by another daemon
        under our name, whose calls we would take for ours from a previous life."""
        if state.written is None or found in (None, state.written):
            return
        if not self.duplicate_name:
            log.error("switch %s: another daemon is also called %s (it wrote our lease); give each "
                      "daemon its own cluster.name. Until then no call is taken back as ours",
                      state.link.name, self.name)
        self.duplicate_name = True

    def _watch(self, state, leases, now):
        if state.watched_at is not None and now - state.watched_at > 2 * self.interval + 1.0:
            # we were not watching (our loop held up, the link down): nobody's silence counts
            for peer in state.peers.values():
                peer.changed_at = now
        state.watched_at = now
        leases.pop(self.name, None)
        for name, value in leases.items():
            peer = state.peers.get(name)
            if peer is None or peer.value != value:
                state.peers[name] = _Peer(value, now, peer)
        for name, peer in state.peers.items():
            if name not in leases and peer.value is not None:
                peer.value, peer.changed_at = None, now
        dead = frozenset(name for name, peer in state.peers.items() if self._dead(peer, now))
        if dead - state.dead_seen and state.scanning is None:
            log.info("switch %s: %s stopped renewing its lease; taking over its calls", state.link.name,
                     safe(", ".join(sorted(dead - state.dead_seen))))
            state.scanning = self._spawn(self._scan, state)
        state.dead_seen = dead

    def _dead(self, peer, now):
        return peer.value == RELEASED or now - peer.changed_at >= self.lease

    def _renewed_since(self, state, link, owner):
        """An owner our last read of the leases shows dead: True if its lease was written since.

        A daemon restarted under the same name writes a fresh lease, then takes back its
        previous life's calls, bumping their claims: judged from our older read alone, that
        claim looked like the dead one's, and we took the next generation too (both drove the
        call). Read after the claim, its lease tells: a value we have not seen is a live owner.
        """
        value = hashdb.selected(link.api(hashdb.select(LEASES, owner)))
        peer = state.peers.get(owner)
        if value is None or value == RELEASED or (peer is not None and value == peer.value):
            return False
        state.peers[owner] = _Peer(value, self._clock(), peer)
        return True

    def _owner_alive(self, state, owner, now):
        peer = state.peers.get(owner)
        if peer is None:  # never seen: give it a lease's time to show up
            state.peers[owner] = _Peer(None, now)
            return True
        return not self._dead(peer, now)

    def _alive_peers(self, state, now):
        """Peers alive and staying (one that is stopping takes no calls over from us)."""
        return [name for name, peer in state.peers.items()
                if peer.value is not None and not peer.value.startswith(LEAVING) and not self._dead(peer, now)]

    def _scan(self, state):
        """Take over the calls claimed by dead owners (or by us before a restart)."""
        link = state.link
        try:
            claims = hashdb.parse_dump(link.api(hashdb.dump(CLAIMS)), CLAIMS)
            now = self._clock()
            taken = 0
            gone_owners = set()
            for uuid, value in claims.items():
                owner, _ = parse_claim(value)
                if uuid in self._held or uuid in self._taking or uuid in self.router.calls:
                    continue
                if owner != self.name and self._owner_alive(state, owner, now):
                    continue
                if self.take(uuid, link, only_from=owner):
                    gone_owners.add(owner)
                    taken += self._resume(uuid, link, owner)
            for owner in gone_owners - {self.name}:
                peer = state.peers.get(owner)
                if peer is not None and peer.value is not None:
                    link.api(hashdb.delete_ifmatch(LEASES, owner, peer.value))
                state.peers.pop(owner, None)  # forgotten; a claim of its found later starts afresh
            if taken:
                log.info("switch %s: took over %d calls", link.name, taken)
        except EslError as exc:
            log.warning("switch %s: could not take over calls: %s; trying again later", link.name, exc)
            state.dead_seen = frozenset()  # the next read tries again
        finally:
            state.scanning = None

    def _resume(self, uuid, link, owner):
        """A call just won over: drive it from where the switch says it is. 1 if taken."""
        try:
            channel = read_channel(link, uuid)
        except EslError as exc:
            log.warning("call %s: could not read the channel taken over: %s", uuid, exc)
            return 0
        if channel is None:  # ended: nothing to drive, only the claim to clean
            generation = self._held.pop(uuid, None)
            if generation is not None:
                self._switch(link).pending.append(
                    hashdb.delete_ifmatch(CLAIMS, uuid, claim_value(self.name, generation)))
            return 0
        if not self.router.take_over(channel, link, owner):
            return 0
        self.taken_over += 1
        metrics.call_taken_over()
        return 1

    def _no_mod_hash(self, state):
        if not state.without_hash:
            log.warning("switch %s has no mod_hash (hash: Command not found): its calls are driven "
                        "without a claim; run a single daemon on it", state.link.name)
        state.without_hash = True
