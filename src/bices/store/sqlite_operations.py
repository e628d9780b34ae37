"""What an operator reads of the node as a whole: sizes, queues, live streams.

Node-wide figures, never served to users (they count items of every label): `bices
status` prints them and `/metrics` answers them to operators only.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

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
        """A server process's open streams, now: a small file per process beside the
        database (a write to the database itself would reset every reader's page cache)."""
        folder = self._presence_folder()
        folder.mkdir(exist_ok=True)
        path = folder / f"{_safe(process)}.json"
        scratch = path.with_suffix(".tmp")
        scratch.write_text(json.dumps({"process": process, "subscribers": subscribers}))
        os.replace(scratch, path)

    def subscribers(self, max_age_s: float = 15.0) -> tuple[int, int]:
        """(open streams, server processes) of the processes heard from lately."""
        total = processes = 0
        folder = self._presence_folder()
        if not folder.is_dir():
            return 0, 0
        for path in folder.glob("*.json"):
            try:
                if time.time() - path.stat().st_mtime > max_age_s:
                    continue
                total += int(json.loads(path.read_text())["subscribers"])
                processes += 1
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a process ending or writing it right now
        return total, processes

    def _presence_folder(self) -> Path:
        return self._db.path.parent / "streams"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
