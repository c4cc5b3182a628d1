"""The outbox in PostgreSQL: one table that several daemons share, so no webhook is tied to one host.

Why PostgreSQL (psycopg 3): a commit is on disk when it returns (``fsync`` on
commit at the server's default settings), so a webhook a daemon accepted
survives that daemon's host, and a server crash loses no committed row;
``SELECT ... FOR UPDATE SKIP LOCKED`` lets live daemons split a dead one's
rows between them without waiting on each other; operators of telephony
platforms already run and back it up. psycopg 3.1.14 and later wait on its
sockets through gevent's hub when the process is monkey-patched, so a query
holds one greenlet, never the daemon (measured: three ``pg_sleep(1)`` on three
greenlets take 1.0 s in all).

Each row belongs to the daemon that holds its *lease* (``owner`` and
``lease_until``, in the server's clock, so the daemons' clocks don't matter).
A live daemon renews the leases of its rows every few seconds (``renew()``);
the rows of a daemon that stopped renewing are claimed by the next live one
that looks (``claim()``), once per row. An update from a daemon that lost a
row's lease is ignored (``AND owner = me``); a delete is not, since the row
was delivered either way. The receiver may see one webhook twice, with the
same ``X-Callflowd-Delivery`` id, when its first owner died between sending
and recording; never two ids for one step.

One connection, used by one greenlet at a time (a gevent lock): the outbox's
writer, the lease keeper and start-up take turns. A lost connection is an
``OutboxError``; the next call connects again.
"""

import logging

from gevent.lock import BoundedSemaphore

from callflowd import metrics
from callflowd.logfmt import redact_uri, safe
from callflowd.webhooks.store import OutboxError

log = logging.getLogger(__name__)

