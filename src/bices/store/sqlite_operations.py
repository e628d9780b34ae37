"""What an operator reads of the node as a whole: sizes, queues, live streams.

Node-wide figures, never served to users (they count items of every label): `bices
status` prints them and `/metrics` answers them to operators only.
"""

from __future__ import annotations

import time

from bices.store.sqlite_db import Database

FIGURES = {
    "reports": "SELECT count(*) FROM current_reports",
    "report_versions": "SELECT coalesce(max(seq), 0) FROM report_versions",
    "outbox_head": "SELECT coalesce(max(seq), 0) FROM events",
    "members": "SELECT count(*) FROM members",
    "active_members": "SELECT count(*) FROM members WHERE status = 'active'",
    "users": "SELECT count(*) FROM users",
    "requirements": "SELECT count(*) FROM requirements",
    "watches": "SELECT count(*) FROM watches",
    "blobs": "SELECT count(*) FROM blobs",
}


class SqliteOperations:
    def __init__(self, db: Database) -> None:
        self._db = db

    def figures(self) -> dict[str, int]:
        """Counts of the node's contents (one read snapshot)."""
        with self._db.snapshot() as conn:
            found = {name: int(conn.execute(sql).fetchone()[0]) for name, sql in FIGURES.items()}
        found["database_bytes"] = self._db.path.stat().st_size
        return found

    def report_presence(self, process: str, subscribers: int) -> None:
        """A server process's open streams, now."""
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO stream_presence VALUES (?, ?, ?) ON CONFLICT (process) "
                "DO UPDATE SET subscribers = excluded.subscribers, updated = excluded.updated",
                (process, subscribers, time.time()),
            )
            conn.execute("DELETE FROM stream_presence WHERE updated < ?", (time.time() - 3600,))

    def subscribers(self, max_age_s: float = 15.0) -> tuple[int, int]:
        """(open streams, server processes) of the processes heard from lately."""
        row = (
            self._db.reader()
            .execute(
                "SELECT coalesce(sum(subscribers), 0), count(*) FROM stream_presence "
                "WHERE updated >= ?",
                (time.time() - max_age_s,),
            )
            .fetchone()
        )
        return int(row[0]), int(row[1])
