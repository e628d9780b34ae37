"""Ingest an uploaded document (plain text, an HTML page, an RSS or Atom feed) as OSINT
reports. The body is the document itself; label and grading come in the query string.

The API never fetches URLs: a server that fetched whatever a caller names could be made
to reach hosts behind its firewall (SSRF). The operator's CLI fetches URLs.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from bices.api.auth import CurrentViewer, NodeDep
from bices.domain.reports import LabelDraft, Reliability
from bices.pipeline.formats import ACCEPTED_TYPES
from bices.pipeline.ingest import Ingester, IngestTerms
from bices.pipeline.sources import Original, split_content_type

router = APIRouter(prefix="/api/v1", tags=["ingest"])

UPLOAD_TYPES = ("text/plain", "text/html", "application/rss+xml", "application/atom+xml")
DEFAULT_NAMES = {"text/html": "upload.html", "application/xhtml+xml": "upload.html",
                 "application/rss+xml": "upload.rss", "application/atom+xml": "upload.atom",
                 "application/xml": "upload.xml", "text/xml": "upload.xml"}  # fmt: skip


class IngestedOut(BaseModel):
    id: str
    title: str
    language: str
    location: str = Field(description="the article: a feed entry's link, or the upload's name")
    original: str


class IngestCreated(BaseModel):
    ids: list[str]
    reports: list[IngestedOut]


@router.post(
    "/ingest",
    status_code=201,
    response_model=IngestCreated,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The document itself; a `charset` parameter on the Content-Type "
            "is honoured, else the encoding is detected.",
            "content": {media_type: {"schema": {"type": "string"}} for media_type in UPLOAD_TYPES},
        }
    },
)
async def ingest(
    request: Request,
    viewer: CurrentViewer,
    node: NodeDep,
    classification: Annotated[str, Query(max_length=40, examples=["NATO UNCLASSIFIED"])],
    releasable_to: Annotated[list[str], Query(min_length=1, max_length=64, examples=[["NATO"]])],
    caveat: Annotated[list[str] | None, Query(max_length=16)] = None,
    reliability: Reliability = Reliability.F,
    credibility: Annotated[int, Query(ge=1, le=6)] = 6,
    name: Annotated[
        str | None, Query(min_length=1, max_length=255, description="the document's file name")
    ] = None,
) -> IngestCreated:
    """Store each article of the document as an `OSINT` report, all or nothing, the
    original kept as each report's attachment; default grading F6 (cannot be judged)."""
    media_type, charset = split_content_type(request.headers.get("content-type"))
    if media_type not in ACCEPTED_TYPES:
        # Not a domain error: api/errors.py maps none to 415, and its handler answers and
        # audits this HTTPException like any refusal.
        raise HTTPException(
            415,
            f"Content-Type {media_type or '(none)'} is not accepted; send one of "
            f"{', '.join(UPLOAD_TYPES)}",
        )
    data = await request.body()
    file_name = name or DEFAULT_NAMES.get(media_type, "upload.txt")
    original = Original(file_name, file_name, data, media_type, charset)
    terms = IngestTerms(
        LabelDraft(
            classification=classification, releasable_to=releasable_to, caveats=caveat or []
        ),
        reliability,
        credibility,
    )
    ingester = Ingester(node.collector, node.settings.max_body_bytes)
    stored = await run_in_threadpool(ingester.ingest_one, viewer, original, terms)
    return IngestCreated(
        ids=[s.id for s in stored],
        reports=[IngestedOut(**s.to_json()) for s in stored],
    )
