"""The query string of TAXII 2.1 object requests: `added_after`, `limit`, `next` and the
`match[...]` filters, read into one `ObjectQuery`; anything else is refused by name."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from bices.domain.cursors import Sealer
from bices.domain.errors import InvalidInput

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
SPEC_VERSION = "2.1"
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,249}--[0-9a-fA-F-]{36}$")
TYPE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,249}$")
# Which parameters each kind of request takes (spec sections 5.3-5.8).
OBJECTS = frozenset(
    {"added_after", "limit", "next", "match[id]", "match[type]", "match[version]",
     "match[spec_version]"}
)  # fmt: skip
OBJECT = frozenset({"added_after", "limit", "next", "match[version]", "match[spec_version]"})
VERSIONS = frozenset({"added_after", "limit", "next", "match[spec_version]"})


def timestamp(text: str, name: str) -> datetime:
    """A STIX/RFC 3339 timestamp in UTC, e.g. 2024-07-10T09:00:00.000Z."""
    value = text.strip()
    try:
        if not value.endswith(("Z", "z")):
            raise ValueError
        moment = datetime.fromisoformat(value[:-1] + "+00:00")
    except ValueError:
        raise InvalidInput(
            f"{name}: {text!r} is not a UTC timestamp such as 2024-07-10T09:00:00.000Z"
        ) from None
    return moment.astimezone(UTC)


def stix_time(moment: datetime) -> str:
    """A timestamp as TAXII writes `date_added`: UTC, microseconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


CURSOR_TAG = b"t"  # the tag of a TAXII `next` among the node's sealed cursors


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ended: object `index` of the version stored as `seq` (inclusive).

    Given out sealed (`bices.domain.cursors`): a plain seq would let a client count, from the
    gap between two `next` values, the versions stored between them that it may not see."""

    seq: int
    index: int

    def seal(self, sealer: Sealer) -> str:
        return sealer.seal(CURSOR_TAG, self.seq, self.index)

    @classmethod
    def open(cls, sealer: Sealer, text: str) -> Position:
        opened = sealer.open(CURSOR_TAG, text)
        if opened is None:
            raise InvalidInput(f"next: {text[:100]!r} is not a value this server gave")
        return cls(*opened)


START = Position(0, 0)


@dataclass(frozen=True, slots=True)
class VersionMatch:
    """`match[version]`: `last` (the default), `first`, `all`, and/or timestamps."""

    last: bool = True
    first: bool = False
    all: bool = False
    at: frozenset[datetime] = frozenset()

    @property
    def which(self) -> str:
        """Which versions to read from the store: `last`, `first`, or `all` (also when
        timestamps are asked for: the objects' own versions are compared after)."""
        if self.all or self.at or (self.last and self.first):
            return "all"
        return "first" if self.first else "last"


@dataclass(frozen=True, slots=True)
class ObjectQuery:
    added_after: datetime | None = None
    limit: int = DEFAULT_LIMIT
    after: Position = START
    ids: frozenset[str] | None = None
    types: frozenset[str] | None = None
    versions: VersionMatch = VersionMatch()
    spec_versions: frozenset[str] | None = None

    def admits(self, id_: str, type_: str, spec_version: str) -> bool:
        """Whether an object passes the id, type and spec_version filters."""
        if self.ids is not None and id_ not in self.ids:
            return False
        if self.types is not None and type_ not in self.types:
            return False
        return self.spec_versions is None or spec_version in self.spec_versions


def _values(params: Iterable[tuple[str, str]], name: str) -> list[str]:
    found = [part.strip() for key, value in params if key == name for part in value.split(",")]
    if any(not part for part in found):
        raise InvalidInput(f"{name}: empty value")
    return found


def parse(params: list[tuple[str, str]], allowed: frozenset[str], sealer: Sealer) -> ObjectQuery:
    """Read a request's query parameters; unknown or repeated-where-single ones are refused,
    and a `next` must be one `sealer` sealed."""
    unknown = sorted({key for key, _ in params} - allowed)
    if unknown:
        raise InvalidInput(
            f"unsupported query parameter(s) {', '.join(unknown)}; this endpoint takes "
            f"{', '.join(sorted(allowed))}"
        )
    single: dict[str, str] = {}
    for name in ("added_after", "limit", "next"):
        given = [value for key, value in params if key == name]
        if len(given) > 1:
            raise InvalidInput(f"{name} given {len(given)} times; give it once")
        if given:
            single[name] = given[0]
    limit = DEFAULT_LIMIT
    if "limit" in single:
        try:
            limit = int(single["limit"])
        except ValueError:
            raise InvalidInput(f"limit: {single['limit'][:50]!r} is not an integer") from None
        if limit < 1:
            raise InvalidInput(f"limit: {limit} is not a positive integer")
        limit = min(limit, MAX_LIMIT)
    ids = types = specs = None
    if any(key == "match[id]" for key, _ in params):
        ids = frozenset(_values(params, "match[id]"))
        bad = sorted(i for i in ids if not ID_PATTERN.match(i))
        if bad:
            raise InvalidInput(f"match[id]: {bad[0][:100]!r} is not a STIX identifier")
    if any(key == "match[type]" for key, _ in params):
        types = frozenset(_values(params, "match[type]"))
        bad = sorted(t for t in types if not TYPE_PATTERN.match(t))
        if bad:
            raise InvalidInput(f"match[type]: {bad[0][:100]!r} is not a STIX object type")
    if any(key == "match[spec_version]" for key, _ in params):
        specs = frozenset(_values(params, "match[spec_version]"))
    versions = VersionMatch()
    if any(key == "match[version]" for key, _ in params):
        words = _values(params, "match[version]")
        at = frozenset(
            timestamp(w, "match[version]") for w in words if w not in {"last", "first", "all"}
        )
        versions = VersionMatch("last" in words, "first" in words, "all" in words, at)
    return ObjectQuery(
        added_after=(
            timestamp(single["added_after"], "added_after") if "added_after" in single else None
        ),
        limit=limit,
        after=Position.open(sealer, single["next"]) if "next" in single else START,
        ids=ids,
        types=types,
        versions=versions,
        spec_versions=specs,
    )
