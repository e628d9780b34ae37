"""Merging the same event reported more than once, and counting independent sources.

Two extracted events are taken for one when they have the same type and date and share
a participant (or, with no participants, the same place). A cluster is corroborated by
as many independent sources as there are distinct (originating member, source name)
pairs among its reports: two members passing on the same wire story count twice only
if they name different sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Reported:
    """One event as one report states it."""

    report_id: str
    originator: str
    source: str
    type: str
    date: str | None
    place: str | None
    participants: frozenset[str]


@dataclass(slots=True)
class Cluster:
    type: str
    date: str | None
    places: set[str] = field(default_factory=set)
    participants: set[str] = field(default_factory=set)
    reports: list[str] = field(default_factory=list)
    sources: set[tuple[str, str]] = field(default_factory=set)

    def takes(self, event: Reported) -> bool:
        if (event.type, event.date) != (self.type, self.date):
            return False
        if event.participants or self.participants:
            return bool(event.participants & self.participants)
        return event.place is not None and event.place in self.places

    def add(self, event: Reported) -> None:
        self.participants |= event.participants
        if event.place:
            self.places.add(event.place)
        if event.report_id not in self.reports:
            self.reports.append(event.report_id)
        self.sources.add((event.originator, event.source))

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "date": self.date,
            "places": sorted(self.places),
            "participants": sorted(self.participants),
            "reports": self.reports,
            "sources": len(self.sources),
        }


def corroborate(events: list[Reported]) -> list[Cluster]:
    """Clusters of the same event, best corroborated first, then newest."""
    clusters: list[Cluster] = []
    by_day: dict[tuple[str, str | None], list[Cluster]] = {}  # only these can take an event
    for event in events:
        candidates = by_day.setdefault((event.type, event.date), [])
        home = next((c for c in candidates if c.takes(event)), None)
        if home is None:
            home = Cluster(event.type, event.date)
            candidates.append(home)
            clusters.append(home)
        home.add(event)
    clusters.sort(key=lambda c: c.date or "", reverse=True)  # newest first, undated last
    clusters.sort(key=lambda c: len(c.sources), reverse=True)  # stable: keeps that order
    return clusters
