"""The embedded default backend: one SQLite file in the data folder."""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from pathlib import Path

from bices.domain.cursors import Sealer
from bices.store import peers, tearlines
from bices.store.sqlite_audit import SqliteAuditLog, append_audit
from bices.store.sqlite_coalition import SqliteCoalition
from bices.store.sqlite_db import AUDIT_SCHEMA, Database
from bices.store.sqlite_exploits import SqliteExploits
from bices.store.sqlite_operations import SqliteOperations
from bices.store.sqlite_outbox import SqliteOutbox
from bices.store.sqlite_reports import SqliteReports
from bices.store.sqlite_requirements import SqliteRequirements
from bices.store.sqlite_rfis import SqliteRfis
from bices.store.sqlite_rfis import install as install_rfis
from bices.store.sqlite_taxii import SQLITE, SqliteTaxii


class SqliteStore:
    """Implements `bices.store.Store` on `DIR/bices.db`."""

    def __init__(self, path: Path, search_rank_limit: int = 4000) -> None:
        self.db = Database(path)
        self.coalition = SqliteCoalition(self.db)
        self.sealer = Sealer(self._secret("cursor"))
        self.reports = SqliteReports(
            self.db, self.coalition.directory_state, search_rank_limit, sealer=self.sealer
        )
        self.audit_db = Database(path.with_name("audit.db"), AUDIT_SCHEMA)
        self._move_legacy_audit()
        self.audit = SqliteAuditLog(
            self.db, self.audit_db, self.reports.labels, self.coalition.directory_state
        )
        self.exploits = SqliteExploits(self.db, self.reports, self.coalition.directory_state)
        self.outbox = SqliteOutbox(self.db)
        self.operations = SqliteOperations(self.db)
        self.requirements = SqliteRequirements(self.db)
        install_rfis(self.db)
        self.rfis = SqliteRfis(self.db, self.reports)
        self.taxii = SqliteTaxii(self.db, self.reports)
        with self.db.write() as conn:
            for schema in (peers.SCHEMA, tearlines.SCHEMA):
                for statement in schema.split(";"):
                    if statement.strip():
                        conn.execute(statement)
        self.tearlines = tearlines.SqlTearlines(lambda: nullcontext(self.db.reader()), SQLITE)
        self.peers = peers.SqlPeers(
            self.db.write, lambda: nullcontext(self.db.reader()), SQLITE, append_audit
        )
        self.node_key = self._secret("node-key")  # the node's Ed25519 private key

    def _secret(self, name: str) -> bytes:
        """A random 32-byte node secret, made on first use and kept in the store."""
        with self.db.write() as conn:
            conn.execute("INSERT OR IGNORE INTO secrets VALUES (?, ?)", (name, os.urandom(32)))
            row = conn.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
        return bytes(row[0])

    def _move_legacy_audit(self) -> None:
        """Data folders of the first release kept the chain in the main file: move it, and
        drop the old table only once its events are in audit.db."""
        with self.db.write() as main:  # one process at a time does this
            if main.execute("SELECT 1 FROM sqlite_master WHERE name = 'audit'").fetchone() is None:
                return
            rows = main.execute("SELECT * FROM audit ORDER BY seq").fetchall()
            with self.audit_db.write() as conn:
                if conn.execute("SELECT count(*) FROM audit").fetchone()[0] == 0:
                    conn.executemany(
                        "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        map(tuple, rows),
                    )
                moved = {r[0] for r in conn.execute("SELECT seq, hash FROM audit")}
            if all(row["seq"] in moved for row in rows):
                main.execute("DROP TABLE IF EXISTS audit")

    def optimize(self) -> str:
        """Merge the full-text index into one segment and refresh the planner's statistics.

        FTS5 keeps an index written in many small transactions as a stack of segments
        (ten at a million reports) and merges their doclists on every query; one segment
        makes searches at 1M roughly a third faster. Writers wait while it runs (~20 s
        per million reports), so run it when the node is quiet, as one would a VACUUM.
        """
        started = time.monotonic()
        before = self.db.fts_segments()
        with self.db.write() as conn:
            conn.execute("INSERT INTO report_fts(report_fts) VALUES('optimize')")
            conn.execute("PRAGMA optimize")
        after = self.db.fts_segments()
        return (
            f"search index: {before} segment(s) merged into {after} "
            f"in {time.monotonic() - started:.1f} s"
        )

    def close(self) -> None:
        self.db.close()
        self.audit_db.close()
