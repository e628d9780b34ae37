"""Requests for information: ask, list, read, accept, answer, close.

Every answer obeys the access rule: an RFI the caller may not see answers 404 like a
missing one, and its answers are listed only where the caller may see the answer report.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from bices.api.auth import CurrentViewer, NodeDep
from bices.api.schemas import LabelOut
from bices.domain.reports import ReportDraft
from bices.domain.rfis import MAX_REASON, Rfi, RfiDraft, RfiFilter, RfiState

router = APIRouter(prefix="/api/v1", tags=["rfis"])

RfiId = Annotated[
    str,
    Path(
        max_length=36,
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="an RFI's id (a UUID)",
    ),
]


class AddresseeOut(BaseModel):
    member: str
    accepted: bool
    accepted_at: str | None
    accepted_by: str | None


class AnswerOut(BaseModel):
    report_id: str
    member: str
    author: str
    at: str
    version: int
    type: str
    title: str
    label: str = Field(examples=["NATO SECRET // REL TO NATO, KOR"])


class ChangeOut(BaseModel):
    revision: int
    action: str = Field(examples=["create", "accept", "answer", "close"])
    at: str
    actor: str
    member: str
    state: str
    detail: dict[str, Any]


class RfiOut(BaseModel):
    id: str
    question: str
    detail: str
    priority: str = Field(examples=["ROUTINE", "PRIORITY", "IMMEDIATE", "FLASH"])
    deadline: str
    overdue: bool
    state: str = Field(examples=["open", "accepted", "answered", "closed"])
    revision: int
    asker: str
    asker_member: str
    addressees: list[AddresseeOut]
    label: LabelOut
    answers: list[AnswerOut] = Field(description="only answers the caller may see")
    history: list[ChangeOut]
    closed_reason: str | None
    created_at: str


class RfiPageOut(BaseModel):
    items: list[RfiOut]
    total: int
    next_cursor: str | None


class AnswerIn(BaseModel):
    """Either an existing report of the caller's member, or a new `RFI-RESPONSE` report."""

    model_config = ConfigDict(extra="forbid")

    report_id: str | None = Field(default=None, max_length=100)
    report: ReportDraft | None = None


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=MAX_REASON)


def _out(rfi: Rfi) -> dict[str, Any]:
    return rfi.to_json(datetime.now(UTC))


@router.post("/rfis", status_code=201, response_model=RfiOut)
def create_rfi(draft: RfiDraft, viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
    """Ask an RFI of other members. Its label must be releasable to every addressee, and
    its deadline in the future."""
    return _out(node.rfis.create(viewer, draft))


@router.get("/rfis", response_model=RfiPageOut)
def list_rfis(
    viewer: CurrentViewer,
    node: NodeDep,
    state: Annotated[list[RfiState] | None, Query(description="states, repeatable")] = None,
    addressed_to_me: Annotated[bool, Query(description="addressed to my member")] = False,
    mine: Annotated[bool, Query(description="asked by me")] = False,
    overdue: Annotated[bool, Query(description="past the deadline, not answered")] = False,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """RFIs the caller may see, highest priority first, then nearest deadline; `total`
    counts only those."""
    where = RfiFilter(
        states=frozenset(state) if state else None,
        addressed_to_me=addressed_to_me,
        mine=mine,
        overdue=overdue,
    )
    page = node.rfis.page(viewer, where, cursor, limit)
    return {"items": [_out(r) for r in page.items], "total": page.total,
            "next_cursor": page.next_cursor}  # fmt: skip


@router.get("/rfis/{rfi_id}", response_model=RfiOut)
def get_rfi(rfi_id: RfiId, viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
    """One RFI; one the caller may not see answers 404 like a missing one."""
    return _out(node.rfis.get(viewer, rfi_id))


@router.post("/rfis/{rfi_id}/accept", response_model=RfiOut)
def accept_rfi(rfi_id: RfiId, viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
    """A user of an addressee member takes the RFI on for that member."""
    return _out(node.rfis.accept(viewer, rfi_id))


@router.post("/rfis/{rfi_id}/answers", status_code=201, response_model=RfiOut)
def answer_rfi(
    rfi_id: RfiId, body: AnswerIn, viewer: CurrentViewer, node: NodeDep
) -> dict[str, Any]:
    """Answer with `report_id` (a report of the caller's member, releasable to the asker's
    member) or with `report` (a new RFI-RESPONSE report, stored with the link or not at
    all). The caller's member must have accepted the RFI."""
    return _out(node.rfis.answer(viewer, rfi_id, body.report_id, body.report))


@router.post("/rfis/{rfi_id}/close", response_model=RfiOut)
def close_rfi(
    rfi_id: RfiId, viewer: CurrentViewer, node: NodeDep, body: CloseIn | None = None
) -> dict[str, Any]:
    """A user of the asker's member closes the RFI, with an optional reason."""
    return _out(node.rfis.close(viewer, rfi_id, None if body is None else body.reason))
