"""The TAXII 2.1 server in-process: endpoints, media types, filters, pagination, envelopes,
status resources, DELETE, and the access rule on every one of them."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bices.api import create_app
from bices.node import Node
from bices.policy import may_see
from bices.stix import foreign_report_id
from tests.conftest import Coalition, auth, report_json
from tests.taxii_samples import ROOT, TAXII, envelope, label, stix_report


@pytest.fixture
def taxii(node: Node) -> Iterator[TestClient]:
    """The app without its exploitation worker, so each version's objects stay as stored."""
    with TestClient(create_app(node, exploit_thread=False)) as client:
        yield client


def h(token: str, **extra: str) -> dict[str, str]:
    return {"Accept": TAXII, **auth(token), **extra}


def collections(client: TestClient, token: str) -> dict[str, str]:
    """alias -> id of the collections offered to a user."""
    found = client.get(f"{ROOT}/collections/", headers=h(token))
    assert found.status_code == 200, found.text
    return {c["alias"]: c["id"] for c in found.json()["collections"]}


def objects_url(client: TestClient, token: str, alias: str = "everything") -> str:
    return f"{ROOT}/collections/{collections(client, token)[alias]}/objects/"


def read_all(
    client: TestClient, url: str, token: str, **params: Any
) -> tuple[list[dict[str, Any]], int]:
    """Every object of a stream, page by page; and how many pages it took."""
    found: list[dict[str, Any]] = []
    pages = 0
    cursor: str | None = None
    while True:
        query = dict(params, **({"next": cursor} if cursor else {}))
        response = client.get(url, headers=h(token), params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        found += body.get("objects", [])
        pages += 1
        if not body["more"]:
            return found, pages
        cursor = body["next"]
        assert pages < 1000


def post_reports(client: TestClient, token: str, *bodies: dict[str, Any]) -> list[str]:
    ids = []
    for body in bodies:
        response = client.post("/api/v1/reports", json=body, headers=auth(token))
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


# -- discovery, API root, collections, negotiation, authentication ---------------------------


def test_discovery_api_root_and_media_type(taxii: TestClient, coalition: Coalition) -> None:
    token = coalition.user("USA")
    found = taxii.get("/taxii2/", headers=h(token))
    assert found.status_code == 200
    assert found.headers["content-type"] == TAXII
    assert found.json()["api_roots"] == [f"{found.json()['default']}"]
    assert found.json()["default"].endswith("/taxii2/bices/")
    root = taxii.get(f"{ROOT}/", headers=h(token)).json()
    assert root["versions"] == [TAXII]
    assert root["max_content_length"] > 0
    assert taxii.get("/taxii2/elsewhere/", headers=h(token)).status_code == 404


def test_collections_follow_the_member(taxii: TestClient, coalition: Coalition) -> None:
    usa = collections(taxii, coalition.user("USA"))
    kor = collections(taxii, coalition.user("KOR"))
    assert set(usa) == {"everything", "community-nato", "ingest"}
    assert set(kor) == {"everything", "community-ip4", "ingest"}
    assert usa["everything"] == kor["everything"]  # ids are stable names, not per user
    token = coalition.user("USA")
    one = taxii.get(f"{ROOT}/collections/{usa['ingest']}/", headers=h(token)).json()
    assert one["can_write"] is True and one["can_read"] is True
    assert one["media_types"] == ["application/stix+json;version=2.1"]
    by_alias = taxii.get(f"{ROOT}/collections/ingest/", headers=h(token))
    assert by_alias.json()["id"] == usa["ingest"]
    missing = taxii.get(f"{ROOT}/collections/community-ip4/", headers=h(token))
    assert missing.status_code == 404
    assert missing.json()["http_status"] == "404" and "title" in missing.json()
    reader = coalition.user("USA", roles=())
    assert taxii.get(f"{ROOT}/collections/ingest/", headers=h(reader)).json()["can_write"] is False


@pytest.mark.parametrize(
    "accept", ["application/json", "text/html", "application/taxii+json;version=2.0"]
)
def test_406_for_other_media_types(taxii: TestClient, coalition: Coalition, accept: str) -> None:
    token = coalition.user("USA")
    response = taxii.get(f"{ROOT}/collections/", headers={**auth(token), "Accept": accept})
    assert response.status_code == 406
    assert "Accept" in response.json()["description"]


@pytest.mark.parametrize("accept", ["*/*", "application/taxii+json", "application/*", None])
def test_lenient_accept(taxii: TestClient, coalition: Coalition, accept: str | None) -> None:
    token = coalition.user("USA")
    headers = auth(token) | ({"Accept": accept} if accept else {})
    assert taxii.get(f"{ROOT}/collections/", headers=headers).status_code == 200


def test_authentication(taxii: TestClient, coalition: Coalition) -> None:
    token = coalition.user("USA", name="usa.basic")
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Digest x"}):
        refused = taxii.get(f"{ROOT}/collections/", headers={"Accept": TAXII, **headers})
        assert refused.status_code == 401
        assert "Basic" in refused.headers["www-authenticate"]
        assert refused.headers["content-type"] == TAXII
    basic = base64.b64encode(f"usa.basic:{token}".encode()).decode()
    ok = taxii.get(f"{ROOT}/collections/", headers={"Authorization": f"Basic {basic}"})
    assert ok.status_code == 200
    wrong = base64.b64encode(f"someone.else:{token}".encode()).decode()
    refused = taxii.get(f"{ROOT}/collections/", headers={"Authorization": f"Basic {wrong}"})
    assert refused.status_code == 401 and "does not match" in refused.json()["description"]


# -- objects, filters, pagination --------------------------------------------------------------


def test_stream_serves_reports_and_each_reference_once(
    taxii: TestClient, coalition: Coalition
) -> None:
    token = coalition.user("USA")
    ids = post_reports(taxii, token, *(report_json(title=f"Report {i}") for i in range(5)))
    objects, _ = read_all(taxii, objects_url(taxii, token), token)
    reports = [o["id"] for o in objects if o["type"] == "report"]
    assert reports == [f"report--{i}" for i in ids]  # store order
    keys = [(o["id"], o.get("modified") or o.get("created")) for o in objects]
    assert len(keys) == len(set(keys))  # no object version twice
    markings = [o for o in objects if o["type"] == "marking-definition"]
    assert len({m["id"] for m in markings}) == len(markings) >= 1


def test_pagination_is_complete_and_stable(taxii: TestClient, coalition: Coalition) -> None:
    token = coalition.user("USA")
    post_reports(taxii, token, *(report_json(title=f"Report {i}") for i in range(6)))
    url = objects_url(taxii, token)
    whole, pages = read_all(taxii, url, token)
    assert pages == 1
    paged, pages = read_all(taxii, url, token, limit=3)
    assert pages > 3
    assert [o["id"] for o in paged] == [o["id"] for o in whole]
    # a page, then new reports, then the rest: nothing skipped or repeated
    first = taxii.get(url, headers=h(token), params={"limit": 4}).json()
    assert first["more"] and len(first["objects"]) == 4
    post_reports(taxii, token, report_json(title="Later"))
    rest, _ = read_all(taxii, url, token, next=first["next"], limit=5)
    ids = [o["id"] for o in first["objects"] + rest]
    assert ids[: len(whole)] == [o["id"] for o in whole]
    assert any(o.get("name") == "Later" for o in rest)


def test_limit_and_next_validation(taxii: TestClient, coalition: Coalition) -> None:
    token = coalition.user("USA")
    url = objects_url(taxii, token)
    for params, word in (
        ({"limit": "0"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"next": "not-a-cursor"}, "next"),
        ({"added_after": "yesterday"}, "added_after"),
        ({"match[id]": "nonsense"}, "match[id]"),
        ({"match[colour]": "red"}, "match[colour]"),
    ):
        response = taxii.get(url, headers=h(token), params=params)
        assert response.status_code == 422, (params, response.text)
        assert word in response.json()["description"]
    big = taxii.get(url, headers=h(token), params={"limit": "100000"})
    assert big.status_code == 200  # clamped to the server's maximum


def test_filters(taxii: TestClient, coalition: Coalition) -> None:
    token = coalition.user("USA")
    first, second = post_reports(taxii, token, report_json(title="One"), report_json(title="Two"))
    url = objects_url(taxii, token)
    everything, _ = read_all(taxii, url, token)
    only_reports, _ = read_all(taxii, url, token, **{"match[type]": "report"})
    assert [o["id"] for o in only_reports] == [f"report--{first}", f"report--{second}"]
    two_types, _ = read_all(taxii, url, token, **{"match[type]": "report,marking-definition"})
    assert {o["type"] for o in two_types} == {"report", "marking-definition"}
    by_id, _ = read_all(taxii, url, token, **{"match[id]": f"report--{second}"})
    assert [o["name"] for o in by_id] == ["Two"]
    marking = next(o for o in everything if o["type"] == "marking-definition")
    marking_only, _ = read_all(taxii, url, token, **{"match[id]": marking["id"]})
    assert marking_only == [marking]
    assert read_all(taxii, url, token, **{"match[spec_version]": "2.0"})[0] == []
    assert len(read_all(taxii, url, token, **{"match[spec_version]": "2.1"})[0]) == len(everything)
    # added_after: the date the first report was added leaves the second
    response = taxii.get(url, headers=h(token), params={"match[type]": "report"})
    added = response.headers["X-TAXII-Date-Added-First"]
    assert response.headers["X-TAXII-Date-Added-Last"] > added
    later, _ = read_all(taxii, url, token, added_after=added, **{"match[type]": "report"})
    assert [o["id"] for o in later] == [f"report--{second}"]


def test_versions_and_match_version(taxii: TestClient, coalition: Coalition) -> None:
    token = coalition.user("USA")
    (report_id,) = post_reports(taxii, token, report_json(title="First words"))
    updated = taxii.put(
        f"/api/v1/reports/{report_id}", json=report_json(title="Second words"), headers=auth(token)
    )
    assert updated.status_code == 200, updated.text
    url = objects_url(taxii, token)
    stix_id = f"report--{report_id}"
    versions = taxii.get(f"{url}{stix_id}/versions/", headers=h(token)).json()
    assert len(versions["versions"]) == 2 and versions["more"] is False
    old, new = versions["versions"]
    assert old < new

    def names(**params: str) -> list[str]:
        found, _ = read_all(taxii, url, token, **{"match[id]": stix_id, **params})
        return [o["name"] for o in found]

    assert names() == ["Second words"]  # last is the default
    assert names(**{"match[version]": "first"}) == ["First words"]
    assert names(**{"match[version]": "all"}) == ["First words", "Second words"]
    assert names(**{"match[version]": old}) == ["First words"]
    one = taxii.get(f"{url}{stix_id}/", headers=h(token), params={"match[version]": "all"})
    assert [o["modified"] for o in one.json()["objects"]] == [old, new]
    assert one.json()["objects"][0]["created"] == one.json()["objects"][1]["created"]


def test_manifest_matches_objects(taxii: TestClient, coalition: Coalition) -> None:
    token = coalition.user("USA")
    post_reports(taxii, token, report_json(title="A"), report_json(title="B"))
    url = objects_url(taxii, token)
    objects, _ = read_all(taxii, url, token)
    manifest = taxii.get(url.replace("/objects/", "/manifest/"), headers=h(token))
    assert manifest.status_code == 200
    records = manifest.json()["objects"]
    assert [r["id"] for r in records] == [o["id"] for o in objects]
    assert all(r["media_type"] == "application/stix+json;version=2.1" for r in records)
    report = next(o for o in objects if o["type"] == "report")
    record = next(r for r in records if r["id"] == report["id"])
    assert record["version"] == report["modified"]
    assert manifest.headers["X-TAXII-Date-Added-First"] == records[0]["date_added"]


def test_community_collection_needs_the_whole_community(
    taxii: TestClient, coalition: Coalition
) -> None:
    token = coalition.user("USA")
    post_reports(
        taxii,
        token,
        report_json(title="Wide"),
        report_json(title="Narrow", label={"classification": "NATO SECRET",
                                          "releasable_to": ["USA", "GBR"]}),
    )  # fmt: skip
    nato, _ = read_all(taxii, objects_url(taxii, token, "community-nato"), token,
                       **{"match[type]": "report"})  # fmt: skip
    assert [o["name"] for o in nato] == ["Wide"]
    every, _ = read_all(taxii, objects_url(taxii, token), token, **{"match[type]": "report"})
    assert [o["name"] for o in every] == ["Wide", "Narrow"]


def test_delete_is_refused_with_405(taxii: TestClient, coalition: Coalition) -> None:
    token = coalition.user("USA")
    (report_id,) = post_reports(taxii, token, report_json())
    url = objects_url(taxii, token, "ingest") + f"report--{report_id}/"
    refused = taxii.delete(url, headers=h(token))
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET"
    assert "never deletes" in refused.json()["description"]
    assert taxii.get(url, headers=h(token)).status_code == 200


# -- envelopes and status ------------------------------------------------------------------------


def test_post_envelope_and_status(taxii: TestClient, coalition: Coalition) -> None:
    token = coalition.user("USA")
    url = objects_url(taxii, token, "ingest")
    one, two = stix_report(label(), "One"), stix_report(label(), "Two")
    posted = envelope(one, two)
    response = taxii.post(url, json=posted, headers=h(token, **{"Content-Type": TAXII}))
    assert response.status_code == 202, response.text
    status = response.json()
    assert status["status"] == "complete"
    assert status["total_count"] == status["success_count"] == len(posted["objects"])
    assert status["failure_count"] == status["pending_count"] == 0
    again = taxii.get(f"{ROOT}/status/{status['id']}/", headers=h(token)).json()
    assert again == status
    reports, _ = read_all(taxii, url, token, **{"match[type]": "report"})
    assert [r["name"] for r in reports] == ["One", "Two"]
    # successes name the objects posted; each report's message, the report it became
    reported = {s["id"]: s["message"] for s in status["successes"]
                if s["id"].startswith("report--")}  # fmt: skip
    assert set(reported) == {one[0]["id"], two[0]["id"]}
    for group, served in zip((one, two), reports, strict=True):
        report_id = foreign_report_id("USA", group[0]["id"])
        assert served["id"] == f"report--{report_id}"
        assert report_id in reported[group[0]["id"]]


def test_status_is_the_posting_members_own(taxii: TestClient, coalition: Coalition) -> None:
    usa, gbr = coalition.user("USA"), coalition.user("GBR")
    low = coalition.user("USA", clearance="NATO RESTRICTED")
    response = taxii.post(
        objects_url(taxii, usa, "ingest"),
        json=envelope(stix_report(label(), "Secret")),
        headers=h(usa, **{"Content-Type": TAXII}),
    )
    status_url = f"{ROOT}/status/{response.json()['id']}/"
    missing = taxii.get(f"{ROOT}/status/00000000-0000-4000-8000-000000000000/", headers=h(gbr))
    other = taxii.get(status_url, headers=h(gbr))
    assert other.status_code == missing.status_code == 404
    assert other.json()["description"].split(" ")[0] == missing.json()["description"].split(" ")[0]
    mine_but_hidden = taxii.get(status_url, headers=h(low)).json()
    assert mine_but_hidden["total_count"] == mine_but_hidden["success_count"] == 0
    assert "successes" not in mine_but_hidden or mine_but_hidden["successes"] == []


def report_count(node: Node) -> int:
    return sum(1 for _ in node.store.reports.all_versions())


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"{not json", 400, "malformed JSON"),
        (b"[1, 2]", 422, "not a TAXII envelope"),
        (b'{"objects": []}', 422, "non-empty"),
        (b'{"objects": [{"type": "report"}]}', 422, "objects[0]"),
        (b'{"objects": [], "extra": 1}', 422, "extra"),
    ],
)
def test_bad_envelopes_store_nothing(
    taxii: TestClient, coalition: Coalition, node: Node, body: bytes, status: int, words: str
) -> None:
    token = coalition.user("USA")
    response = taxii.post(
        objects_url(taxii, token, "ingest"),
        content=body,
        headers=h(token, **{"Content-Type": TAXII}),
    )
    assert response.status_code == status, response.text
    assert words in response.json()["description"]
    assert report_count(node) == 0


