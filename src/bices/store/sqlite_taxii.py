"""What the TAXII server reads and keeps in SQLite: report versions in store order, under the
viewer's visible label ids, and the status resources of posted envelopes.

Every read takes the label ids the caller may see (computed by `SqliteReports.viewing` inside
the same snapshot) and filters rows by them in the query: versions are read a page at a time
by `seq`, never scanned in Python. The queries both SQL backends can share are in
`bices.store.taxii_queries`; here is what only SQLite says this way.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bices.store.sqlite_db import Database
from bices.store.sqlite_reports import COLUMNS, SqliteReports
from bices.store.taxii_queries import (
    Dialect,
    RowReader,
    SelectionReads,
    SqlTaxii,
    status_of_row,
)

SCHEMA = """
-- Status resources of envelopes posted to the TAXII server: only the posting member's users
-- read them, and what they name is filtered again by the access rule when read.
CREATE TABLE IF NOT EXISTS taxii_status (
    id TEXT PRIMARY KEY, member TEXT NOT NULL, user_name TEXT NOT NULL,
    collection TEXT NOT NULL, requested_at TEXT NOT NULL, body TEXT NOT NULL
);
-- Versions per label in store order: the first version of a label that a viewer may see is
-- where the TAXII stream introduces that label's marking definition.
CREATE INDEX IF NOT EXISTS taxii_versions_label ON report_versions (label_id, seq);
"""

SQLITE = Dialect(":{name}", "{column} IN (SELECT value FROM json_each({param}))", json.dumps)


class SqliteTaxii(SqlTaxii[sqlite3.Connection]):
    def __init__(self, db: Database, reports: SqliteReports) -> None:
        super().__init__(db, reports, SQLITE)
        self._sqlite = db
        with db.write() as conn:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)

    def reads(self, conn: sqlite3.Connection) -> TaxiiSnapshot:
        return TaxiiSnapshot(conn, self._reports)

    def status(self, member: str, status_id: str) -> tuple[str, datetime, dict[str, Any]] | None:
        row = (
            self._sqlite.reader()
            .execute(
                "SELECT collection, requested_at, body FROM taxii_status "
                "WHERE id = ? AND member = ?",
                (status_id, member),
            )
            .fetchone()
        )
        return None if row is None else status_of_row(row)


class TaxiiSnapshot(SelectionReads):
    """Queries inside one read snapshot; callers pass only label ids the viewer may see."""

    def __init__(self, conn: sqlite3.Connection, reports: RowReader) -> None:
        super().__init__(conn, reports, SQLITE, COLUMNS)

    def first_stored(
        self, report_ids: Sequence[str], labels: tuple[int, ...]
    ) -> dict[str, datetime]:
        rows = self.conn.execute(
            "SELECT report_id, stored_at, min(version) FROM report_versions "
            "WHERE report_id IN (SELECT value FROM json_each(?)) "
            "AND label_id IN (SELECT value FROM json_each(?)) GROUP BY report_id",
            (json.dumps(sorted(set(report_ids))), json.dumps(labels)),
        ).fetchall()
        return {row[0]: datetime.fromisoformat(row[1]) for row in rows}

    def existing(
        self, versions: Sequence[tuple[str, int]], labels: tuple[int, ...]
    ) -> set[tuple[str, int]]:
        rows = self.conn.execute(
            "SELECT v.report_id, v.version FROM json_each(?) j JOIN report_versions v "
            "ON v.report_id = json_extract(j.value, '$[0]') "
            "AND v.version = json_extract(j.value, '$[1]') "
            "WHERE v.label_id IN (SELECT value FROM json_each(?))",
            (json.dumps([list(pair) for pair in versions]), json.dumps(labels)),
        ).fetchall()
        return {(row[0], row[1]) for row in rows}
