"""RFIs in SQLite: each change, its history entry, its outbox event and its audit events
in one transaction; every read through the viewer's visible labels.

An RFI is visible iff the viewer may see its label. Its answers are listed only where the
viewer may see the answer report's current version now, and the history names an answer
report only where that answer is listed. Public ids are UUIDs, so no number tells of
RFIs a viewer cannot see.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bices.domain.audit import AuditDraft
from bices.domain.errors import Conflict, InvalidInput
from bices.domain.reports import ReportVersion, iso
from bices.domain.rfis import (
    Addressee,
    Answer,
    Change,
    Priority,
    Rfi,
    RfiFilter,
    RfiPage,
    RfiState,
    StaleRfi,
)
from bices.domain.users import Viewer
from bices.store.base import ReportWrite
from bices.store.sqlite_audit import append_audit
from bices.store.sqlite_db import Database
from bices.store.sqlite_labels import label_id as label_id_of
from bices.store.sqlite_outbox import append_event
from bices.store.sqlite_reports import SqliteReports

RFI_SCHEMA = """
CREATE TABLE IF NOT EXISTS rfis (
    id TEXT PRIMARY KEY, question TEXT NOT NULL, detail TEXT NOT NULL,
    priority TEXT NOT NULL, priority_rank INTEGER NOT NULL,
    deadline TEXT NOT NULL, deadline_us INTEGER NOT NULL,
    asker TEXT NOT NULL, asker_id INTEGER NOT NULL, asker_member TEXT NOT NULL,
    label_id INTEGER NOT NULL REFERENCES labels(id), state TEXT NOT NULL,
    revision INTEGER NOT NULL, created_at TEXT NOT NULL, closed_reason TEXT
);
-- The order RFIs are worked in: highest priority first, then the nearest deadline.
CREATE INDEX IF NOT EXISTS rfis_order ON rfis (priority_rank DESC, deadline_us, id);
CREATE INDEX IF NOT EXISTS rfis_label ON rfis (label_id);
CREATE TABLE IF NOT EXISTS rfi_addressees (
    rfi_id TEXT NOT NULL REFERENCES rfis(id), member TEXT NOT NULL, position INTEGER NOT NULL,
    accepted_at TEXT, accepted_by TEXT, PRIMARY KEY (rfi_id, member)
);
CREATE INDEX IF NOT EXISTS rfi_addressees_member ON rfi_addressees (member, rfi_id);
CREATE TABLE IF NOT EXISTS rfi_answers (
    rfi_id TEXT NOT NULL REFERENCES rfis(id), report_id TEXT NOT NULL, member TEXT NOT NULL,
    author TEXT NOT NULL, at TEXT NOT NULL, revision INTEGER NOT NULL,
    PRIMARY KEY (rfi_id, report_id)
);
CREATE TABLE IF NOT EXISTS rfi_history (
    rfi_id TEXT NOT NULL REFERENCES rfis(id), revision INTEGER NOT NULL, action TEXT NOT NULL,
    at TEXT NOT NULL, actor TEXT NOT NULL, member TEXT NOT NULL, state TEXT NOT NULL,
    detail TEXT NOT NULL, PRIMARY KEY (rfi_id, revision)
)
"""

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
VISIBLE = "r.label_id IN (SELECT value FROM json_each(:visible))"


def install(db: Database) -> None:
    """Create the RFI tables in the node's file (idempotent), in one write transaction."""
    with db.write() as conn:
        for statement in RFI_SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)


