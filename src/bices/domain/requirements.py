"""Standing intelligence requirements: what a user wants to be told of as it arrives.

A requirement is a set of filters. Every filter given must hold (AND); inside a filter
any value may match (OR): `{"entities": ["Kim Jong Un", "Hwasong-18"], "types": ["INTREP"]}`
is "an INTREP about Kim Jong Un or about the Hwasong-18". `RequirementDraft` validates
input for the API and the CLI alike; `Facts` is what a report offers to the filters, and
`matches` decides. No I/O here: the stream computes the facts once per report and tests
each subscriber's requirements against them.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bices.domain.errors import InvalidInput
from bices.domain.labels import Classification
from bices.domain.reports import ReportType, ReportVersion

EARTH_RADIUS_KM = 6371.0088
_GRADING = re.compile(r"^([A-F])([1-6])$")


class BoundingBox(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    south: float = Field(ge=-90, le=90)
    west: float = Field(ge=-180, le=180)
    north: float = Field(ge=-90, le=90)
    east: float = Field(ge=-180, le=180, description="less than `west` across the antimeridian")

    @model_validator(mode="after")
    def _ordered(self) -> BoundingBox:
        if self.south > self.north:
            raise ValueError(f"area.box: south {self.south} is north of north {self.north}")
        return self

    def contains(self, lat: float, lon: float) -> bool:
        if not self.south <= lat <= self.north:
            return False
        if self.west <= self.east:
            return self.west <= lon <= self.east
        return lon >= self.west or lon <= self.east  # the box crosses the antimeridian


class Circle(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_km: float = Field(gt=0, le=20_040)

    def contains(self, lat: float, lon: float) -> bool:
        return distance_km(self.lat, self.lon, lat, lon) <= self.radius_km


class Area(BaseModel):
    """Places: a bounding box, a circle, or both (either may contain the place)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    box: BoundingBox | None = None
    circle: Circle | None = None

    @model_validator(mode="after")
    def _something(self) -> Area:
        if self.box is None and self.circle is None:
            raise ValueError("area needs a `box` or a `circle`")
        return self

    def contains(self, lat: float, lon: float) -> bool:
        return bool(
            (self.box is not None and self.box.contains(lat, lon))
            or (self.circle is not None and self.circle.contains(lat, lon))
        )


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def fold(text: str) -> str:
    """Lower case without diacritics, spaces collapsed: how keywords and names compare."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.split())


@lru_cache(maxsize=4096)
def keyword_pattern(keyword: str) -> re.Pattern[str]:
    """A keyword or phrase as whole words of folded text (`rudal` does not match `rudalnya`;
    a trailing `*` matches any ending: `rudal*`)."""
    words = fold(keyword).split()
    prefix = words[-1].endswith("*")
    if prefix:
        words[-1] = words[-1].rstrip("*")
    body = r"\s+".join(re.escape(w) for w in words)
    ending = r"\w*" if prefix else r"(?!\w)"
    return re.compile(r"(?<!\w)" + body + ending)


def parse_grading(text: str) -> tuple[str, int]:
    match = _GRADING.fullmatch(text.strip().upper())
    if match is None:
        raise ValueError(
            f"grading {text!r} is not Admiralty grading: a letter A-F and a digit 1-6, e.g. B2"
        )
    return match.group(1), int(match.group(2))


def _strings(values: list[str], what: str, max_length: int = 200) -> list[str]:
    cleaned: list[str] = []
    for value in values:
        text = " ".join(value.split())
        if not text:
            raise ValueError(f"{what}: an empty value")
        if len(text) > max_length:
            raise ValueError(f"{what}: {text[:40]!r}… is longer than {max_length} characters")
        if text not in cleaned:
            cleaned.append(text)
    return cleaned


class RequirementDraft(BaseModel):
    """A requirement as a user writes it. At least one filter is needed."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, examples=["DPRK missile activity"])
    entities: list[str] = Field(
        default_factory=list, max_length=50, description="canonical names or aliases"
    )
    keywords: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="words or phrases in the title or text (case and accents ignored; "
        "`rudal*` matches any ending)",
    )
    topics: list[str] = Field(default_factory=list, max_length=30)
    area: Area | None = None
    members: list[str] = Field(default_factory=list, max_length=64, description="originators")
    types: list[ReportType] = Field(default_factory=list, max_length=10)
    classifications: list[str] = Field(default_factory=list, max_length=6)
    min_grading: str | None = Field(
        default=None, description="Admiralty grading at least this good, e.g. `B2`"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name is blank")
        return value.strip()

    @field_validator("entities")
    @classmethod
    def _entities(cls, value: list[str]) -> list[str]:
        return _strings(value, "entities")

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        cleaned = _strings(value, "keywords")
        for keyword in cleaned:
            if not fold(keyword).strip("*"):
                raise ValueError(f"keywords: {keyword!r} has no letters or digits")
        return cleaned

    @field_validator("topics")
    @classmethod
    def _topics(cls, value: list[str]) -> list[str]:
        known = {fold(name): name for name in topic_names()}
        chosen: list[str] = []
        for topic in value:
            name = known.get(fold(topic))
            if name is None:
                raise ValueError(f"unknown topic {topic!r}; known: {', '.join(topic_names())}")
            if name not in chosen:
                chosen.append(name)
        return chosen

    @field_validator("members")
    @classmethod
    def _members(cls, value: list[str]) -> list[str]:
        codes = [code.strip().upper() for code in value]
        for code in codes:
            if not re.fullmatch(r"[A-Z][A-Z0-9_-]{1,31}", code):
                raise ValueError(f"members: {code!r} is not a member code")
        return sorted(set(codes))

    @field_validator("classifications")
    @classmethod
    def _classifications(cls, value: list[str]) -> list[str]:
        try:
            levels = {Classification.parse(v) for v in value}
        except InvalidInput as error:
            raise ValueError(f"classifications: {error}") from None
        return [level.marking for level in sorted(levels)]

    @field_validator("min_grading")
    @classmethod
    def _grading(cls, value: str | None) -> str | None:
        if value is None:
            return None
        letter, digit = parse_grading(value)
        return f"{letter}{digit}"

    @model_validator(mode="after")
    def _has_filter(self) -> RequirementDraft:
        if not (self.entities or self.keywords or self.topics or self.area or self.members
                or self.types or self.classifications or self.min_grading):  # fmt: skip
            raise ValueError(
                "a requirement needs at least one filter: entities, keywords, topics, area, "
                "members, types, classifications or min_grading"
            )
        return self

    def filters(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"name"}, exclude_defaults=True)


