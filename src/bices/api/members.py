"""Members, communities and accession of new members."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from bices.api.auth import CurrentViewer, NodeDep
from bices.api.schemas import AccessionIn, AccessionOut, CommunityIn, MemberAddIn, MemberOut
from bices.domain.errors import NotFound
from bices.domain.labels import normalise_code
from bices.domain.members import Member, MemberKind, MemberStatus
from bices.node import Node

router = APIRouter(prefix="/api/v1", tags=["members"])


def _member_out(node: Node, member: Member) -> dict[str, Any]:
    return {
        "code": member.code,
        "name": member.name,
        "kind": member.kind.value,
        "status": member.status.value,
        "public_key": member.public_key,
        "sponsor": member.sponsor,
        "communities": node.store.coalition.member_communities(member.code),
    }


@router.get("/members", response_model=list[MemberOut])
def list_members(viewer: CurrentViewer, node: NodeDep) -> list[dict[str, Any]]:
    """The coalition's members and their standing (membership itself is not classified)."""
    return [_member_out(node, m) for m in node.store.coalition.list_members()]


@router.post("/members", status_code=201, response_model=MemberOut)
def add_member(body: MemberAddIn, viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
    """Operator bootstrap of an active member, without the accession vote (with
    `public_key`: a member served by a peer node)."""
    member = node.coalition.add_member(
        body.code, body.name, MemberKind(body.kind), body.communities, viewer=viewer,
        public_key=body.public_key,
    )  # fmt: skip
    return _member_out(node, member)


@router.get("/members/{code}", response_model=MemberOut)
def get_member(code: str, viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
    member = node.store.coalition.get_member(normalise_code(code))
    if member is None:
        raise NotFound(f"unknown member {code!r}")
    return _member_out(node, member)


def _status_route(status: MemberStatus, verb: str, doc: str) -> None:
    def change(code: str, viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
        return _member_out(node, node.coalition.set_status(code, status, viewer=viewer))

    change.__doc__ = doc
    router.add_api_route(
        f"/members/{{code}}/{verb}",
        change,
        methods=["POST"],
        response_model=MemberOut,
        name=f"{verb}_member",
    )


_status_route(MemberStatus.SUSPENDED, "suspend", "Suspend at once: its users see nothing more.")
_status_route(MemberStatus.ACTIVE, "reinstate", "Lift a suspension.")
_status_route(MemberStatus.WITHDRAWN, "withdraw", "A member leaves the coalition for good.")


@router.get("/communities", response_model=dict[str, list[str]])
def list_communities(viewer: CurrentViewer, node: NodeDep) -> dict[str, list[str]]:
    communities = node.store.coalition.directory().communities
    return {name: sorted(members) for name, members in sorted(communities.items())}


@router.put("/communities/{name}", response_model=list[str])
def define_community(
    name: str, body: CommunityIn, viewer: CurrentViewer, node: NodeDep
) -> list[str]:
    """Define or redefine an operator community usable in `releasable_to`."""
    return node.coalition.define_community(name, body.members, viewer=viewer)


@router.get("/accessions", response_model=list[AccessionOut])
def list_accessions(viewer: CurrentViewer, node: NodeDep) -> list[dict[str, Any]]:
    return [a.to_json() for a in node.store.coalition.list_accessions()]


@router.post("/accessions", status_code=201, response_model=AccessionOut)
def apply(body: AccessionIn, viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
    """An application to join, filed by an administrator of the sponsoring member."""
    accession = node.coalition.apply(
        body.code, body.name, body.sponsor, MemberKind(body.kind), body.communities,
        body.public_key, viewer=viewer,
    )  # fmt: skip
    return accession.to_json()


@router.get("/accessions/{code}", response_model=AccessionOut)
def get_accession(code: str, viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
    accession = node.store.coalition.get_accession(normalise_code(code))
    if accession is None:
        raise NotFound(f"no application for {code!r}")
    return accession.to_json()


@router.post("/accessions/{code}/approve", response_model=AccessionOut)
def approve(code: str, viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
    """The caller's member approves; at quorum the applicant becomes active."""
    return node.coalition.vote(code, True, viewer=viewer).to_json()


@router.post("/accessions/{code}/reject", response_model=AccessionOut)
def reject(code: str, viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
    return node.coalition.vote(code, False, viewer=viewer).to_json()
