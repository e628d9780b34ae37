"""Ingest: collected text becomes `OSINT` reports, stored through the `Collector`.

Each article becomes a `ReportDraft` under the label and grading the caller gives, with
its original attached, so it is validated, signed and audited like any report. A folder
goes in chunks of at most the batch limit, each chunk all or nothing; a file's articles
always go in one chunk, so a feed with more articles than a chunk holds is refused whole
rather than stored in part. An input that cannot be read is refused with its reason while
the others are stored.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from bices.domain.errors import BicesError, InvalidInput, TooLarge
from bices.domain.reports import (
    AttachmentDraft,
    LabelDraft,
    Reliability,
    ReportDraft,
    ReportType,
    ReportVersion,
    Source,
    is_language,
)
from bices.domain.users import Viewer
from bices.exploit.language import UNDETERMINED, detect_language
from bices.pipeline.collect import Collector
from bices.pipeline.formats import Document, documents
from bices.pipeline.sources import Original, Refusal

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestTerms:
    """What the caller says about every document of one ingest."""

    label: LabelDraft
    reliability: Reliability = Reliability.F  # cannot be judged
    credibility: int = 6  # cannot be judged


@dataclass(frozen=True, slots=True)
class Ingested:
    """A stored report and where its article came from."""

    id: str
    title: str
    language: str
    location: str  # the article (a feed entry's link, a page's URL, a file)
    original: str  # the file or URL that was read

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "title": self.title, "language": self.language,
                "location": self.location, "original": self.original}  # fmt: skip


@dataclass(slots=True)
class IngestResult:
    stored: list[Ingested] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "stored": [s.to_json() for s in self.stored],
            "refused": [{"location": r.location, "reason": r.reason} for r in self.refused],
        }


class Ingester:
    def __init__(self, collector: Collector, chunk_bytes: int) -> None:
        """`chunk_bytes` bounds the originals one chunk holds in memory (a feed's bytes
        count once per entry, since each entry's report carries the feed)."""
        self.collector = collector
        self.chunk_bytes = chunk_bytes

    @property
    def max_bytes(self) -> int:
        """The largest original: it is kept whole as an attachment."""
        return self.collector.limits.max_attachment_bytes

    def drafts(self, original: Original, terms: IngestTerms) -> list[tuple[Document, ReportDraft]]:
        """The report drafts of one original, or `InvalidInput` / `TooLarge` naming why none.
        They fit in one batch: at most the batch limit, and the copies of the original that
        several keep within `chunk_bytes`, so that they are stored all together or not at
        all."""
        size = len(original.data)
        if size > self.max_bytes:
            raise TooLarge(
                f"{original.location}: {size} bytes is over the attachment "
                f"limit of {self.max_bytes} bytes"
            )
        max_batch = self.collector.limits.max_batch
        found = documents(original, max_documents=max_batch)  # a feed stops at the limit
        if len(found) > 1 and size * len(found) > self.chunk_bytes:  # one goes alone
            raise TooLarge(
                f"{original.location}: {len(found)} articles each keeping the {size}-byte "
                f"original exceed {self.chunk_bytes} bytes in one batch; split the feed"
            )
        encoded = base64.b64encode(original.data).decode("ascii")
        now = datetime.now(UTC)
        pairs = []
        for document in found:
            attachment = AttachmentDraft.holding(
                original.name[:255] or "original", document.media_type, original.data, encoded
            )
            published = document.published
            try:
                draft = ReportDraft(
                    type=ReportType.OSINT,
                    title=document.title,
                    body=document.text,
                    language=language_of(document.text, document.language_hint),
                    label=terms.label,
                    source=Source(
                        name=document.site,
                        reliability=terms.reliability,
                        credibility=terms.credibility,
                    ),
                    reported_at=published if published is not None and published <= now else None,
                    attachments=[attachment],
                )
            except ValidationError as error:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
                )
                raise InvalidInput(f"{document.location}: {problems}") from None
            pairs.append((document, draft))
        return pairs

    def ingest_one(
        self, viewer: Viewer, original: Original, terms: IngestTerms, acting: str | None = None
    ) -> list[Ingested]:
        """One original (an upload), all or nothing: every article stored, or none."""
        self.collector.check_label(viewer, terms.label)
        pairs = self.drafts(original, terms)  # they fit in one batch
        stored = self.collector.submit(viewer, [d for _, d in pairs], acting)
        return [_ingested(doc, version) for (doc, _), version in zip(pairs, stored, strict=True)]

    def ingest(
        self,
        viewer: Viewer,
        inputs: Iterable[Original | Refusal],
        terms: IngestTerms,
        acting: str | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> IngestResult:
        """Many originals (a folder, a URL): stored in chunks, each chunk all or nothing, an
        input's articles always in the same chunk; an input that cannot be read or parsed,
        or fails in any other way, is refused with its reason, and the others are stored.
        `progress` is called with each input's location once it is handled."""
        self.collector.check_label(viewer, terms.label)
        result = IngestResult()
        max_batch = self.collector.limits.max_batch
        pending: list[tuple[Document, ReportDraft]] = []
        pending_bytes = 0

        def flush() -> None:
            nonlocal pending_bytes
            if not pending:
                return
            try:
                stored = self.collector.submit(viewer, [d for _, d in pending], acting)
            except BicesError as error:
                for location in dict.fromkeys(doc.original.location for doc, _ in pending):
                    result.refused.append(Refusal(location, f"not stored: {error}"))
            else:
                result.stored.extend(
                    _ingested(doc, v) for (doc, _), v in zip(pending, stored, strict=True)
                )
            pending.clear()
            pending_bytes = 0

        def fits(count: int, size: int) -> bool:
            return len(pending) + count <= max_batch and pending_bytes + size <= self.chunk_bytes

        for item in inputs:
            if isinstance(item, Refusal):
                result.refused.append(_without_location(item))
            else:
                try:
                    pairs = self.drafts(item, terms)
                except (InvalidInput, TooLarge) as error:
                    result.refused.append(_without_location(Refusal(item.location, str(error))))
                except Exception as error:  # a bug met on one input must not stop the others
                    log.exception("ingest: unexpected error reading %s", item.location)
                    reason = f"not read: unexpected {type(error).__name__}: {error}"
                    result.refused.append(Refusal(item.location, reason))
                else:
                    size = len(item.data)
                    if not fits(len(pairs), size * len(pairs)):
                        flush()  # drafts() made sure that they fit in an empty chunk
                    pending.extend(pairs)
                    pending_bytes += size * len(pairs)
            if progress is not None:
                progress(item.location)
        flush()
        return result


def _ingested(document: Document, version: ReportVersion) -> Ingested:
    return Ingested(version.id, version.title, version.language, document.location,
                    document.original.location)  # fmt: skip


def _without_location(refusal: Refusal) -> Refusal:
    """The reason without the location it starts with: the summary shows that beside it."""
    return Refusal(refusal.location, refusal.reason.removeprefix(f"{refusal.location}: "))


# -- language --------------------------------------------------------------------------------


def language_of(text: str, hint: str | None = None) -> str:
    """The text's language as the exploitation engine detects it; where the text says too
    little (``und``), the document's own declaration if it names a language."""
    detected = detect_language(text)
    if detected != UNDETERMINED:
        return detected
    if hint is not None and is_language(hint):
        return hint
    return UNDETERMINED
