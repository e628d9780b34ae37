"""Users, their tokens, and the audit trail."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from bices.api.auth import CurrentViewer, NodeDep
from bices.api.schemas import AuditPage, Revoked, TokenOut, UserCreated, UserIn, UserOut

router = APIRouter(prefix="/api/v1", tags=["users"])


@router.get("/users/me", response_model=UserOut)
def me(viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
    return node.coalition.user(viewer.name, viewer).to_json()


@router.get("/users", response_model=list[UserOut])
def list_users(viewer: CurrentViewer, node: NodeDep) -> list[dict[str, Any]]:
    """Operators see every user; member-admins their own member's."""
    return [u.to_json() for u in node.coalition.users(viewer)]


@router.post("/users", status_code=201, response_model=UserCreated)
def add_user(body: UserIn, viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
    """A new user and its first token, shown once."""
    user, token = node.coalition.add_user(
        body.member, body.name, body.clearance, body.caveats, body.roles, viewer=viewer
    )
    return {"user": user.to_json(), "token": token}


@router.post("/users/{name}/tokens", status_code=201, response_model=TokenOut)
def issue_token(
    name: str,
    viewer: CurrentViewer,
    node: NodeDep,
    expires_in_days: Annotated[int | None, Query(ge=1, le=3650)] = None,
) -> dict[str, Any]:
    """Another token for the user, shown once; without `expires_in_days` it does not expire."""
    user = node.coalition.user(name, viewer)
    ttl = None if expires_in_days is None else timedelta(days=expires_in_days)
    return {"token": node.coalition.issue_token(user, ttl, viewer)}


@router.delete("/users/{name}/tokens", response_model=Revoked)
def revoke_tokens(name: str, viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
    """Revoke every token of the user; they stop working on the next request."""
    return {"revoked": node.coalition.revoke(name, viewer)}


@router.get("/audit", response_model=AuditPage)
def audit_trail(
    viewer: CurrentViewer,
    node: NodeDep,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Audit events after `after`, only those about items the caller may see."""
    events = node.reader.audit_trail(viewer, after, limit)
    return {
        "items": [e.to_json() for e in events],
        "next_after": events[-1].seq if len(events) == limit else None,
    }
