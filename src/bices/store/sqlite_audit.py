"""The audit hash chain in SQLite, appended inside the caller's write transaction."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from bices.domain.audit import GENESIS, AuditDraft, AuditEvent, chain_hash
from bices.domain.reports import iso
from bices.domain.users import Viewer
from bices.store.sqlite_db import Database
from bices.store.sqlite_labels import label_id
from bices.store.visibility import DirectoryState, LabelIndex


def append_audit(conn: sqlite3.Connection, drafts: Sequence[AuditDraft]) -> None:
    """Chain and insert events; the caller holds the write transaction."""
    if not drafts:
        return
    head = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (0, GENESIS) if head is None else (head["seq"], head["hash"])
    now = datetime.now(UTC)
    rows = []
    for draft in drafts:
        if draft.label is not None:
            draft = replace(draft, label_id=label_id(conn, draft.label), label=None)
        seq += 1
        digest = chain_hash(prev, seq, now, draft)
        rows.append(
            (
                seq,
                iso(now),
                draft.actor,
                draft.member,
                draft.action,
                draft.target,
                draft.label_id,
                json.dumps(draft.detail, sort_keys=True, ensure_ascii=False),
                prev,
                digest,
            )
        )
        prev = digest
    conn.executemany("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _event(row: sqlite3.Row) -> AuditEvent:
    return AuditEvent(
        seq=row["seq"],
        at=datetime.fromisoformat(row["at"]),
        actor=row["actor"],
        member=row["member"],
        action=row["action"],
        target=row["target"],
        label_id=row["label_id"],
        detail=json.loads(row["detail"]),
        prev=row["prev"],
        hash=row["hash"],
    )


class SqliteAuditLog:
    def __init__(self, db: Database, labels: LabelIndex, directory_state: DirectoryState) -> None:
        self._db = db
        self._labels = labels
        self._directory_state = directory_state

    def append(self, drafts: Sequence[AuditDraft]) -> None:
        with self._db.write() as conn:
            append_audit(conn, drafts)

    def events(
        self, viewer: Viewer, member: str | None, after: int, limit: int
    ) -> list[AuditEvent]:
        """Events after `after`, optionally of one member's users, whose item the viewer may see."""
        by_member = "" if member is None else " AND member = ?"
        with self._db.snapshot() as conn:  # the visible set and the rows from one state
            directory, version = self._directory_state()
            visible = json.dumps(self._labels.visible(viewer, directory, version))
            rows = conn.execute(
                "SELECT * FROM audit WHERE seq > ? AND (label_id IS NULL OR label_id IN "
                f"(SELECT value FROM json_each(?))){by_member} ORDER BY seq LIMIT ?",
                [after, visible, *([] if member is None else [member]), limit],
            ).fetchall()
        return [_event(row) for row in rows]

    def all_events(self) -> Iterator[AuditEvent]:
        cursor = self._db.reader().execute("SELECT * FROM audit ORDER BY seq")
        for row in cursor:
            yield _event(row)