def test_unmappable_marking_refuses_the_whole_envelope(
    taxii: TestClient, coalition: Coalition, node: Node
) -> None:
    token = coalition.user("USA")
    good = stix_report(label(), "Fine")
    bad = stix_report(label(), "Unmarked")
    bad[0]["object_marking_refs"] = ["marking-definition--11111111-2222-4333-8444-555555555555"]
    response = taxii.post(
        objects_url(taxii, token, "ingest"),
        json=envelope(good, bad),
        headers=h(token, **{"Content-Type": TAXII}),
    )
    assert response.status_code == 422, response.text
    assert bad[0]["id"] in response.json()["description"]
    assert report_count(node) == 0


def test_post_needs_taxii_content_type_and_a_writable_collection(
    taxii: TestClient, coalition: Coalition, node: Node
) -> None:
    token = coalition.user("USA")
    posted = envelope(stix_report(label()))
    wrong_type = taxii.post(
        objects_url(taxii, token, "ingest"), json=posted, headers=h(token)
    )  # httpx sends application/json
    assert wrong_type.status_code == 415
    read_only = taxii.post(
        objects_url(taxii, token), json=posted, headers=h(token, **{"Content-Type": TAXII})
    )
    assert read_only.status_code == 403
    above_clearance = taxii.post(
        objects_url(taxii, coalition.user("USA", clearance="NATO RESTRICTED"), "ingest"),
        json=posted,
        headers=h(coalition.user("USA", clearance="NATO RESTRICTED"), **{"Content-Type": TAXII}),
    )
    assert above_clearance.status_code == 403
    assert report_count(node) == 0


