"""Reports as STIX 2.1: one report version becomes a ``report`` and the objects around it.

The ``report`` keeps our id (``report--<report uuid>``), so ids round-trip (a
client-chosen id that is no RFC 4122 UUID gets one derived from it); ``created`` is
when version 1 was stored (if the caller knows it, else ``reported_at``, never after
``modified``), ``modified`` this version's ``stored_at`` and ``published`` its
``reported_at``. Its author (``created_by_ref``) is the originating member as an
organisation identity whose id derives from the member code: the coalition's roster,
not the report's content, so that one object carries TLP:CLEAR and never two labels. The
source is an identity of its own, scoped to the report. Every other object is derived
from the report and carries its label (see `bices.stix.markings` and
`bices.stix.entities`). Attachments travel as ``artifact`` objects when the caller hands
their bytes over; their metadata always travels in the BICES report extension.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pycountry

from bices.domain.reports import ReportVersion, iso
from bices.stix._common import (
    EPOCH,
    SPEC_VERSION,
    bices_identity,
    report_stix_id,
    sco_id,
    stix_id,
    timestamp,
)
from bices.stix.entities import Scope, entity_objects
from bices.stix.grading import confidence
from bices.stix.markings import (
    REPORT_EXTENSION_ID,
    extension_definition,
    label_marking,
    report_extension_definition,
    tlp_for,
)
from bices.stix.tlp import TlpLevel, tlp_marking

REPORT_TYPES = ["threat-report"]


def member_identity_id(member: str) -> str:
    return stix_id("identity", "member", member)


def member_identity(member: str) -> dict[str, Any]:
    """A coalition member as the organisation that authors its reports."""
    return {
        "type": "identity",
        "spec_version": SPEC_VERSION,
        "id": member_identity_id(member),
        "created": EPOCH,
        "modified": EPOCH,
        "name": member,
        "description": f"Coalition member {member}",
        "identity_class": "organization",
        "object_marking_refs": [tlp_marking(TlpLevel.CLEAR)["id"]],
    }


def report_objects(
    version: ReportVersion,
    extraction: dict[str, Any] | None,
    *,
    blobs: Mapping[str, bytes] | None = None,
    first_stored_at: datetime | None = None,
) -> list[dict[str, Any]]:
    """Every STIX object for one report version, the ``report`` first; deterministic.

    `blobs` maps an attachment's SHA-256 to its bytes (to send the content along);
    `first_stored_at` is when version 1 was stored, for ``created``.
    """
    label = version.label
    marking, tlp = label_marking(label), tlp_marking(tlp_for(label))
    modified = timestamp(version.stored_at)
    first = version.stored_at if version.version == 1 else first_stored_at
    created = timestamp(min(first or version.reported_at, version.stored_at))
    member = member_identity(label.originator)
    scope = Scope(
        report_id=version.id,
        created=created,
        modified=modified,
        created_by_ref=member["id"],
        markings=(marking["id"], tlp["id"]),
        observer_ref=stix_id("identity", version.id, "source"),
    )
    source = scope.common("identity", scope.observer_ref)
    source.update(name=version.source.name, identity_class="unknown")
    source["description"] = f"Source of report {version.id}, graded {version.source.grading}"
    places = []
    for index, place in enumerate(version.locations):
        obj = scope.common("location", stix_id("location", version.id, "place", str(index)))
        if place.name:
            obj["name"] = place.name
        obj.update(latitude=place.lat, longitude=place.lon)
        places.append(obj)
    derived = [source, *places]
    if extraction and not extraction.get("error"):
        derived += entity_objects(scope, extraction)
    derived += _artifacts(version, scope, blobs or {})
    report = _report(version, scope, extraction, [o["id"] for o in derived])
    meta = [marking, tlp, extension_definition(), report_extension_definition(), bices_identity()]
    if tlp["id"] != member["object_marking_refs"][0]:
        meta.append(tlp_marking(TlpLevel.CLEAR))
    return [report, member, *derived, *meta]


def _report(
    version: ReportVersion, scope: Scope, extraction: dict[str, Any] | None, refs: list[str]
) -> dict[str, Any]:
    report = scope.common("report", report_stix_id(version.id))
    report["name"] = version.title
    if version.body:
        report["description"] = version.body
    lang = _rfc5646(version.language)
    if lang:
        report["lang"] = lang
    report.update(
        published=timestamp(version.reported_at), report_types=REPORT_TYPES, object_refs=refs
    )
    topics = [t.get("name") for t in (extraction or {}).get("topics") or []]
    if any(isinstance(t, str) and t for t in topics):
        report["labels"] = sorted({t for t in topics if isinstance(t, str) and t})
    score = confidence(version.source.credibility)
    if score is not None:
        report["confidence"] = score
    report["extensions"] = {REPORT_EXTENSION_ID: _extension(version)}
    return report


def _extension(version: ReportVersion) -> dict[str, Any]:
    """What the signature covers and STIX cannot say, exactly as it was signed."""
    content = version.signed_content()
    data: dict[str, Any] = {
        "extension_type": "property-extension",
        "report_id": version.id,
        "version": version.version,
        "report_type": version.type.value,
        "language": version.language,
        "originator": version.label.originator,
        "source": {**content["source"], "grading": version.source.grading},
        "reported_at": content["reported_at"],
    }
    # STIX forbids empty lists and nulls: absent means none.
    if version.locations:
        data["locations"] = [
            {k: v for k, v in place.items() if v is not None} for place in content["locations"]
        ]
    if version.attachments:
        data["attachments"] = content["attachments"]
    if version.observed_at is not None:
        data["observed_at"] = iso(version.observed_at)
    if version.signature:
        data["signature"] = version.signature
    return data


def _artifacts(
    version: ReportVersion, scope: Scope, blobs: Mapping[str, bytes]
) -> list[dict[str, Any]]:
    out = []
    for attachment in version.attachments:
        data = blobs.get(attachment.sha256)
        if data is None:
            continue
        hashes = {"SHA-256": attachment.sha256}
        out.append(
            {
                "type": "artifact",
                "spec_version": SPEC_VERSION,
                "id": sco_id("artifact", {"hashes": hashes}),
                "payload_bin": base64.b64encode(data).decode("ascii"),
                "hashes": hashes,
                "object_marking_refs": list(scope.markings),
            }
        )
    return out


def _rfc5646(code: str) -> str | None:
    """The language tag STIX's ``lang`` wants: ISO 639-1 where the language has a code."""
    if len(code) == 2:
        return code
    language = pycountry.languages.get(alpha_3=code)
    two: str | None = getattr(language, "alpha_2", None)
    return two


def bundle(objects: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A STIX bundle of the objects, each (id, modified) once, in first-seen order.

    The bundle id derives from its contents, so the same objects make the same bundle.
    """
    seen: set[tuple[str, str | None]] = set()
    unique: list[dict[str, Any]] = []
    for obj in objects:
        key = (obj["id"], obj.get("modified"))
        if key not in seen:
            seen.add(key)
            unique.append(obj)
    keys = sorted(f"{obj['id']}@{obj.get('modified', '')}" for obj in unique)
    return {"type": "bundle", "id": stix_id("bundle", *keys), "objects": unique}
