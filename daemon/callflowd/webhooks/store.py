"""The outbox on disk: one SQLite table of webhooks not yet delivered, used from one thread.

Why SQLite (stdlib ``sqlite3``): one file, transactions, and a write-ahead log,
so a batch of webhooks is one append and one commit. A row is written when a
webhook is accepted, updated when an attempt fails and a retry is scheduled
(attempts made, when the next is due), and deleted once it is delivered or
given up; what is in the table at start-up is what was accepted and not
finished, whatever stopped the daemon.

``journal_mode=WAL`` with ``synchronous=NORMAL`` (the default here): a commit
is written to the WAL file before ``apply()`` returns, so it survives the
process being killed (``kill -9``, a crash, OOM): the kernel holds the data.
Only a power loss or kernel crash can lose the last commits (never corrupt
the database): that is the price of not calling fsync on every batch.
``synchronous=FULL`` (config ``webhooks.outbox.synchronous: full``) fsyncs the
WAL on every commit and survives those too, at one fsync per batch.

sqlite3 blocks the thread that calls it, so the store lives in a one-thread
pool of its own (``gevent.threadpool``): the hub, and every call on it, keeps
running while the disk works, and one thread means no locking.
"""

import os
import sqlite3

import gevent.threadpool

from callflowd.config.model import SYNCHRONOUS
from callflowd.errors import CallflowdError

FILENAME = "outbox.sqlite3"
BUSY_TIMEOUT_MS = 10000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a delivery process reads rows after it
    id TEXT NOT NULL UNIQUE,      -- the delivery id (X-Callflowd-Delivery)
    endpoint TEXT NOT NULL,       -- scheme://host:port
    attempts INTEGER NOT NULL,    -- attempts made so far
    due REAL NOT NULL,            -- Unix time the next attempt may start
    request TEXT NOT NULL         -- WebhookRequest.to_json()
)
"""


class OutboxError(CallflowdError):
    """The outbox could not be opened or written (disk full, permissions, a broken file)."""


class OutboxStore:
    """``open()``, ``load()``, ``apply()`` a batch, ``close()``; each runs on the store's thread.

    ``maintain()`` is the hook a shared store (``spill.SpillingStore``) uses to renew its leases
    and claim a dead daemon's rows every ``maintenance_interval`` seconds; a local file has none.
    """

    kind = "sqlite"
    maintenance_interval = None

    def __init__(self, state_dir, synchronous="normal"):
        if synchronous not in SYNCHRONOUS:
            raise ValueError("synchronous must be one of %s" % ", ".join(SYNCHRONOUS))
        self.path = os.path.join(state_dir, FILENAME)
        self.state_dir = state_dir
        self.synchronous = synchronous
        self._db = None
        self._thread = gevent.threadpool.ThreadPool(1)

    def _run(self, fn, *args):
        """Run ``fn`` on the store's thread; the calling greenlet waits, the hub doesn't."""
        try:
            return self._thread.apply(fn, args)
        except sqlite3.Error as exc:
            raise OutboxError("outbox %s: %s" % (self.path, exc)) from exc
        except OSError as exc:
            raise OutboxError("outbox %s: %s" % (self.path, exc.strerror or exc)) from exc

    def open(self):
        self._run(self._open)

    def _open(self):
        os.makedirs(self.state_dir, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=%s" % self.synchronous.upper())
        db.execute("PRAGMA busy_timeout=%d" % BUSY_TIMEOUT_MS)
        db.execute(_SCHEMA)
        self._db = db

    def load(self, after=0):
        """Rows after ``seq`` ``after``: ``(seq, id, attempts, due, request_json)``, oldest first."""
        return self._run(lambda: self._db.execute(
            "SELECT seq, id, attempts, due, request FROM outbox WHERE seq > ? ORDER BY seq",
            (after,)).fetchall())

    def count(self):
        return self._run(lambda: self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def export(self):
        """Every row as an insert: ``(id, endpoint, attempts, due, request_json)``, oldest first."""
        return self._run(lambda: self._db.execute(
            "SELECT id, endpoint, attempts, due, request FROM outbox ORDER BY seq").fetchall())

    def maintain(self):
        return []

    def apply(self, inserts, updates, deletes, count=False):
        """One transaction: ``inserts`` of (id, endpoint, attempts, due, json), ``updates`` of
        (attempts, due, id), ``deletes`` of ids. All or nothing. With ``count``, returns how many
        rows the table holds after it (another process may be deleting)."""
        return self._run(self._apply, inserts, updates, deletes, count)

    def _apply(self, inserts, updates, deletes, count=False):
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if inserts:
                # OR IGNORE: a step run again after a restart brings the same delivery id back
                db.executemany("INSERT OR IGNORE INTO outbox (id, endpoint, attempts, due, request) "
                               "VALUES (?, ?, ?, ?, ?)", inserts)
            if updates:
                db.executemany("UPDATE outbox SET attempts = ?, due = ? WHERE id = ?", updates)
            if deletes:
                db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in deletes])
            rows = db.execute("SELECT count(*) FROM outbox").fetchone()[0] if count else None
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return rows

    def close(self):
        """Close the database on its thread, after whatever was queued there."""
        try:
            self._thread.apply(self._close)
        finally:
            self._thread.kill()

    def _close(self):
        if self._db is not None:
            db, self._db = self._db, None
            db.close()