# -- the access rule -----------------------------------------------------------------------------


def test_hidden_report_is_nowhere(taxii: TestClient, coalition: Coalition) -> None:
    usa = coalition.user("USA", clearance="COSMIC TOP SECRET")
    (hidden,) = post_reports(
        taxii,
        usa,
        report_json(title="Top", label={"classification": "COSMIC TOP SECRET",
                                        "releasable_to": ["NATO", "KOR"]}),
    )  # fmt: skip
    stix_id = f"report--{hidden}"
    for viewer in (coalition.user("KOR"), coalition.user("USA", clearance="NATO SECRET")):
        for alias in collections(taxii, viewer):
            url = objects_url(taxii, viewer, alias)
            everything, _ = read_all(taxii, url, viewer, **{"match[version]": "all"})
            assert everything == []
            assert read_all(taxii, url, viewer, **{"match[id]": stix_id})[0] == []
            manifest = taxii.get(url.replace("/objects/", "/manifest/"), headers=h(viewer))
            assert "objects" not in manifest.json()
            assert "X-TAXII-Date-Added-First" not in manifest.headers
            for path in (f"{url}{stix_id}/", f"{url}{stix_id}/versions/"):
                found = taxii.get(path, headers=h(viewer))
                missing = taxii.get(path.replace(hidden, "0" * 8 + hidden[8:]), headers=h(viewer))
                assert found.status_code == missing.status_code == 404


