"""RFIs across nodes: an RFI lives on the node it was asked on (its home). The home sends
each new revision, whole, to the peers the boundary rule lets receive its label; they keep
it as a mirror that their users read under the rule. What those users do to it (accept,
answer, close) is sent to the home as a signed request, decided there by the same
life-cycle rules as for its own users, and the new revision comes back at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bices.domain.labels import Label
from bices.domain.peers import Peer
from bices.domain.reports import iso
from bices.domain.rfis import Addressee, Answer, Change, Priority, Rfi, RfiState
from bices.federation.wire import LabelWire
from bices.policy import Directory, may_receive
from bices.store.base import Store

UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class AddresseeWire(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member: str = Field(max_length=16)
    accepted_at: str | None = None
    accepted_by: str | None = Field(default=None, max_length=300)


class AnswerWire(BaseModel):
    model_config = ConfigDict(extra="forbid")
    report_id: str = Field(pattern=UUID)
    member: str = Field(max_length=16)
    author: str = Field(max_length=300)
    at: str
    revision: int = Field(ge=1)


class ChangeWire(BaseModel):
    model_config = ConfigDict(extra="forbid")
    revision: int = Field(ge=1)
    action: str = Field(max_length=32)
    at: str
    actor: str = Field(max_length=300)
    member: str = Field(max_length=16)
    state: RfiState
    detail: dict[str, Any] = Field(default_factory=dict)


class RfiWire(BaseModel):
    """An RFI as it crosses: whole, at one revision."""

    model_config = ConfigDict(extra="forbid")
    kind: str = Field(pattern="^rfi$")
    id: str = Field(pattern=UUID)
    question: str = Field(min_length=1, max_length=500)
    detail: str = Field(max_length=20_000)
    priority: Priority
    deadline: str
    asker: str = Field(max_length=300)
    asker_member: str = Field(max_length=16)
    label: LabelWire
    addressees: list[AddresseeWire] = Field(min_length=1, max_length=64)
    state: RfiState
    revision: int = Field(ge=1)
    created_at: str
    answers: list[AnswerWire] = Field(max_length=1000)
    history: list[ChangeWire] = Field(min_length=1, max_length=2000)
    closed_reason: str | None = Field(default=None, max_length=2000)


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def rfi_item(rfi: Rfi, shown_reports: set[str]) -> dict[str, Any]:
    """The wire form of an RFI; answers whose reports may not go where it goes are left
    out, and so is their report id in the history."""
    answers = [a for a in rfi.answers if a.report_id in shown_reports]
    history = []
    for change in rfi.history:
        detail = dict(change.detail)
        if "report_id" in detail and detail["report_id"] not in shown_reports:
            del detail["report_id"]
        history.append({"revision": change.revision, "action": change.action,
                        "at": iso(change.at), "actor": change.actor, "member": change.member,
                        "state": change.state.value, "detail": detail})  # fmt: skip
    return {
        "kind": "rfi", "id": rfi.id, "question": rfi.question, "detail": rfi.detail,
        "priority": rfi.priority.value, "deadline": iso(rfi.deadline), "asker": rfi.asker,
        "asker_member": rfi.asker_member, "label": rfi.label.to_json(),
        "addressees": [{"member": a.member,
                        "accepted_at": None if a.accepted_at is None else iso(a.accepted_at),
                        "accepted_by": a.accepted_by} for a in rfi.addressees],
        "state": rfi.state.value, "revision": rfi.revision, "created_at": iso(rfi.created_at),
        "answers": [{"report_id": a.report_id, "member": a.member, "author": a.author,
                     "at": iso(a.at), "revision": a.revision} for a in answers],
        "history": history, "closed_reason": rfi.closed_reason,
    }  # fmt: skip


def rfi_of(wire: RfiWire) -> Rfi:
    """The RFI an item carries (ValueError if a time is malformed)."""
    deadline, created = _time(wire.deadline), _time(wire.created_at)
    assert deadline is not None and created is not None
    return Rfi(
        id=wire.id, question=wire.question, detail=wire.detail, priority=wire.priority,
        deadline=deadline, asker=wire.asker, asker_id=0, asker_member=wire.asker_member,
        label=Label.from_json(wire.label.model_dump()),
        addressees=tuple(Addressee(a.member, _time(a.accepted_at), a.accepted_by)
                         for a in wire.addressees),
        state=wire.state, revision=wire.revision, created_at=created,
        answers=tuple(Answer(a.report_id, a.member, a.author, _time(a.at) or created,
                             a.revision) for a in wire.answers),
        history=tuple(Change(c.revision, c.action, _time(c.at) or created, c.actor, c.member,
                             c.state, c.detail) for c in wire.history),
        closed_reason=wire.closed_reason,
    )  # fmt: skip


def rfi_items(
    store: Store, peer: Peer, rfi_ids: list[str], directory: Directory, served: set[str]
) -> list[dict[str, Any]]:
    """The RFIs (asked here) that may go to `peer`, whole, each once."""
    items = []
    for rfi_id in dict.fromkeys(rfi_ids):
        if store.rfis.home_of(rfi_id) is not None:
            continue  # a mirror: its home sends it
        rfi = store.rfis.snapshot(rfi_id)
        if rfi is None or rfi.asker_member not in served:
            continue
        if not may_receive(peer.members, rfi.label, directory):
            continue
        shown = set()
        for answer in rfi.answers:
            report = store.reports.current_unfiltered(answer.report_id)
            if report is not None and may_receive(peer.members, report.label, directory):
                shown.add(answer.report_id)
        items.append(rfi_item(rfi, shown))
    return items


def is_rfi_item(raw: object) -> bool:
    return isinstance(raw, Mapping) and raw.get("kind") == "rfi"
