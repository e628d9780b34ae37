"""Versioned migrations of the PostgreSQL store, applied on start or by `bices db upgrade`.

Each migration is applied once, in its own transaction, under an advisory lock (so that
several processes starting together do not race), and recorded in `schema_migrations`.
Migration 1 is the first release's schema: the DDL each part of the store declares
(`SCHEMA` in `pg_<part>.py`). A later change is a new migration appended here, never an
edit of an applied one.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import UTC, datetime

from bices.domain.members import BUILTIN_COMMUNITIES
from bices.store.pg_db import MIGRATION_LOCK, Connection, PgDatabase


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    parts: tuple[str, ...]  # modules of bices.store whose SCHEMA it applies

    def statements(self) -> str:
        return "\n".join(
            importlib.import_module(f"bices.store.{part}").SCHEMA for part in self.parts
        )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", (
        "pg_labels", "pg_audit", "pg_coalition", "pg_reports", "pg_outbox", "pg_operations",
        "pg_exploits", "pg_requirements", "pg_rfis", "pg_taxii",
    )),
    Migration(2, "federation: peer nodes", ("peers",)),
    Migration(3, "tearlines", ("tearlines",)),
    Migration(4, "search: recency lexemes", ("pg_recency",)),
    Migration(5, "federation: RFIs mirrored from peers", ("rfi_mirrors",)),
    Migration(6, "TAXII: when each version was added here", ("pg_added",)),
)  # fmt: skip

LATEST = MIGRATIONS[-1].version


def applied(conn: Connection) -> int:
    """The version the database is at (0 for an empty one)."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version integer PRIMARY KEY, name text NOT NULL, applied_at text NOT NULL)"
    )
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    assert row is not None
    return int(row[0])


def require_latest(db: PgDatabase) -> None:
    """Refuse to run on a database whose schema is not this release's."""
    with db.read() as conn:
        at = applied(conn)
    if at != LATEST:
        raise SystemExit(
            f"the database is at schema version {at}, this release needs {LATEST}: "
            "run `bices db upgrade` (or start with BICES_MIGRATE=true)"
        )


def upgrade(db: PgDatabase) -> list[Migration]:
    """Apply what is pending; the migrations applied now (none if up to date)."""
    done: list[Migration] = []
    with db.read() as conn, conn.transaction():
        db.lock(conn, MIGRATION_LOCK)
        at = applied(conn)
        if at > LATEST:
            raise SystemExit(
                f"the database is at schema version {at}, newer than this release knows "
                f"({LATEST}): upgrade BICES before using it"
            )
        for migration in MIGRATIONS:
            if migration.version <= at:
                continue
            conn.execute(migration.statements())
            conn.execute(
                "INSERT INTO schema_migrations VALUES (%s, %s, %s)",
                (migration.version, migration.name, datetime.now(UTC).isoformat()),
            )
            done.append(migration)
        _seed(conn)
    return done


def _seed(conn: Connection) -> None:
    """The built-in communities (NATO, IP4), added where missing."""
    for name, members in BUILTIN_COMMUNITIES.items():
        conn.execute(
            "INSERT INTO communities VALUES (%s, 1) ON CONFLICT (name) DO NOTHING", (name,)
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO community_members VALUES (%s, %s) ON CONFLICT DO NOTHING",
                [(name, code) for code in members],
            )
