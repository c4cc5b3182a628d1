"""Group commit: the call path hands webhooks over in memory; one writer commits them in batches.

``add()`` is what a call's greenlet reaches: it appends to a buffer and wakes
the writer, never touching the disk. The writer greenlet takes everything
buffered (new webhooks, retry bookkeeping, deletions of finished ones) and
commits it in one transaction on the store's thread; whatever arrives while a
commit is under way goes into the next one, so the batch grows with the load
and the disk sees one commit per batch, not per webhook (group commit).

A webhook counts as *accepted* once its batch is committed: only then is it
handed to ``on_committed`` (the dispatcher) to be sent. ``add()`` returns the
``Batch`` the webhook will be committed in: a call's greenlet that must not
move on before its webhook is on disk (the ``webhook`` step) waits on it; the
hub, the writer and every other call go on meanwhile. When the outbox holds
``max_rows`` (committed plus buffered), ``add()`` refuses at once; when a
commit fails (disk full...), its new webhooks are lost: both are logged loudly
and counted by the caller, and the call goes on.
"""

import logging

import gevent
from gevent.event import Event

from callflowd.webhooks.store import OutboxError

log = logging.getLogger(__name__)


class OutboxFull(Exception):
    """The outbox holds as many webhooks as it may."""


class Batch:
    """One commit's fate: ``wait(timeout)`` returns True once it is committed, False if its
    commit failed, None if neither happened within ``timeout`` seconds."""

    __slots__ = ("_done", "committed")

    def __init__(self):
        self._done = Event()
        self.committed = None

    def wait(self, timeout):
        self._done.wait(timeout)
        return self.committed

    def _settle(self, committed):
        self.committed = committed
        self._done.set()


class Outbox:
    """Buffers and one writer greenlet in front of an ``OutboxStore``."""

    def __init__(self, store, max_rows, on_committed, on_lost, shared=False):
        self.store = store
        self.shared = shared  # another process deletes rows: recount after each commit
        self.max_rows = max_rows
        self.rows = 0  # committed and not deleted
        self._on_committed = on_committed  # called with the list of newly accepted items
        self._on_lost = on_lost  # called with items whose commit failed
        self._inserts = []  # items (see dispatcher.Item)
        self._rows = []  # their rows, serialised as each was added
        self._updates = {}  # id -> (attempts, due, id)
        self._deletes = set()
        self._dirty = Event()
        self._written = Event()  # set after each commit attempt
        self._writing = False
        self._committing = 0  # inserts in the commit under way
        self._writer = None
        self._batch = Batch()  # what the webhooks buffered now will be committed in
        self.batches = 0

    def open(self):
        """Open the store and return its rows (what was accepted and not finished)."""
        self.store.open()
        rows = self.store.load()
        self.rows = len(rows)
        return rows

    def load_after(self, seq):
        """Rows another process committed after ``seq`` (a delivery process following the daemon)."""
        rows = self.store.load(after=seq)
        self.rows += len(rows)
        return rows

    def start(self, group):
        self._writer = group.spawn(self._write_loop)
        self._writer.link_exception(
            lambda g: log.error("outbox writer died; webhooks are no longer accepted",
                                exc_info=g.exc_info))

    @property
    def size(self):
        """Committed rows plus those being committed or waiting for the next commit."""
        return self.rows + self._committing + len(self._inserts)

    def add(self, item):
        """Buffer ``item`` for the next commit; never blocks; returns that commit's ``Batch``.
        Raises OutboxFull."""
        if self.size >= self.max_rows:
            raise OutboxFull("%d webhooks in the outbox" % self.size)
        request = item.request
        # Serialised here, a webhook at a time as calls hand them over, not a whole batch at
        # once in the writer: a batch of thousands would hold the hub for tens of milliseconds.
        self._rows.append((request.delivery_id, request.endpoint, item.attempts, item.due, request.to_json()))
        self._inserts.append(item)
        self._dirty.set()
        return self._batch

    def update(self, item):
        """Record a failed attempt: attempts made and when the next one is due."""
        self._updates[item.request.delivery_id] = (item.attempts, item.due, item.request.delivery_id)
        self._dirty.set()

    def delete(self, delivery_id):
        self._updates.pop(delivery_id, None)
        self._deletes.add(delivery_id)
        self._dirty.set()

    @property
    def idle(self):
        return not (self._inserts or self._updates or self._deletes or self._writing)

    def flush(self, timeout):
        """Wait up to ``timeout`` seconds for everything buffered to be committed."""
        with gevent.Timeout(timeout, False):
            while not self.idle:
                self._written.clear()
                self._written.wait()
        return self.idle

    def stop(self, timeout):
        """Commit what is buffered (up to ``timeout`` s), stop the writer, close the store."""
        flushed = self.flush(timeout)
        if self._writer is not None:
            # Idle, it waits for work; if the flush timed out mid-commit, the commit
            # still finishes on the store's thread before close() runs there.
            self._writer.kill(block=True, timeout=5)
        self.store.close()
        return flushed

    def store_rows_left(self):
        """Rows in the file now (after ``stop()``: reopened briefly when another process shares it)."""
        if not self.shared:
            return self.rows
        store = type(self.store)(self.store.state_dir, self.store.synchronous)
        store.open()
        try:
            return store.count()
        finally:
            store.close()

    def _write_loop(self):
        while True:
            self._dirty.wait()
            self._dirty.clear()
            self._commit_once()

    def _commit_once(self):
        inserts, self._inserts = self._inserts, []
        rows, self._rows = self._rows, []
        updates, self._updates = self._updates, {}
        deletes, self._deletes = self._deletes, set()
        batch, self._batch = self._batch, Batch()
        if not (inserts or updates or deletes):
            batch._settle(True)
            return
        self._writing = True
        self._committing = len(inserts)
        try:
            counted = self.store.apply(rows, list(updates.values()), deletes, count=self.shared)
        except OutboxError as exc:
            # Loud: these webhooks are lost (inserts), or may be sent again (deletes).
            log.error("outbox write failed: %s; %d new webhooks lost, %d finished ones may be "
                      "sent again after a restart", exc, len(inserts), len(deletes))
            batch._settle(False)
            self._on_lost(inserts)
        else:
            self.batches += 1
            self.rows = counted if self.shared else self.rows + len(inserts) - len(deletes)
            batch._settle(True)
            if inserts:
                self._on_committed(inserts)
        finally:
            self._writing = False
            self._committing = 0
            self._written.set()
