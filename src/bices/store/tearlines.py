"""Tearlines: sanitised reports released under a lower label, each linked to the report it
was made from, in either SQL backend.

The tearline is a report of its own (version 1, its own label, signed by the originator);
its link (`ReportWrite.tearline_of`) is stored by the backend's `add_in` in the same
transaction. Who may see the link is decided on read: a viewer learns that a report is a
tearline of another only if the viewer may see that other report.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from bices.store.taxii_queries import Dialect

SCHEMA = """
-- A tearline (report_id) and the version of the report it was sanitised from.
CREATE TABLE IF NOT EXISTS tearlines (
    report_id TEXT PRIMARY KEY, source_id TEXT NOT NULL, source_version INTEGER NOT NULL,
    released_by TEXT NOT NULL, released_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tearlines_source ON tearlines (source_id);
"""

Connect = Callable[[], AbstractContextManager[Any]]


class SqlTearlines:
    def __init__(self, read: Connect, dialect: Dialect) -> None:
        self._read = read
        self._d = dialect

    def source_of(self, report_id: str) -> tuple[str, int] | None:
        """The report and version a tearline was made from (system use: the caller shows
        it only to a viewer who may see that report)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT source_id, source_version FROM tearlines "
                f"WHERE report_id = {self._d.param('id')}",
                {"id": report_id},
            ).fetchone()
        return None if row is None else (str(row[0]), int(row[1]))

    def made_from(self, source_id: str) -> list[str]:
        """The tearlines made from a report (system use: the caller filters by the rule)."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT report_id FROM tearlines WHERE source_id = {self._d.param('id')} "
                "ORDER BY released_at, report_id",
                {"id": source_id},
            ).fetchall()
        return [str(row[0]) for row in rows]
