"""Reports: create (single and batch), update, get, versions, list, search, verify."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from bices.api.auth import CurrentViewer, NodeDep
from bices.api.schemas import (
    BatchCreated,
    BatchIn,
    Created,
    ReportOut,
    ReportPage,
    SearchPage,
    VerifyOut,
)
from bices.domain.errors import InvalidInput
from bices.domain.label_xml import to_xml
from bices.domain.labels import Classification, normalise_code
from bices.domain.reports import ReportDraft, ReportType, ReportVersion
from bices.store.base import ReportFilter

router = APIRouter(prefix="/api/v1", tags=["reports"])


def _out(v: ReportVersion) -> dict[str, Any]:
    return v.to_json()


TypeQ = Annotated[list[ReportType] | None, Query(description="report types")]
MemberQ = Annotated[list[str] | None, Query(description="originating members")]
ClassQ = Annotated[list[str] | None, Query(description="classifications, e.g. NATO SECRET")]
LangQ = Annotated[list[str] | None, Query(description="ISO 639 language codes")]
CursorQ = Annotated[str | None, Query(max_length=200)]


async def report_filter(
    type: TypeQ = None,
    member: MemberQ = None,
    classification: ClassQ = None,
    language: LangQ = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> ReportFilter:
    """The filters shared by listing and search, read from the query string."""
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidInput(f"{name} must carry a time zone, e.g. 2024-07-10T00:00:00Z")
    return ReportFilter(
        types=frozenset(type) if type else None,
        originators=frozenset(normalise_code(m) for m in member) if member else None,
        classifications=(
            frozenset(Classification.parse(c) for c in classification) if classification else None
        ),
        languages=frozenset(lang.lower() for lang in language) if language else None,
        since=since,
        until=until,
    )


Filters = Annotated[ReportFilter, Depends(report_filter)]


@router.post("/reports", status_code=201, response_model=Created)
def create_report(draft: ReportDraft, viewer: CurrentViewer, node: NodeDep) -> Created:
    stored = node.collector.submit(viewer, [draft])[0]
    return Created(id=stored.id, version=stored.version)


@router.post("/reports/batch", status_code=201, response_model=BatchCreated)
def create_reports(batch: BatchIn, viewer: CurrentViewer, node: NodeDep) -> BatchCreated:
    """All or nothing: one bad report refuses the whole batch, naming its index."""
    stored = node.collector.submit(viewer, batch.reports)
    return BatchCreated(ids=[v.id for v in stored])


@router.put("/reports/{report_id}", response_model=Created)
def update_report(
    report_id: str, draft: ReportDraft, viewer: CurrentViewer, node: NodeDep
) -> Created:
    """A new version superseding the current one; the old version stays readable."""
    stored = node.collector.update(viewer, report_id, draft)
    return Created(id=stored.id, version=stored.version)


@router.get("/reports", response_model=ReportPage)
def list_reports(
    viewer: CurrentViewer,
    node: NodeDep,
    where: Filters,
    cursor: CursorQ = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Current versions the caller may see, newest first; `total` counts only those."""
    page = node.reader.page(viewer, where, cursor, limit)
    return {"items": [_out(v) for v in page.items], "total": page.total,
            "next_cursor": page.next_cursor}  # fmt: skip


@router.get("/search", response_model=SearchPage)
def search(
    viewer: CurrentViewer,
    node: NodeDep,
    q: Annotated[str, Query(min_length=1, max_length=1000)],
    where: Filters,
    cursor: CursorQ = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    """Full-text search; items, `total` and `facets` cover only what the caller may see."""
    result = node.reader.search(viewer, q, where, cursor, limit)
    return {"items": [_out(v) for v in result.items], "total": result.total,
            "facets": result.facets, "next_cursor": result.next_cursor,
            "total_exact": result.exact,
            "ranked_by": "relevance" if result.exact else "newest"}  # fmt: skip


@router.get("/reports/{report_id}", response_model=ReportOut)
def get_report(report_id: str, viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
    """The current version; a report the caller may not see answers 404 like a missing one."""
    report = node.reader.get(viewer, report_id)
    return {**_out(report), **node.reader.tearline_links(viewer, report_id)}


@router.post("/reports/{report_id}/tearline", status_code=201, response_model=Created)
def release_tearline(
    report_id: str, draft: ReportDraft, viewer: CurrentViewer, node: NodeDep
) -> dict[str, Any]:
    """A releasing officer of the originator sanitises a report into a new one under a
    lower label (no higher classification, another releasability): it is linked to the
    original and shared where its own label allows."""
    stored = node.collector.tearline(viewer, report_id, draft)
    return {"id": stored.id, "version": stored.version}


@router.get("/reports/{report_id}/versions", response_model=list[ReportOut])
def get_versions(report_id: str, viewer: CurrentViewer, node: NodeDep) -> list[dict[str, Any]]:
    return [_out(v) for v in node.reader.versions(viewer, report_id)]


@router.get("/reports/{report_id}/versions/{version}", response_model=ReportOut)
def get_version(
    report_id: str,
    version: Annotated[int, Path(ge=1, le=2**31)],
    viewer: CurrentViewer,
    node: NodeDep,
) -> dict[str, Any]:
    return _out(node.reader.get(viewer, report_id, version))


@router.get("/reports/{report_id}/verify", response_model=VerifyOut)
def verify_report(report_id: str, viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
    """Check each visible version's signature against the originator's registered key."""
    checks = node.reader.verify(viewer, report_id)
    return {
        "id": report_id,
        "versions": [{"version": c.version, "valid": c.valid, "reason": c.reason} for c in checks],
    }


@router.get(
    "/reports/{report_id}/attachments/{sha256}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_attachment(report_id: str, sha256: str, viewer: CurrentViewer, node: NodeDep) -> Response:
    blob = node.reader.attachment(viewer, report_id, sha256)
    return Response(blob.data, media_type="application/octet-stream")


@router.get(
    "/reports/{report_id}/label.xml",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}}},
)
def get_label_xml(report_id: str, viewer: CurrentViewer, node: NodeDep) -> Response:
    """The current version's label as ADatP-4774 XML."""
    version = node.reader.get(viewer, report_id)
    return Response(to_xml(version.label, version.stored_at), media_type="application/xml")
