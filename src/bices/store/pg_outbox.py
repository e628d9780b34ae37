"""The `events` outbox in PostgreSQL: what to disseminate, in the order it was stored.

Rows are written in the transaction that stores their item, so the outbox holds exactly
what was committed. Every kind shares one sequence with report versions (a version's seq
is its event's seq). Seqs are the next after the highest stored, taken under the node's
writer lock (`PgDatabase.write`), so transactions commit in the order of their seqs and a
reader that follows `seq > cursor` never skips a row that commits later with a lower seq
(a database sequence would not give that: it hands out numbers before commit order is
known).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from bices.domain.reports import iso
from bices.store.base import OutboxEvent
from bices.store.pg_db import Connection, PgDatabase
from bices.store.sqlite_outbox import outbox_event_of

# kind `report`: a stored version (seq = the version's seq; report_id, version);
# kind `rfi`: an RFI changed (report_id = the RFI's id, version = its revision);
# kind `alert`: a watch matched (report_id = the report, version = the user's alert
# number, user_id = the watcher). `label_id` is the label of the item the event shows.
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq bigint PRIMARY KEY, kind text NOT NULL, report_id text NOT NULL, version bigint NOT NULL,
    label_id bigint NOT NULL, at text NOT NULL, user_id bigint
);
CREATE INDEX IF NOT EXISTS events_kind ON events (kind, seq);
"""


def next_seq(conn: Connection) -> int:
    """The next free seq (call inside a write transaction: it holds the writer lock)."""
    row = conn.execute(
        "SELECT greatest((SELECT coalesce(max(seq), 0) FROM events), "
        "(SELECT coalesce(max(seq), 0) FROM report_versions))"
    ).fetchone()
    assert row is not None
    return int(row[0]) + 1


def append_event(
    conn: Connection,
    kind: str,
    item_id: str,
    revision: int,
    label_id: int,
    user_id: int | None = None,
) -> int:
    """Add one event (not a report version's: those come with the version); its seq."""
    seq = next_seq(conn)
    conn.execute(
        "INSERT INTO events (seq, kind, report_id, version, label_id, at, user_id) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (seq, kind, item_id, revision, label_id, iso(datetime.now(UTC)), user_id),
    )
    return seq


class PgOutbox:
    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    def after(self, seq: int, limit: int, kinds: Sequence[str] | None = None) -> list[OutboxEvent]:
        with self._db.read() as conn:
            if kinds is None:
                rows = conn.execute(
                    "SELECT * FROM events WHERE seq > %s ORDER BY seq LIMIT %s", (seq, limit)
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT * FROM events WHERE seq > %s AND kind = ANY(%s) ORDER BY seq LIMIT %s",
                    (seq, list(kinds), limit),
                ).fetchall()
        return [outbox_event_of(row) for row in rows]

    def head(self) -> int:
        with self._db.read() as conn:
            row = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
        assert row is not None
        return int(row[0])
