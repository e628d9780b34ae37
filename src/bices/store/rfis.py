"""What both backends' RFI stores share: the listing's order and cursors, its filters as
SQL clauses, and RFIs assembled from their rows under the rule for answers.

The backends differ in how they write a parameter and a list of values (a `Dialect`);
what the rows mean, and which answers a viewer is shown, is decided here once.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bices.domain.errors import InvalidInput
from bices.domain.labels import Label
from bices.domain.reports import ReportVersion, iso
from bices.domain.rfis import (
    Addressee,
    Answer,
    Change,
    Priority,
    Rfi,
    RfiFilter,
    RfiState,
)
from bices.domain.users import Viewer
from bices.store.rows import RowLike

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# The order RFIs are worked in: highest priority first, then the nearest deadline.
ORDER = "r.priority_rank DESC, r.deadline_us, r.id"


def us(moment: datetime) -> int:
    """Microseconds since the epoch: deadlines sort as numbers, whatever their ISO form."""
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def encode_cursor(rfi: Rfi) -> str:
    key = f"rfis:{rfi.priority.rank}:{us(rfi.deadline)}:{rfi.id}"
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
        if not -(2**62) < int(deadline) < 2**62:  # beyond any datetime; 64-bit integers
            raise ValueError(deadline)
        return int(rank), int(deadline), rfi_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(f"cursor {cursor!r} is not a cursor of the RFI listing") from None


def rfi_values(rfi: Rfi, label_id: int) -> tuple[Any, ...]:
    """A new RFI's `rfis` row, in column order."""
    return (rfi.id, rfi.question, rfi.detail, rfi.priority.value, rfi.priority.rank,
            iso(rfi.deadline), us(rfi.deadline), rfi.asker, rfi.asker_id, rfi.asker_member,
            label_id, rfi.state.value, rfi.revision, iso(rfi.created_at), None)  # fmt: skip


def history_values(rfi_id: str, change: Change) -> tuple[Any, ...]:
    """A revision's `rfi_history` row, in column order."""
    detail = json.dumps(change.detail, sort_keys=True)
    return (rfi_id, change.revision, change.action, iso(change.at), change.actor,
            change.member, change.state.value, detail)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Dialect:
    """How a backend writes a named parameter, a test that a column is in a list given as
    a parameter, and the value of such a list."""

    param: Callable[[str], str]
    in_list: Callable[[str, str], str]  # (column, parameter name) -> SQL
    as_list: Callable[[list[Any]], Any]


def page_clauses(
    dialect: Dialect,
    viewer: Viewer,
    where: RfiFilter,
    after: tuple[int, int, str] | None,
    now: datetime,
) -> tuple[list[str], list[str], dict[str, Any]]:
    """The listing's clauses: those that the total counts, those of the page (the same and
    the cursor's), and their parameters; `visible` (the viewer's label ids) is left to the
    caller, who reads it inside its snapshot."""
    p = dialect.param
    clauses = [dialect.in_list("r.label_id", "visible")]
    params: dict[str, Any] = {}
    if where.states is not None:
        clauses.append(dialect.in_list("r.state", "states"))
        params["states"] = dialect.as_list(sorted(s.value for s in where.states))
    if where.addressed_to_me:
        clauses.append(
            "EXISTS (SELECT 1 FROM rfi_addressees a WHERE a.rfi_id = r.id "
            f"AND a.member = {p('member')})"
        )
        params["member"] = viewer.member
    if where.mine:
        clauses.append(f"r.asker_id = {p('user_id')}")
        params["user_id"] = viewer.user_id
    if where.overdue:
        clauses.append(f"r.deadline_us < {p('now')} AND r.state IN ('open', 'accepted')")
        params["now"] = us(now)
    paged = list(clauses)
    if after is not None:
        rank, due, last = p("rank"), p("due"), p("after")
        paged.append(
            f"(r.priority_rank < {rank} OR (r.priority_rank = {rank} AND (r.deadline_us > {due} "
            f"OR (r.deadline_us = {due} AND r.id > {last}))))"
        )
        params.update(rank=after[0], due=after[1], after=after[2])
    return clauses, paged, params


def change_of(row: RowLike) -> Change:
    return Change(
        revision=row["revision"],
        action=row["action"],
        at=datetime.fromisoformat(row["at"]),
        actor=row["actor"],
        member=row["member"],
        state=RfiState(row["state"]),
        detail=json.loads(row["detail"]),
    )


def assemble(
    rows: Sequence[RowLike],
    addressee_rows: Iterable[RowLike],
    answer_rows: Sequence[RowLike],
    answer_reports: Sequence[ReportVersion],
    history_rows: Iterable[RowLike],
    label: Callable[[int], Label],
) -> list[Rfi]:
    """Whole RFIs from their rows: addressees in order, the answers whose reports the viewer
    may see now (the caller has read only those, with their current versions), and the
    history, where an answer's report is named only if that answer is listed."""
    addressees: dict[str, list[Addressee]] = {}
    for a in addressee_rows:
        at = None if a["accepted_at"] is None else datetime.fromisoformat(a["accepted_at"])
        addressees.setdefault(a["rfi_id"], []).append(Addressee(a["member"], at, a["accepted_by"]))
    answers: dict[str, list[Answer]] = {}
    for a, report in zip(answer_rows, answer_reports, strict=True):
        answers.setdefault(a["rfi_id"], []).append(
            Answer(a["report_id"], a["member"], a["author"],
                   datetime.fromisoformat(a["at"]), a["revision"], report)
        )  # fmt: skip
    history: dict[str, list[Change]] = {}
    for h in history_rows:
        change = change_of(h)
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
            label=label(row["label_id"]),
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


def event_payload(row: RowLike, members: list[str], revision: int, label: Label) -> dict[str, Any]:
    """The stream event of one revision, from the RFI's row joined to that revision's
    history entry (`action`, `changed_at`, `state_then`) and its addressees."""
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
        "label": label.render(),
    }
