"""Requests for information: what a member asks of others, and its life-cycle.

An RFI is labelled like any item and is asked by one user of a member of other members
(its addressees). It moves `open → accepted → answered → closed`: an addressee accepts
it, answers it with reports of its own that the asker's member may read, and the asker's
member closes it. The functions here decide each step and name what is wrong; they do
no I/O, so the store applies their decisions and the API and CLI share them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bices.domain.errors import Conflict, Forbidden, InvalidInput
from bices.domain.labels import Label, normalise_code
from bices.domain.members import MemberStatus
from bices.domain.reports import LabelDraft, ReportVersion, _aware, iso
from bices.domain.users import Viewer

MAX_QUESTION = 500
MAX_DETAIL = 20_000
MAX_REASON = 2_000
MAX_ADDRESSEES = 64


class Priority(StrEnum):
    """NATO message precedence, lowest first."""

    ROUTINE = "ROUTINE"
    PRIORITY = "PRIORITY"
    IMMEDIATE = "IMMEDIATE"
    FLASH = "FLASH"

    @property
    def rank(self) -> int:
        """0 for ROUTINE … 3 for FLASH: the order in which RFIs are worked."""
        return list(Priority).index(self)

    @classmethod
    def parse(cls, text: str) -> Priority:
        try:
            return cls(text.strip().upper())
        except ValueError:
            names = ", ".join(p.value for p in cls)
            raise InvalidInput(f"unknown priority {text!r}; expected one of {names}") from None


class StaleRfi(Conflict):
    """The RFI changed between reading it and storing a change decided on that reading."""


class RfiState(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    ANSWERED = "answered"
    CLOSED = "closed"


class RfiDraft(BaseModel):
    """An RFI as asked: validated here for the API and the CLI alike."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=MAX_QUESTION)
    detail: str = Field(default="", max_length=MAX_DETAIL)
    priority: Priority = Priority.ROUTINE
    deadline: datetime = Field(description="when the answer is needed, with a time zone")
    addressees: list[str] = Field(
        min_length=1, max_length=MAX_ADDRESSEES, examples=[["KOR", "JPN"]]
    )
    label: LabelDraft

    @field_validator("question")
    @classmethod
    def _question_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("question is blank")
        return value

    @field_validator("deadline")
    @classmethod
    def _deadline_aware(cls, value: datetime) -> datetime:
        aware = _aware(value, "deadline")
        assert aware is not None
        return aware


@dataclass(frozen=True, slots=True)
class Addressee:
    """A member asked, and whether (when, by whom) it accepted."""

    member: str
    accepted_at: datetime | None = None
    accepted_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "accepted": self.accepted_at is not None,
            "accepted_at": None if self.accepted_at is None else iso(self.accepted_at),
            "accepted_by": self.accepted_by,
        }


