"""Standing requirements on SQLite: each user's own, numbered per user."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime

from bices.domain.audit import AuditDraft
from bices.domain.reports import iso
from bices.domain.requirements import Requirement, RequirementDraft
from bices.store.rows import RowLike
from bices.store.sqlite_audit import append_audit
from bices.store.sqlite_db import Database


def requirement_of(row: RowLike) -> Requirement:
    """A requirement from its row (either backend's)."""
    draft = RequirementDraft.model_validate({"name": row["name"], **json.loads(row["filters"])})
    return Requirement(
        id=row["n"],
        user_id=row["user_id"],
        name=row["name"],
        draft=draft,
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )


def _bump(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'requirements_version'")


class SqliteRequirements:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, user_id: int, draft: RequirementDraft, audit: AuditDraft) -> Requirement:
        now = iso(datetime.now(UTC))
        with self._db.write() as conn:
            n = conn.execute(
                "SELECT max(coalesce((SELECT max(n) FROM requirements WHERE user_id = ?), 0), "
                "coalesce((SELECT last FROM requirement_numbers WHERE user_id = ?), 0)) + 1",
                (user_id, user_id),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO requirement_numbers VALUES (?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET last = excluded.last",
                (user_id, n),
            )
            conn.execute(
                "INSERT INTO requirements (user_id, n, name, filters, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (user_id, n, draft.name, json.dumps(draft.filters()), now, now),
            )
            _bump(conn)
            append_audit(conn, [with_target(audit, n)])
            row = conn.execute(
                "SELECT * FROM requirements WHERE user_id = ? AND n = ?", (user_id, n)
            ).fetchone()
        return requirement_of(row)

    def replace(
        self, user_id: int, n: int, draft: RequirementDraft, audit: AuditDraft
    ) -> Requirement | None:
        with self._db.write() as conn:
            changed = conn.execute(
                "UPDATE requirements SET name = ?, filters = ?, updated_at = ? "
                "WHERE user_id = ? AND n = ?",
                (draft.name, json.dumps(draft.filters()), iso(datetime.now(UTC)), user_id, n),
            ).rowcount
            if not changed:
                return None
            _bump(conn)
            append_audit(conn, [audit])
            row = conn.execute(
                "SELECT * FROM requirements WHERE user_id = ? AND n = ?", (user_id, n)
            ).fetchone()
        return requirement_of(row)

    def remove(self, user_id: int, n: int, audit: AuditDraft) -> bool:
        with self._db.write() as conn:
            removed = conn.execute(
                "DELETE FROM requirements WHERE user_id = ? AND n = ?", (user_id, n)
            ).rowcount
            if removed:
                _bump(conn)
                append_audit(conn, [audit])
        return bool(removed)

    def get(self, user_id: int, n: int) -> Requirement | None:
        row = (
            self._db.reader()
            .execute("SELECT * FROM requirements WHERE user_id = ? AND n = ?", (user_id, n))
            .fetchone()
        )
        return None if row is None else requirement_of(row)

    def of_user(self, user_id: int) -> list[Requirement]:
        rows = self._db.reader().execute(
            "SELECT * FROM requirements WHERE user_id = ? ORDER BY n", (user_id,)
        )
        return [requirement_of(row) for row in rows.fetchall()]

    def version(self) -> int:
        """Changes with every write: a stream reloads its user's requirements when it does."""
        row = (
            self._db.reader()
            .execute("SELECT value FROM meta WHERE key = 'requirements_version'")
            .fetchone()
        )
        return int(row[0])


def with_target(audit: AuditDraft, n: int) -> AuditDraft:
    return replace(audit, target=f"requirement/{n}")
