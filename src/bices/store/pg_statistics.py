"""Fresh planner statistics for the tables search plans on, kept by the node itself.

Search asks the planner how many rows a query's words match (`pg_search._estimate`) and
reads the share of each label from `pg_stats`; with no statistics PostgreSQL guesses 0.5%
for any word, so a word in most reports is searched as if it were rare (at 1,000,000
reports: 70 ms instead of 30). PostgreSQL's autovacuum keeps statistics fresh, but it can be
off (as on the machines the benchmarks run on) or busy elsewhere. So after a write, at most
every `interval_s`, a thread of the writing process looks at how much of each table changed
since its last ANALYZE and, past autovacuum's own default threshold (50 rows plus 10% of
the table), analyses it. A session advisory lock makes it one process at a time per node;
ANALYZE blocks neither reads nor writes.
"""

from __future__ import annotations

import logging
import threading
import time

from bices.store.pg_db import ANALYZE_LOCK, PgDatabase

log = logging.getLogger(__name__)

# The tables whose statistics plans depend on: the search document and the label of each
# current version.
TABLES = ("current_reports",)
# autovacuum_analyze_threshold and autovacuum_analyze_scale_factor as PostgreSQL ships them.
THRESHOLD_ROWS = 50
SCALE = 0.1

STALE = f"""
SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.schemaname = current_schema() AND s.relname = ANY(%s)
AND s.n_mod_since_analyze > {THRESHOLD_ROWS} + {SCALE} * greatest(c.reltuples, 0)
"""


class StatisticsKeeper:
    """Analyses the search tables when they have changed enough (see the module)."""

    def __init__(self, db: PgDatabase, interval_s: float = 30.0) -> None:
        self._db = db
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self._thread: threading.Thread | None = None
        self._closed = False
        self.analysed = 0  # tables analysed by this process (the tests read it)

    def after_write(self) -> None:
        """Called after each committed write: start a check if none is due or running."""
        with self._lock:
            now = time.monotonic()
            if self._closed or now - self._checked < self.interval_s:
                return
            if self._thread is not None and self._thread.is_alive():
                return
            self._checked = now
            self._thread = threading.Thread(
                target=self._check, name="bices-pg-statistics", daemon=True
            )
            self._thread.start()

    def _check(self) -> None:
        try:
            self.refresh()
        except Exception:  # statistics are an optimisation: a failure only costs speed
            log.exception("refreshing planner statistics")

    def refresh(self) -> list[str]:
        """Analyse the tables that changed past the threshold, unless another process of
        the node is at it; the tables analysed."""
        with self._db.read() as conn:
            stale = [str(row[0]) for row in conn.execute(STALE, [list(TABLES)]).fetchall()]
            if not stale:
                return []
            taken = conn.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", (self._db.lock_class(), ANALYZE_LOCK)
            ).fetchone()
            if taken is None or not taken[0]:
                return []
            try:
                for table in stale:
                    started = time.monotonic()
                    conn.execute(f"ANALYZE {table}")
                    self.analysed += 1
                    log.info("analysed %s in %.1f s", table, time.monotonic() - started)
            finally:
                conn.execute(
                    "SELECT pg_advisory_unlock(%s, %s)", (self._db.lock_class(), ANALYZE_LOCK)
                )
        return stale

    def close(self, timeout_s: float = 30.0) -> None:
        """No new checks; wait (bounded) for one under way, before the pool closes."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
