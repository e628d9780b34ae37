"""Standing requirements: validation, matching, the API (each user's own) and the CLI."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from bices.cli import app as cli
from bices.domain.labels import Classification, Label
from bices.domain.reports import Location, ReportType, ReportVersion, Source
from bices.domain.requirements import (
    Area,
    BoundingBox,
    Circle,
    Compiled,
    Facts,
    Requirement,
    RequirementDraft,
    distance_km,
    fold,
    keyword_pattern,
    matches,
)
from bices.share.stream import canonical_names
from tests.conftest import Coalition, auth


def version(**overrides: Any) -> ReportVersion:
    fields: dict[str, Any] = {
        "id": "00000000-0000-4000-8000-000000000001",
        "version": 1,
        "type": ReportType.INTREP,
        "title": "Korea Utara meluncurkan rudal balistik",
        "body": "Peluncuran terdeteksi pukul 07.24 waktu setempat dari Sinpo.",
        "language": "id",
        "label": Label(Classification.NATO_SECRET, frozenset({"NATO", "KOR"}), "USA"),
        "source": Source(name="radar", reliability="B", credibility=2),
        "reported_at": datetime(2026, 11, 25, tzinfo=UTC),
        "observed_at": None,
        "locations": (Location(lat=40.03, lon=128.18),),
        "attachments": (),
        "author": "someone",
        "stored_at": datetime(2026, 11, 25, tzinfo=UTC),
    }
    fields.update(overrides)
    return ReportVersion(**fields)


def draft(**filters: Any) -> RequirementDraft:
    return RequirementDraft.model_validate({"name": "r", **filters})


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({}, "at least one filter"),
        ({"topics": ["weather"]}, "unknown topic 'weather'"),
        ({"min_grading": "G7"}, "not Admiralty grading"),
        ({"classifications": ["TOP SECRET-ish"]}, "unknown classification"),
        ({"keywords": ["  "]}, "keywords: an empty value"),
        ({"keywords": ["***"]}, "no letters or digits"),
        ({"members": ["not a code"]}, "is not a member code"),
        ({"area": {}}, "area needs a `box` or a `circle`"),
        ({"area": {"box": {"south": 10, "west": 0, "north": 5, "east": 1}}}, "is north of"),
        ({"area": {"circle": {"lat": 0, "lon": 0, "radius_km": 0}}}, "greater than 0"),
        ({"types": ["MEMO"]}, "types"),
    ],
)
def test_bad_requirements_name_the_problem(filters: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        draft(**filters)


def test_values_are_normalised() -> None:
    d = draft(topics=["Missile Launches and Provocations"], min_grading="b2",
              classifications=["nato secret", "PUBLIC"], members=["kor", "usa", "kor"])  # fmt: skip
    assert d.topics == ["missile launches and provocations"]
    assert d.min_grading == "B2"
    assert d.classifications == ["PUBLIC", "NATO SECRET"]
    assert d.members == ["KOR", "USA"]


# -- matching -----------------------------------------------------------------------------


def test_every_filter_must_hold_any_value_may() -> None:
    facts = Facts.of(version())
    assert matches(draft(keywords=["rudal", "kapal selam"]), facts)
    assert matches(draft(keywords=["rudal"], types=["INTREP", "OSINT"]), facts)
    assert not matches(draft(keywords=["rudal"], types=["OSINT"]), facts)
    assert matches(draft(members=["USA"], classifications=["NATO SECRET"]), facts)
    assert not matches(draft(members=["GBR"]), facts)
    assert not matches(draft(classifications=["PUBLIC"]), facts)


def test_keywords_are_whole_words_case_and_accents_ignored() -> None:
    facts = Facts.of(version(title="Pyŏngyang reports", body="RUDAL-nya diluncurkan"))
    assert keyword_pattern("pyongyang").search(facts.text)
    assert matches(draft(keywords=["Pyongyang"]), facts)
    assert not matches(draft(keywords=["rudalnya"]), facts)
    assert not matches(draft(keywords=["rud"]), facts)
    assert matches(draft(keywords=["rud*"]), facts)
    assert matches(draft(keywords=["pyongyang   REPORTS"]), facts)


@pytest.mark.parametrize(
    ("grading", "minimum", "expected"),
    [("B2", "B2", True), ("A1", "B2", True), ("B3", "B2", False), ("C1", "B2", False),
     ("F6", "E5", False), ("F6", "F6", True)],
)  # fmt: skip
def test_min_grading(grading: str, minimum: str, expected: bool) -> None:
    source = Source(name="s", reliability=grading[0], credibility=int(grading[1]))
    assert matches(draft(min_grading=minimum), Facts.of(version(source=source))) is expected


def test_places_by_box_and_by_circle() -> None:
    sinpo = Facts.of(version())  # 40.03 N, 128.18 E
    assert matches(draft(area={"box": {"south": 38, "west": 124, "north": 43, "east": 131}}), sinpo)
    assert not matches(draft(area={"box": {"south": 30, "west": 124, "north": 35, "east": 131}}),
                       sinpo)  # fmt: skip
    assert matches(draft(area={"circle": {"lat": 39.03, "lon": 125.75, "radius_km": 250}}), sinpo)
    assert not matches(draft(area={"circle": {"lat": 39.03, "lon": 125.75, "radius_km": 200}}),
                       sinpo)  # fmt: skip
    nowhere = Facts.of(version(locations=()))
    assert not matches(draft(area={"circle": {"lat": 40, "lon": 128, "radius_km": 100}}), nowhere)
    # An extracted place counts like a location given by the author.
    placed = Facts.of(version(locations=()), places=[(40.03, 128.18)])
    assert matches(draft(area={"circle": {"lat": 40, "lon": 128, "radius_km": 100}}), placed)


def test_box_across_the_antimeridian() -> None:
    box = BoundingBox(south=-50, west=170, north=-30, east=-170)
    assert box.contains(-40, 175) and box.contains(-40, -175)
    assert not box.contains(-40, 0)


def _by_vectors(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The same great-circle distance computed another way: the angle between unit vectors."""

    def unit(lat: float, lon: float) -> tuple[float, float, float]:
        phi, lam = math.radians(lat), math.radians(lon)
        return (math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi))

    a, b = unit(lat1, lon1), unit(lat2, lon2)
    cross = (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return 6371.0088 * math.atan2(math.hypot(*cross), dot)


@given(lat=st.floats(-89, 89), lon=st.floats(-179, 179), lat2=st.floats(-89, 89),
       lon2=st.floats(-179, 179), radius=st.floats(1, 5000))  # fmt: skip
@settings(max_examples=300, deadline=None)
def test_circle_uses_the_great_circle_distance(
    lat: float, lon: float, lat2: float, lon2: float, radius: float
) -> None:
    expected = _by_vectors(lat, lon, lat2, lon2)
    assert distance_km(lat, lon, lat2, lon2) == pytest.approx(expected, abs=1e-3)
    assert distance_km(lat2, lon2, lat, lon) == pytest.approx(expected, abs=1e-3)
    circle = Circle(lat=lat, lon=lon, radius_km=radius)
    assert circle.contains(lat, lon)
    if abs(expected - radius) > 1e-2:  # clear of the rim, where rounding decides
        assert circle.contains(lat2, lon2) == (expected < radius)
        assert Area(circle=circle).contains(lat2, lon2) == (expected < radius)


def test_known_distance() -> None:
    # Seoul to Pyongyang is about 195 km as the crow flies.
    assert distance_km(37.566, 126.978, 39.034, 125.754) == pytest.approx(195, abs=5)


def test_entities_by_canonical_name_or_alias() -> None:
    facts = Facts.of(version(), entity_names=["North Korea", "Korea Utara", "Sinpo"])
    assert matches(draft(entities=["north korea"]), facts)
    assert not matches(draft(entities=["South Korea"]), facts)
    # "Korut" is an alias the report never wrote: it resolves to the canonical name.
    stored = Requirement(1, 1, "r", draft(entities=["Korut"]), datetime.now(UTC),
                         datetime.now(UTC))  # fmt: skip
    requirement = Compiled.of(stored, canonical_names)
    assert fold("north korea") in requirement.entity_keys
    assert requirement.matches(facts)
    assert not Compiled.of(stored, lambda name: []).matches(facts)


def test_topics_come_from_exploitation() -> None:
    facts = Facts.of(version(), topics=["missile launches and provocations"])
    assert matches(draft(topics=["missile launches and provocations"]), facts)
    assert not matches(draft(topics=["cyber defence"]), facts)


# -- API ----------------------------------------------------------------------------------


def test_crud_over_the_api(client: TestClient, coalition: Coalition) -> None:
    kor, usa = coalition.user("KOR"), coalition.user("USA")
    body = {"name": "DPRK missiles", "entities": ["Korut"], "keywords": ["rudal*"],
            "area": {"circle": {"lat": 39, "lon": 127, "radius_km": 400}},
            "min_grading": "B2"}  # fmt: skip
    created = client.post("/api/v1/requirements", json=body, headers=auth(kor))
    assert created.status_code == 201, created.text
    assert created.json()["id"] == 1
    assert created.json()["area"]["circle"]["radius_km"] == 400
    # Numbered per user: another user's first requirement is also 1, and neither sees the
    # other's.
    other = client.post("/api/v1/requirements", json={"name": "x", "types": ["OSINT"]},
                        headers=auth(usa))  # fmt: skip
    assert other.json()["id"] == 1
    listed = client.get("/api/v1/requirements", headers=auth(kor)).json()
    assert [r["name"] for r in listed["items"]] == ["DPRK missiles"]
    assert "missile launches and provocations" in listed["topics"]
    replaced = client.put("/api/v1/requirements/1", json={"name": "renamed", "types": ["ISR"]},
                          headers=auth(kor))  # fmt: skip
    assert replaced.status_code == 200 and replaced.json()["types"] == ["ISR"]
    assert replaced.json()["entities"] == []
    assert client.get("/api/v1/requirements/1", headers=auth(usa)).json()["name"] == "x"
    assert client.delete("/api/v1/requirements/1", headers=auth(kor)).status_code == 204
    assert client.get("/api/v1/requirements/1", headers=auth(kor)).status_code == 404
    assert client.delete("/api/v1/requirements/1", headers=auth(kor)).status_code == 404
    assert client.get("/api/v1/requirements/1", headers=auth(usa)).status_code == 200
    # A removed number is not given again: a stream that names it must not pick up new
    # filters.
    again = client.post("/api/v1/requirements", json={"name": "y", "types": ["ISR"]},
                        headers=auth(kor))  # fmt: skip
    assert again.json()["id"] == 2


def test_bad_requirement_is_refused_and_not_stored(
    client: TestClient, coalition: Coalition
) -> None:
    kor = coalition.user("KOR")
    refused = client.post("/api/v1/requirements", json={"name": "x", "members": ["XYZ"]},
                          headers=auth(kor))  # fmt: skip
    assert refused.status_code == 422
    assert "unknown member(s) XYZ" in refused.text
    refused = client.post("/api/v1/requirements", json={"name": "x"}, headers=auth(kor))
    assert refused.status_code == 422 and "at least one filter" in refused.text
    assert client.get("/api/v1/requirements", headers=auth(kor)).json()["items"] == []
    assert (
        client.post("/api/v1/requirements", json={"name": "x", "types": ["OSINT"]}).status_code
        == 401
    )


def test_changes_are_audited_under_the_owners_member(
    client: TestClient, coalition: Coalition
) -> None:
    kor = coalition.user("KOR")
    client.post("/api/v1/requirements", json={"name": "x", "keywords": ["Sinpo"]},
                headers=auth(kor))  # fmt: skip
    events = [e for e in client.app.state.node.store.audit.all_events()  # type: ignore[attr-defined]
              if e.action.startswith("requirement.")]  # fmt: skip
    assert [e.action for e in events] == ["requirement.create"]
    label = client.app.state.node.store.reports.label(events[0].label_id)  # type: ignore[attr-defined]
    assert label.releasable_to == frozenset({"KOR"})


# -- CLI ----------------------------------------------------------------------------------


def test_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    data = str(tmp_path / "node")

    def run(*args: str) -> Any:
        return runner.invoke(cli, ["--data", data, *args])

    assert run("member", "add", "KOR", "--name", "Korea", "--community", "IP4").exit_code == 0
    assert run("user", "add", "--member", "KOR", "--name", "k1", "--clearance",
               "NATO SECRET").exit_code == 0  # fmt: skip
    added = run("requirement", "add", "--user", "k1", "--name", "Sinpo", "--keyword", "Sinpo",
                "--near", "40,128,50", "--type", "INTREP")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert added.output.strip().splitlines()[-1] == "1"
    listed = run("requirement", "list", "--user", "k1", "--json")
    assert '"radius_km": 50.0' in listed.output
    bad = run("requirement", "add", "--user", "k1", "--name", "x", "--near", "40,128")
    assert bad.exit_code == 2 and "--near takes 3 numbers" in bad.output
    bad = run("requirement", "add", "--user", "k1", "--name", "x", "--min-grading", "Z9")
    assert bad.exit_code == 2 and "not Admiralty grading" in bad.output
    assert run("requirement", "remove", "1", "--user", "k1").exit_code == 0
    gone = run("requirement", "remove", "1", "--user", "k1")
    assert gone.exit_code == 2 and "requirement 1 not found" in gone.output
