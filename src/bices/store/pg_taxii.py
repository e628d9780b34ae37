"""What the TAXII server reads and keeps in PostgreSQL: report versions in store order, under
the viewer's visible label ids, and the status resources of posted envelopes.

The reads and the envelope's write are those of the SQLite backend
(`bices.store.taxii_queries`), written with PostgreSQL's parameters and arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bices.store.pg_db import Connection, PgDatabase
from bices.store.pg_reports import COLUMNS, PgReports
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
    id text PRIMARY KEY, member text NOT NULL, user_name text NOT NULL,
    collection text NOT NULL, requested_at text NOT NULL, body text NOT NULL
);
-- Versions per label in store order: the first version of a label that a viewer may see is
-- where the TAXII stream introduces that label's marking definition.
CREATE INDEX IF NOT EXISTS taxii_versions_label ON report_versions (label_id, seq);
"""

POSTGRES = Dialect("%({name})s", "{column} = ANY({param})", list)


class PgTaxii(SqlTaxii[Connection]):
    def __init__(self, db: PgDatabase, reports: PgReports) -> None:
        super().__init__(db, reports, POSTGRES)
        self._pg = db

    def reads(self, conn: Connection) -> PgTaxiiSnapshot:
        return PgTaxiiSnapshot(conn, self._reports)

    def status(self, member: str, status_id: str) -> tuple[str, datetime, dict[str, Any]] | None:
        with self._pg.read() as conn:
            row = conn.execute(
                "SELECT collection, requested_at, body FROM taxii_status "
                "WHERE id = %s AND member = %s",
                (status_id, member),
            ).fetchone()
        return None if row is None else status_of_row(row)


class PgTaxiiSnapshot(SelectionReads):
    """Queries inside one read snapshot; callers pass only label ids the viewer may see."""

    def __init__(self, conn: Connection, reports: RowReader) -> None:
        super().__init__(conn, reports, POSTGRES, COLUMNS)

    def first_stored(
        self, report_ids: Sequence[str], labels: tuple[int, ...]
    ) -> dict[str, datetime]:
        rows = self.conn.execute(
            "SELECT DISTINCT ON (report_id) report_id, stored_at FROM report_versions "
            "WHERE report_id = ANY(%s) AND label_id = ANY(%s) ORDER BY report_id, version",
            (sorted(set(report_ids)), list(labels)),
        ).fetchall()
        return {row[0]: datetime.fromisoformat(row[1]) for row in rows}

    def existing(
        self, versions: Sequence[tuple[str, int]], labels: tuple[int, ...]
    ) -> set[tuple[str, int]]:
        rows = self.conn.execute(
            "SELECT v.report_id, v.version "
            "FROM unnest(%s::text[], %s::bigint[]) AS wanted (report_id, version) "
            "JOIN report_versions v "
            "ON v.report_id = wanted.report_id AND v.version = wanted.version "
            "WHERE v.label_id = ANY(%s)",
            ([pair[0] for pair in versions], [pair[1] for pair in versions], list(labels)),
        ).fetchall()
        return {(row[0], row[1]) for row in rows}