TABLE = "callflowd_outbox"
CONNECT_TIMEOUT = 3  # seconds; an unreachable server must not hold start-up or the writer for long
STATEMENT_TIMEOUT_MS = 10000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS callflowd_outbox (
    seq BIGSERIAL,
    id TEXT PRIMARY KEY,               -- the delivery id (X-Callflowd-Delivery)
    endpoint TEXT NOT NULL,            -- scheme://host:port
    attempts INTEGER NOT NULL,         -- attempts made so far
    due DOUBLE PRECISION NOT NULL,     -- Unix time the next attempt may start
    request TEXT NOT NULL,             -- WebhookRequest.to_json()
    owner TEXT NOT NULL,               -- the daemon delivering it (cluster.name)
    lease_until TIMESTAMPTZ NOT NULL   -- the owner's claim runs out then, unless renewed
);
CREATE INDEX IF NOT EXISTS callflowd_outbox_owner ON callflowd_outbox (owner);
CREATE INDEX IF NOT EXISTS callflowd_outbox_lease ON callflowd_outbox (lease_until);
"""

_COLUMNS = "seq, id, attempts, due, request"

# The rows nobody holds: a dead daemon's, or (at start) our own from before a restart.
_CLAIM = """
WITH free AS (
    SELECT id, owner AS was FROM callflowd_outbox
    WHERE (%(expired)s AND lease_until < now()) OR (%(own)s AND owner = %(me)s)
    ORDER BY seq LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
UPDATE callflowd_outbox o SET owner = %(me)s, lease_until = now() + %(lease)s * interval '1 second'
FROM free WHERE o.id = free.id
RETURNING o.seq, o.id, o.attempts, o.due, o.request, free.was
"""


class PostgresStore:
    """The outbox table on a PostgreSQL server: the ``OutboxStore`` interface plus leases."""

    kind = "postgresql"

    def __init__(self, url, owner, lease=10.0):
        self.url = url
        self.path = redact_uri(url)  # what log lines name: no password, no query values
        self.owner = owner
        self.lease = float(lease)
        self._conn = None
        self._lock = BoundedSemaphore(1)

    # -- connection ------------------------------------------------------------------

    def _run(self, fn, *args):
        import psycopg  # imported on use: a daemon on the SQLite outbox never loads it

        with self._lock:
            try:
                if self._conn is None or self._conn.closed or self._conn.broken:
                    self._connect(psycopg)
                with self._conn.transaction():
                    with self._conn.cursor() as cursor:
                        return fn(cursor, *args)
            except psycopg.Error as exc:
                self._drop_connection()
                raise OutboxError("outbox %s: %s" % (self.path, _one_line(exc))) from exc
            except OSError as exc:
                self._drop_connection()
                raise OutboxError("outbox %s: %s" % (self.path, exc.strerror or exc)) from exc

    def _connect(self, psycopg):
        self._drop_connection()
        self._conn = psycopg.connect(
            self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
            application_name="callflowd %s" % self.owner[:40],
            options="-c statement_timeout=%d" % STATEMENT_TIMEOUT_MS)

    def _drop_connection(self):
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection: nothing to save
                log.debug("closing the outbox connection failed", exc_info=True)

    # -- the OutboxStore interface ---------------------------------------------------

    def open(self):
        def create(cursor):
            # One creator at a time: two daemons starting together must not race on CREATE.
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('callflowd_outbox'))")
            cursor.execute(_SCHEMA)

        self._run(create)

    def load(self, after=0):
        """Our own rows from before a restart (same name): ``(seq, id, attempts, due,
        request_json)``, oldest first. A dead daemon's come later, from ``claim()``."""
        return self.claim(limit=1000000, own=True, expired=False)

    def count(self):
        """Rows this daemon holds."""
        return self._run(lambda c: c.execute(
            "SELECT count(*) FROM callflowd_outbox WHERE owner = %s", (self.owner,)).fetchone()[0])

    def apply(self, inserts, updates, deletes, count=False):
        """One transaction: ``inserts`` of (id, endpoint, attempts, due, json), ``updates`` of
        (attempts, due, id), ``deletes`` of ids. Inserted rows are leased to this daemon."""
        return self._run(self._apply, inserts, updates, deletes, count)

    def _apply(self, cursor, inserts, updates, deletes, count):
        if inserts:
            cursor.executemany(
                "INSERT INTO callflowd_outbox (id, endpoint, attempts, due, request, owner, lease_until) "
                "VALUES (%s, %s, %s, %s, %s, %s, now() + %s * interval '1 second') "
                "ON CONFLICT (id) DO NOTHING",  # a step run again after a takeover: one row
                [row + (self.owner, self.lease) for row in inserts])
        if updates:
            cursor.executemany(
                "UPDATE callflowd_outbox SET attempts = %s, due = %s WHERE id = %s AND owner = %s",
                [update + (self.owner,) for update in updates])
        if deletes:
            cursor.execute("DELETE FROM callflowd_outbox WHERE id = ANY(%s)", (list(deletes),))
        if count:
            return cursor.execute("SELECT count(*) FROM callflowd_outbox WHERE owner = %s",
                                  (self.owner,)).fetchone()[0]
        return None

    def close(self):
        with self._lock:
            self._drop_connection()

    # -- leases ----------------------------------------------------------------------

    def renew(self):
        """Extend the lease on every row this daemon holds; how many it holds."""
        return self._run(lambda c: c.execute(
            "UPDATE callflowd_outbox SET lease_until = now() + %s * interval '1 second' "
            "WHERE owner = %s", (self.lease, self.owner)).rowcount)

    def claim(self, limit=1000, own=False, expired=True):
        """Take up to ``limit`` rows whose lease ran out (``expired``) and, with ``own``, those
        under our name: ``(seq, id, attempts, due, request_json)``, each row to one daemon only.
        Logs whose rows they were."""
        params = {"me": self.owner, "lease": self.lease, "limit": limit, "own": own, "expired": expired}
        rows = self._run(lambda c: c.execute(_CLAIM, params).fetchall())
        taken = {}
        for row in rows:
            if row[5] != self.owner:
                taken[row[5]] = taken.get(row[5], 0) + 1
        for owner, n in sorted(taken.items()):
            log.warning("webhook outbox %s: took over %d undelivered webhooks of daemon %s "
                        "(its lease ran out)", self.path, n, safe(owner))
            metrics.outbox_taken_over(n)
        return sorted((row[:5] for row in rows), key=lambda row: row[0])

    def release(self):
        """Give up every lease at once (a clean stop with peers alive): they claim at once."""
        return self._run(lambda c: c.execute(
            "UPDATE callflowd_outbox SET lease_until = now() - interval '1 second' WHERE owner = %s",
            (self.owner,)).rowcount)


def _one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__
