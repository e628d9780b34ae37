"""What an operator reads of the node as a whole on PostgreSQL: sizes, queues, live streams.

Node-wide figures, never served to users (they count items of every label): `bices
status` prints them and `/metrics` answers them to operators only. Server processes of
one node may run on several machines, so each one's open streams are a row of
`stream_presence` (not a file beside the data, as on the embedded store), dated by the
database's clock so that the machines' clocks need not agree.
"""

from __future__ import annotations

from bices.store.pg_db import PgDatabase
from bices.store.sqlite_operations import FIGURES

SCHEMA = """
CREATE TABLE IF NOT EXISTS stream_presence (
    process text PRIMARY KEY, subscribers integer NOT NULL, reported_at timestamptz NOT NULL
);
"""

# The node's share of the database: every table of its schema, with indexes and TOAST.
SIZE = (
    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')"
)


class PgOperations:
    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    def figures(self) -> dict[str, int]:
        """Counts of the node's contents (one read snapshot) and its size in bytes."""
        found: dict[str, int] = {}
        with self._db.snapshot() as conn:
            for name, sql in {**FIGURES, "database_bytes": SIZE}.items():
                row = conn.execute(sql).fetchone()
                assert row is not None
                found[name] = int(row[0])
        return found

    def report_presence(self, process: str, subscribers: int) -> None:
        """A server process's open streams, now (an upsert of its row: it needs none of
        the writer lock's ordering, so it does not queue behind writes)."""
        with self._db.read() as conn:
            conn.execute(
                "INSERT INTO stream_presence VALUES (%s, %s, now()) ON CONFLICT (process) "
                "DO UPDATE SET subscribers = excluded.subscribers, reported_at = now()",
                (process, subscribers),
            )
            # Processes that ended without a word (killed, or their machine gone).
            conn.execute("DELETE FROM stream_presence WHERE reported_at < now() - interval '1 day'")

    def subscribers(self, max_age_s: float = 15.0) -> tuple[int, int]:
        """(open streams, server processes) of the processes heard from lately."""
        with self._db.read() as conn:
            row = conn.execute(
                "SELECT coalesce(sum(subscribers), 0), count(*) FROM stream_presence "
                "WHERE reported_at >= now() - make_interval(secs => %s)",
                (max_age_s,),
            ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])
