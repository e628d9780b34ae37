"""STIX 2.1 export: reports, labels and extraction as objects that stix2-validator and the
stix2 library accept, deterministic, and that come back as the drafts they were."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest
import stix2
import stix2validator
from hypothesis import given, settings
from hypothesis import strategies as st
from stix2validator.v21 import enums

from bices.domain.labels import Classification, Label
from bices.domain.reports import (
    Attachment,
    Location,
    ReportType,
    ReportVersion,
    Source,
)
from bices.exploit.kb import load
from bices.pipeline.exploit import default_extractor
from bices.stix import (
    EXTENSION_ID,
    REPORT_EXTENSION_ID,
    bundle,
    drafts_from_bundle,
    extension_definition,
    label_marking,
    report_extension_definition,
    report_objects,
)
from bices.stix.entities import INTRUSION_SETS, THREAT_ACTORS
from bices.stix.grading import confidence, credibility_of
from bices.stix.tlp import TLP2_IDS, TlpLevel

# Deterministic ids are UUIDv5 by design (the same label is always the same marking), so the
# SHOULD-check that SDO ids be UUIDv4 is the one check left out; every warning is an error.
STRICT = stix2validator.ValidationOptions(
    version="2.1",
    strict=True,
    strict_properties=True,
    enforce_refs=True,
    disabled="uuid-check",
)
STANDARD_TYPES = set(enums.TYPES) | set(enums.OBSERVABLE_TYPES)

STORED = datetime(2024, 7, 10, 9, 30, 1, 250000, tzinfo=UTC)
TEXT = (
    "North Korea fired a Hwasong-18 missile into the East Sea on 12 July 2024, the Joint "
    "Chiefs of Staff said. Lazarus Group hackers stole funds from an exchange. The 8th Army "
    "deployed troops to Pyongyang. Kimsuky met ISIS in Pyongyang on 13 July 2024. Defence "
    "Minister Shin Won-sik met NATO Secretary General Jens Stoltenberg in Brussels."
)
LABELS = {
    "public": Label.build("PUBLIC", ["NATO", "IP4"], "USA"),
    "communities": Label.build("NATO RESTRICTED", ["NATO", "IP4"], "GBR"),
    "caveats": Label.build("NATO SECRET", ["NATO", "KOR"], "USA", ["ATOMAL", "COMMERCIAL IMAGERY"]),
    "one-member": Label.build("COSMIC TOP SECRET", ["USA"], "USA"),
    "public-caveat": Label.build("PUBLIC", ["NATO"], "EST", ["COMMERCIAL IMAGERY"]),
}


def version(**changes: Any) -> ReportVersion:
    fields: dict[str, Any] = {
        "id": "5d1c3a2e-8f4b-4c6d-9e0f-1a2b3c4d5e6f",
        "version": 1,
        "type": ReportType.INTREP,
        "title": "Hwasong-18 launch observed",
        "body": TEXT,
        "language": "en",
        "label": LABELS["caveats"],
        "source": Source(name="Coastal radar", reliability="B", credibility=2),
        "reported_at": STORED - timedelta(hours=1),
        "observed_at": STORED - timedelta(hours=2),
        "locations": (Location(lat=40.85, lon=129.67, name="Sohae"), Location(lat=1.5, lon=-2)),
        "attachments": (),
        "author": "usa.analyst",
        "stored_at": STORED,
        "signature": "c2lnbmF0dXJl",
    }
    fields.update(changes)
    return ReportVersion(**fields)


def extraction(text: str = TEXT) -> dict[str, Any]:
    return default_extractor()(text, "Launch", "en", STORED.date())


def validate(data: dict[str, Any]) -> None:
    result = stix2validator.validate_instance(data, STRICT)
    problems = [str(e) for e in result.errors] + [str(w) for w in result.warnings]
    assert result.is_valid and not problems, problems
    assert {obj["type"] for obj in data["objects"]} <= STANDARD_TYPES
    parsed = stix2.parse(data, allow_custom=False)
    assert len(parsed.objects) == len(data["objects"])


def by_type(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["type"] == kind]


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", sorted(LABELS))
def test_a_report_without_extraction_validates_under_every_label_shape(shape: str) -> None:
    objects = report_objects(version(label=LABELS[shape]), None)
    validate(bundle(objects))
    assert objects[0]["type"] == "report"


@pytest.mark.parametrize("shape", sorted(LABELS))
def test_a_report_with_extraction_validates(shape: str) -> None:
    validate(bundle(report_objects(version(label=LABELS[shape]), extraction())))


def test_attachments_travel_as_artifacts_that_validate() -> None:
    content = b"%PDF-1.7 imagery annex"
    sha = hashlib.sha256(content).hexdigest()
    attached = (Attachment(sha, "annex.pdf", "application/x-bices-annex", len(content)),)
    objects = report_objects(version(attachments=attached), None, blobs={sha: content})
    validate(bundle(objects))
    (artifact,) = by_type(objects, "artifact")
    assert base64.b64decode(artifact["payload_bin"]) == content
    assert artifact["hashes"] == {"SHA-256": sha}
    assert artifact["id"] in objects[0]["object_refs"]


def test_a_failed_extraction_exports_the_report_alone() -> None:
    objects = report_objects(version(), {"error": "ValueError: boom", "entities": []})
    validate(bundle(objects))
    assert not by_type(objects, "tool") and not by_type(objects, "sighting")


def test_the_sample_reports_with_their_extractions_make_one_valid_bundle() -> None:
    samples = json.loads((resources.files("bices.data") / "sample_reports.json").read_text())
    objects: list[dict[str, Any]] = []
    versions = []
    for number, raw in enumerate(samples):
        v = version(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"sample/{number}")),
            type=ReportType(raw["type"]),
            title=raw["title"],
            body=raw["body"],
            language=raw["language"],
            label=Label.from_json({**raw["label"], "originator": raw["originator"]}),
            source=Source.model_validate(raw["source"]),
            reported_at=datetime.fromisoformat(raw["reported_at"]),
            observed_at=None,
            locations=tuple(Location.model_validate(p) for p in raw.get("locations", [])),
        )
        versions.append(v)
        found = default_extractor()(v.body, v.title, v.language, v.reported_at.date())
        objects += report_objects(v, found)
    data = bundle(objects)
    validate(data)
    assert {o["type"] for o in data["objects"]} >= {
        "report", "identity", "location", "tool", "relationship", "intrusion-set",
    }  # fmt: skip
    by_report = {r["id"]: r for r in data["objects"] if r["type"] == "report"}
    for v in versions:
        mine = [
            by_report[f"report--{v.id}"],
            *(o for o in data["objects"] if o["type"] != "report"),
        ]
        (draft,) = drafts_from_bundle(mine, v.label.originator)
        assert (draft.title, draft.body, draft.source) == (v.title, v.body, v.source)
        assert draft.label.bind(v.label.originator) == v.label


def test_reports_of_several_members_and_versions_make_one_valid_bundle() -> None:
    v1 = version()
    v2 = version(version=2, stored_at=STORED + timedelta(days=1), title="Updated")
    other = version(id="0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f", label=LABELS["public"])
    objects = [*report_objects(v1, None), *report_objects(v2, None, first_stored_at=STORED)]
    objects += report_objects(other, extraction())
    data = bundle(objects)
    validate(data)
    reports = by_type(data["objects"], "report")
    assert len(reports) == 3  # both versions of one report, and the other report
    keys = [(o["id"], o.get("modified")) for o in data["objects"]]
    assert len(keys) == len(set(keys))
    assert len(by_type(data["objects"], "extension-definition")) == 2


# -- the report object ---------------------------------------------------------------------


def test_the_report_object_carries_ids_times_and_grading() -> None:
    v = version(version=3, stored_at=STORED + timedelta(days=2))
    report = report_objects(v, None, first_stored_at=STORED)[0]
    assert report["id"] == f"report--{v.id}"
    assert report["created"] == "2024-07-10T09:30:01.250Z"
    assert report["modified"] == "2024-07-12T09:30:01.250Z"
    assert report["published"] == "2024-07-10T08:30:01.250Z"
    assert (report["name"], report["description"], report["lang"]) == (v.title, v.body, "en")
    assert report["confidence"] == 70  # credibility 2, "probably true"
    ext = report["extensions"][REPORT_EXTENSION_ID]
    assert ext["source"] == {
        "name": "Coastal radar",
        "reliability": "B",
        "credibility": 2,
        "grading": "B2",
    }
    assert (ext["version"], ext["report_type"], ext["signature"]) == (3, "INTREP", v.signature)


def test_a_client_chosen_id_that_is_no_rfc_4122_uuid_still_validates_and_round_trips() -> None:
    v = version(id="00000000-0000-0000-0000-00000000002a")
    data = bundle(report_objects(v, None))
    validate(data)
    assert data["objects"][0]["id"] != f"report--{v.id}"
    (draft,) = drafts_from_bundle(data, v.label.originator)
    assert draft.id == v.id


def test_created_falls_back_to_reported_at_and_never_follows_modified() -> None:
    v2 = version(version=2, stored_at=STORED)
    assert report_objects(v2, None)[0]["created"] == "2024-07-10T08:30:01.250Z"
    future = version(version=2, reported_at=STORED + timedelta(days=5))
    report = report_objects(future, None)[0]
    assert report["created"] == report["modified"]


def test_credibility_6_has_no_confidence_and_a_three_letter_language_gets_its_tag() -> None:
    v = version(source=Source(name="walk-in", reliability="F", credibility=6), language="ind")
    report = report_objects(v, None)[0]
    assert "confidence" not in report
    assert report["lang"] == "id"
    assert report["extensions"][REPORT_EXTENSION_ID]["language"] == "ind"


def test_admiralty_credibility_maps_to_the_spec_confidence_scale_and_back() -> None:
    assert [confidence(c) for c in range(1, 7)] == [90, 70, 50, 30, 10, None]
    for credibility in range(1, 6):
        score = confidence(credibility)
        assert score is not None and credibility_of(score) == credibility
    assert [credibility_of(v) for v in (100, 80, 79, 60, 59, 40, 39, 20, 19, 0)] == [
        1, 1, 2, 2, 3, 3, 4, 4, 5, 5,
    ]  # fmt: skip
    assert credibility_of(None) == 6 and credibility_of(True) == 6 and credibility_of(101) == 6


def test_export_is_deterministic() -> None:
    first = bundle(report_objects(version(), extraction()))
    second = bundle(report_objects(version(), extraction()))
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


# -- labels as markings ---------------------------------------------------------------------


def test_a_label_is_one_marking_definition_with_the_label_in_its_extension() -> None:
    label = LABELS["caveats"]
    marking = label_marking(label)
    same = Label.build("nato secret", ["kor", "NATO"], "usa", ["atomal", "Commercial Imagery"])
    assert marking == label_marking(same)
    assert marking["id"] != label_marking(LABELS["public"])["id"]
    assert marking["name"] == "NATO SECRET // ATOMAL // COMMERCIAL IMAGERY // REL TO NATO, KOR"
    assert marking["extensions"][EXTENSION_ID] == {
        "extension_type": "property-extension",
        "policy": "NATO",
        "classification": "NATO SECRET",
        "releasable_to": ["NATO", "KOR"],
        "caveats": ["ATOMAL", "COMMERCIAL IMAGERY"],
        "originator": "USA",
    }
    validate(bundle([marking, extension_definition(), *report_objects(version(), None)[-1:]]))


def test_the_extension_definitions_are_fixed_objects() -> None:
    label_ext, report_ext = extension_definition(), report_extension_definition()
    assert label_ext["id"] == EXTENSION_ID and report_ext["id"] == REPORT_EXTENSION_ID
    assert label_ext == extension_definition()
    assert label_ext["extension_types"] == ["property-extension"]
    assert label_ext["created_by_ref"] == report_ext["created_by_ref"]


@pytest.mark.parametrize(
    ("shape", "tlp"),
    [
        ("public", TlpLevel.CLEAR),
        ("public-caveat", TlpLevel.RED),
        ("communities", TlpLevel.RED),
        ("caveats", TlpLevel.RED),
    ],
)
def test_every_derived_object_carries_the_report_label_and_its_tlp(
    shape: str, tlp: TlpLevel
) -> None:
    label = LABELS[shape]
    objects = report_objects(version(label=label), extraction())
    expected = [label_marking(label)["id"], TLP2_IDS[tlp]]
    report = objects[0]
    derived = [o for o in objects if o["id"] in report["object_refs"]]
    assert len(derived) > 10
    for obj in [report, *derived]:
        assert obj["object_marking_refs"] == expected, obj["id"]
    member = next(o for o in objects if o["id"] == report["created_by_ref"])
    assert member["object_marking_refs"] == [TLP2_IDS[TlpLevel.CLEAR]]
    assert member["name"] == label.originator


# -- entities ---------------------------------------------------------------------------------


def test_extracted_entities_map_to_the_documented_stix_types() -> None:
    objects = report_objects(version(), extraction())
    names = {(o["type"], o.get("name")) for o in objects}
    assert ("intrusion-set", "Lazarus Group") in names
    assert ("intrusion-set", "Kimsuky") in names
    assert ("threat-actor", "ISIS") in names
    assert ("tool", "Hwasong-18") in names
    people = {o["name"]: o for o in by_type(objects, "identity") if o.get("identity_class")}
    assert people["Jens Stoltenberg"]["identity_class"] == "individual"
    assert people["NATO"]["identity_class"] == "organization"
    unit = people["Eighth United States Army"]
    assert (unit["identity_class"], unit["sectors"]) == ("organization", ["defense"])
    places = {o.get("name"): o for o in by_type(objects, "location")}
    assert places["North Korea"]["country"] == "KP" and "latitude" not in places["North Korea"]
    assert places["Pyongyang"]["latitude"] == pytest.approx(39.03, abs=0.01)
    assert "East Sea" not in places  # no coordinates and not a country: no valid location
    assert places["Sohae"]["latitude"] == 40.85  # the report's own locations


def test_events_become_relationships_and_sightings() -> None:
    objects = report_objects(version(), extraction())
    ids = {o["id"]: o for o in objects}
    (sighting,) = by_type(objects, "sighting")
    seen = ids[sighting["sighting_of_ref"]]
    assert (seen["type"], seen["name"]) == ("intrusion-set", "Kimsuky")
    where = [ids[ref] for ref in sighting["where_sighted_refs"]]
    assert where[0]["name"] == "Coastal radar"  # the source saw it
    assert where[1]["name"] == "Pyongyang"
    assert sighting["first_seen"].startswith("2024-07-13")
    links = {
        (ids[r["source_ref"]]["name"], r["relationship_type"], ids[r["target_ref"]]["name"])
        for r in by_type(objects, "relationship")
    }
    assert ("Kimsuky", "related-to", "ISIS") in links
    assert ("Kimsuky", "related-to", "Pyongyang") in links
    assert ("Shin Won-sik", "related-to", "Jens Stoltenberg") in links


def test_an_adversary_using_a_weapon_is_a_uses_relationship_and_a_sighting_of_the_tool() -> None:
    found = {
        "entities": [
            {"type": "ORG", "canonical": "Houthis"},
            {"type": "EQUIPMENT", "canonical": "Shahed-136"},
            {"type": "LOC", "canonical": "Red Sea", "lat": 20.0, "lon": 38.0},
        ],
        "events": [
            {
                "type": "missile_launch",
                "participants": ["Houthis", "Shahed-136"],
                "date": "2024-07-01",
                "place": "Red Sea",
            }
        ],
    }
    objects = report_objects(version(), found)
    validate(bundle(objects))
    ids = {o["id"]: o for o in objects}
    (uses,) = [r for r in by_type(objects, "relationship") if r["relationship_type"] == "uses"]
    assert (ids[uses["source_ref"]]["type"], ids[uses["target_ref"]]["type"]) == (
        "threat-actor",
        "tool",
    )
    (sighting,) = by_type(objects, "sighting")
    assert ids[sighting["sighting_of_ref"]]["name"] == "Shahed-136"


def test_the_adversary_lists_name_organisations_the_knowledge_base_knows() -> None:
    known = {e["canonical"] for e in load("organisations")["entries"] if e["type"] == "ORG"}
    assert known >= INTRUSION_SETS | THREAT_ACTORS
    assert not INTRUSION_SETS & THREAT_ACTORS


# -- round trip (property-based) -----------------------------------------------------------

codes = st.sampled_from(["NATO", "IP4", "USA", "GBR", "EST", "POL", "KOR", "JPN", "AUS"])
caveats = st.sampled_from(["ATOMAL", "COMMERCIAL IMAGERY", "NOFORN", "EYES ONLY"])
labels = st.builds(
    Label.build,
    st.sampled_from(list(Classification)),
    st.lists(codes, min_size=1, max_size=5),
    st.sampled_from(["USA", "KOR", "EST"]),
    st.lists(caveats, max_size=3),
)
sources = st.builds(
    Source,
    name=st.text(min_size=1, max_size=40).filter(str.strip),
    reliability=st.sampled_from(list("ABCDEF")),
    credibility=st.integers(1, 6),
)
locations = st.builds(
    Location,
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
    name=st.none() | st.text(min_size=1, max_size=30),
)
moments = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)


@settings(max_examples=60, deadline=None)
@given(
    label=labels,
    source=sources,
    places=st.lists(locations, max_size=4),
    reported=moments,
    observed=st.none() | moments,
    title=st.text(min_size=1, max_size=60).filter(str.strip),
    body=st.text(max_size=200),
    kind=st.sampled_from(list(ReportType)),
    language=st.sampled_from(["en", "id", "ko", "ind", "kor"]),
)
def test_every_field_round_trips_through_a_bundle(
    label: Label,
    source: Source,
    places: list[Location],
    reported: datetime,
    observed: datetime | None,
    title: str,
    body: str,
    kind: ReportType,
    language: str,
) -> None:
    v = version(
        label=label,
        source=source,
        locations=tuple(places),
        reported_at=reported,
        observed_at=observed,
        stored_at=max(reported, STORED),
        title=title,
        body=body,
        type=kind,
        language=language,
    )
    data = bundle(report_objects(v, None))
    validate(data)
    (draft,) = drafts_from_bundle(json.loads(json.dumps(data)), label.originator)
    assert draft.id == v.id and draft.signature == v.signature
    assert (draft.type, draft.title, draft.body, draft.language) == (kind, title, body, language)
    assert draft.label.bind(label.originator) == label
    assert draft.source == source
    assert draft.reported_at == reported and draft.observed_at == observed
    assert tuple(draft.locations) == tuple(places)
    assert draft.attachments == []
