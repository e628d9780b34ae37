"""STIX 2.1 import: our own bundles arrive on another node exactly as signed; MISP- and
OpenCTI-shaped bundles arrive with their markings mapped; anything unmappable is refused
with a message naming the object and the reason, and then nothing is imported."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bices.domain.errors import BadSignature, InvalidInput
from bices.domain.labels import Classification, Label
from bices.domain.reports import ReportDraft, ReportVersion
from bices.domain.users import Viewer
from bices.node import Node
from bices.pipeline.exploit import Exploiter
from bices.stix import (
    EXTENSION_ID,
    REPORT_EXTENSION_ID,
    TlpLevel,
    TlpPolicy,
    TlpRule,
    bundle,
    drafts_from_bundle,
    foreign_report_id,
    label_marking,
    report_objects,
)
from bices.stix.importing import imported_reports
from bices.stix.tlp import TLP2_IDS, tlp_marking
from tests.conftest import make_node, report_json

SAMPLES = Path(__file__).parent / "stix_samples"
ORIGINATOR = "NZL"


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def viewer(node: Node, member: str, clearance: str = "COSMIC TOP SECRET") -> Viewer:
    count = len(node.store.coalition.list_users())
    token = node.coalition.add_user(
        member, f"{member.lower()}.{count}", clearance, ("ATOMAL",), ("analyst",)
    )[1]
    return node.coalition.authenticate(token)


@pytest.fixture
def nodes(tmp_path: Path, backend: str) -> Iterator[tuple[Node, Node]]:
    """Two nodes on which NZL is the same member: node A holds its signing key, node B
    knows only its public key, registered through accession (as a peer node would)."""
    a = make_node(tmp_path / "a", backend)
    a.coalition.add_member(ORIGINATOR, "New Zealand", communities=["IP4"])
    public_key = a.store.coalition.get_member(ORIGINATOR).public_key  # type: ignore[union-attr]
    b = make_node(tmp_path / "b", backend)
    b.coalition.apply(ORIGINATOR, "New Zealand", "USA", communities=["IP4"], public_key=public_key)
    for voter in ("USA", "GBR", "EST", "POL"):
        b.coalition.vote(ORIGINATOR, True, member=voter)
    yield a, b
    a.close()
    b.close()


def stored_on_a(a: Node, **overrides: Any) -> tuple[ReportVersion, dict[str, Any], bytes]:
    content = b"\x89PNG imagery of the launch site"
    body = report_json(
        title="Transporter-erector-launchers moved near Sunan",
        body="Kim Jong Un watched a Hwasong-18 launch from Pyongyang on 12 July 2024.",
        label={"classification": "NATO SECRET", "releasable_to": ["IP4", "USA"], "caveats": []},
        reported_at="2024-07-12T06:01:02.345678Z",
        observed_at="2024-07-12T05:00:00Z",
        locations=[{"lat": 39.2, "lon": 125.67, "name": "Sunan"}, {"lat": -41.29, "lon": 174.78}],
        attachments=[
            {
                "name": "site.png",
                "media_type": "image/png",
                "content_base64": base64.b64encode(content).decode(),
            }
        ],
    )
    body.update(overrides)
    (stored,) = a.collector.submit(viewer(a, ORIGINATOR), [ReportDraft.model_validate(body)])
    Exploiter(a.store).drain()
    found = a.store.exploits.result(stored.seq)
    assert found is not None and found["entities"]
    return stored, found, content


def test_a_bundle_from_one_node_arrives_on_another_exactly_as_signed(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    original, found, content = stored_on_a(a)
    sha = original.attachments[0].sha256
    data = json.loads(json.dumps(bundle(report_objects(original, found, blobs={sha: content}))))

    drafts = drafts_from_bundle(data, original.label.originator)
    (arrived,) = b.collector.submit(viewer(b, ORIGINATOR), drafts)

    assert arrived.signed_content() == original.signed_content()
    assert arrived.signature == original.signature
    assert b.store.reports.blob(viewer(b, "USA"), arrived.id, sha).data == content  # type: ignore[union-attr]


def test_a_later_version_arrives_as_the_same_version_through_update(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    first, _, content = stored_on_a(a)
    sha = first.attachments[0].sha256
    poster_b = viewer(b, ORIGINATOR)
    exported_first = bundle(report_objects(first, None, blobs={sha: content}))
    b.collector.submit(poster_b, drafts_from_bundle(exported_first, ORIGINATOR))
    body = report_json(
        id=first.id,
        title="Launchers moved back to garrison",
        label={
            "classification": "NATO CONFIDENTIAL",
            "releasable_to": ["NATO", "IP4"],
            "caveats": [],
        },
    )
    second = a.collector.update(viewer(a, ORIGINATOR), first.id, ReportDraft.model_validate(body))
    exported = bundle(report_objects(second, None, first_stored_at=first.stored_at))

    (imported,) = imported_reports(exported, ORIGINATOR)
    assert imported.version == 2 and imported.stix_id == f"report--{first.id}"
    arrived = b.collector.update(poster_b, first.id, imported.draft)
    assert arrived.signed_content() == second.signed_content()


def test_a_changed_field_no_longer_verifies_on_the_other_node(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    original, _, content = stored_on_a(a)
    data = bundle(report_objects(original, None, blobs={original.attachments[0].sha256: content}))
    report = data["objects"][0]
    report["extensions"][REPORT_EXTENSION_ID]["source"]["credibility"] = 1
    with pytest.raises(BadSignature):
        b.collector.submit(viewer(b, ORIGINATOR), drafts_from_bundle(data, ORIGINATOR))


def test_another_member_reposts_under_its_own_name_without_the_signature(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    original, _, content = stored_on_a(a)
    data = bundle(report_objects(original, None, blobs={original.attachments[0].sha256: content}))
    directory = b.store.coalition.directory()

    (draft,) = drafts_from_bundle(data, "KOR", directory=directory)  # KOR is in IP4
    assert draft.signature is None and draft.id == original.id
    (stored,) = b.collector.submit(viewer(b, "KOR"), [draft])
    assert stored.label == Label.build("NATO SECRET", ["IP4", "USA"], "KOR")
    assert stored.title == original.title and stored.attachments == original.attachments


def test_a_label_not_releasable_to_the_poster_is_refused(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    original, _, content = stored_on_a(a)
    data = bundle(report_objects(original, None, blobs={original.attachments[0].sha256: content}))
    directory = b.store.coalition.directory()
    with pytest.raises(InvalidInput) as refused:
        drafts_from_bundle(data, "GBR", directory=directory)
    assert f"report--{original.id}" in str(refused.value)
    assert "not releasable to GBR" in str(refused.value)
    # Without a directory, communities are not expanded: even an IP4 member is refused.
    with pytest.raises(InvalidInput, match="not releasable to KOR"):
        drafts_from_bundle(data, "KOR")
    assert drafts_from_bundle(data, "USA")[0].label.releasable_to == ["IP4", "USA"]


def test_an_attachment_without_its_content_is_refused(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    original, _, _ = stored_on_a(a)
    with pytest.raises(InvalidInput, match=r"attachment 'site.png' .* no artifact"):
        drafts_from_bundle(bundle(report_objects(original, None)), ORIGINATOR)


# -- MISP and OpenCTI -------------------------------------------------------------------------


def kept_objects(draft: ReportDraft) -> dict[str, dict[str, Any]]:
    (attachment,) = draft.attachments
    assert attachment.media_type == "application/stix+json"
    kept = json.loads(attachment.content())
    # made from bytes in hand: the base64 form says the same bytes
    assert base64.b64decode(attachment.content_base64) == attachment.content()
    assert kept["type"] == "bundle"
    return {obj["id"]: obj for obj in kept["objects"]}


def test_a_misp_event_report_is_imported_with_its_markings_mapped() -> None:
    (draft,) = drafts_from_bundle(sample("misp_event_report"), "POL")
    stix_id = "report--b84399e5-fe84-4dcd-a87c-ad5286bd1751"
    assert draft.id == foreign_report_id("POL", stix_id) and draft.signature is None
    assert draft.title.startswith("Phishing wave against port logistics firms")
    assert "Two firms reported credential theft" in draft.body  # the event report (note)
    # TLP:WHITE on the event, TLP:AMBER on one of its attributes: the report takes the stricter.
    assert draft.label.model_dump() == {
        "classification": "NATO UNCLASSIFIED",
        "releasable_to": ["POL"],
        "caveats": [],
    }
    assert (draft.source.name, draft.source.grading) == ("Harbour Cyber Response Team", "B3")
    assert [(p.lat, p.lon, p.name) for p in draft.locations] == [
        (54.5333, 18.5501, "Container terminal, Gdynia")
    ]
    assert draft.reported_at is not None and draft.reported_at.isoformat().startswith("2024-03-02")
    kept = kept_objects(draft)
    report = kept["report--b84399e5-fe84-4dcd-a87c-ad5286bd1751"]
    assert report["x_misp_event_id"] == "4412"
    assert kept["indicator--079b1770-3c10-4fdf-a7c6-3b4e0a88302d"]["x_misp_comment"]
    assert "observed-data--0d21011a-5027-46d4-9459-d5bb448d2f2d" in kept
    assert "note--eda26a8c-1cce-4f2d-bf09-a21913fff4f3" in kept
    assert "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82" in kept


def test_a_misp_event_without_the_amber_attribute_is_public() -> None:
    data = sample("misp_event_report")
    data["objects"] = [o for o in data["objects"] if "c07d9de8" not in o["id"]]
    (draft,) = drafts_from_bundle(data, "POL")
    assert draft.label.model_dump() == {
        "classification": "PUBLIC",
        "releasable_to": ["NATO", "IP4", "POL"],
        "caveats": [],
    }


def test_a_misp_grouping_is_imported_and_graded_cannot_be_judged() -> None:
    (draft,) = drafts_from_bundle(sample("misp_event_grouping"), "EST")
    assert draft.title == "GNSS jamming reported by vessels east of Bornholm"
    assert draft.body == "Three vessels logged loss of GNSS fix within one hour."
    assert draft.label.classification == "NATO UNCLASSIFIED"
    assert draft.label.releasable_to == ["NATO", "IP4", "EST"]
    assert draft.source.grading == "F6"
    assert draft.reported_at is not None and draft.reported_at.isoformat() == (
        "2024-05-10T10:05:30+00:00"
    )
    assert [(p.lat, p.lon) for p in draft.locations] == [(55.2, 15.6)]


def test_an_opencti_report_with_amber_strict_is_imported() -> None:
    (draft,) = drafts_from_bundle(sample("opencti_report"), "KOR")
    assert draft.title == "Cryptocurrency bridge intrusion attributed to a DPRK-nexus cluster"
    assert draft.language == "en"
    assert draft.label.model_dump() == {
        "classification": "NATO UNCLASSIFIED",
        "releasable_to": ["KOR"],
        "caveats": [],
    }
    # Reliability from the author's x_opencti_reliability, credibility from confidence 75.
    assert (draft.source.name, draft.source.grading) == ("Eastern Seaboard Threat Research", "B2")
    assert draft.locations == []  # a country without coordinates stays in the attachment
    kept = kept_objects(draft)
    assert kept["intrusion-set--80753bc6-f4ca-4897-85ec-90de77be71c8"]["name"] == "BRIDGEWALKER"
    assert kept["location--c092bb68-b8ce-4411-9525-c19f53211d86"]["country"] == "KP"
    assert kept["report--8c39f048-5d7c-4508-a259-18b82eeacc11"]["x_opencti_report_status"]


def test_foreign_drafts_are_accepted_by_a_node(node: Node) -> None:
    poster = viewer(node, "POL")
    drafts = [
        *drafts_from_bundle(sample("misp_event_report"), "POL"),
        *drafts_from_bundle(sample("misp_event_grouping"), "POL"),
        *drafts_from_bundle(sample("opencti_report"), "POL"),
    ]
    stored = node.collector.submit(poster, drafts)
    assert [s.label.originator for s in stored] == ["POL"] * 3
    assert stored[0].label.classification is Classification.NATO_UNCLASSIFIED


# -- refusals ------------------------------------------------------------------------------------


def opencti_with(marking: dict[str, Any]) -> dict[str, Any]:
    data = sample("opencti_report")
    data["objects"].append(marking)
    report = next(o for o in data["objects"] if o["type"] == "report")
    report["object_marking_refs"] = [marking["id"]]
    return data


OPENCTI_REPORT = "report--8c39f048-5d7c-4508-a259-18b82eeacc11"


def test_tlp_red_is_refused_unless_the_policy_maps_it() -> None:
    data = opencti_with(tlp_marking(TlpLevel.RED))
    with pytest.raises(InvalidInput) as refused:
        drafts_from_bundle(data, "KOR")
    assert OPENCTI_REPORT in str(refused.value) and "TLP:RED" in str(refused.value)

    policy = TlpPolicy.from_json(
        {"levels": {"red": {"classification": "NATO CONFIDENTIAL", "caveats": ["TLP RED"]}}}
    )
    (draft,) = drafts_from_bundle(data, "KOR", policy)
    assert draft.label.model_dump() == {
        "classification": "NATO CONFIDENTIAL",
        "releasable_to": ["KOR"],
        "caveats": ["TLP RED"],
    }


def test_a_statement_marking_is_refused_unless_the_policy_maps_its_id() -> None:
    statement: dict[str, Any] = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--a3875430-329b-405c-b2ec-37b45835de35",
        "created": "2024-01-01T00:00:00.000Z",
        "definition_type": "statement",
        "name": "Copyright Eastern Seaboard",
        "definition": {"statement": "Copyright 2024 Eastern Seaboard Threat Research"},
    }
    data = opencti_with(statement)
    with pytest.raises(InvalidInput) as refused:
        drafts_from_bundle(data, "KOR")
    message = str(refused.value)
    assert OPENCTI_REPORT in message and "Copyright Eastern Seaboard" in message
    assert "no mapping to a BICES label" in message
    policy = TlpPolicy(
        TlpPolicy.default().levels,
        {statement["id"]: TlpRule.build("NATO UNCLASSIFIED", ["NATO"])},
    )
    (draft,) = drafts_from_bundle(data, "KOR", policy)
    # The objects the report references are TLP:AMBER+STRICT: KOR alone, NATO dropped.
    assert (draft.label.classification, draft.label.releasable_to) == ("NATO UNCLASSIFIED", ["KOR"])
    data["objects"] = [o for o in data["objects"] if o["type"] in {"report", "marking-definition"}]
    (draft,) = drafts_from_bundle(data, "KOR", policy)
    assert draft.label.releasable_to == ["NATO", "KOR"]


def test_an_unknown_marking_reference_is_refused() -> None:
    data = sample("misp_event_grouping")
    grouping = next(o for o in data["objects"] if o["type"] == "grouping")
    grouping["object_marking_refs"] = ["marking-definition--57a0ccd5-827d-4108-b38d-2e3972ace7c9"]
    with pytest.raises(InvalidInput, match="neither in the bundle nor a standard TLP marking"):
        drafts_from_bundle(data, "EST")


def test_a_marking_that_contradicts_its_standard_id_is_refused() -> None:
    fake = copy.deepcopy(tlp_marking(TlpLevel.RED))
    fake["name"] = "TLP:CLEAR"
    fake["extensions"]["extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"]["tlp_2_0"] = (
        "clear"
    )
    with pytest.raises(InvalidInput, match="standard TLP:RED marking"):
        drafts_from_bundle(opencti_with(fake), "KOR")


def test_a_report_without_a_marking_is_refused() -> None:
    data = sample("misp_event_grouping")
    grouping = next(o for o in data["objects"] if o["type"] == "grouping")
    del grouping["object_marking_refs"]
    with pytest.raises(InvalidInput) as refused:
        drafts_from_bundle(data, "EST")
    assert grouping["id"] in str(refused.value) and "no marking" in str(refused.value)


def test_a_red_object_inside_a_report_refuses_the_whole_bundle() -> None:
    data = sample("misp_event_report")
    data["objects"] += sample("misp_event_grouping")["objects"]
    indicator = next(o for o in data["objects"] if o["type"] == "indicator")
    indicator["object_marking_refs"] = [TLP2_IDS[TlpLevel.RED]]
    with pytest.raises(InvalidInput) as refused:
        drafts_from_bundle(data, "POL")
    assert indicator["id"] in str(refused.value) and "TLP:RED" in str(refused.value)


def test_a_second_bices_label_on_one_report_is_refused() -> None:
    data = sample("opencti_report")
    report = next(o for o in data["objects"] if o["type"] == "report")
    one = label_marking(Label.build("NATO SECRET", ["KOR"], "USA"))
    two = label_marking(Label.build("NATO CONFIDENTIAL", ["KOR"], "USA"))
    data["objects"] += [one, two]
    report["object_marking_refs"] = [one["id"], two["id"]]
    with pytest.raises(InvalidInput, match="2 different BICES labels"):
        drafts_from_bundle(data, "KOR")


def test_a_forged_label_marking_id_is_refused() -> None:
    marking = label_marking(Label.build("NATO SECRET", ["KOR"], "USA"))
    marking["extensions"]["extension-definition--6f780977-7880-4e0d-9be9-528f9cc26f13"][
        "classification"
    ] = "PUBLIC"
    with pytest.raises(InvalidInput, match="not the id of the label it carries"):
        drafts_from_bundle(opencti_with(marking), "KOR")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("hello", "not a STIX bundle"),
        ({"type": "report", "id": "report--8c39f048-5d7c-4508-a259-18b82eeacc11"}, "'bundle'"),
        ({"type": "bundle", "id": "bundle--1", "objects": "x"}, "'objects'"),
        ({"type": "bundle", "id": "bundle--1", "objects": []}, "no objects"),
        ([1, 2], r"objects\[0\] is not a JSON object"),
        ([{"type": "report", "id": "indicator--8c39f048-5d7c-4508-a259-18b82eeacc11"}], "type"),
        ([{"type": "report", "id": "report--nope"}], "not a STIX id"),
        ([tlp_marking(TlpLevel.CLEAR)], "no report, grouping or note"),
    ],
)
def test_input_that_is_not_a_stix_bundle_is_refused(data: Any, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        drafts_from_bundle(data, "USA")


def test_a_stix_2_0_report_and_a_bad_timestamp_are_refused() -> None:
    data = sample("opencti_report")
    report = next(o for o in data["objects"] if o["type"] == "report")
    del report["spec_version"]
    with pytest.raises(InvalidInput, match=r"only STIX 2\.1"):
        drafts_from_bundle(data, "KOR")
    report["spec_version"] = "2.1"
    report["published"] = "last Tuesday"
    with pytest.raises(InvalidInput, match=rf"{OPENCTI_REPORT}.published: 'last Tuesday'"):
        drafts_from_bundle(data, "KOR")


def test_a_field_that_breaks_a_report_rule_is_named() -> None:
    data = sample("misp_event_grouping")
    grouping = next(o for o in data["objects"] if o["type"] == "grouping")
    grouping["description"] = "x" * 1_000_001
    with pytest.raises(InvalidInput, match=rf"{grouping['id']} cannot be a BICES report: body"):
        drafts_from_bundle(data, "EST")


def test_a_standalone_note_becomes_a_report() -> None:
    data = sample("misp_event_report")
    note = next(o for o in data["objects"] if o["type"] == "note")
    note["object_refs"] = ["indicator--079b1770-3c10-4fdf-a7c6-3b4e0a88302d"]
    note["object_marking_refs"] = [TLP2_IDS[TlpLevel.GREEN]]
    drafts = drafts_from_bundle(data, "POL")
    assert len(drafts) == 2
    assert drafts[1].title == "Analyst summary"
    assert drafts[1].body.startswith("The lures imitate a customs clearance portal")
    assert "credential theft" not in drafts[0].body


def test_tlp_policy_settings_are_checked() -> None:
    with pytest.raises(InvalidInput, match="unknown TLP level 'pink'"):
        TlpPolicy.from_json({"levels": {"pink": None}})
    with pytest.raises(InvalidInput, match="unknown classification"):
        TlpPolicy.from_json({"levels": {"green": {"classification": "TOP SECRET-ish"}}})
    strict = TlpPolicy.from_json({"levels": {"clear": None}})
    assert strict.levels[TlpLevel.CLEAR] is None
    assert strict.levels[TlpLevel.GREEN] == TlpPolicy.default().levels[TlpLevel.GREEN]


# -- malformed STIX: a 4xx naming the object and the field, never a crash ------------------------


def _labelled(classification: str = "NATO SECRET") -> list[dict[str, Any]]:
    """A report marked with a BICES label, its source identity, the label's marking and the
    extension definition (what a peer or a client that knows our labels posts)."""
    from tests.taxii_samples import envelope, stix_report

    objects: list[dict[str, Any]] = envelope(
        stix_report(Label.build(classification, ["NATO", "KOR"], "USA"))
    )["objects"]
    return objects


def _label_ext(objects: list[dict[str, Any]]) -> dict[str, Any]:
    ext: dict[str, Any] = objects[2]["extensions"][EXTENSION_ID]
    return ext


MALFORMED: list[tuple[str, Any, str]] = [
    ("report", ("extensions", [1]), "extensions"),
    ("report", ("extensions", "x"), "extensions"),
    ("report", ("object_marking_refs", 5), "object_marking_refs"),
    ("report", ("object_marking_refs", [[1]]), "object_marking_refs"),
    ("report", ("object_marking_refs", [{}]), "object_marking_refs"),
    ("report", ("granular_markings", 5), "granular_markings"),
    ("report", ("granular_markings", [{"marking_ref": 5, "selectors": ["name"]}]),
     "granular_markings"),
    ("marking", ("extensions", 5), "extensions"),
    ("label", ("releasable_to", [1]), "releasable_to"),
    ("label", ("caveats", [None]), "caveats"),
    ("label", ("classification", 5), "classification"),
    ("report", ("published", "9999-12-31T23:59:59-05:00"), "published"),
    ("report", ("published", "0001-01-01T00:00:00+05:00"), "published"),
    ("report", ("labels", 5), "labels"),
    ("report", ("labels", [5]), "labels"),
    ("report", ("name", ["a"]), "name"),
    ("report", ("description", {"x": 1}), "description"),
    ("report", ("lang", 5), "lang"),
    ("report", ("created_by_ref", {}), "created_by_ref"),
    ("report", ("object_refs", [1]), "object_refs"),
    ("report", ("confidence", "x"), "confidence"),
    ("identity", ("name", {}), "name"),
]  # fmt: skip


@pytest.mark.parametrize(("target", "change", "field"), MALFORMED)
def test_a_malformed_property_is_refused_naming_object_and_field(
    target: str, change: tuple[str, Any], field: str
) -> None:
    objects = _labelled()
    key, value = change
    holder = {"report": objects[0], "identity": objects[1], "marking": objects[2],
              "label": _label_ext(objects)}[target]  # fmt: skip
    holder[key] = value
    named = objects[2]["id"] if target in ("marking", "label") else holder.get("id", "")
    with pytest.raises(InvalidInput) as refused:
        drafts_from_bundle(objects, "USA")
    assert named in str(refused.value) and field in str(refused.value), str(refused.value)


def test_an_own_report_with_malformed_extensions_is_refused() -> None:
    node_objects = _labelled()
    node_objects[0]["extensions"] = {REPORT_EXTENSION_ID: 5}
    with pytest.raises(InvalidInput, match=REPORT_EXTENSION_ID):
        drafts_from_bundle(node_objects, "USA")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=3),
    max_leaves=8,
)  # fmt: skip
FIELDS = ["type", "spec_version", "id", "created", "modified", "name", "description", "lang",
          "published", "report_types", "object_refs", "created_by_ref", "object_marking_refs",
          "granular_markings", "extensions", "labels", "confidence", "revoked", "identity_class",
          "external_references", "definition_type", "definition", "content", "abstract",
          "x_opencti_reliability", "releasable_to", "caveats", "classification", "originator",
          "policy", "report_id", "version", "report_type", "source", "reported_at",
          "observed_at", "locations", "attachments", "signature", "language"]  # fmt: skip


def _exported_objects() -> list[dict[str, Any]]:
    """A report as BICES exports it (with the BICES report extension), graded and placed."""
    from datetime import UTC, datetime

    from bices.domain.reports import Location, ReportType, Source

    stored = datetime(2024, 7, 10, 9, 30, tzinfo=UTC)
    exported = ReportVersion(
        id="5d1c3a2e-8f4b-4c6d-9e0f-1a2b3c4d5e6f", version=1, type=ReportType.INTREP,
        title="Launch", body="A missile was launched.", language="en",
        label=Label.build("NATO SECRET", ["NATO", "KOR"], "USA"),
        source=Source(name="Coastal radar", reliability="B", credibility=2),
        reported_at=stored, observed_at=stored, locations=(Location(lat=40.8, lon=129.6),),
        attachments=(), author="usa.analyst", stored_at=stored, signature="c2lnbmF0dXJl",
    )  # fmt: skip
    return bundle(report_objects(exported, None))["objects"]  # type: ignore[no-any-return]


_FUZZ_BASES = [_labelled(), _exported_objects(), sample("misp_event_report")["objects"]]


@settings(max_examples=300, deadline=None)
@given(base=st.sampled_from(range(3)), data=st.data())
def test_any_json_in_any_field_is_a_draft_or_invalid_input(base: int, data: st.DataObject) -> None:
    """Mutating fields of a valid envelope (its objects, the BICES label inside a marking,
    the report extension of an exported report) with any JSON values gives drafts or
    InvalidInput: never another exception."""
    objects = copy.deepcopy(_FUZZ_BASES[base])
    holders: list[dict[str, Any]] = list(objects)
    for obj in objects:
        holders += [ext for ext in (obj.get("extensions") or {}).values()]
        holders += [g for g in obj.get("granular_markings") or [] if isinstance(g, dict)]
    for _ in range(data.draw(st.integers(min_value=1, max_value=3), label="changes")):
        holder = data.draw(st.sampled_from(holders), label="holder")
        field = data.draw(st.sampled_from(sorted({*holder, *FIELDS})), label="field")
        holder[field] = data.draw(JSON_VALUES, label="value")
    try:
        drafts = drafts_from_bundle(objects, "USA")
    except InvalidInput:
        return
    assert all(isinstance(d, ReportDraft) for d in drafts)


def test_a_foreign_report_id_is_the_importing_members_own() -> None:
    """Another platform's report id is derived from the importing member and the STIX id:
    the same member importing it again gets the same id (and is told it is taken), another
    member gets a report of its own, never a conflict with one it may not see."""
    stix_id = "report--b84399e5-fe84-4dcd-a87c-ad5286bd1751"
    (pol,) = drafts_from_bundle(sample("misp_event_report"), "POL")
    (again,) = drafts_from_bundle(sample("misp_event_report"), "POL")
    (est,) = drafts_from_bundle(sample("misp_event_report"), "EST")
    assert pol.id == again.id != est.id
    assert pol.id is not None and est.id is not None
    assert stix_id.split("--")[1] not in (pol.id, est.id)
    assert str(uuid.UUID(pol.id)) == pol.id and uuid.UUID(pol.id).version == 5
    assert stix_id in kept_objects(pol) and stix_id in kept_objects(est)  # the original id
    (imported,) = imported_reports(sample("misp_event_report"), "POL")
    assert imported.stix_id == stix_id