LEVELS = ["NATO RESTRICTED", "NATO CONFIDENTIAL", "NATO SECRET", "COSMIC TOP SECRET"]
RELEASES = [("NATO",), ("USA", "GBR"), ("NATO", "KOR"), ("IP4",), ("KOR", "USA")]


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    reports=st.lists(
        st.tuples(st.sampled_from(["USA", "KOR"]), st.sampled_from(LEVELS[:3]),
                  st.sampled_from(RELEASES)),
        min_size=1, max_size=5,
    ),
    viewer=st.tuples(st.sampled_from(["USA", "GBR", "KOR", "JPN"]), st.sampled_from(LEVELS)),
)  # fmt: skip
def test_every_collection_obeys_the_rule(
    taxii: TestClient,
    coalition: Coalition,
    node: Node,
    reports: list[tuple[str, str, tuple[str, ...]]],
    viewer: tuple[str, str],
) -> None:
    """Whatever was stored, a user reads over TAXII exactly the reports the rule allows."""
    authors = {m: coalition.user(m, clearance="NATO SECRET") for m in ("USA", "KOR")}
    for member, level, releasable in reports:
        release = sorted({*releasable, member})  # a member may only write what it may read
        post_reports(taxii, authors[member], report_json(
            label={"classification": level, "releasable_to": release}))  # fmt: skip
    token = coalition.user(viewer[0], clearance=viewer[1])
    who = node.coalition.authenticate(token)
    directory = node.store.coalition.directory()
    allowed = {
        f"report--{v.id}" for v in node.store.reports.all_versions()
        if may_see(who, v.label, directory)
    }  # fmt: skip
    offered = collections(taxii, token)
    served: set[str] = set()
    for alias in offered:
        found, _ = read_all(taxii, objects_url(taxii, token, alias), token, limit=7)
        reports_found = {o["id"] for o in found if o["type"] == "report"}
        assert reports_found <= allowed
        served |= reports_found
        labels = {o["id"] for o in found if o["type"] == "marking-definition"}
        referenced = {m for o in found for m in o.get("object_marking_refs", [])}
        assert labels <= referenced | {o["id"] for o in found if o["type"] == "marking-definition"}
    assert served == allowed