@dataclass(frozen=True, slots=True)
class Answer:
    """A report given as an answer; `report` is filled on reads, for a viewer who may see it."""

    report_id: str
    member: str
    author: str
    at: datetime
    revision: int
    report: ReportVersion | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "report_id": self.report_id,
            "member": self.member,
            "author": self.author,
            "at": iso(self.at),
        }
        if self.report is not None:
            data.update(
                version=self.report.version,
                type=self.report.type.value,
                title=self.report.title,
                label=self.report.label.render(),
            )
        return data


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of an RFI's history: the revision it made and the state it left."""

    revision: int
    action: str  # create, accept, answer, close
    at: datetime
    actor: str
    member: str
    state: RfiState
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "action": self.action,
            "at": iso(self.at),
            "actor": self.actor,
            "member": self.member,
            "state": self.state.value,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Rfi:
    id: str
    question: str
    detail: str
    priority: Priority
    deadline: datetime
    asker: str  # user name
    asker_id: int
    asker_member: str
    label: Label
    addressees: tuple[Addressee, ...]
    state: RfiState
    revision: int
    created_at: datetime
    answers: tuple[Answer, ...] = ()
    history: tuple[Change, ...] = ()
    closed_reason: str | None = None
    label_id: int = 0  # the store's id of `label`; 0 until stored

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(a.member for a in self.addressees)

    @property
    def accepted(self) -> frozenset[str]:
        return frozenset(a.member for a in self.addressees if a.accepted_at is not None)

    def overdue(self, now: datetime) -> bool:
        """Past its deadline and not yet answered or closed."""
        return self.state in (RfiState.OPEN, RfiState.ACCEPTED) and self.deadline < now

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "detail": self.detail,
            "priority": self.priority.value,
            "deadline": iso(self.deadline),
            "overdue": self.overdue(now),
            "state": self.state.value,
            "revision": self.revision,
            "asker": self.asker,
            "asker_member": self.asker_member,
            "addressees": [a.to_json() for a in self.addressees],
            "label": {**self.label.to_json(), "banner": self.label.render()},
            "answers": [a.to_json() for a in self.answers],
            "history": [c.to_json() for c in self.history],
            "closed_reason": self.closed_reason,
            "created_at": iso(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class RfiFilter:
    """Filters of an RFI listing; every one narrows what the viewer may see anyway."""

    states: frozenset[RfiState] | None = None
    addressed_to_me: bool = False  # addressed to the viewer's member
    mine: bool = False  # asked by the viewer
    overdue: bool = False  # past the deadline, neither answered nor closed

    def to_json(self) -> dict[str, Any]:
        return {
            "state": None if self.states is None else sorted(s.value for s in self.states),
            "addressed_to_me": self.addressed_to_me,
            "mine": self.mine,
            "overdue": self.overdue,
        }


@dataclass(frozen=True, slots=True)
class RfiPage:
    items: list[Rfi]
    total: int
    next_cursor: str | None


# -- the life-cycle ----------------------------------------------------------------------


def _writer(viewer: Viewer, action: str) -> None:
    if not viewer.may_write:
        raise Forbidden(f"to {action} an RFI needs the analyst, collector or releaser role")


def may_ask(viewer: Viewer) -> None:
    """Refuse, before the label is even read, a caller who may not write."""
    _writer(viewer, "ask")


def ask(
    viewer: Viewer,
    draft: RfiDraft,
    label: Label,
    reach: frozenset[str],
    statuses: Mapping[str, MemberStatus],
    rfi_id: str,
    now: datetime,
) -> Rfi:
    """A new open RFI, or the first thing wrong with the draft. `label` is the draft's
    label, bound and checked by the access rule's `check_may_create`; `reach` the members
    it is releasable to (communities expanded, the originator included)."""
    _writer(viewer, "ask")
    if draft.deadline <= now:
        raise InvalidInput(f"deadline {iso(draft.deadline)} is not in the future")
    members: list[str] = []
    for raw in draft.addressees:
        code = normalise_code(raw, "addressee")
        if code in members:
            continue
        status = statuses.get(code)
        if status is None:
            raise InvalidInput(f"addressee {code} is not a member")
        if status is not MemberStatus.ACTIVE:
            raise InvalidInput(f"addressee {code} is {status.value}, not active")
        if code not in reach:
            raise InvalidInput(
                f"addressee {code} is not entitled by the label {label.render()}: "
                "the RFI must be releasable to every member it is addressed to"
            )
        members.append(code)
    created = Change(1, "create", now, viewer.name, viewer.member, RfiState.OPEN)
    return Rfi(
        id=rfi_id,
        question=draft.question,
        detail=draft.detail,
        priority=draft.priority,
        deadline=draft.deadline,
        asker=viewer.name,
        asker_id=viewer.user_id,
        asker_member=viewer.member,
        label=label,
        addressees=tuple(Addressee(code) for code in members),
        state=RfiState.OPEN,
        revision=1,
        created_at=now,
        history=(created,),
    )


def _addressee(rfi: Rfi, viewer: Viewer, action: str) -> None:
    if viewer.member not in rfi.members:
        raise Forbidden(
            f"{viewer.member} is not an addressee of RFI {rfi.id}; only "
            f"{', '.join(rfi.members)} may {action} it"
        )


def accept(rfi: Rfi, viewer: Viewer, now: datetime) -> Change:
    """An addressee takes the RFI on; the first acceptance moves it from open to accepted."""
    _writer(viewer, "accept")
    _addressee(rfi, viewer, "accept")
    if rfi.state is RfiState.CLOSED:
        raise Conflict(f"RFI {rfi.id} is closed; it cannot be accepted")
    if viewer.member in rfi.accepted:
        raise Conflict(
            f"RFI {rfi.id} is {rfi.state.value}: {viewer.member} has accepted it already"
        )
    state = RfiState.ACCEPTED if rfi.state is RfiState.OPEN else rfi.state
    return Change(rfi.revision + 1, "accept", now, viewer.name, viewer.member, state)


def may_answer(rfi: Rfi, viewer: Viewer) -> None:
    """Refuse, before any report is prepared, an answer the RFI's state does not allow."""
    _writer(viewer, "answer")
    _addressee(rfi, viewer, "answer")
    if rfi.state is RfiState.CLOSED:
        raise Conflict(f"RFI {rfi.id} is closed; it takes no more answers")
    if viewer.member not in rfi.accepted:
        raise Conflict(
            f"RFI {rfi.id} is {rfi.state.value} and {viewer.member} has not accepted it: "
            "accept it before answering"
        )


def answer(
    rfi: Rfi, viewer: Viewer, report: ReportVersion, report_reach: frozenset[str], now: datetime
) -> Change:
    """An accepting addressee answers with a report of its own member that the asker's
    member may receive (`report_reach`: the members its label is releasable to)."""
    may_answer(rfi, viewer)
    if report.label.originator != viewer.member:
        raise InvalidInput(
            f"report {report.id} originates from {report.label.originator}; an answer must be "
            f"a report of {viewer.member}"
        )
    if rfi.asker_member not in report_reach:
        raise InvalidInput(
            f"report {report.id} is labelled {report.label.render()} and is not releasable to "
            f"the asker's member {rfi.asker_member}"
        )
    if any(a.report_id == report.id for a in rfi.answers):
        raise Conflict(f"report {report.id} already answers RFI {rfi.id}")
    detail = {"report_id": report.id}
    return Change(
        rfi.revision + 1, "answer", now, viewer.name, viewer.member, RfiState.ANSWERED, detail
    )


def close(rfi: Rfi, viewer: Viewer, reason: str | None, now: datetime) -> Change:
    """The asker's member closes the RFI, in any state but closed."""
    _writer(viewer, "close")
    if viewer.member != rfi.asker_member:
        raise Forbidden(
            f"RFI {rfi.id} was asked by {rfi.asker_member}; only its users may close it"
        )
    if rfi.state is RfiState.CLOSED:
        raise Conflict(f"RFI {rfi.id} is closed already")
    if reason is not None and len(reason) > MAX_REASON:
        raise InvalidInput(f"reason is {len(reason)} characters; the limit is {MAX_REASON}")
    detail = {} if not reason else {"reason": reason}
    return Change(
        rfi.revision + 1, "close", now, viewer.name, viewer.member, RfiState.CLOSED, detail
    )
