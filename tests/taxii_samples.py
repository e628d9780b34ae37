"""STIX envelopes for the TAXII tests: reports labelled with BICES label markings, as a
peer node or a client that knows our labels would post them."""

from __future__ import annotations

import uuid
from typing import Any

from bices.domain.labels import Label
from bices.stix import extension_definition, label_marking

TAXII = "application/taxii+json;version=2.1"
ROOT = "/taxii2/bices"


def stix_report(
    label: Label, title: str = "Launch observed", report_id: str | None = None
) -> list[dict[str, Any]]:
    """A report, its source identity and its label's marking definition."""
    marking = label_marking(label)
    source = {
        "type": "identity",
        "spec_version": "2.1",
        "id": f"identity--{uuid.uuid4()}",
        "created": "2024-07-10T09:00:00.000Z",
        "modified": "2024-07-10T09:00:00.000Z",
        "name": "Coastal radar",
        "identity_class": "system",
    }
    report = {
        "type": "report",
        "spec_version": "2.1",
        "id": f"report--{report_id or uuid.uuid4()}",
        "created": "2024-07-10T09:00:00.000Z",
        "modified": "2024-07-10T09:00:00.000Z",
        "name": title,
        "description": "A solid-fuel missile was launched towards the East Sea.",
        "published": "2024-07-10T09:00:00.000Z",
        "report_types": ["threat-report"],
        "object_refs": [source["id"]],
        "created_by_ref": source["id"],
        "object_marking_refs": [marking["id"]],
    }
    return [report, source, marking]


def envelope(*reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One envelope of reports, with the extension definition their markings use once."""
    objects: dict[str, dict[str, Any]] = {}
    for group in reports:
        for obj in group:
            objects.setdefault(obj["id"], obj)
    definition = extension_definition()
    objects.setdefault(definition["id"], definition)
    return {"objects": list(objects.values())}


def label(
    classification: str = "NATO SECRET",
    releasable_to: tuple[str, ...] = ("NATO", "KOR"),
    originator: str = "USA",
    caveats: tuple[str, ...] = (),
) -> Label:
    return Label.build(classification, list(releasable_to), originator, list(caveats))