# -- review fixes: opaque cursors, created, versions headers, malformed STIX, foreign ids ---------

HIDDEN = {"classification": "NATO SECRET", "releasable_to": ["USA"], "caveats": []}


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_next_is_opaque_and_only_what_the_server_gave(
    taxii: TestClient, coalition: Coalition
) -> None:
    """A `next` tells nothing of the store's sequence (the gap between two would count the
    hidden versions stored between them) and cannot be made up."""
    usa = coalition.user("USA", clearance="COSMIC TOP SECRET")
    kor = coalition.user("KOR")
    post_reports(taxii, usa, report_json(title="A"))
    post_reports(taxii, usa, *[report_json(title=f"H{i}", label=HIDDEN) for i in range(5)])
    post_reports(taxii, usa, report_json(title="B"), report_json(title="C"))
    url = objects_url(taxii, kor)
    found, pages = read_all(taxii, url, kor, limit=1, **{"match[type]": "report"})
    assert [o["name"] for o in found] == ["A", "B", "C"] and pages == 3
    first = taxii.get(url, headers=h(kor), params={"limit": 1, "match[type]": "report"}).json()
    cursor = first["next"]
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    assert len(raw) == 16 and not re.fullmatch(rb"t\d+\.\d+", raw)  # not the old text
    assert len(cursor) == 22
    rest, _ = read_all(taxii, url, kor, next=cursor, **{"match[type]": "report"})
    assert [o["name"] for o in rest] == ["B", "C"]
    listing = taxii.get("/api/v1/reports", params={"limit": 1}, headers=auth(kor)).json()
    tampered = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    for forged in (_b64("t1.0"), _b64("t7.3"), tampered, listing["next_cursor"]):
        refused = taxii.get(url, headers=h(kor), params={"next": forged})
        assert refused.status_code == 422, refused.text
        assert "is not a value this server gave" in refused.json()["description"]


