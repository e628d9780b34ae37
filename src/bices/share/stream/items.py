"""What a stream carries: items made from outbox rows, what a subscriber is sent, and why
a stream ends."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bices.domain.errors import InvalidInput
from bices.domain.labels import Label
from bices.domain.reports import ReportVersion, iso
from bices.domain.requirements import Facts, fold

KINDS = ("report", "rfi", "alert")
EVENT_TAG = b"e"  # the sealer's tag of stream event ids


@dataclass(slots=True)
class StreamItem:
    """One outbox row made ready to send: `data` is the payload before the subscriber's
    own fields (`requirements`); `version` lets reports be matched to requirements."""

    seq: int
    kind: str
    label_id: int
    label: Label
    user_id: int | None
    data: dict[str, Any]
    version: ReportVersion | None = None
    _facts: Facts | None = None  # the report's own fields, made when first asked for
    exploited: Facts | None = None  # with entities and topics, once known
    event_id: str = ""  # the seq sealed under the node's key: what the client sees
    _head: bytes = b""  # the SSE frame up to the data's closing brace, encoded once
    _frames: dict[tuple[int, ...] | None, bytes] = field(default_factory=dict)

    @property
    def facts(self) -> Facts:
        """What the report offers requirements (folding its text costs: done on demand)."""
        if self._facts is None:
            assert self.version is not None
            self._facts = Facts.of(self.version)
        return self._facts

    def frame(self, requirements: tuple[int, ...] | None) -> bytes:
        found = self._frames.get(requirements)
        if found is not None:
            return found
        if not self._head:
            body = json.dumps(self.data, ensure_ascii=False, separators=(",", ":")).encode()
            self._head = b"id: %s\nevent: %s\ndata: %s" % (
                self.event_id.encode(), self.kind.encode(), body[:-1])  # fmt: skip
        tail = b"}" if requirements is None else (
            b',"requirements":[%s]}' % ",".join(map(str, requirements)).encode())  # fmt: skip
        frame = self._head + tail + b"\n\n"
        if len(self._frames) < 64:  # most subscribers share a few combinations
            self._frames[requirements] = frame
        return frame


@dataclass(frozen=True, slots=True)
class Sent:
    """What a subscriber receives: `event:` and `data:`, and for events of the outbox the
    SSE `id:` (`event_id`, the sealed seq; `id` is the seq itself, kept inside the node).
    A report's data is the item's, plus the subscriber's own `requirements`; the item's
    part is encoded once for every subscriber (`frame`)."""

    id: int | None
    event: str
    base: dict[str, Any]
    requirements: tuple[int, ...] | None = None  # reports only
    item: StreamItem | None = None

    @property
    def event_id(self) -> str | None:
        return None if self.item is None else self.item.event_id

    @property
    def data(self) -> dict[str, Any]:
        if self.requirements is None:
            return self.base
        return {**self.base, "requirements": list(self.requirements)}

    def frame(self) -> bytes:
        """The SSE message (a control message has no id: the client keeps its last)."""
        if self.item is None:
            body = json.dumps(self.data, ensure_ascii=False, separators=(",", ":")).encode()
            return b"event: %s\ndata: %s\n\n" % (self.event.encode(), body)
        return self.item.frame(self.requirements)


class StreamClosed(Exception):
    """The subscriber may not go on: the token or member no longer passes, or it fell
    behind; `event` and `data` say why, and `data["resume_after"]` where to resume."""

    def __init__(self, event: str, data: dict[str, Any]) -> None:
        super().__init__(data.get("reason", event))
        self.event = event
        self.data = data


def report_data(version: ReportVersion) -> dict[str, Any]:
    label = version.label.to_json()
    label["banner"] = version.label.render()
    return {
        "id": version.id,
        "version": version.version,
        "type": version.type.value,
        "title": version.title,
        "language": version.language,
        "label": label,
        "originator": version.label.originator,
        "source": version.source.name,
        "grading": version.source.grading,
        "reported_at": iso(version.reported_at),
        "stored_at": iso(version.stored_at),
        "locations": [loc.model_dump() for loc in version.locations],
    }


def canonical_names(name: str) -> list[str]:
    """The canonical names an alias stands for in the knowledge base."""
    from bices.exploit import kb
    from bices.exploit.text import alias_keys

    keys = alias_keys(name)
    gazetteer = kb.gazetteer()
    found = gazetteer.lookup(" ".join(keys)) or gazetteer.lookup("".join(keys))
    return [alias.entry.canonical for alias in found]


def parse_kinds(values: Iterable[str]) -> frozenset[str]:
    kinds = {fold(v) for value in values for v in value.split(",") if v.strip()}
    unknown = sorted(kinds - set(KINDS))
    if unknown:
        raise InvalidInput(
            f"events: unknown kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}"
        )
    return frozenset(kinds) or frozenset(KINDS)
