"""Reports other platforms made (MISP, OpenCTI, any STIX 2.1 producer) as report drafts.

What maps is folded in: ``name`` → title (the first line of a note), ``description`` (or
a note's ``content``) → body, with the notes written about the report appended; ``lang``
→ language (STIX's default, English, when absent); ``published`` (else ``created``) →
reported_at; the author identity (``created_by_ref``) → source name; referenced
``location`` objects with coordinates → locations; the grading as `bices.stix.grading`
says. The report's type is INTREP: a finished report received from a partner platform.
Nothing is lost: the report, every object it references that the bundle holds, the notes
about it, its author and their marking definitions go along as one attachment, a STIX
bundle (``application/stix+json``). So the draft's label covers them all: it combines the
report's label with the markings of each of those objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bices.domain.errors import InvalidInput
from bices.domain.labels import Label
from bices.domain.reports import AttachmentDraft, is_language, iso
from bices.domain.signing import canonical
from bices.stix._common import (
    foreign_report_id,
    parse_timestamp,
    stix_id,
    strings_of,
    text_of,
    unique_by_id,
)
from bices.stix.grading import foreign_grading
from bices.stix.importing import (
    Imported,
    Markings,
    Objects,
    combine,
    make_draft,
)

MEDIA_TYPE = "application/stix+json"
_MAX_TITLE = 500
_MAX_LOCATIONS = 100


def standalone_notes(index: Objects, roots: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Notes that are about none of the reports being imported: reports of their own."""
    root_ids = {root["id"] for root in roots}
    return [
        obj
        for obj in index.values()
        if obj["type"] == "note"
        and not obj.get("revoked")
        and not root_ids.intersection(_refs(obj))
    ]


def foreign_report(root: dict[str, Any], index: Objects, marks: Markings) -> Imported:
    where = root["id"]
    if root.get("spec_version") != "2.1":
        raise InvalidInput(
            f"{where}: spec_version {root.get('spec_version')!r}; only STIX 2.1 is accepted"
        )
    label = marks.label(root)
    assert label is not None  # required=True
    notes = [note for note in index.notes_about(where) if note is not root]
    referenced = [o for o in (index.get(r) for r in _refs(root)) if o is not None and o is not root]
    author = index.get(text_of(root, "created_by_ref"))
    carried = unique_by_id([*referenced, *notes, *([author] if author else [])])
    labels: list[Label] = [label]
    for obj in carried:
        found = marks.label(obj, required=False)
        if found is not None:
            labels.append(found)
    combined = combine(labels, marks.member) if len(labels) > 1 else label
    reliability, credibility = foreign_grading(root, author)
    body = _body(root, notes)
    fields = {
        "type": "INTREP",
        "title": _title(root, body),
        "body": body,
        "language": _language(text_of(root, "lang")),
        "label": marks.draft(combined),
        "source": {
            "name": _source_name(root, author),
            "reliability": reliability.value,
            "credibility": credibility,
        },
        "reported_at": iso(_reported_at(root)),
        "locations": _locations(referenced),
        "attachments": [_attachment(root, carried, index, marks)],
        "id": foreign_report_id(marks.member, where),
    }
    return Imported(where, 1, make_draft(where, fields))


def _refs(obj: Mapping[str, Any]) -> list[str]:
    return strings_of(obj, "object_refs", "STIX ids")


def _body(root: Mapping[str, Any], notes: Sequence[Mapping[str, Any]]) -> str:
    text = text_of(root, "content" if root["type"] == "note" else "description")
    parts = [text] if text else []
    for note in notes:
        abstract, content = text_of(note, "abstract"), text_of(note, "content")
        heading = f"Note: {abstract}" if abstract else "Note"
        if content:
            parts.append(f"{heading}\n{content}")
    return "\n\n".join(parts)


def _title(root: Mapping[str, Any], body: str) -> str:
    name = text_of(root, "name" if root["type"] != "note" else "abstract")
    if name is None or not name.strip():
        first = body.strip().splitlines()[0] if body.strip() else ""
        name = first or f"STIX {root['type']} {root['id'].split('--', 1)[1]}"
    return name if len(name) <= _MAX_TITLE else name[: _MAX_TITLE - 1] + "…"


def _language(lang: object) -> str:
    if lang is None:
        return "en"  # STIX 2.1 section 3.2: text without `lang` is English
    primary = str(lang).split("-", 1)[0].lower()
    return primary if 2 <= len(primary) <= 3 and is_language(primary) else "und"


def _reported_at(root: Mapping[str, Any]) -> Any:
    field = "published" if root["type"] == "report" else "created"
    if field not in root:
        raise InvalidInput(f"{root['id']}: {field} is missing")
    return parse_timestamp(root[field], f"{root['id']}.{field}")


def _source_name(root: Mapping[str, Any], author: Mapping[str, Any] | None) -> str:
    name: object = text_of(author, "name") if author is not None else None
    if not name and root["type"] == "note":
        authors = root.get("authors")
        name = authors[0] if isinstance(authors, list) and authors else None
    text = str(name).strip() if name else ""
    return (text or "unattributed STIX producer")[:200]


def _locations(objects: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    places = []
    for obj in objects:
        lat, lon = obj.get("latitude"), obj.get("longitude")
        if obj["type"] != "location" or not _number(lat) or not _number(lon):
            continue
        place: dict[str, Any] = {"lat": lat, "lon": lon}
        if isinstance(obj.get("name"), str) and obj["name"].strip():
            place["name"] = obj["name"].strip()[:200]
        places.append(place)
    return places[:_MAX_LOCATIONS]


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _attachment(
    root: Mapping[str, Any], carried: Sequence[Mapping[str, Any]], index: Objects, marks: Markings
) -> AttachmentDraft:
    objects = [root, *carried]
    refs = {ref for obj in objects for ref in marks.refs(obj)}
    objects += [m for m in (index.get(ref) for ref in sorted(refs)) if m is not None]
    keys = sorted(str(obj["id"]) for obj in objects)
    kept = {"type": "bundle", "id": stix_id("bundle", *keys), "objects": objects}
    data = canonical(kept)  # compact: an indent would triple the cost of a POST
    kind, uuid = str(root["id"]).split("--", 1)
    return AttachmentDraft.holding(f"stix-{kind}-{uuid}.json", MEDIA_TYPE, data)
