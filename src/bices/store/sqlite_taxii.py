"""What the TAXII server reads and keeps in SQLite: report versions in store order, under the
viewer's visible label ids, and the status resources of posted envelopes.

Every read takes the label ids the caller may see (computed by `SqliteReports.viewing` inside
the same snapshot) and filters rows by them in the query: versions are read a page at a time
by `seq`, never scanned in Python.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from bices.domain.labels import Label
from bices.domain.reports import ReportVersion, iso
from bices.domain.users import Viewer
from bices.store.base import ReportWrite
from bices.store.sqlite_db import Database
from bices.store.sqlite_reports import COLUMNS, SqliteReports
from bices.store.taxii import VersionSelection

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

# `stored_at` is ISO 8601 from `iso()`: microseconds are left out when they are zero, so the
# text is brought to one width before it is compared with a timestamp of the same shape.
STORED_AT = (
    "(CASE WHEN length(stored_at) = 20 THEN substr(stored_at, 1, 19) || '.000000Z' "
    "ELSE stored_at END)"
)


def added_text(moment: datetime) -> str:
    """A timestamp in the fixed-width form `STORED_AT` compares against."""
    text = iso(moment)
    return text if len(text) == 27 else text[:19] + ".000000Z"


def _where(selection: VersionSelection, narrowed: bool = True) -> tuple[str, dict[str, Any]]:
    """The SQL condition and parameters of a selection."""
    clauses = ["label_id IN (SELECT value FROM json_each(:labels))"]
    params: dict[str, Any] = {"labels": json.dumps(selection.labels)}
    if selection.which == "last":
        clauses.append("current = 1")
    elif selection.which == "first":
        clauses.append("version = 1")
    if selection.added_after is not None:
        clauses.append(f"{STORED_AT} > :added_after")
        params["added_after"] = added_text(selection.added_after)
    if narrowed and (selection.report_ids is not None or selection.seqs is not None):
        clauses.append(
            "(report_id IN (SELECT value FROM json_each(:report_ids)) "
            "OR seq IN (SELECT value FROM json_each(:seqs)))"
        )
        params["report_ids"] = json.dumps(selection.report_ids or ())
        params["seqs"] = json.dumps(selection.seqs or ())
    return " AND ".join(clauses), params


class SqliteTaxii:
    def __init__(self, db: Database, reports: SqliteReports) -> None:
        self._db = db
        self._reports = reports
        with db.write() as conn:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)

    @contextmanager
    def viewing(self, viewer: Viewer) -> Iterator[tuple[TaxiiSnapshot, tuple[int, ...]]]:
        """One read snapshot for a whole TAXII answer, and the viewer's visible label ids."""
        with self._reports.viewing(viewer) as (conn, visible):
            yield TaxiiSnapshot(conn, self._reports), visible

    # -- status resources -------------------------------------------------------------

    def store_with_status(
        self,
        writes: Sequence[ReportWrite],
        status_id: str,
        viewer: Viewer,
        collection: str,
        requested_at: datetime,
        record: Callable[[list[ReportVersion]], dict[str, Any]],
    ) -> tuple[list[ReportVersion], dict[str, Any]]:
        """Store an envelope's reports and its status resource in one transaction: a status
        exists exactly when its reports do. `record` makes the status body from what was
        stored."""
        with self._db.write() as conn:
            stored = self._reports.add_in(conn, writes)
            body = record(stored)
            conn.execute(
                "INSERT INTO taxii_status VALUES (?, ?, ?, ?, ?, ?)",
                (status_id, viewer.member, viewer.name, collection, iso(requested_at),
                 json.dumps(body)),
            )  # fmt: skip
        return stored, body

    def status(self, member: str, status_id: str) -> tuple[str, datetime, dict[str, Any]] | None:
        """(collection, requested_at, body) of a status resource posted by `member`'s users."""
        row = (
            self._db.reader()
            .execute(
                "SELECT collection, requested_at, body FROM taxii_status "
                "WHERE id = ? AND member = ?",
                (status_id, member),
            )
            .fetchone()
        )
        if row is None:
            return None
        return row[0], datetime.fromisoformat(row[1]), dict(json.loads(row[2]))