def test_a_forged_huge_next_is_refused_not_a_crash(taxii: TestClient, coalition: Coalition) -> None:
    """Review item 8: base64 of `t99999999999999999999999.0` overflowed SQLite (a 500)."""
    kor = coalition.user("KOR")
    post_reports(taxii, coalition.user("USA"), report_json())
    big = _b64("t99999999999999999999999.0")
    url = objects_url(taxii, kor)
    (report_id,) = [o["id"] for o in read_all(taxii, url, kor)[0] if o["type"] == "report"]
    for path in (url, url.replace("/objects/", "/manifest/"), f"{url}{report_id}/",
                 f"{url}{report_id}/versions/"):  # fmt: skip
        refused = taxii.get(path, headers=h(kor), params={"next": big})
        assert refused.status_code == 422, (path, refused.text)
        assert "next" in refused.json()["description"]


def test_created_is_when_the_first_version_the_viewer_may_see_was_stored(
    taxii: TestClient, coalition: Coalition
) -> None:
    """Version 1 REL TO USA, version 2 REL TO NATO, KOR: KOR must not learn when version 1
    was stored from `created`."""
    usa = coalition.user("USA")
    kor = coalition.user("KOR")
    (report_id,) = post_reports(taxii, usa, report_json(title="One", label=HIDDEN))
    updated = taxii.put(f"/api/v1/reports/{report_id}", json=report_json(title="Two"),
                        headers=auth(usa))  # fmt: skip
    assert updated.status_code == 200, updated.text
    stix_id = f"report--{report_id}"
    seen = {}
    # USA first, then KOR, then USA again: what one viewer was served is not another's
    for who, token in (("USA", usa), ("KOR", kor), ("USA again", usa)):
        got = taxii.get(f"{objects_url(taxii, token)}{stix_id}/", headers=h(token))
        assert got.status_code == 200, got.text
        (obj,) = got.json()["objects"]
        seen[who] = obj
    assert seen["KOR"]["created"] == seen["KOR"]["modified"]  # version 2 is its first
    assert seen["USA"]["created"] < seen["USA"]["modified"] == seen["KOR"]["modified"]
    assert seen["USA again"] == seen["USA"]
    every, _ = read_all(taxii, objects_url(taxii, kor), kor, **{"match[version]": "all"})
    assert {o["created"] for o in every if o["id"] == stix_id} == {seen["KOR"]["created"]}