def _us(moment: datetime) -> int:
    """Microseconds since the epoch: deadlines sort as numbers, whatever their ISO form."""
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def encode_cursor(rfi: Rfi) -> str:
    key = f"rfis:{rfi.priority.rank}:{_us(rfi.deadline)}:{rfi.id}"
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[int, int, str] | None:
    """The (priority rank, deadline, id) after which a page starts."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, rank, deadline, rfi_id = text.split(":")
        if kind != "rfis" or not UUID.match(rfi_id) or not 0 <= int(rank) < len(Priority):
            raise ValueError(text)
        if not -(2**62) < int(deadline) < 2**62:  # beyond any datetime; SQLite's integers
            raise ValueError(deadline)
        return int(rank), int(deadline), rfi_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(f"cursor {cursor!r} is not a cursor of the RFI listing") from None


def _change(row: sqlite3.Row) -> Change:
    return Change(
        revision=row["revision"],
        action=row["action"],
        at=datetime.fromisoformat(row["at"]),
        actor=row["actor"],
        member=row["member"],
        state=RfiState(row["state"]),
        detail=json.loads(row["detail"]),
    )


class SqliteRfis:
    def __init__(self, db: Database, reports: SqliteReports) -> None:
        self._db = db
        self._reports = reports

    # -- writes ----------------------------------------------------------------------

    def create(self, rfi: Rfi, audit: Sequence[AuditDraft]) -> None:
        """Store a new RFI with its first history entry, its event and its audit."""
        with self._db.write() as conn:
            label_id = label_id_of(conn, rfi.label)
            conn.execute(
                "INSERT INTO rfis VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (rfi.id, rfi.question, rfi.detail, rfi.priority.value, rfi.priority.rank,
                 iso(rfi.deadline), _us(rfi.deadline), rfi.asker, rfi.asker_id,
                 rfi.asker_member, label_id, rfi.state.value, rfi.revision,
                 iso(rfi.created_at), None),
            )  # fmt: skip
            conn.executemany(
                "INSERT INTO rfi_addressees (rfi_id, member, position) VALUES (?, ?, ?)",
                [(rfi.id, a.member, i) for i, a in enumerate(rfi.addressees)],
            )
            for change in rfi.history:
                self._record(conn, rfi.id, change, label_id)
            append_audit(conn, audit)

    def change(
        self,
        rfi: Rfi,
        change: Change,
        audit: Sequence[AuditDraft],
        report: ReportWrite | None = None,
    ) -> list[ReportVersion]:
        """Apply a decided change to the RFI as it was read (`rfi.revision`); a change made
        meanwhile by someone else refuses this one (409). With `report`, the answer report
        is stored in the same transaction as its link, so neither is stored without the
        other. Returns the stored report, if any."""
        stored: list[ReportVersion] = []
        with self._db.write() as conn:
            updated = conn.execute(
                "UPDATE rfis SET state = ?, revision = ?, "
                "closed_reason = coalesce(?, closed_reason) WHERE id = ? AND revision = ?",
                (change.state.value, change.revision, change.detail.get("reason"), rfi.id,
                 rfi.revision),
            ).rowcount  # fmt: skip
            if updated != 1:
                raise StaleRfi(f"RFI {rfi.id} changed meanwhile; read it again and retry")
            if change.action == "accept":
                conn.execute(
                    "UPDATE rfi_addressees SET accepted_at = ?, accepted_by = ? "
                    "WHERE rfi_id = ? AND member = ?",
                    (iso(change.at), change.actor, rfi.id, change.member),
                )
            elif change.action == "answer":
                if report is not None:
                    stored = self._reports.add_in(conn, [report])
                report_id = change.detail["report_id"]
                try:
                    conn.execute(
                        "INSERT INTO rfi_answers VALUES (?, ?, ?, ?, ?, ?)",
                        (rfi.id, report_id, change.member, change.actor, iso(change.at),
                         change.revision),
                    )  # fmt: skip
                except sqlite3.IntegrityError:
                    raise Conflict(f"report {report_id} already answers RFI {rfi.id}") from None
            label_id = label_id_of(conn, rfi.label)
            self._record(conn, rfi.id, change, label_id)
            append_audit(conn, audit)
        return stored

    def _record(self, conn: sqlite3.Connection, rfi_id: str, change: Change, label_id: int) -> None:
        """The history entry and the outbox event of one revision."""
        conn.execute(
            "INSERT INTO rfi_history VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (rfi_id, change.revision, change.action, iso(change.at), change.actor,
             change.member, change.state.value, json.dumps(change.detail, sort_keys=True)),
        )  # fmt: skip
        append_event(conn, "rfi", rfi_id, change.revision, label_id)

    # -- reads under the rule ----------------------------------------------------------

    def get(self, viewer: Viewer, rfi_id: str) -> Rfi | None:
        """The RFI if the viewer may see it; None for hidden and missing alike."""
        with self._reports.viewing(viewer) as (conn, visible):
            row = conn.execute(
                f"SELECT * FROM rfis r WHERE r.id = :id AND {VISIBLE}",
                {"id": rfi_id, "visible": json.dumps(visible)},
            ).fetchone()
            if row is None:
                return None
            return self._assemble(conn, [row], visible)[0]

    def page(
        self, viewer: Viewer, where: RfiFilter, cursor: str | None, limit: int, now: datetime
    ) -> RfiPage:
        """Visible RFIs, highest priority first, then nearest deadline; `total` counts the
        visible ones that pass the filters."""
        after = decode_cursor(cursor)
        clauses = [VISIBLE]
        params: dict[str, Any] = {"limit": limit + 1}
        if where.states is not None:
            clauses.append("r.state IN (SELECT value FROM json_each(:states))")
            params["states"] = json.dumps(sorted(s.value for s in where.states))
        if where.addressed_to_me:
            clauses.append(
                "EXISTS (SELECT 1 FROM rfi_addressees a WHERE a.rfi_id = r.id "
                "AND a.member = :member)"
            )
            params["member"] = viewer.member
        if where.mine:
            clauses.append("r.asker_id = :user_id")
            params["user_id"] = viewer.user_id
        if where.overdue:
            clauses.append("r.deadline_us < :now AND r.state IN ('open', 'accepted')")
            params["now"] = _us(now)
        counted = " AND ".join(clauses)
        if after is not None:
            clauses.append(
                "(r.priority_rank < :rank OR (r.priority_rank = :rank AND (r.deadline_us > :due "
                "OR (r.deadline_us = :due AND r.id > :after))))"
            )
            params.update(rank=after[0], due=after[1], after=after[2])
        with self._reports.viewing(viewer) as (conn, visible):
            params["visible"] = json.dumps(visible)
            total = conn.execute(f"SELECT count(*) FROM rfis r WHERE {counted}", params).fetchone()
            rows = conn.execute(
                f"SELECT * FROM rfis r WHERE {' AND '.join(clauses)} "
                "ORDER BY r.priority_rank DESC, r.deadline_us, r.id LIMIT :limit",
                params,
            ).fetchall()
            items = self._assemble(conn, rows[:limit], visible)
        more = len(rows) > limit
        return RfiPage(items, int(total[0]), encode_cursor(items[-1]) if more else None)

    def _assemble(
        self, conn: sqlite3.Connection, rows: Sequence[sqlite3.Row], visible: tuple[int, ...]
    ) -> list[Rfi]:
        """Whole RFIs from their rows: addressees, the answers the viewer may see now, and
        the history (an answer's report named only where the answer is listed)."""
        ids = json.dumps([row["id"] for row in rows])
        addressees: dict[str, list[Addressee]] = {}
        for a in conn.execute(
            "SELECT * FROM rfi_addressees WHERE rfi_id IN (SELECT value FROM json_each(?)) "
            "ORDER BY rfi_id, position",
            (ids,),
        ):
            at = None if a["accepted_at"] is None else datetime.fromisoformat(a["accepted_at"])
            addressees.setdefault(a["rfi_id"], []).append(
                Addressee(a["member"], at, a["accepted_by"])
            )
        answer_rows = conn.execute(
            "SELECT a.*, rep.current_seq FROM rfi_answers a "
            "JOIN reports rep ON rep.id = a.report_id "
            "JOIN current_reports c ON c.seq = rep.current_seq "
            "AND c.label_id IN (SELECT value FROM json_each(?)) "
            "WHERE a.rfi_id IN (SELECT value FROM json_each(?)) ORDER BY a.rfi_id, a.revision",
            (json.dumps(visible), ids),
        ).fetchall()
        reports = self._reports.rows_by_seq(conn, [a["current_seq"] for a in answer_rows])
        answers: dict[str, list[Answer]] = {}
        for a, report in zip(answer_rows, reports, strict=True):
            answers.setdefault(a["rfi_id"], []).append(
                Answer(a["report_id"], a["member"], a["author"],
                       datetime.fromisoformat(a["at"]), a["revision"], report)
            )  # fmt: skip
        history: dict[str, list[Change]] = {}
        for h in conn.execute(
            "SELECT * FROM rfi_history WHERE rfi_id IN (SELECT value FROM json_each(?)) "
            "ORDER BY rfi_id, revision",
            (ids,),
        ):
            change = _change(h)
            listed = {a.report_id for a in answers.get(h["rfi_id"], [])}
            if change.action == "answer" and change.detail.get("report_id") not in listed:
                change = Change(change.revision, change.action, change.at, change.actor,
                                change.member, change.state)  # fmt: skip
            history.setdefault(h["rfi_id"], []).append(change)
        return [
            Rfi(
                id=row["id"],
                question=row["question"],
                detail=row["detail"],
                priority=Priority(row["priority"]),
                deadline=datetime.fromisoformat(row["deadline"]),
                asker=row["asker"],
                asker_id=row["asker_id"],
                asker_member=row["asker_member"],
                label=self._reports.labels.get(row["label_id"]),
                addressees=tuple(addressees.get(row["id"], ())),
                state=RfiState(row["state"]),
                revision=row["revision"],
                created_at=datetime.fromisoformat(row["created_at"]),
                answers=tuple(answers.get(row["id"], ())),
                history=tuple(history.get(row["id"], ())),
                closed_reason=row["closed_reason"],
                label_id=row["label_id"],
            )
            for row in rows
        ]

    # -- the stream's side (system use: the caller has checked the event's label) ------

    def event_payload(self, rfi_id: str, revision: int) -> dict[str, Any] | None:
        """The RFI as it was at `revision`, for the stream event of that revision."""
        with self._db.snapshot() as conn:
            row = conn.execute(
                "SELECT r.*, h.action, h.at AS changed_at, h.state AS state_then FROM rfis r "
                "JOIN rfi_history h ON h.rfi_id = r.id AND h.revision = ? WHERE r.id = ?",
                (revision, rfi_id),
            ).fetchone()
            if row is None:
                return None
            members = [
                m[0]
                for m in conn.execute(
                    "SELECT member FROM rfi_addressees WHERE rfi_id = ? ORDER BY position",
                    (rfi_id,),
                )
            ]
        return {
            "id": row["id"],
            "question": row["question"],
            "priority": row["priority"],
            "deadline": row["deadline"],
            "state": row["state_then"],
            "asker_member": row["asker_member"],
            "addressees": members,
            "revision": revision,
            "action": row["action"],
            "at": row["changed_at"],
            "label": self._reports.labels.get(row["label_id"]).render(),
        }
