"""The audit hash chain, kept in `audit.db` beside the node's main file.

Writes record their events in the main file's `audit_outbox`, in the transaction of the
write itself, so a write and its audit event are stored together or not at all. Right
after each commit (and on opening, after a crash) `drain` chains the outbox rows into
`audit.db`; reads append their events there directly, without touching the main file.
Every append drains first, so the chain follows the order in which things happened.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bices.domain.audit import GENESIS, AuditDraft, AuditEvent, fields_hash
from bices.domain.labels import Label
from bices.domain.reports import iso
from bices.domain.users import Viewer
from bices.store.rows import RowLike
from bices.store.sqlite_db import Database
from bices.store.sqlite_labels import label_id, label_key
from bices.store.visibility import DirectoryState, LabelIndex

log = logging.getLogger(__name__)

# Chained outbox rows are deleted from the main file once this many have accumulated.
PRUNE_EVERY = 10_000


# An event as the chain takes it: (at as `iso` writes it, actor, member, action, target,
# label_id, detail as JSON): the outbox's columns, so its rows go into the chain unparsed.
Outgoing = tuple[str, str, str | None, str, str | None, int | None, str]


def _detail(detail: dict[str, Any]) -> str:
    return json.dumps(detail, sort_keys=True, ensure_ascii=False)


def outgoing(at: datetime, draft: AuditDraft) -> Outgoing:
    """A draft whose label is resolved (`label_id`), as the chain takes it."""
    return (iso(at), draft.actor, draft.member, draft.action, draft.target, draft.label_id,
            _detail(draft.detail))  # fmt: skip


def append_audit(conn: sqlite3.Connection, drafts: Sequence[AuditDraft]) -> None:
    """Record events in the main file's outbox; the caller holds the write transaction."""
    now = iso(datetime.now(UTC))
    conn.executemany(
        "INSERT INTO audit_outbox (at, actor, member, action, target, label_id, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (now, d.actor, d.member, d.action, d.target,
             label_id(conn, d.label) if d.label is not None else d.label_id,
             _detail(d.detail))
            for d in drafts
        ],
    )  # fmt: skip


def _chain(conn: sqlite3.Connection, events: Sequence[Outgoing]) -> None:
    """Hash-chain and insert events after the head; the caller holds `audit.db`'s lock."""
    head = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (0, GENESIS) if head is None else (head["seq"], head["hash"])
    rows = []
    for at, actor, member, action, target, label, detail in events:
        seq += 1
        digest = fields_hash(prev, seq, at, actor, member, action, target, label,
                             json.loads(detail))  # fmt: skip
        rows.append((seq, at, actor, member, action, target, label, detail, prev, digest))
        prev = digest
    conn.executemany("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def event_of_row(row: RowLike) -> AuditEvent:
    """An audit event from its row (either backend's rows read by column name)."""
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
    def __init__(
        self, db: Database, chain: Database, labels: LabelIndex, directory_state: DirectoryState
    ) -> None:
        self._db = db
        self._chain = chain
        self._labels = labels
        self._directory_state = directory_state
        self._drained = -1  # the outbox id chained last, as far as this process knows
        self._pruned = 0  # outbox ids up to this one have been deleted
        self._label_ids: dict[str, int] = {}  # committed labels never change id
        db.after_commit = self.drain
        self._resync()
        self.drain()  # what a crash left in the outbox

    def _resync(self) -> None:
        """If the chain has taken outbox ids the main file never handed out (the main file
        restored from an older copy than audit.db, or its last commits lost to a power cut),
        new events would reuse those ids and be skipped. Say so in the chain, and go on from
        the main file's own count."""
        row = (
            self._db.reader()
            .execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit_outbox'")
            .fetchone()
        )
        handed_out = 0 if row is None else int(row[0])
        with self._chain.write() as conn:
            chained = conn.execute("SELECT id FROM outbox_cursor").fetchone()[0]
            if chained <= handed_out:
                return
            log.error(
                "audit.db has chained outbox events up to %s but bices.db handed out only %s: "
                "the two files are from different moments",
                chained,
                handed_out,
            )
            detail = {"chained_up_to": chained, "main_file_up_to": handed_out}
            gap = AuditDraft("node", None, "audit.resync", detail=detail)
            _chain(conn, [outgoing(datetime.now(UTC), gap)])
            conn.execute("UPDATE outbox_cursor SET id = ?", (handed_out,))

    def drain(self, also: Sequence[AuditDraft] = ()) -> None:
        """Chain the outbox rows not yet chained, then `also` (already label-resolved)."""
        if not also:
            newest = self._db.reader().execute("SELECT max(id) FROM audit_outbox").fetchone()[0]
            if newest is None or newest <= self._drained:
                return
        with self._chain.write() as conn:
            after = conn.execute("SELECT id FROM outbox_cursor").fetchone()[0]
            pending = (
                self._db.reader()
                .execute(
                    "SELECT id, at, actor, member, action, target, label_id, detail "
                    "FROM audit_outbox WHERE id > ? ORDER BY id",
                    (after,),
                )
                .fetchall()
            )
            if not pending and not also:
                return
            now = datetime.now(UTC)
            _chain(conn, [*(tuple(row)[1:] for row in pending),
                          *(outgoing(now, draft) for draft in also)])  # fmt: skip
            if pending:
                conn.execute("UPDATE outbox_cursor SET id = ?", (pending[-1][0],))
        self._drained = max(self._drained, after, pending[-1][0] if pending else after)
        if self._drained - self._pruned >= PRUNE_EVERY:
            # Rows already in the chain are dropped from the outbox now and then (a write
            # to the main file, so not after every drain).
            self._pruned = self._drained
            with self._db.write() as main:
                main.execute("DELETE FROM audit_outbox WHERE id <= ?", (self._pruned,))

    def append(self, drafts: Sequence[AuditDraft]) -> None:
        """Events that go with no write of the main file (reads, refusals)."""
        if not drafts:
            return
        self.drain([d if d.label is None else replace(d, label_id=self._label_id(d.label),
                                                      label=None) for d in drafts])  # fmt: skip

    def _label_id(self, label: Label) -> int:
        """A label's id, read (or, the first time, written) without writing the main file
        on every read."""
        key = label_key(label)
        found = self._label_ids.get(key)
        if found is None:
            row = (
                self._db.reader().execute("SELECT id FROM labels WHERE key = ?", (key,)).fetchone()
            )
            if row is None:
                with self._db.write() as conn:
                    found = label_id(conn, label)
            else:
                found = int(row[0])
            self._label_ids[key] = found
        return found

    def events(
        self, viewer: Viewer, member: str | None, after: int, limit: int
    ) -> list[AuditEvent]:
        """Events after `after`, optionally of one member's users, whose item the viewer may see."""
        by_member = "" if member is None else " AND member = ?"
        self.drain()
        with self._db.snapshot():  # the visible set from one state of the main file
            directory, version = self._directory_state()
            visible = json.dumps(self._labels.visible(viewer, directory, version))
        rows = (
            self._chain.reader()
            .execute(
                "SELECT * FROM audit WHERE seq > ? AND (label_id IS NULL OR label_id IN "
                f"(SELECT value FROM json_each(?))){by_member} ORDER BY seq LIMIT ?",
                [after, visible, *([] if member is None else [member]), limit],
            )
            .fetchall()
        )
        return [event_of_row(row) for row in rows]

    def all_events(self) -> Iterator[AuditEvent]:
        self.drain()
        cursor = self._chain.reader().execute("SELECT * FROM audit ORDER BY seq")
        for row in cursor:
            yield event_of_row(row)
