"""Reports: what a member collected, with its source grading, times, places and attachments.

`ReportDraft` is the one place input is validated, for the API, the CLI and the demo alike.
A stored `ReportVersion` is immutable; an update makes the next version.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any

import pycountry
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from bices.domain.labels import Label


class ReportType(StrEnum):
    INTREP = "INTREP"
    INTSUM = "INTSUM"
    SPOTREP = "SPOTREP"
    OSINT = "OSINT"
    TRACK = "TRACK"
    ISR = "ISR"
    RFI_RESPONSE = "RFI-RESPONSE"


class Reliability(StrEnum):
    """Admiralty source reliability: A completely reliable … E unreliable, F cannot be judged."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"
    E = "E"
    F = "F"


Credibility = Annotated[
    int, Field(ge=1, le=6, description="Admiralty credibility 1 (confirmed) … 6 (cannot be judged)")
]


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    reliability: Reliability
    credibility: Credibility

    @property
    def grading(self) -> str:
        """The grading as analysts write it, e.g. ``B2``."""
        return f"{self.reliability.value}{self.credibility}"


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    name: str | None = Field(default=None, max_length=200)


class LabelDraft(BaseModel):
    """A label as a caller writes it; the originator is always the caller's member."""

    model_config = ConfigDict(extra="forbid")

    classification: str = Field(examples=["NATO SECRET"])
    releasable_to: list[str] = Field(min_length=1, max_length=64, examples=[["NATO", "KOR"]])
    caveats: list[str] = Field(default_factory=list, max_length=16)

    def bind(self, originator: str) -> Label:
        return Label.build(self.classification, self.releasable_to, originator, self.caveats)


class AttachmentDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    media_type: str = Field(
        default="application/octet-stream", max_length=127, pattern=r"^[\w.+-]+/[\w.+-]+$"
    )
    content_base64: str
    _data: bytes | None = PrivateAttr(default=None)  # the content, when made from bytes

    @classmethod
    def holding(
        cls, name: str, media_type: str, data: bytes, encoded: str | None = None
    ) -> AttachmentDraft:
        """An attachment of bytes already in hand (`encoded`: their base64, if known):
        encoded at most once, never decoded again."""
        if encoded is None:
            encoded = base64.b64encode(data).decode("ascii")
        draft = cls(name=name, media_type=media_type, content_base64=encoded)
        draft._data = data
        return draft

    def content(self) -> bytes:
        if self._data is not None:
            return self._data
        try:
            return base64.b64decode(self.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(
                f"attachment {self.name!r}: content_base64 is not valid base64"
            ) from None


@lru_cache(maxsize=1024)
def is_language(code: str) -> bool:
    """An ISO 639-1 or 639-3 code known to pycountry."""
    if len(code) == 2:
        return pycountry.languages.get(alpha_2=code) is not None
    return pycountry.languages.get(alpha_3=code) is not None


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"{field} must carry a time zone, e.g. 2024-07-10T09:00:00Z")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{field} {value.isoformat()} is out of range in UTC") from None


class ReportDraft(BaseModel):
    """A report as submitted: validated here, labelled and signed by the pipeline."""

    model_config = ConfigDict(extra="forbid")

    type: ReportType
    title: str = Field(min_length=1, max_length=500)
    body: str = Field(max_length=1_000_000)
    language: str = Field(min_length=2, max_length=3, examples=["id", "en"])
    label: LabelDraft
    source: Source
    reported_at: datetime | None = None
    observed_at: datetime | None = None
    locations: list[Location] = Field(default_factory=list, max_length=100)
    attachments: list[AttachmentDraft] = Field(default_factory=list, max_length=20)
    id: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="Optional client-chosen UUID; required with `signature`.",
    )
    signature: str | None = Field(
        default=None,
        description="Optional Ed25519 signature by the originating member over the "
        "canonical form of version 1 (base64, or a batch signature `batch1:…`); the node "
        "verifies it instead of signing.",
    )

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        code = value.lower()
        if not is_language(code):
            raise ValueError(f"unknown ISO 639 language code {value!r}")
        return code

    @field_validator("reported_at")
    @classmethod
    def _reported_aware(cls, value: datetime | None) -> datetime | None:
        return _aware(value, "reported_at")

    @field_validator("observed_at")
    @classmethod
    def _observed_aware(cls, value: datetime | None) -> datetime | None:
        return _aware(value, "observed_at")

    @field_validator("title")
    @classmethod
    def _title_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("title is blank")
        return value


@dataclass(frozen=True, slots=True)
class Attachment:
    sha256: str
    name: str
    media_type: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "name": self.name,
            "media_type": self.media_type,
            "size": self.size,
        }


@dataclass(frozen=True, slots=True)
class ReportVersion:
    """One immutable, signed version of a report."""

    id: str
    version: int
    type: ReportType
    title: str
    body: str
    language: str
    label: Label
    source: Source
    reported_at: datetime
    observed_at: datetime | None
    locations: tuple[Location, ...]
    attachments: tuple[Attachment, ...]
    author: str  # user name, informative; not part of the signed content
    stored_at: datetime
    signature: str = ""
    seq: int = 0  # store order; 0 until stored
    label_id: int = 0  # the store's id of `label`; 0 until stored

    def signed_content(self) -> dict[str, Any]:
        """What the originator's signature covers: identity, content and label."""
        return {
            "id": self.id,
            "version": self.version,
            "type": self.type.value,
            "title": self.title,
            "body": self.body,
            "language": self.language,
            "label": self.label.to_json(),
            "source": {
                "name": self.source.name,
                "reliability": self.source.reliability.value,
                "credibility": self.source.credibility,
            },
            "reported_at": iso(self.reported_at),
            "observed_at": None if self.observed_at is None else iso(self.observed_at),
            "locations": [loc.model_dump() for loc in self.locations],
            "attachments": [a.to_json() for a in self.attachments],
        }

    def to_json(self) -> dict[str, Any]:
        data = self.signed_content()
        data["label"]["banner"] = self.label.render()
        data["source"]["grading"] = self.source.grading
        data.update(
            originator=self.label.originator,
            author=self.author,
            stored_at=iso(self.stored_at),
            signature=self.signature,
        )
        return data


@lru_cache(maxsize=4096)
def iso(moment: datetime) -> str:
    """UTC ISO 8601 with a ``Z``, microseconds kept: the one time format of signed payloads.

    Remembered: a stored version's times are written three to five times (signed content,
    rows, events), and a batch's versions share their `stored_at`. Equal datetimes are the
    same instant, so they share one text whatever zone they were made in."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