@lru_cache(maxsize=1)
def topic_names() -> tuple[str, ...]:
    from bices.exploit import kb

    return tuple(topic["name"] for topic in kb.load("topics")["topics"])


@dataclass(frozen=True, slots=True)
class Requirement:
    """A stored requirement; `id` is the owner's own number for it."""

    id: int
    user_id: int
    name: str
    draft: RequirementDraft
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            **self.draft.model_dump(mode="json", exclude={"name"}),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Facts:
    """What a report offers the filters: its own fields, and what exploitation found."""

    type: ReportType
    originator: str
    classification: Classification
    reliability: str
    credibility: int
    text: str  # folded title and body
    places: tuple[tuple[float, float], ...]
    entities: frozenset[str] = field(default_factory=frozenset)  # folded names and aliases
    topics: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(
        cls,
        version: ReportVersion,
        entity_names: Iterable[str] = (),
        topics: Iterable[str] = (),
        places: Sequence[tuple[float, float]] = (),
    ) -> Facts:
        return cls(
            type=version.type,
            originator=version.label.originator,
            classification=version.label.classification,
            reliability=version.source.reliability.value,
            credibility=version.source.credibility,
            text=fold(f"{version.title}\n{version.body}"),
            places=tuple((loc.lat, loc.lon) for loc in version.locations) + tuple(places),
            entities=frozenset(fold(name) for name in entity_names),
            topics=frozenset(topics),
        )


def needs_exploitation(draft: RequirementDraft) -> bool:
    """Entities and topics come from exploitation; the other filters from the report."""
    return bool(draft.entities or draft.topics)


@dataclass(frozen=True, slots=True)
class Compiled:
    """A requirement ready to test: its entity names folded, with the canonical names
    their aliases resolve to (`Korut` also looks for `North Korea`)."""

    id: int
    draft: RequirementDraft
    entity_keys: frozenset[str]

    @classmethod
    def of(cls, requirement: Requirement, resolve: Callable[[str], Iterable[str]]) -> Compiled:
        keys = {fold(name) for name in requirement.draft.entities}
        for name in requirement.draft.entities:
            keys.update(fold(canonical) for canonical in resolve(name))
        return cls(requirement.id, requirement.draft, frozenset(keys))

    def matches(self, facts: Facts) -> bool:
        return matches(self.draft, facts, self.entity_keys)


def matches(
    draft: RequirementDraft, facts: Facts, entity_keys: frozenset[str] = frozenset()
) -> bool:
    """Every filter given holds for the report. `entity_keys` are the folded entity names
    to look for (default: the names as written)."""
    if draft.types and facts.type not in draft.types:
        return False
    if draft.members and facts.originator not in draft.members:
        return False
    if draft.classifications and facts.classification.marking not in draft.classifications:
        return False
    if draft.min_grading is not None:
        letter, digit = parse_grading(draft.min_grading)
        # F and 6 mean "cannot be judged": never as good as a stated grade.
        if facts.reliability > letter or facts.credibility > digit:
            return False
    if draft.topics and not facts.topics.intersection(draft.topics):
        return False
    if draft.entities:
        keys = entity_keys or frozenset(fold(name) for name in draft.entities)
        if facts.entities.isdisjoint(keys):
            return False
    if draft.keywords and not any(keyword_pattern(k).search(facts.text) for k in draft.keywords):
        return False
    return not (
        draft.area is not None
        and not any(draft.area.contains(lat, lon) for lat, lon in facts.places)
    )