def test_versions_carry_the_date_added_headers(taxii: TestClient, coalition: Coalition) -> None:
    token = coalition.user("USA")
    (report_id,) = post_reports(taxii, token, report_json(title="First"))
    for title in ("Second", "Third"):
        again = taxii.put(f"/api/v1/reports/{report_id}", json=report_json(title=title),
                          headers=auth(token))  # fmt: skip
        assert again.status_code == 200
    url = objects_url(taxii, token)
    stix_id = f"report--{report_id}"
    manifest = taxii.get(url.replace("/objects/", "/manifest/"), headers=h(token),
                         params={"match[id]": stix_id, "match[version]": "all"}).json()  # fmt: skip
    added = [r["date_added"] for r in manifest["objects"]]
    assert len(added) == 3
    whole = taxii.get(f"{url}{stix_id}/versions/", headers=h(token))
    assert whole.headers["X-TAXII-Date-Added-First"] == added[0]
    assert whole.headers["X-TAXII-Date-Added-Last"] == added[2]
    page = taxii.get(f"{url}{stix_id}/versions/", headers=h(token), params={"limit": 1})
    assert page.json()["more"] is True
    assert page.headers["X-TAXII-Date-Added-First"] == page.headers[
        "X-TAXII-Date-Added-Last"] == added[0]  # fmt: skip
    rest = taxii.get(f"{url}{stix_id}/versions/", headers=h(token),
                     params={"next": page.json()["next"]})  # fmt: skip
    assert rest.headers["X-TAXII-Date-Added-First"] == added[1]
    assert rest.headers["X-TAXII-Date-Added-Last"] == added[2]


