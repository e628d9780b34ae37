"""Exploitation results as STIX objects: entities, the links events make, and sightings.

Entity types map as follows (STIX 2.1 has no object for a weapon or a military unit):

- ``PERSON`` → ``identity`` (``identity_class`` individual).
- ``ORG`` → ``intrusion-set`` for the cyber groups of `INTRUSION_SETS` (Lazarus Group,
  Kimsuky, APT28…: STIX's object for a named set of adversarial behaviour),
  ``threat-actor`` for the armed non-state groups of `THREAT_ACTORS` (ISIS, Hamas,
  Wagner Group…), else ``identity`` (organization). The knowledge base types all of them
  ORG; these two lists, checked against it by the tests, say which ORGs are adversaries.
- ``UNIT`` → ``identity`` (organization, sector ``defense``): a formation is an
  organisation; whether it is hostile is a judgement the extraction does not make.
- ``EQUIPMENT`` → ``tool``: STIX defines tools as software, but ``tool`` is its only
  object for a capability an actor uses, which is what a weapon system is in a report
  (``threat-actor uses tool``); ``tool_types`` stays unset rather than misdescribe it.
- ``GPE`` → ``location``: a country by its ISO 3166 ``country`` code, a city or region by
  its coordinates; ``LOC`` → ``location`` by coordinates. A place with neither (a sea
  named but not placed) has no valid STIX location and stays in the text.

Each extracted event becomes ``relationship`` objects from its first participant to the
others and to its place (``uses`` from an adversary to a tool, else ``related-to``), and,
when a participant is an adversary or a tool, a ``sighting`` of it: seen by the
report's source, where the event's place is, on the event's day. No ``campaign`` is made:
the extraction finds single events, and a campaign is a set of them over time that only
an analyst names. Every object is scoped to its report (its id derives from the report id),
carries the report's label and is a new version when the report is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from bices.stix._common import SPEC_VERSION, stix_id, unique_by_id

INTRUSION_SETS = frozenset(
    {
        "Lazarus Group", "Kimsuky", "Andariel", "BlueNoroff", "APT37", "APT38", "APT43",
        "TraderTraitor", "Konni", "Sandworm", "APT28", "APT29", "Volt Typhoon", "Salt Typhoon",
    }
)  # fmt: skip
THREAT_ACTORS = frozenset({"Wagner Group", "ISIS", "Houthis", "Hamas", "Hezbollah"})
_ADVERSARIES = ("intrusion-set", "threat-actor")
# Events in which an adversary's use of a weapon is what happened.
_USE_EVENTS = frozenset({"missile_launch", "arms_transfer", "military_exercise"})


@dataclass(frozen=True, slots=True)
class Scope:
    """What every derived object of one report version shares."""

    report_id: str
    created: str
    modified: str
    created_by_ref: str
    markings: tuple[str, ...]
    observer_ref: str  # who saw what the report tells: its source

    def common(self, kind: str, object_id: str) -> dict[str, Any]:
        return {
            "type": kind,
            "spec_version": SPEC_VERSION,
            "id": object_id,
            "created_by_ref": self.created_by_ref,
            "created": self.created,
            "modified": self.modified,
            "object_marking_refs": list(self.markings),
        }


def entity_objects(scope: Scope, extraction: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Entities, relationships and sightings of one extraction, in a stable order."""
    by_name: dict[str, dict[str, Any]] = {}
    objects: list[dict[str, Any]] = []
    for entity in extraction.get("entities") or []:
        made = _entity(scope, entity)
        if made is not None and made["id"] not in {o["id"] for o in objects}:
            objects.append(made)
            by_name.setdefault(str(entity.get("canonical")), made)
    for index, event in enumerate(extraction.get("events") or []):
        objects.extend(_event(scope, index, event, by_name))
    return objects


def _entity(scope: Scope, entity: Mapping[str, Any]) -> dict[str, Any] | None:
    kind, name = entity.get("type"), entity.get("canonical")
    if not isinstance(name, str) or not name.strip():
        return None
    stix_type = _stix_type(str(kind), name)
    if stix_type is None:
        return None
    obj = scope.common(stix_type, stix_id(stix_type, scope.report_id, str(kind), name))
    if stix_type == "location":
        place = _place(str(kind), name, entity.get("lat"), entity.get("lon"))
        if place is None:
            return None
        obj.update(name=name, **place)
        return obj
    obj["name"] = name
    if stix_type == "identity":
        obj["identity_class"] = "individual" if kind == "PERSON" else "organization"
        if kind == "UNIT":
            obj["sectors"] = ["defense"]
    return obj


