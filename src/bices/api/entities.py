"""Exploitation results: a report's entities, events, topics and quantities; entity pages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from bices.api.auth import CurrentViewer, NodeDep
from bices.domain.errors import InvalidInput
from bices.exploit.model import EntityType, EventType

router = APIRouter(prefix="/api/v1", tags=["entities"])


@router.get("/reports/{report_id}/entities")
def report_entities(report_id: str, viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
    """What exploitation found in the current version (`status` is `pending` until the
    worker has reached it); a report the caller may not see answers 404."""
    return node.entities.of_report(viewer, report_id)


@router.get("/reports/{report_id}/related")
def related_reports(
    report_id: str,
    viewer: CurrentViewer,
    node: NodeDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """Reports correlated with this one that the caller may see: `duplicate`,
    `near-duplicate` (score = estimated similarity) and `related` (score = entities shared,
    reported within three days)."""
    links = node.entities.related(viewer, report_id, limit)
    return {
        "items": [
            {"id": link.report.id, "version": link.report.version, "title": link.report.title,
             "kind": link.kind, "score": link.score, "label": link.report.label.render()}
            for link in links
        ]
    }  # fmt: skip


@router.get("/entities")
def find_entities(
    viewer: CurrentViewer,
    node: NodeDep,
    q: Annotated[str | None, Query(max_length=200, description="name or alias, any part")] = None,
    type: Annotated[EntityType | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Entities mentioned in reports the caller may see, most mentioned first."""
    found = node.entities.find(viewer, q, type, limit)
    return {"items": [e.to_json() for e in found]}


@router.get("/entities/{entity_id}")
def get_entity(
    entity_id: Annotated[str, Path(pattern="^[0-9a-f]{16}$", description="an entity's id")],
    viewer: CurrentViewer,
    node: NodeDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """An entity page from visible reports only; 404 when none mentions it."""
    view = node.entities.entity(viewer, entity_id, limit)
    reports = [
        {"id": v.id, "version": v.version, "title": v.title, "type": v.type.value,
         "reported_at": v.reported_at.isoformat(), "label": v.label.render()}
        for v in view.reports
    ]  # fmt: skip
    return {**view.summary.to_json(), "aliases": view.aliases, "reports": reports}


@router.get("/events")
def corroborated_events(
    viewer: CurrentViewer,
    node: NodeDep,
    since: datetime | None = None,
    until: datetime | None = None,
    type: Annotated[EventType | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Events extracted from reports the caller may see (reported in the period), the same
    event merged across reports; `sources` counts the independent sources reporting it."""
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidInput(f"{name} must carry a time zone, e.g. 2024-07-10T00:00:00Z")
    clusters = node.entities.events(viewer, since, until, type, limit)
    return {"items": [c.to_json() for c in clusters]}


class WatchIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="canonical entity name")


@router.get("/watchlist")
def get_watchlist(viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
    """The caller's watched entities."""
    return {"items": [w.to_json() for w in node.entities.watches(viewer)]}


@router.post("/watchlist", status_code=201)
def add_watch(body: WatchIn, viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
    """Watch an entity by canonical name (e.g. `Kim Jong Un`, `Hwasong-18`): each report
    stored from now on that mentions it raises an alert for the caller."""
    return node.entities.watch(viewer, body.name).to_json()


@router.delete("/watchlist/{watch_id}", status_code=204)
def remove_watch(
    watch_id: Annotated[int, Path(ge=1, le=2**62)], viewer: CurrentViewer, node: NodeDep
) -> Response:
    node.entities.unwatch(viewer, watch_id)
    return Response(status_code=204)


@router.get("/alerts")
def get_alerts(
    viewer: CurrentViewer,
    node: NodeDep,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """The caller's alerts after a cursor, oldest first, about reports the caller may see."""
    found = node.entities.alerts(viewer, after, limit)
    items = [
        {"id": a.id, "watch": a.watch, "at": a.at.isoformat(), "report": a.report.id,
         "title": a.report.title, "label": a.report.label.render()}
        for a in found
    ]  # fmt: skip
    return {"items": items, "next_after": found[-1].id if len(found) == limit else None}
