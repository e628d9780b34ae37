"""The embedded default backend: one SQLite file in the data folder."""

from __future__ import annotations

from pathlib import Path

from bices.store.sqlite_audit import SqliteAuditLog
from bices.store.sqlite_coalition import SqliteCoalition
from bices.store.sqlite_db import Database
from bices.store.sqlite_reports import SqliteReports


class SqliteStore:
    """Implements `bices.store.Store` on `DIR/bices.db`."""

    def __init__(self, path: Path, search_rank_limit: int = 4000) -> None:
        self.db = Database(path)
        self.coalition = SqliteCoalition(self.db)
        self.reports = SqliteReports(self.db, self.coalition.directory_state, search_rank_limit)
        self.audit = SqliteAuditLog(self.db, self.reports.labels, self.coalition.directory_state)

    def close(self) -> None:
        self.db.close()
