"""The audit hash chain in PostgreSQL.

A write chains its events inside its own transaction, so a write and its audit events
are stored together or not at all. The chain's head is guarded by an advisory lock held
to the end of the transaction: writers (who already queue on the writer lock) and audited
reads (which take only this lock) append one after another, so two events never get the
same seq or the same previous hash — the chain cannot fork, however many processes write.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from bices.domain.audit import GENESIS, AuditDraft, AuditEvent, chain_hash
from bices.domain.reports import iso
from bices.domain.users import Viewer
from bices.store.pg_db import CHAIN_LOCK, Connection, PgDatabase
from bices.store.pg_labels import label_id, label_key
from bices.store.sqlite_audit import event_of_row
from bices.store.visibility import DirectoryState, LabelIndex

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq bigint PRIMARY KEY, at text NOT NULL, actor text NOT NULL, member text,
    action text NOT NULL, target text, label_id bigint, detail text NOT NULL,
    prev text NOT NULL, hash text NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_member ON audit (member, seq);
"""

PAGE = 5000  # rows fetched at a time by `all_events`


def append_audit(conn: Connection, drafts: Sequence[AuditDraft]) -> None:
    """Chain events inside the caller's transaction (which holds the writer lock when it
    may create labels)."""
    if not drafts:
        return
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema())::int, %s)", (CHAIN_LOCK,))
    head = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (0, GENESIS) if head is None else (int(head[0]), str(head[1]))
    at = datetime.now(UTC)
    rows = []
    for draft in drafts:
        resolved = draft
        if draft.label is not None:
            resolved = replace(draft, label_id=label_id(conn, draft.label), label=None)
        seq += 1
        digest = chain_hash(prev, seq, at, resolved)
        rows.append(
            (seq, iso(at), resolved.actor, resolved.member, resolved.action, resolved.target,
             resolved.label_id, json.dumps(resolved.detail, sort_keys=True, ensure_ascii=False),
             prev, digest)
        )  # fmt: skip
        prev = digest
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO audit VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)


class PgAuditLog:
    def __init__(self, db: PgDatabase, labels: LabelIndex, directory_state: DirectoryState) -> None:
        self._db = db
        self._labels = labels
        self._directory_state = directory_state
        self._label_ids: dict[str, int] = {}

    def append(self, drafts: Sequence[AuditDraft]) -> None:
        """Events that go with no other write (reads, refusals): a short transaction of its
        own that queues only on the chain's lock, not behind writers."""
        if not drafts:
            return
        if any(d.label is not None and not self._known(d) for d in drafts):
            with self._db.write() as conn:  # a label never stored before: under the lock
                append_audit(conn, drafts)
            return
        resolved = [
            d if d.label is None else replace(d, label_id=self._label_ids[_key(d)], label=None)
            for d in drafts
        ]
        with self._db.read() as conn, conn.transaction():
            append_audit(conn, resolved)

    def _known(self, draft: AuditDraft) -> bool:
        """Whether the draft's label is stored (its id then cached: labels never change)."""
        key = _key(draft)
        if key in self._label_ids:
            return True
        with self._db.read() as conn:
            row = conn.execute("SELECT id FROM labels WHERE key = %s", (key,)).fetchone()
        if row is None:
            return False
        self._label_ids[key] = int(row[0])
        return True

    def events(
        self, viewer: Viewer, member: str | None, after: int, limit: int
    ) -> list[AuditEvent]:
        """Events after `after`, optionally of one member's users, whose item the viewer may see."""
        with self._db.snapshot() as conn:
            directory, version = self._directory_state()
            visible = list(self._labels.visible(viewer, directory, version))
            by_member = "" if member is None else " AND member = %s"
            rows = conn.execute(
                "SELECT * FROM audit WHERE seq > %s "
                f"AND (label_id IS NULL OR label_id = ANY(%s)){by_member} ORDER BY seq LIMIT %s",
                [after, visible, *([] if member is None else [member]), limit],
            ).fetchall()
        return [event_of_row(row) for row in rows]

    def all_events(self) -> Iterator[AuditEvent]:
        after = 0
        while True:
            with self._db.read() as conn:
                rows = conn.execute(
                    "SELECT * FROM audit WHERE seq > %s ORDER BY seq LIMIT %s", (after, PAGE)
                ).fetchall()
            for row in rows:
                yield event_of_row(row)
            if len(rows) < PAGE:
                return
            after = int(rows[-1]["seq"])


def _key(draft: AuditDraft) -> str:
    assert draft.label is not None
    return label_key(draft.label)
