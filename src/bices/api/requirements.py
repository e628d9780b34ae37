"""Standing requirements (subscriptions): the caller's own, which drive the live stream."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from bices.api.auth import CurrentViewer, NodeDep
from bices.domain.requirements import RequirementDraft, topic_names

router = APIRouter(prefix="/api/v1", tags=["requirements"])

RequirementId = Annotated[int, Path(ge=1, le=2**62, description="the caller's requirement number")]


@router.get("/requirements")
def list_requirements(viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
    """The caller's requirements, and the topics a requirement may name."""
    items = [r.to_json() for r in node.requirements.list(viewer)]
    return {"items": items, "topics": list(topic_names())}


@router.post("/requirements", status_code=201)
def add_requirement(body: RequirementDraft, viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
    """A new standing requirement: every filter given must hold, any value inside one may.
    Reports matching it carry its id in `requirements` on the stream."""
    return node.requirements.add(viewer, body).to_json()


@router.get("/requirements/{requirement_id}")
def get_requirement(
    requirement_id: RequirementId, viewer: CurrentViewer, node: NodeDep
) -> dict[str, Any]:
    return node.requirements.get(viewer, requirement_id).to_json()


@router.put("/requirements/{requirement_id}")
def replace_requirement(
    requirement_id: RequirementId, body: RequirementDraft, viewer: CurrentViewer, node: NodeDep
) -> dict[str, Any]:
    """Replace a requirement's name and filters; open streams use the new ones at once."""
    return node.requirements.replace(viewer, requirement_id, body).to_json()


@router.delete("/requirements/{requirement_id}", status_code=204)
def remove_requirement(
    requirement_id: RequirementId, viewer: CurrentViewer, node: NodeDep
) -> Response:
    node.requirements.remove(viewer, requirement_id)
    return Response(status_code=204)