def _set(path: tuple[Any, ...], value: Any) -> Any:
    def change(objects: list[dict[str, Any]]) -> None:
        holder: Any = objects
        for step in path[:-1]:
            holder = holder[step] if step != "LABEL" else holder[next(iter(holder))]
        holder[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ((0, "extensions"), [1], "extensions"),
        ((0, "extensions"), "x", "extensions"),
        ((0, "object_marking_refs"), 5, "object_marking_refs"),
        ((0, "object_marking_refs"), [[1]], "object_marking_refs"),
        ((0, "object_marking_refs"), [{}], "object_marking_refs"),
        ((0, "granular_markings"), 5, "granular_markings"),
        ((2, "extensions"), 5, "extensions"),
        ((2, "extensions", "LABEL", "releasable_to"), [1], "releasable_to"),
        ((2, "extensions", "LABEL", "caveats"), [None], "caveats"),
        ((0, "published"), "9999-12-31T23:59:59-05:00", "published"),
        ((0, "labels"), 5, "labels"),
        ((0, "name"), ["a"], "name"),
        ((0, "description"), {"x": 1}, "description"),
    ],
)
def test_malformed_stix_is_422_naming_object_and_field_and_stores_nothing(
    taxii: TestClient, coalition: Coalition, node: Node, path: tuple[Any, ...], value: Any,
    field: str,
) -> None:  # fmt: skip
    token = coalition.user("USA")
    posted = envelope(stix_report(label()))
    _set(path, value)(posted["objects"])
    named = posted["objects"][path[0]]["id"]
    response = taxii.post(objects_url(taxii, token, "ingest"), json=posted,
                          headers=h(token, **{"Content-Type": TAXII}))  # fmt: skip
    assert response.status_code == 422, response.text
    description = response.json()["description"]
    assert named in description and field in description, description
    assert report_count(node) == 0


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=3),
    max_leaves=8,
)  # fmt: skip


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_posting_any_mutated_envelope_never_answers_5xx(
    taxii: TestClient, coalition: Coalition, node: Node, data: st.DataObject
) -> None:
    """Any JSON in any field of a valid envelope: 202 with the reports stored, or a 4xx with
    nothing stored; never a 5xx."""
    token = coalition.user("USA", roles=("collector",))
    posted = envelope(stix_report(label()))
    report, marking = posted["objects"][0], posted["objects"][2]
    label_extension = next(iter(marking["extensions"].values()))
    # the report and the label are where most is read: drawn more often
    holders: list[dict[str, Any]] = [*posted["objects"], report, report, label_extension]
    read = ["extensions", "object_marking_refs", "granular_markings", "labels", "name",
            "description", "published", "lang", "confidence", "created_by_ref", "object_refs",
            "releasable_to", "caveats", "classification", "originator"]  # fmt: skip
    for _ in range(data.draw(st.integers(min_value=1, max_value=2), label="changes")):
        holder = data.draw(st.sampled_from(holders), label="holder")
        field = data.draw(st.sampled_from(read) | st.sampled_from(sorted(holder)), label="field")
        holder[field] = data.draw(JSON_VALUES, label="value")
    before = report_count(node)
    response = taxii.post(objects_url(taxii, token, "ingest"), json=posted,
                          headers=h(token, **{"Content-Type": TAXII}))  # fmt: skip
    assert response.status_code < 500, response.text
    if response.status_code != 202:
        assert report_count(node) == before, response.text


def test_the_same_foreign_object_posted_by_two_members(
    taxii: TestClient, coalition: Coalition
) -> None:
    """Review item 3: a second member posting the same MISP object must not learn that a
    report it may not see holds that id; each member gets a report of its own."""

    sample = json.loads((Path(__file__).parent / "stix_samples/misp_event_report.json")
                        .read_text())  # fmt: skip
    stix_id = next(o["id"] for o in sample["objects"] if o["type"] == "report")
    posted = {"objects": sample["objects"]}
    usa, kor = coalition.user("USA"), coalition.user("KOR")
    headers = {"Content-Type": TAXII}
    first = taxii.post(objects_url(taxii, usa, "ingest"), json=posted, headers=h(usa, **headers))
    second = taxii.post(objects_url(taxii, kor, "ingest"), json=posted, headers=h(kor, **headers))
    assert first.status_code == second.status_code == 202, (first.text, second.text)
    for token, member, status in ((usa, "USA", first), (kor, "KOR", second)):
        report_id = foreign_report_id(member, stix_id)
        mine = taxii.get(f"/api/v1/reports/{report_id}", headers=auth(token))
        assert mine.status_code == 200, mine.text
        (entry,) = [s for s in status.json()["successes"] if s["id"] == stix_id]
        assert report_id in entry["message"]
        other = "KOR" if member == "USA" else "USA"
        hidden = taxii.get(f"/api/v1/reports/{foreign_report_id(other, stix_id)}",
                           headers=auth(token))  # fmt: skip
        assert hidden.status_code == 404
    again = taxii.post(objects_url(taxii, usa, "ingest"), json=posted, headers=h(usa, **headers))
    assert again.status_code == 409, again.text
    assert foreign_report_id("USA", stix_id) in again.json()["description"]