class TaxiiSnapshot:
    """Queries inside one read snapshot; callers pass only label ids the viewer may see."""

    def __init__(self, conn: sqlite3.Connection, reports: SqliteReports) -> None:
        self.conn = conn
        self._reports = reports

    def versions(
        self, selection: VersionSelection, after_seq: int, limit: int
    ) -> list[tuple[ReportVersion, bool]]:
        """The next `limit` selected versions after `after_seq` in store order, each with
        whether it is its report's current version."""
        if not selection.labels:
            return []
        where, params = _where(selection)
        rows = self.conn.execute(
            f"SELECT {COLUMNS}, current FROM report_versions WHERE seq > :after AND {where} "
            "ORDER BY seq LIMIT :limit",
            {**params, "after": after_seq, "limit": limit},
        ).fetchall()
        return [(self._reports.row(row), bool(row["current"])) for row in rows]

    def at_seqs(self, seqs: Sequence[int], labels: tuple[int, ...]) -> list[ReportVersion]:
        """The versions at `seqs` under one of `labels` (the visible ones), in store order."""
        rows = self.conn.execute(
            f"SELECT {COLUMNS} FROM report_versions WHERE seq IN "
            "(SELECT value FROM json_each(?)) AND label_id IN (SELECT value FROM json_each(?)) "
            "ORDER BY seq",
            (json.dumps(sorted(set(seqs))), json.dumps(labels)),
        ).fetchall()
        return [self._reports.row(row) for row in rows]

    def first_seqs(self, selection: VersionSelection) -> dict[int, int]:
        """For each label of the selection, the seq of its first selected version (labels
        with none are left out): one indexed probe per label."""
        found: dict[int, int] = {}
        where, params = _where(selection, narrowed=False)
        for label_id in selection.labels:
            row = self.conn.execute(
                f"SELECT seq FROM report_versions WHERE label_id = :one AND {where} "
                "ORDER BY seq LIMIT 1",
                {**params, "one": label_id},
            ).fetchone()
            if row is not None:
                found[label_id] = int(row[0])
        return found

    def first_stored(
        self, report_ids: Sequence[str], labels: tuple[int, ...]
    ) -> dict[str, datetime]:
        """When the first version of each report under one of `labels` (the visible ones)
        was stored: the STIX `created` of its later versions. A hidden version 1 says
        nothing, not even when it was stored."""
        rows = self.conn.execute(
            "SELECT report_id, stored_at, min(version) FROM report_versions "
            "WHERE report_id IN (SELECT value FROM json_each(?)) "
            "AND label_id IN (SELECT value FROM json_each(?)) GROUP BY report_id",
            (json.dumps(sorted(set(report_ids))), json.dumps(labels)),
        ).fetchall()
        return {row[0]: datetime.fromisoformat(row[1]) for row in rows}

    def label(self, label_id: int) -> Label:
        return self._reports.labels.get(label_id)

    def extractions(self, seqs: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Stored extractions of versions the caller has reached visibly."""
        rows = self.conn.execute(
            "SELECT seq, result FROM extractions WHERE seq IN (SELECT value FROM json_each(?))",
            (json.dumps(list(seqs)),),
        ).fetchall()
        return {row[0]: dict(json.loads(row[1])) for row in rows}

    def existing(
        self, versions: Sequence[tuple[str, int]], labels: tuple[int, ...]
    ) -> set[tuple[str, int]]:
        """Which (report id, version) pairs are stored under one of `labels` (the visible)."""
        rows = self.conn.execute(
            "SELECT v.report_id, v.version FROM json_each(?) j JOIN report_versions v "
            "ON v.report_id = json_extract(j.value, '$[0]') "
            "AND v.version = json_extract(j.value, '$[1]') "
            "WHERE v.label_id IN (SELECT value FROM json_each(?))",
            (json.dumps([list(pair) for pair in versions]), json.dumps(labels)),
        ).fetchall()
        return {(row[0], row[1]) for row in rows}
