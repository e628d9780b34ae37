"""The `events` outbox: what to disseminate, in the order it was stored.

Rows are written in the transaction that stores their item, so the outbox holds exactly
what was committed. Every kind shares one sequence with report versions (a version's seq
is its event's seq), allocated under the write lock, so commits and seqs come in the same
order and a reader that follows `seq > cursor` never skips a row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

from bices.domain.reports import iso
from bices.store.base import OutboxEvent
from bices.store.rows import RowLike
from bices.store.sqlite_db import Database


def next_seq(conn: sqlite3.Connection) -> int:
    """The next free seq (call inside a write transaction)."""
    row = conn.execute(
        "SELECT max(coalesce((SELECT max(seq) FROM events), 0), "
        "coalesce((SELECT max(seq) FROM report_versions), 0))"
    ).fetchone()
    return int(row[0]) + 1


def append_event(
    conn: sqlite3.Connection,
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
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (seq, kind, item_id, revision, label_id, iso(datetime.now(UTC)), user_id),
    )
    return seq


def outbox_event_of(row: RowLike) -> OutboxEvent:
    """An outbox event from its row (either backend's)."""
    return OutboxEvent(
        seq=row["seq"],
        kind=row["kind"],
        item_id=row["report_id"],
        revision=row["version"],
        label_id=row["label_id"],
        at=datetime.fromisoformat(row["at"]),
        user_id=row["user_id"],
    )


class SqliteOutbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    def after(self, seq: int, limit: int, kinds: Sequence[str] | None = None) -> list[OutboxEvent]:
        sql = "SELECT * FROM events WHERE seq > ?"
        params: list[object] = [seq]
        if kinds is not None:
            sql += f" AND kind IN ({', '.join('?' for _ in kinds)})"
            params.extend(kinds)
        rows = self._db.reader().execute(sql + " ORDER BY seq LIMIT ?", (*params, limit))
        return [outbox_event_of(row) for row in rows.fetchall()]

    def head(self) -> int:
        row = self._db.reader().execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
        return int(row[0])
