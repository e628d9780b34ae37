"""Report versions, attachments, listing and FTS5 search in SQLite, filtered by the rule;
the reads both backends answer alike are `bices.store.reports.ReportReads`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from bices.domain.cursors import Sealer
from bices.domain.labels import Label
from bices.domain.reports import ReportVersion
from bices.domain.users import Viewer
from bices.store import sqlite_listing as listing
from bices.store.base import ReportWrite
from bices.store.listing import Asked, Found
from bices.store.reports import (
    COLUMNS,
    ReportReads,
    check_versions,
    insert_versions,
    next_added_at,
    number,
)
from bices.store.sqlite_audit import append_audit
from bices.store.sqlite_db import Database
from bices.store.sqlite_labels import label_id as label_id_of
from bices.store.sqlite_outbox import next_seq
from bices.store.visibility import DirectoryState, LabelIndex

__all__ = ["COLUMNS", "SqliteReports"]


def _supersede(conn: sqlite3.Connection, report_id: str, version: int, seq: int) -> None:
    """Take the current version out of the search index and the current set."""
    old = conn.execute("SELECT current_seq FROM reports WHERE id = ?", (report_id,)).fetchone()[0]
    conn.execute(
        "INSERT INTO report_fts (report_fts, rowid, title, body, label_token) "
        "SELECT 'delete', seq, title, body, label_token FROM report_versions WHERE seq = ?",
        (old,),
    )
    conn.execute("UPDATE report_versions SET current = 0 WHERE seq = ?", (old,))
    conn.execute("DELETE FROM current_reports WHERE seq = ?", (old,))
    conn.execute(
        "UPDATE reports SET current_version = ?, current_seq = ? WHERE id = ?",
        (version, seq, report_id),
    )


def _insert(conn: sqlite3.Connection, versions: list[ReportVersion], new_ids: set[str]) -> None:
    """Insert stored versions into every table that holds them, the FTS5 index included."""
    insert_versions(conn, "?", versions, new_ids, next_added_at(conn))
    conn.executemany(
        "INSERT INTO report_fts (rowid, title, body, label_token) VALUES (?, ?, ?, ?)",
        [(v.seq, v.title, v.body, f"l{v.label_id}") for v in versions],
    )


class SqliteReports(ReportReads[sqlite3.Connection]):
    dialect = listing.SQLITE

    def __init__(
        self,
        db: Database,
        directory_state: DirectoryState,
        rank_limit: int = 4000,
        *,
        sealer: Sealer,
    ) -> None:
        self._db = db
        self._sealer = sealer  # seals the cursors of listings and searches
        self.rank_limit = rank_limit
        self._directory_state = directory_state
        self.labels = LabelIndex(self._labels_after)

    # -- labels ----------------------------------------------------------------------

    def _labels_after(self, after: int) -> Iterable[tuple[int, Label]]:
        rows = (
            self._db.reader()
            .execute("SELECT id, body FROM labels WHERE id > ? ORDER BY id", (after,))
            .fetchall()
        )
        return [(row["id"], Label.from_json(json.loads(row["body"]))) for row in rows]

    # -- writes ----------------------------------------------------------------------

    def add(self, writes: Sequence[ReportWrite]) -> list[ReportVersion]:
        """Store versions atomically: all of them, their blobs, events and audit, or nothing.

        Sequence numbers are assigned here (the write transaction holds SQLite's write lock,
        across processes too), so every table is filled with one `executemany`.
        """
        with self._db.write() as conn:
            return self.add_in(conn, writes)

    def add_in(
        self, conn: sqlite3.Connection, writes: Sequence[ReportWrite]
    ) -> list[ReportVersion]:
        """`add` inside the caller's write transaction (an RFI answer stores its new report
        with the link to the RFI, so that neither is stored without the other)."""
        ids = json.dumps(sorted({w.version.id for w in writes}))
        current = conn.execute(
            "SELECT id, current_version FROM reports WHERE id IN (SELECT value FROM json_each(?))",
            (ids,),
        )
        new_ids = check_versions(writes, dict(current.fetchall()))
        ready = number(writes, next_seq(conn), lambda label: label_id_of(conn, label))
        for v in ready.versions:
            if v.id not in new_ids:
                _supersede(conn, v.id, v.version, v.seq)
        _insert(conn, ready.versions, new_ids)
        conn.executemany("INSERT OR IGNORE INTO blobs VALUES (?, ?, ?)", ready.blobs)
        conn.executemany("INSERT OR IGNORE INTO tearlines VALUES (?, ?, ?, ?, ?)", ready.links)
        append_audit(conn, ready.audits)
        return ready.versions

    # -- reads -----------------------------------------------------------------------

    @contextmanager
    def viewing(self, viewer: Viewer) -> Iterator[tuple[sqlite3.Connection, tuple[int, ...]]]:
        """A read snapshot and, computed inside it, the viewer's visible label ids.

        Inside one snapshot a row can only carry a label that the same snapshot knows,
        so a version committed meanwhile under a new label is neither hidden nor shown
        by mistake.
        """
        with self._db.snapshot() as conn:
            directory, version = self._directory_state()
            yield conn, self.labels.visible(viewer, directory, version)

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The thread's reader connection."""
        yield self._db.reader()

    def matches(self, conn: sqlite3.Connection, visible: tuple[int, ...], asked: Asked) -> Found:
        return listing.search(conn, visible, asked)
