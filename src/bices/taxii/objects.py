"""STIX objects of stored report versions, as the TAXII server serves them.

Each version's objects come from the STIX mapping (`bices.stix.report_objects`) and are
serialised once; they are kept in a bounded cache by (seq, whether its extraction is in,
when the first version the viewer may see was stored), since a version never changes and
its extraction arrives once. The objects versions refer to (markings, extension
definitions, identities) are mostly the same few for every version: each is serialised once
per STIX version of it, keyed by (id, created, modified), which is what identifies an
object's content in STIX; `created` is in the key because a report's objects may tell when
the first version the viewer may see was stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bices.domain.reports import ReportVersion
from bices.recent import Recent
from bices.stix import report_objects
from bices.taxii.filters import timestamp

# Types of the objects a version refers to rather than consists of: the same object comes
# with every version under the same label (its markings, the extension definitions, the
# originator's identity), so the stream serves each once (see `pages`).
REFERENCE_TYPES = frozenset({"marking-definition", "extension-definition", "identity"})


@dataclass(frozen=True, slots=True)
class StixObject:
    id: str
    type: str
    spec_version: str
    version: str  # `modified`, else `created`, else empty (the date added stands in)
    text: str  # the object serialised as JSON

    @property
    def key(self) -> tuple[str, str]:
        return self.id, self.version

    @property
    def is_reference(self) -> bool:
        return self.type in REFERENCE_TYPES

    @classmethod
    def of(cls, obj: dict[str, Any]) -> StixObject:
        return cls(
            id=str(obj["id"]),
            type=str(obj["type"]),
            spec_version=str(obj.get("spec_version", "2.1")),
            version=str(obj.get("modified") or obj.get("created") or ""),
            text=json.dumps(obj, ensure_ascii=False, separators=(",", ":")),
        )

    def admits_version(self, at: frozenset[datetime]) -> bool:
        """Whether the object's version is one of the timestamps of `match[version]`."""
        if not self.version:
            return False
        return timestamp(self.version, "version") in at


class ObjectSource:
    """The objects of each version, generated once and kept while room allows."""

    def __init__(self, capacity: int = 4096) -> None:
        self._cache: Recent[tuple[int, bool, datetime | None], tuple[StixObject, ...]] = Recent(
            capacity
        )
        self._references: Recent[tuple[str, object, object], StixObject] = Recent(capacity)

    def of(
        self,
        version: ReportVersion,
        extraction: dict[str, Any] | None,
        first_stored_at: datetime | None = None,
    ) -> tuple[StixObject, ...]:
        """The objects of a stored version; `first_stored_at` (when the first version of
        the report the viewer may see was stored) is needed for a later version's
        `created`, and is part of the cache key: viewers who may see different versions of
        one report are served different objects, and never each other's."""
        key = (version.seq, extraction is not None, first_stored_at)
        found = self._cache.get(key)
        if found is None:
            objects = report_objects(version, extraction, first_stored_at=first_stored_at)
            found = tuple(self._serialised(obj) for obj in objects)
            self._cache.put(key, found)
        return found

    def _serialised(self, obj: dict[str, Any]) -> StixObject:
        if obj["type"] not in REFERENCE_TYPES:
            return StixObject.of(obj)
        key = (str(obj["id"]), obj.get("created"), obj.get("modified"))
        found = self._references.get(key)
        if found is None:
            found = StixObject.of(obj)
            self._references.put(key, found)
        return found
