"""One SQLite database in WAL mode: reads on per-thread connections, writes serialised.

After datasette's `Database`: any thread may read through its own connection; writes go
through one connection under a lock, each in a `BEGIN IMMEDIATE` transaction, so several
processes (server workers and the operator's CLI) can share the file safely. Between
processes, writers queue on an advisory lock on `<db>-lock` before `BEGIN IMMEDIATE`:
SQLite's own busy handler would do, but it polls with sleeps of up to 100 ms, which wastes
most of the time a second worker process could use.
"""

from __future__ import annotations

import fcntl
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bices.domain.members import BUILTIN_COMMUNITIES
from bices.store.sqlite_checkpoint import Checkpointer
from bices.store.taxii_queries import BACKFILL_ADDED

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
# The shortest time between two WAL checkpoints. A checkpoint copies every page written
# since the last one, however often it was written meanwhile (the index pages, the newest
# full-text segment, the tail of each table are written by every batch): once a second
# instead of every 100 ms, a TAXII POST costs ~15% less CPU (4 alternating pairs in
# process, 4,000 reports each: 267/243/241/281 against 240/215/210/214 us a report).
CHECKPOINT_INTERVAL_S = 1.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('schema_version', 1), ('directory_version', 1);

CREATE TABLE IF NOT EXISTS members (
    code TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
    public_key TEXT, sponsor TEXT, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS communities (name TEXT PRIMARY KEY, builtin INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS community_members (
    community TEXT NOT NULL REFERENCES communities(name), member TEXT NOT NULL,
    PRIMARY KEY (community, member)
);
CREATE TABLE IF NOT EXISTS signing_keys (member TEXT PRIMARY KEY, private_key BLOB NOT NULL);

CREATE TABLE IF NOT EXISTS accessions (
    code TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, sponsor TEXT NOT NULL,
    communities TEXT NOT NULL, status TEXT NOT NULL, applied_at TEXT NOT NULL,
    public_key TEXT
);
CREATE TABLE IF NOT EXISTS accession_votes (
    code TEXT NOT NULL REFERENCES accessions(code), member TEXT NOT NULL,
    approve INTEGER NOT NULL, at TEXT NOT NULL, PRIMARY KEY (code, member)
);

CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY, member TEXT NOT NULL REFERENCES members(code),
    name TEXT NOT NULL UNIQUE, clearance INTEGER NOT NULL, caveats TEXT NOT NULL,
    roles TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL, expires_at REAL, revoked_at TEXT
);

CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reports (
    id TEXT PRIMARY KEY, current_version INTEGER NOT NULL, current_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS report_versions (
    seq INTEGER PRIMARY KEY, report_id TEXT NOT NULL, version INTEGER NOT NULL,
    current INTEGER NOT NULL, type TEXT NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL,
    language TEXT NOT NULL, label_id INTEGER NOT NULL REFERENCES labels(id),
    classification INTEGER NOT NULL, originator TEXT NOT NULL,
    source_name TEXT NOT NULL, reliability TEXT NOT NULL, credibility INTEGER NOT NULL,
    reported_at TEXT NOT NULL, reported_ts REAL NOT NULL, observed_at TEXT,
    locations TEXT NOT NULL, attachments TEXT NOT NULL, author TEXT NOT NULL,
    stored_at TEXT NOT NULL, signature TEXT NOT NULL,
    label_token TEXT GENERATED ALWAYS AS ('l' || label_id) VIRTUAL,
    UNIQUE (report_id, version)
);
-- The current version of each report, narrow: listing, filters, totals and facets read
-- this instead of the wide rows; full rows are fetched only for the page served.
CREATE TABLE IF NOT EXISTS current_reports (
    seq INTEGER PRIMARY KEY, label_id INTEGER NOT NULL, type TEXT NOT NULL,
    originator TEXT NOT NULL, classification INTEGER NOT NULL, language TEXT NOT NULL,
    reported_ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS current_reports_label ON current_reports (label_id, seq);
-- Current versions only. The label id is indexed as a token ("l17") so that a search can
-- intersect the user's words with the labels the access rule allows inside FTS5 itself.
CREATE VIRTUAL TABLE IF NOT EXISTS report_fts USING fts5(
    title, body, label_token, content='report_versions', content_rowid='seq',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS blobs (
    sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, data BLOB NOT NULL
);

-- The outbox: one row per thing to disseminate, written in the transaction that stored
-- it; streams resume from it and the exploitation worker follows its `report` rows.
-- kind `report`: a stored version (seq = the version's seq; report_id, version);
-- kind `rfi`: an RFI changed (report_id = the RFI's id, version = its revision);
-- kind `alert`: a watch matched (report_id = the report, version = the user's alert number,
-- user_id = the watcher). `label_id` is the label of the item the event shows.
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, report_id TEXT NOT NULL, version INTEGER NOT NULL,
    label_id INTEGER NOT NULL, at TEXT NOT NULL, user_id INTEGER
);

-- Exploitation (issue 3): one extraction per stored version, written by the worker, and
-- the canonical entities its mentions resolve to. What a user sees of an entity is read
-- through `current_reports`, so only mentions in current, visible versions count.
CREATE TABLE IF NOT EXISTS extractions (
    seq INTEGER PRIMARY KEY, result TEXT NOT NULL, at TEXT NOT NULL
);
-- `public_id` (from the key alone) is what the API shows: the internal id follows the
-- order of first mention, hidden reports included, so it would tell of them.
CREATE TABLE IF NOT EXISTS entities (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, public_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL, canonical TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS mentions (
    seq INTEGER NOT NULL, entity_id INTEGER NOT NULL REFERENCES entities(id),
    text TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS mentions_seq ON mentions (seq);
CREATE INDEX IF NOT EXISTS mentions_entity ON mentions (entity_id, seq);
-- Correlation: each exploited version's fingerprint (exact hash, MinHash signature) and
-- its LSH band buckets; links between versions (duplicate, near-duplicate, related).
-- Reads join both ends to `current_reports`, so a link exists for a user only while both
-- reports are current and visible to that user.
CREATE TABLE IF NOT EXISTS fingerprints (
    seq INTEGER PRIMARY KEY, exact TEXT NOT NULL, signature BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS fingerprints_exact ON fingerprints (exact);
CREATE TABLE IF NOT EXISTS lsh_bands (
    band INTEGER NOT NULL, bucket INTEGER NOT NULL, seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS lsh_bands_bucket ON lsh_bands (band, bucket);
CREATE INDEX IF NOT EXISTS lsh_bands_seq ON lsh_bands (seq);
CREATE TABLE IF NOT EXISTS links (
    seq INTEGER NOT NULL, other INTEGER NOT NULL, kind TEXT NOT NULL, score REAL NOT NULL,
    PRIMARY KEY (seq, other, kind)
);
-- Watch lists: a user watches entities by canonical name; the worker raises an alert
-- when a version mentions one. Alerts are read through `current_reports` and the
-- user's visible labels, so an alert about a report the user may not see stays unseen.
-- Watches and alerts are numbered per user (`n`), and an alert is raised only if the
-- user may see the report then, so no number tells of anyone else's or of hidden reports.
CREATE TABLE IF NOT EXISTS watches (
    id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), n INTEGER NOT NULL,
    name TEXT NOT NULL COLLATE NOCASE, created_at TEXT NOT NULL,
    UNIQUE (user_id, name), UNIQUE (user_id, n)
);
CREATE INDEX IF NOT EXISTS watches_name ON watches (name);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY, watch_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
    n INTEGER NOT NULL, seq INTEGER NOT NULL, entity_id INTEGER NOT NULL, at TEXT NOT NULL,
    UNIQUE (watch_id, seq), UNIQUE (user_id, n)
);
-- Standing requirements, numbered per user (`n`, the id the owner sees). The meta row
-- `requirements_version` changes with every write so that open streams reload them.
CREATE TABLE IF NOT EXISTS requirements (
    id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), n INTEGER NOT NULL,
    name TEXT NOT NULL, filters TEXT NOT NULL, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, UNIQUE (user_id, n)
);
INSERT OR IGNORE INTO meta VALUES ('requirements_version', 1);
-- The last number each user's requirements got: a removed one's number is not given again
-- (an open stream that names it must not start using someone's new filters).
CREATE TABLE IF NOT EXISTS requirement_numbers (
    user_id INTEGER PRIMARY KEY, last INTEGER NOT NULL
);
-- Node secrets, made once: `cursor` seals the positions given out as cursors.
CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);
-- How far each consumer of the `events` outbox has got.
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, seq INTEGER NOT NULL);

-- Audit events of writes, committed with the write they record; the audit log moves
-- them into the chain in `audit.db` right after (and on opening, after a crash).
-- AUTOINCREMENT: ids are never reused once chained rows are pruned, since the chain's
-- cursor in audit.db says "every id up to here is chained".
CREATE TABLE IF NOT EXISTS audit_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL, member TEXT,
    action TEXT NOT NULL, target TEXT, label_id INTEGER, detail TEXT NOT NULL
);
"""

# The audit chain lives in a file of its own (`audit.db`): reads are audited, and a write
# to the main file on every read would discard every reader's page cache (SQLite resets
# a connection's cache whenever another connection has changed the file), which cost
# searches at a million reports 8-10 ms each.
AUDIT_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, member TEXT,
    action TEXT NOT NULL, target TEXT, label_id INTEGER, detail TEXT NOT NULL,
    prev TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_member ON audit (member, seq);
-- The last `audit_outbox` id of the main file already chained here.
CREATE TABLE IF NOT EXISTS outbox_cursor (id INTEGER NOT NULL);
INSERT INTO outbox_cursor SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM outbox_cursor);
"""


def _upgrade(conn: sqlite3.Connection) -> None:
    """Bring a data folder of an earlier release up to this schema (additive changes)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    if "user_id" not in columns:  # before RFIs and alerts joined the outbox
        conn.execute("ALTER TABLE events ADD COLUMN user_id INTEGER")
    columns = {row[1] for row in conn.execute("PRAGMA table_info(report_versions)")}
    if "added_at" not in columns:  # before TAXII dated versions by their arrival here
        conn.execute("BEGIN IMMEDIATE")  # the column, its values and its index, or nothing
        try:
            conn.execute("ALTER TABLE report_versions ADD COLUMN added_at TEXT")
            conn.execute(BACKFILL_ADDED)
            conn.execute("CREATE INDEX report_versions_added ON report_versions (added_at, seq)")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


class Database:
    """Connections to one SQLite file."""

    def __init__(self, path: Path, schema: str = SCHEMA) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        # Opened for the lock alone (never written); the kernel releases it if we die.
        self._lock_file = open(path.with_name(path.name + "-lock"), "a")  # noqa: SIM115
        self._writer = self._connect()
        self._writer.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's job
        self._checkpoints = Checkpointer(self._connect, self._writers_held, CHECKPOINT_INTERVAL_S)
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        # Called after each committed write, outside the lock (the audit log's drain).
        self.after_commit: Callable[[], None] | None = None
        with self._write_lock, self._between_processes():
            self._writer.executescript(schema)
            if schema is SCHEMA:
                _upgrade(self._writer)
        if schema is not SCHEMA:
            return
        with self.write() as conn:
            for name, members in BUILTIN_COMMUNITIES.items():
                conn.execute("INSERT OR IGNORE INTO communities VALUES (?, 1)", (name,))
                conn.executemany(
                    "INSERT OR IGNORE INTO community_members VALUES (?, ?)",
                    [(name, code) for code in members],
                )

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA cache_size=-65536")
        return conn

    def reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same committed state."""
        conn = self.reader()
        if conn.in_transaction:  # nested: the outer snapshot already fixes the state
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    @contextmanager
    def _writers_held(self) -> Iterator[None]:
        """No writer of this process or any other runs meanwhile."""
        with self._write_lock, self._between_processes():
            yield

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; it commits on leaving, or rolls back on an exception."""
        with self._writers_held():
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        self._checkpoints.nudge()
        if self.after_commit is not None:
            try:
                self.after_commit()
            except Exception:  # the write is committed; what follows it can be redone
                log.exception("after a committed write to %s", self.path)

    def fts_segments(self) -> int:
        """How many segments the full-text index has (each is merged at query time)."""
        row = self.reader().execute("SELECT count(DISTINCT segid) FROM report_fts_idx").fetchone()
        return int(row[0])

    @contextmanager
    def _between_processes(self) -> Iterator[None]:
        """Queue behind other processes' writers (blocking; the GIL is released meanwhile)."""
        fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._checkpoints.close()
        self._writer.close()
        self._lock_file.close()