def _stix_type(kind: str, name: str) -> str | None:
    if kind in {"PERSON", "UNIT"}:
        return "identity"
    if kind == "ORG":
        if name in INTRUSION_SETS:
            return "intrusion-set"
        return "threat-actor" if name in THREAT_ACTORS else "identity"
    if kind == "EQUIPMENT":
        return "tool"
    if kind in {"GPE", "LOC"}:
        return "location"
    return None


def _place(kind: str, name: str, lat: object, lon: object) -> dict[str, Any] | None:
    if kind == "GPE":
        code = country_codes().get(name.casefold())
        if code is not None:
            return {"country": code}
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return None
    if -90 <= lat <= 90 and -180 <= lon <= 180:
        return {"latitude": float(lat), "longitude": float(lon)}
    return None


@cache
def country_codes() -> dict[str, str]:
    """ISO 3166 alpha-2 codes by every English name the knowledge base calls a country."""
    import pycountry

    from bices.exploit.kb import load

    overrides: dict[str, str] = load("countries")["canonical"]
    codes: dict[str, str] = {}
    for country in pycountry.countries:
        names = [country.name, getattr(country, "common_name", None)]
        names += [getattr(country, "official_name", None), overrides.get(country.alpha_3)]
        for name in names:
            if name:
                codes[name.casefold()] = country.alpha_2
    return codes


def _event(
    scope: Scope, index: int, event: Mapping[str, Any], by_name: Mapping[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    kind = str(event.get("type") or "event")
    names = [p for p in event.get("participants") or [] if isinstance(p, str)]
    place_name = event.get("place")
    participants = unique_by_id([by_name[n] for n in names if n in by_name])
    place = by_name.get(place_name) if isinstance(place_name, str) else None
    place = place if place is not None and place["type"] == "location" else None
    out: list[dict[str, Any]] = []
    actors = [o for o in participants if o["type"] != "location"]
    if actors:
        first = actors[0]
        for other in [o for o in participants if o is not first] + ([place] if place else []):
            verb = (
                "uses"
                if first["type"] in _ADVERSARIES and other["type"] == "tool"
                else "related-to"
            )
            rel_id = stix_id("relationship", scope.report_id, first["id"], verb, other["id"])
            rel = scope.common("relationship", rel_id)
            rel.update(
                relationship_type=verb,
                source_ref=first["id"],
                target_ref=other["id"],
                description=f"{kind.replace('_', ' ')} (event {index + 1} of the report)",
            )
            if rel_id not in {o["id"] for o in out}:
                out.append(rel)
    seen = _sighted(actors, kind)
    if seen is not None:
        sighting = scope.common("sighting", stix_id("sighting", scope.report_id, str(index)))
        sighting.update(
            sighting_of_ref=seen["id"],
            where_sighted_refs=[scope.observer_ref] + ([place["id"]] if place else []),
            count=1,
            description=_describe(kind, names, place_name, event.get("date")),
        )
        day = event.get("date")
        if isinstance(day, str) and len(day) == 10:
            sighting.update(first_seen=f"{day}T00:00:00.000Z", last_seen=f"{day}T23:59:59.999Z")
        out.append(sighting)
    return out


def _sighted(actors: Sequence[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    """What an event shows was seen: a weapon in use, else an adversary (people and
    organisations taking part are not what a sighting is about)."""
    order = ("tool", *_ADVERSARIES) if kind in _USE_EVENTS else (*_ADVERSARIES, "tool")
    for wanted in order:
        for actor in actors:
            if actor["type"] == wanted:
                return actor
    return None


def _describe(kind: str, names: Sequence[str], place: object, day: object) -> str:
    text = kind.replace("_", " ")
    if names:
        text += ": " + ", ".join(names)
    if isinstance(place, str):
        text += f" at {place}"
    if isinstance(day, str):
        text += f" on {day}"
    return text
