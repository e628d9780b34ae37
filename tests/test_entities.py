"""Exploitation after collection: the worker, stored extractions, and entity pages that
show each user only what the reports that user may see say."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bices.api import create_app
from bices.domain.corroboration import Reported, corroborate
from bices.pipeline.exploit import CONSUMER, Exploiter, Pacer
from bices.store.base import Exploited
from tests.conftest import Coalition, auth, make_node, report_json

NATO_KOR = {"classification": "NATO SECRET", "releasable_to": ["NATO", "KOR"], "caveats": []}
USA_ONLY = {"classification": "NATO SECRET", "releasable_to": ["USA"], "caveats": []}


def idle(client: TestClient) -> None:
    worker = client.app.state.exploit_worker  # type: ignore[attr-defined]
    assert worker.wait_idle(60), "the exploitation worker did not catch up"


def post(client: TestClient, token: str, title: str, body: str, label: dict[str, Any]) -> str:
    draft = report_json(title=title, body=body, label=label, language="en")
    answer = client.post("/api/v1/reports", json=draft, headers=auth(token))
    assert answer.status_code == 201, answer.text
    report_id: str = answer.json()["id"]
    return report_id


def find(client: TestClient, token: str, **params: Any) -> dict[str, dict[str, Any]]:
    answer = client.get("/api/v1/entities", params=params, headers=auth(token))
    assert answer.status_code == 200, answer.text
    return {e["canonical"]: e for e in answer.json()["items"]}


def test_the_worker_exploits_each_report_and_serves_its_entities(
    client: TestClient, coalition: Coalition
) -> None:
    usa = coalition.user("USA")
    rid = post(client, usa, "Talks in Brussels",
               "NATO Secretary General Jens Stoltenberg met officials of South Korea in "
               "Brussels to discuss missile launches by North Korea.", NATO_KOR)  # fmt: skip
    idle(client)
    answer = client.get(f"/api/v1/reports/{rid}/entities", headers=auth(usa)).json()
    assert answer["status"] == "done" and answer["version"] == 1
    found = {(e["canonical"], e["type"]) for e in answer["entities"]}
    assert {("NATO", "ORG"), ("North Korea", "GPE"), ("South Korea", "GPE")} <= found
    ids = {e["entity_id"] for e in answer["entities"]}
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)  # digests of the keys
    assert answer["language"] == "en"
    brussels = next(e for e in answer["entities"] if e["canonical"] == "Brussels")
    assert abs(brussels["lat"] - 50.85) < 0.1 and abs(brussels["lon"] - 4.35) < 0.1


def test_entity_pages_count_and_name_only_what_the_user_may_see(
    client: TestClient, coalition: Coalition
) -> None:
    usa, kor = coalition.user("USA"), coalition.user("KOR")
    shared = post(client, usa, "Launch", "North Korea fired a missile into the sea.", NATO_KOR)
    hidden = post(client, usa, "Launch", "The DPRK fired another missile.", USA_ONLY)
    idle(client)
    by_usa, by_kor = find(client, usa, q="korea"), find(client, kor, q="korea")
    assert by_usa["North Korea"]["reports"] == 2
    assert by_kor["North Korea"]["reports"] == 1
    entity_id = by_kor["North Korea"]["id"]
    usa_page = client.get(f"/api/v1/entities/{entity_id}", headers=auth(usa)).json()
    kor_page = client.get(f"/api/v1/entities/{entity_id}", headers=auth(kor)).json()
    assert {r["id"] for r in usa_page["reports"]} == {shared, hidden}
    assert [r["id"] for r in kor_page["reports"]] == [shared]
    assert "DPRK" in usa_page["aliases"]
    assert "DPRK" not in kor_page["aliases"]  # the alias is only in the hidden report
    assert find(client, kor, q="DPRK") == {}  # nor can it be found by that alias
    assert "DPRK" not in client.get(f"/api/v1/reports/{shared}/entities", headers=auth(kor)).text
    assert client.get(f"/api/v1/reports/{hidden}/entities", headers=auth(kor)).status_code == 404


def test_an_entity_only_hidden_reports_mention_answers_404_like_a_missing_one(
    client: TestClient, coalition: Coalition
) -> None:
    usa, kor = coalition.user("USA"), coalition.user("KOR")
    post(client, usa, "Visit", "The Prime Minister of Estonia visited Tallinn harbour.", USA_ONLY)
    idle(client)
    entity_id = find(client, usa, q="Estonia")["Estonia"]["id"]
    hidden = client.get(f"/api/v1/entities/{entity_id}", headers=auth(kor))
    missing = client.get("/api/v1/entities/0123456789abcdef", headers=auth(kor))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace(entity_id, "N") == missing.json()["detail"].replace(
        "0123456789abcdef", "N"
    )
    assert client.get("/api/v1/entities/17", headers=auth(kor)).status_code == 422


def test_a_new_version_replaces_the_old_versions_mentions(
    client: TestClient, coalition: Coalition
) -> None:
    usa = coalition.user("USA")
    rid = post(client, usa, "Exercise", "Japan joined the drill.", NATO_KOR)
    idle(client)
    assert find(client, usa, q="Japan")["Japan"]["reports"] == 1
    update = report_json(title="Exercise", body="Australia joined the drill.", label=NATO_KOR)
    assert client.put(f"/api/v1/reports/{rid}", json=update, headers=auth(usa)).status_code == 200
    idle(client)
    assert "Japan" not in find(client, usa, q="Japan")
    assert find(client, usa, q="Australia")["Australia"]["reports"] == 1


def test_results_are_pending_until_exploited(tmp_path: Path, backend: str) -> None:
    node = make_node(tmp_path / "node", backend, exploit=False)
    try:
        with TestClient(create_app(node)) as client:
            usa = Coalition(node).user("USA")
            rid = post(client, usa, "Launch", "North Korea fired a missile.", NATO_KOR)
            answer = client.get(f"/api/v1/reports/{rid}/entities", headers=auth(usa)).json()
            assert answer == {"id": rid, "version": 1, "status": "pending"}
            assert Exploiter(node.store).drain() == 1
            answer = client.get(f"/api/v1/reports/{rid}/entities", headers=auth(usa)).json()
            assert answer["status"] == "done"
    finally:
        node.close()


def test_two_workers_exploit_each_version_once(tmp_path: Path, backend: str) -> None:
    node = make_node(tmp_path / "node", backend, exploit=False)
    calls: list[str] = []

    def counting(text: str, title: str, language: str | None, published: object) -> dict[str, Any]:
        calls.append(text)
        return {"language": "en", "entities": [], "events": [], "topics": [], "quantities": []}

    try:
        with TestClient(create_app(node)) as client:
            usa = Coalition(node).user("USA")
            for i in range(5):
                post(client, usa, f"Report {i}", f"text {i}", NATO_KOR)
        first, second = Exploiter(node.store, counting, batch=2), Exploiter(node.store, counting)
        after, versions = node.store.exploits.pending(CONSUMER, 2)
        results = [Exploited(v.seq, {"entities": []}, None) for v in versions]
        assert first.run_once() == 2  # moves the cursor past what `second` has not yet saved
        assert not node.store.exploits.save(CONSUMER, after, versions[-1].seq, results)
        assert second.drain() == 3
        assert node.store.exploits.lag(CONSUMER) == 0
        assert sorted(calls) == [f"text {i}" for i in range(5)]
    finally:
        node.close()


def test_a_failing_extraction_is_recorded_and_the_worker_goes_on(
    tmp_path: Path, backend: str
) -> None:
    node = make_node(tmp_path / "node", backend, exploit=False)

    def flaky(text: str, title: str, language: str | None, published: object) -> dict[str, Any]:
        if "poison" in text:
            raise ValueError("cannot read this")
        return {"language": "en", "entities": [], "events": [], "topics": [], "quantities": []}

    try:
        with TestClient(create_app(node)) as client:
            usa = Coalition(node).user("USA")
            bad = post(client, usa, "Bad", "poison", NATO_KOR)
            good = post(client, usa, "Good", "fine", NATO_KOR)
            assert Exploiter(node.store, flaky).drain() == 2
            failed = client.get(f"/api/v1/reports/{bad}/entities", headers=auth(usa)).json()
            assert failed["status"] == "failed" and "cannot read this" in failed["error"]
            done = client.get(f"/api/v1/reports/{good}/entities", headers=auth(usa)).json()
            assert done["status"] == "done"
    finally:
        node.close()


def test_duplicates_near_duplicates_and_related_reports_under_the_rule(
    client: TestClient, coalition: Coalition
) -> None:
    usa, kor = coalition.user("USA"), coalition.user("KOR")
    story = (
        "North Korea fired two short-range ballistic missiles into the East Sea on Monday "
        "morning, the Joint Chiefs of Staff in Seoul said. The launches came a day after "
        "South Korea and the United States ended a combined air exercise near the border."
    )
    first = post(client, usa, "Launch", story, NATO_KOR)
    copy = post(client, usa, "Launch", story, NATO_KOR)
    near = post(client, usa, "Launch", story.replace("Monday", "Tuesday"), NATO_KOR)
    hidden = post(client, usa, "Launch", story, USA_ONLY)
    other = post(client, usa, "Budget", "Parliament in Canberra debated the budget.", NATO_KOR)
    idle(client)

    def related(token: str) -> dict[str, tuple[str, float]]:
        answer = client.get(f"/api/v1/reports/{first}/related", headers=auth(token))
        assert answer.status_code == 200, answer.text
        return {item["id"]: (item["kind"], item["score"]) for item in answer.json()["items"]}

    by_usa, by_kor = related(usa), related(kor)
    assert by_usa[copy] == ("duplicate", 1.0) and by_usa[hidden][0] == "duplicate"
    assert by_usa[near][0] == "near-duplicate" and 0.8 <= by_usa[near][1] < 1.0
    assert other not in by_usa
    assert hidden not in by_kor and set(by_kor) == {copy, near}
    assert client.get(f"/api/v1/reports/{hidden}/related", headers=auth(kor)).status_code == 404


def test_reports_sharing_entities_within_days_are_related(
    client: TestClient, coalition: Coalition
) -> None:
    usa = coalition.user("USA")
    a = post(client, usa, "Talks", "Officials of Japan and Australia met in Tokyo.", NATO_KOR)
    b = post(client, usa, "Drill", "Japan and Australia held a naval drill together.", NATO_KOR)
    c = post(client, usa, "Visit", "Japan hosted a trade fair.", NATO_KOR)
    idle(client)
    items = client.get(f"/api/v1/reports/{b}/related", headers=auth(usa)).json()["items"]
    kinds = {item["id"]: item["kind"] for item in items}
    assert kinds.get(a) == "related"
    assert c not in kinds  # one entity in common is not enough


# -- the rule, over random labels ------------------------------------------------------------

MENTIONS = [  # (text, canonical): several names for the same entities
    ("North Korea fired a missile.", "North Korea"),
    ("The DPRK fired a missile.", "North Korea"),
    ("NATO ministers met.", "NATO"),
    ("South Korea joined the drill.", "South Korea"),
]
RELEASABLE = [["USA"], ["NATO"], ["NATO", "KOR"], ["KOR"], ["JPN", "KOR"], ["IP4"]]
VIEWERS = ["USA", "EST", "KOR", "JPN"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    posts=st.lists(
        st.tuples(st.sampled_from(range(len(MENTIONS))), st.sampled_from(RELEASABLE)),
        min_size=1,
        max_size=6,
    )
)
def test_entity_counts_aliases_and_pages_follow_the_rule(
    tmp_path_factory: pytest.TempPathFactory, posts: list[tuple[int, list[str]]], backend: str
) -> None:
    node = make_node(tmp_path_factory.mktemp("entities"), backend, exploit=False)
    try:
        with TestClient(create_app(node)) as client:
            writer = Coalition(node).user("USA", clearance="COSMIC TOP SECRET")
            posted = []
            for index, releasable in posts:
                text, canonical = MENTIONS[index]
                label = {"classification": "NATO SECRET", "releasable_to": ["USA", *releasable]}
                posted.append((post(client, writer, "Report", text, label), index, releasable))
            Exploiter(node.store).drain()
            communities = {"NATO": {"USA", "EST"}, "IP4": {"KOR", "JPN"}}
            for member in VIEWERS:
                token = Coalition(node).user(member)

                def sees(releasable: list[str], member: str = member) -> bool:
                    entries = {"USA", *releasable}
                    return member in entries or any(
                        member in communities.get(entry, set()) for entry in entries
                    )

                visible = [(rid, i) for rid, i, rel in posted if sees(rel)]
                found = find(client, token)
                expected_counts: dict[str, int] = {}
                for _, i in visible:
                    canonical = MENTIONS[i][1]
                    expected_counts[canonical] = expected_counts.get(canonical, 0) + 1
                assert {name: e["reports"] for name, e in found.items()} == expected_counts
                all_ids = {e["canonical"]: e["id"] for e in find(client, writer).values()}
                for canonical, entity_id in all_ids.items():
                    page = client.get(f"/api/v1/entities/{entity_id}", headers=auth(token))
                    if canonical not in expected_counts:
                        assert page.status_code == 404
                        continue
                    shown = {r["id"] for r in page.json()["reports"]}
                    assert shown == {rid for rid, i in visible if MENTIONS[i][1] == canonical}
                    said = " ".join(MENTIONS[i][0] for _, i in visible)
                    assert all(alias in said for alias in page.json()["aliases"])
    finally:
        node.close()


def test_the_same_event_from_independent_sources_is_merged_and_counted() -> None:
    def said(report: str, member: str, source: str, who: set[str]) -> Reported:
        return Reported(report, member, source, "missile_launch", "2023-07-12", "East Sea",
                        frozenset(who))  # fmt: skip

    clusters = corroborate([
        said("r1", "USA", "Coastal radar", {"North Korea"}),
        said("r2", "KOR", "JCS statement", {"North Korea", "South Korea"}),
        said("r3", "KOR", "JCS statement", {"North Korea"}),  # the same source again
        said("r4", "JPN", "MoD Japan", {"Russia"}),  # no participant in common
        Reported("r5", "GBR", "Wire", "meeting", "2023-07-12", None, frozenset({"NATO"})),
    ])  # fmt: skip
    first = clusters[0].to_json()
    assert first["reports"] == ["r1", "r2", "r3"]
    assert first["sources"] == 2
    assert first["participants"] == ["North Korea", "South Korea"]
    assert [c.to_json()["reports"] for c in clusters[1:]] == [["r4"], ["r5"]]


def test_events_endpoint_merges_visible_reports_only(
    client: TestClient, coalition: Coalition
) -> None:
    usa, gbr, kor = coalition.user("USA"), coalition.user("GBR"), coalition.user("KOR")
    text = "North Korea launched a ballistic missile into the East Sea on 12 July 2023."
    for token, source, label in ((usa, "Coastal radar", NATO_KOR), (gbr, "Wire", NATO_KOR),
                                 (usa, "Satellite", USA_ONLY)):  # fmt: skip
        graded = {"name": source, "reliability": "B", "credibility": 2}
        draft = report_json(title="Launch", body=text, label=label, language="en", source=graded)
        assert client.post("/api/v1/reports", json=draft, headers=auth(token)).status_code == 201
    idle(client)

    def launches(token: str) -> list[dict[str, Any]]:
        answer = client.get("/api/v1/events", params={"type": "missile_launch"},
                            headers=auth(token))  # fmt: skip
        assert answer.status_code == 200, answer.text
        items: list[dict[str, Any]] = answer.json()["items"]
        return items

    by_usa, by_kor = launches(usa), launches(kor)
    assert by_usa[0]["date"] == "2023-07-12" and "North Korea" in by_usa[0]["participants"]
    assert (len(by_usa[0]["reports"]), by_usa[0]["sources"]) == (3, 3)
    assert (len(by_kor[0]["reports"]), by_kor[0]["sources"]) == (2, 2)
    naive = client.get("/api/v1/events", params={"since": "2023-07-01T00:00:00"},
                       headers=auth(kor))  # fmt: skip
    assert naive.status_code == 422 and "time zone" in naive.text


def test_a_watched_entity_raises_alerts_only_about_reports_the_user_may_see(
    client: TestClient, coalition: Coalition
) -> None:
    usa, kor = coalition.user("USA"), coalition.user("KOR")
    watched = client.post("/api/v1/watchlist", json={"name": "north korea"}, headers=auth(kor))
    assert watched.status_code == 201, watched.text
    assert (
        client.post("/api/v1/watchlist", json={"name": " "}, headers=auth(kor)).status_code == 422
    )
    seen = post(client, usa, "Launch", "Korea Utara meluncurkan rudal balistik.", NATO_KOR)
    post(client, usa, "Launch", "The DPRK fired a cruise missile.", USA_ONLY)
    post(client, usa, "Budget", "Japan approved its defence budget.", NATO_KOR)
    idle(client)
    alerts = client.get("/api/v1/alerts", headers=auth(kor)).json()["items"]
    assert [(a["report"], a["watch"]) for a in alerts] == [(seen, "north korea")]
    assert client.get("/api/v1/alerts", headers=auth(usa)).json()["items"] == []  # not watching
    # Numbered per user, and only for reports the user may see: no gap for the hidden one.
    assert [a["id"] for a in alerts] == [1]

    listed = client.get("/api/v1/watchlist", headers=auth(kor)).json()["items"]
    watch_id = listed[0]["id"]
    assert client.delete(f"/api/v1/watchlist/{watch_id}", headers=auth(usa)).status_code == 404
    assert client.delete(f"/api/v1/watchlist/{watch_id}", headers=auth(kor)).status_code == 204
    assert client.get("/api/v1/alerts", headers=auth(kor)).json()["items"] == []
    actions = [e.action for e in client.app.state.node.store.audit.all_events()]  # type: ignore[attr-defined]
    assert "watch.add" in actions and "watch.remove" in actions


def test_a_result_the_store_refuses_does_not_hold_back_the_others(
    tmp_path: Path, backend: str
) -> None:
    node = make_node(tmp_path / "node", backend, exploit=False)

    def sloppy(text: str, title: str, language: str | None, published: object) -> dict[str, Any]:
        entity = {"text": "X", "type": "GPE", "canonical": "X", "start": 0, "end": 1}
        if "broken" in text:
            del entity["canonical"]  # the store cannot key this entity
        return {"language": "en", "entities": [entity], "events": [], "topics": [],
                "quantities": []}  # fmt: skip

    try:
        with TestClient(create_app(node)) as client:
            usa = Coalition(node).user("USA")
            ids = [post(client, usa, "R", body, NATO_KOR) for body in ("fine", "broken", "ok")]
            assert Exploiter(node.store, sloppy).drain() == 3
            status = [
                client.get(f"/api/v1/reports/{rid}/entities", headers=auth(usa)).json()["status"]
                for rid in ids
            ]
            assert status == ["done", "failed", "done"]
            assert node.store.exploits.lag(CONSUMER) == 0
    finally:
        node.close()


def test_the_pacer_defers_exploitation_while_collection_is_busy_but_not_for_ever() -> None:
    stored, now = [0], [0.0]
    pacer = Pacer(lambda: stored[0], busy_rate=100, max_defer_s=10, clock=lambda: now[0])
    now[0], stored[0] = 1.0, 50  # 50 reports a second: quiet enough
    assert not pacer.defer()
    deferred = []
    for _ in range(30):  # then 500 a second, for 15 s
        now[0] += 0.5
        stored[0] += 250
        deferred.append(pacer.defer())
    assert deferred[:19] == [True] * 19  # waits while busy...
    assert False in deferred[19:]  # ...but works again within 10 s
    now[0] += 0.5  # collection stops
    assert not pacer.defer()
