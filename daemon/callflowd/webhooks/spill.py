"""A shared outbox with the local SQLite file behind it: calls go on while the shared one is away.

When the shared store (``pgstore``) can't be reached, webhooks are written to
the local SQLite outbox (``store``) instead: durable on this host at once, so
a webhook the call path was told is accepted is never only in memory. While
the shared store is away, a webhook delivered whose row lives there is
remembered and deleted there when it comes back (a crash meanwhile sends it
again, with the same delivery id). Every ``maintain()`` (the lease keeper's
turn, a few times per lease), a store that is away is tried again; once it
answers, the local rows move into it, one transaction each way, and the log
and ``/metrics`` say so.

Another daemon's rows are claimed only once this one has been connected for a
whole lease: while the server was away nobody could renew, so every lease ran
out; the grace lets each live daemon renew its own before anyone claims.
"""

import logging
import time

from callflowd import metrics
from callflowd.webhooks.store import OutboxError

log = logging.getLogger(__name__)


class SpillingStore:
    """``OutboxStore``'s interface over a shared store, spilling to a local one while it's away."""

    def __init__(self, shared, local):
        self.shared = shared
        self.local = local
        self.kind = shared.kind
        self.path = shared.path
        self.maintenance_interval = max(0.5, shared.lease / 3.0)
        self.up = False
        self._said_away = False  # the "unreachable" line is said once per outage
        self._local_ids = set()  # rows in the local file
        self._shared_deletes = set()  # delivered while the shared store was away
        self._claims_from = None  # monotonic time from which others' rows may be claimed

    @property
    def spilled(self):
        return len(self._local_ids)

    def open(self):
        self.local.open()
        self._local_ids = {row[1] for row in self.local.load()}
        self._try_shared(self.shared.open)
        self._report()

    def _try_shared(self, fn, *args):
        """Run ``fn`` on the shared store; on failure mark it away (logged once) and return None."""
        try:
            result = fn(*args)
        except OutboxError as exc:
            if self.up or not self._said_away:
                log.error("shared webhook outbox %s unreachable: %s; webhooks go to the local outbox "
                          "%s until it answers", self.path, exc, self.local.path)
                self._said_away = True
            self.up = False
            self._report()
            return None
        if not self.up:
            self.up = True
            self._said_away = False
            self._claims_from = time.monotonic() + self.shared.lease
            log.info("shared webhook outbox %s reachable", self.path)
            self._report()
        return result

    def load(self, after=0):
        rows = list(self.local.load())
        if self.up:
            rows.extend(self._try_shared(self.shared.load) or ())
        return rows

    def count(self):
        shared = self._try_shared(self.shared.count) if self.up else 0
        return len(self._local_ids) + (shared or 0)

    def apply(self, inserts, updates, deletes, count=False):
        local_updates = [u for u in updates if u[2] in self._local_ids]
        shared_updates = [u for u in updates if u[2] not in self._local_ids]
        local_deletes = {d for d in deletes if d in self._local_ids}
        shared_deletes = set(deletes) - local_deletes
        spill = list(inserts)
        if self.up:
            self._try_shared(self.shared.apply, inserts, shared_updates, shared_deletes)
            if self.up:  # written there
                spill = []
        if not self.up:
            # updates of shared rows are attempt counts: not worth a second store; deletes are kept
            self._shared_deletes |= shared_deletes
        if spill or local_updates or local_deletes:
            self.local.apply(spill, local_updates, local_deletes)  # raises OutboxError: lost, loudly
            self._local_ids.update(row[0] for row in spill)
            self._local_ids -= local_deletes
            if spill:
                self._report()
        return None

    def maintain(self):
        """Retry an away store, move spilled rows back, renew leases, claim a dead daemon's rows.

        Returns the claimed rows ``(seq, id, attempts, due, request_json)`` for the dispatcher.
        """
        if not self.up:
            self._try_shared(self.shared.open)
            if not self.up:
                return []
        if self._shared_deletes:
            deletes = set(self._shared_deletes)
            self._try_shared(self.shared.apply, [], [], deletes)
            if not self.up:
                return []
            self._shared_deletes -= deletes
        if self._local_ids:
            self._move_back()
            if not self.up:
                return []
        self._try_shared(self.shared.renew)
        if not self.up or time.monotonic() < self._claims_from:
            return []
        return self._try_shared(self.shared.claim) or []

    def _move_back(self):
        rows = [row for row in self.local.export() if row[0] in self._local_ids]
        if not rows:
            self._local_ids.clear()
            return
        self._try_shared(self.shared.apply, rows, [], ())
        if not self.up:
            return
        moved = {row[0] for row in rows}
        self.local.apply([], [], moved)
        self._local_ids -= moved
        log.info("shared webhook outbox %s: moved %d webhooks back from the local outbox",
                 self.path, len(moved))
        self._report()

    def close(self):
        try:
            if self.up:
                self._try_shared(self.shared.release)
        finally:
            self.shared.close()
            self.local.close()

    def _report(self):
        metrics.outbox_backend(self.kind, self.up, len(self._local_ids))
