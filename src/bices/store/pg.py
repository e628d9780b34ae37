"""The scale-out backend: one PostgreSQL database shared by every process of the node
(`BICES_DATABASE_URL=postgresql://…`)."""

from __future__ import annotations

import os
import time

from bices.domain.cursors import Sealer
from bices.store.peers import SqlPeers
from bices.store.pg_audit import PgAuditLog, append_audit
from bices.store.pg_coalition import PgCoalition
from bices.store.pg_db import PgDatabase
from bices.store.pg_exploits import PgExploits
from bices.store.pg_labels import node_secret
from bices.store.pg_operations import PgOperations
from bices.store.pg_outbox import PgOutbox
from bices.store.pg_reports import PgReports
from bices.store.pg_requirements import PgRequirements
from bices.store.pg_rfis import PgRfis
from bices.store.pg_schema import require_latest, upgrade
from bices.store.pg_statistics import StatisticsKeeper
from bices.store.pg_taxii import POSTGRES, PgTaxii
from bices.store.tearlines import SqlTearlines


class PostgresStore:
    """Implements `bices.store.Store` on a PostgreSQL database (or a schema of one)."""

    def __init__(self, url: str, search_rank_limit: int = 4000, migrate: bool = True) -> None:
        self.db = PgDatabase(url)
        try:
            if migrate:
                upgrade(self.db)
            else:
                require_latest(self.db)
            self.coalition = PgCoalition(self.db)
            self.sealer = Sealer(node_secret(self.db, "cursor", os.urandom(32)))
            self.reports = PgReports(
                self.db, self.coalition.directory_state, search_rank_limit, self.sealer
            )
            self.audit = PgAuditLog(self.db, self.reports.labels, self.coalition.directory_state)
            self.exploits = PgExploits(self.db, self.reports, self.coalition.directory_state)
            self.outbox = PgOutbox(self.db)
            self.operations = PgOperations(self.db)
            self.requirements = PgRequirements(self.db)
            self.rfis = PgRfis(self.db, self.reports)
            self.taxii = PgTaxii(self.db, self.reports)
            self.peers = SqlPeers(self.db.write, self.db.read, POSTGRES, append_audit)
            self.tearlines = SqlTearlines(self.db.read, POSTGRES)
            self.node_key = node_secret(self.db, "node-key", os.urandom(32))
            self.statistics = StatisticsKeeper(self.db)
            self.db.after_commit.append(self.statistics.after_write)
        except BaseException:
            self.db.close()
            raise

    def optimize(self) -> str:
        """Refresh the planner's statistics and reclaim dead rows (PostgreSQL's autovacuum
        does this in time, and the node refreshes the search table's statistics by itself,
        `pg_statistics`; run it after a bulk load)."""
        started = time.monotonic()
        with self.db.read() as conn:
            conn.execute("VACUUM (ANALYZE)")
        return f"vacuum and analyze in {time.monotonic() - started:.1f} s"

    def close(self) -> None:
        self.statistics.close()
        self.db.close()
