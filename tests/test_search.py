"""Search specifics of the SQLite store: label tokens inside FTS5 and the fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bices.api import create_app
from bices.store import sqlite_listing
from bices.store.query import parse, to_fts5
from tests.conftest import Coalition, auth, make_node, report_json

LABELS = [
    {"classification": "NATO SECRET", "releasable_to": ["NATO", "KOR"]},
    {"classification": "NATO RESTRICTED", "releasable_to": ["USA"]},
    {"classification": "PUBLIC", "releasable_to": ["NATO", "IP4"]},
    {"classification": "NATO CONFIDENTIAL", "releasable_to": ["USA", "JPN"]},
]


def seed(client: TestClient, token: str) -> None:
    reports = [
        report_json(title=f"Convoy sighting {i}", body=f"convoy near Sinpo, item {i}", label=label)
        for i, label in enumerate(LABELS * 3)
    ]
    answer = client.post("/api/v1/reports/batch", json={"reports": reports}, headers=auth(token))
    assert answer.status_code == 201, answer.text


def search(client: TestClient, token: str, q: str) -> dict[str, Any]:
    answer = client.get("/api/v1/search", params={"q": q, "limit": 50}, headers=auth(token))
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_words_never_match_the_label_tokens(client: TestClient, coalition: Coalition) -> None:
    writer = coalition.user("USA", clearance="COSMIC TOP SECRET")
    seed(client, writer)
    for q in ("l1", "l2", "l3", "l4", "l*"):
        assert search(client, writer, q)["total"] == 0, q
    assert search(client, writer, "convoy")["total"] == 12


@pytest.mark.parametrize("viewer", ["USA", "KOR", "JPN", "EST"])
def test_the_fallback_without_label_tokens_gives_the_same_answer(
    client: TestClient, coalition: Coalition, monkeypatch: pytest.MonkeyPatch, viewer: str
) -> None:
    """Past MAX_LABEL_TOKENS visible labels the label filter is left to the SQL condition."""
    seed(client, coalition.user("USA", clearance="COSMIC TOP SECRET"))
    reader = coalition.user(viewer, clearance="NATO SECRET")
    monkeypatch.setattr(sqlite_listing, "WORDS_ONLY_MAX", 0)  # the label-token plan
    with_tokens = search(client, reader, "convoy Sinpo")
    monkeypatch.setattr(sqlite_listing, "MAX_LABEL_TOKENS", 0)
    without = search(client, reader, "convoy Sinpo")
    assert with_tokens["total"] == without["total"]
    assert with_tokens["facets"] == without["facets"]
    assert {r["id"] for r in with_tokens["items"]} == {r["id"] for r in without["items"]}
    expected = {"USA": 12, "KOR": 6, "JPN": 6, "EST": 6}[viewer]
    assert with_tokens["total"] == expected


@pytest.mark.parametrize("words_only_max", [0, 2000])
def test_past_the_rank_limit_the_answer_says_it_is_partial_and_stays_visible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, words_only_max: int, backend: str
) -> None:
    """More visible matches than BICES_SEARCH_RANK_LIMIT: newest first, lower-bound total,
    facets of the matches examined, and still nothing the rule hides."""
    monkeypatch.setattr(sqlite_listing, "WORDS_ONLY_MAX", words_only_max)
    node = make_node(tmp_path / "node", backend, search_rank_limit=4)
    try:
        with TestClient(create_app(node)) as client:
            seed(client, Coalition(node).user("USA", clearance="COSMIC TOP SECRET"))
            kor = Coalition(node).user("KOR", clearance="NATO SECRET")
            everything = client.get("/api/v1/reports?limit=50", headers=auth(kor)).json()
            visible = [r["id"] for r in everything["items"]]  # newest first
            assert len(visible) == 6
            partial = search(client, kor, "convoy")
            assert partial["total_exact"] is False
            assert partial["ranked_by"] == "newest"
            assert partial["total"] == 4
            assert [r["id"] for r in partial["items"]] == visible[:4]
            assert sum(partial["facets"]["type"].values()) == 4
            assert partial["next_cursor"] is None
            usa = Coalition(node).user("USA", clearance="NATO SECRET")
            assert search(client, usa, "convoy")["total_exact"] is False
            exact = search(client, kor, "convoy Sinpo item 0")
            assert exact["total_exact"] is True and exact["ranked_by"] == "relevance"
    finally:
        node.close()


@pytest.mark.parametrize("words_only_max", [0, 2000])
def test_a_filter_that_brings_the_matches_under_the_rank_limit_gives_an_exact_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, words_only_max: int, backend: str
) -> None:
    """The probe counts before filters; the answer must still be exact when they cut enough."""
    monkeypatch.setattr(sqlite_listing, "WORDS_ONLY_MAX", words_only_max)
    node = make_node(tmp_path / "node", backend, search_rank_limit=4)
    try:
        with TestClient(create_app(node)) as client:
            writer = Coalition(node).user("USA", clearance="COSMIC TOP SECRET")
            seed(client, writer)
            spot = report_json(type="SPOTREP", title="Convoy spotted", body="convoy at dawn")
            client.post("/api/v1/reports", json=spot, headers=auth(writer))
            answer = client.get(
                "/api/v1/search", params={"q": "convoy", "type": "SPOTREP"}, headers=auth(writer)
            ).json()
            assert answer["total_exact"] is True
            assert answer["total"] == 1
            assert answer["items"][0]["title"] == "Convoy spotted"
    finally:
        node.close()


@pytest.mark.parametrize("viewer", ["USA", "KOR", "EST"])
def test_both_search_plans_give_the_same_ranked_answer(
    client: TestClient, coalition: Coalition, monkeypatch: pytest.MonkeyPatch, viewer: str
) -> None:
    """Ranking on the words alone (few matches) or with label tokens (many): same answer."""
    writer = coalition.user("USA", clearance="COSMIC TOP SECRET")
    seed(client, writer)
    extra = [
        report_json(title="Sinpo Sinpo convoy", body="convoy convoy convoy at Sinpo", label=label)
        for label in LABELS
    ]
    client.post("/api/v1/reports/batch", json={"reports": extra}, headers=auth(writer))
    reader = coalition.user(viewer, clearance="NATO SECRET")
    answers = []
    for words_only_max in (0, 2000):
        monkeypatch.setattr(sqlite_listing, "WORDS_ONLY_MAX", words_only_max)
        answers.append(search(client, reader, "convoy Sinpo"))
    by_tokens, by_words = answers
    assert by_tokens["total"] == by_words["total"] > 0
    assert by_tokens["facets"] == by_words["facets"]
    assert [r["id"] for r in by_tokens["items"]] == [r["id"] for r in by_words["items"]]
    assert by_words["items"][0]["title"] == "Sinpo Sinpo convoy"


def test_the_loose_form_matches_at_least_what_the_query_matches() -> None:
    """The plan is chosen on a cheaper expression; it must never count fewer matches."""
    query = parse('"ballistic missile" OR icbm* -test')
    assert to_fts5(query, "{title body}", loose=True) == (
        '({title body} : ("ballistic" AND "missile") OR {title body} : "icbm"*)'
    )
    assert to_fts5(query) == '("ballistic missile" OR "icbm"*) NOT "test"'


@pytest.mark.parametrize("q", ['"convoy near"', '"near convoy"', "convoy -Sinpo", '"item 1"*'])
def test_phrases_and_exclusions_answer_alike_on_both_plans(
    client: TestClient, coalition: Coalition, monkeypatch: pytest.MonkeyPatch, q: str
) -> None:
    seed(client, coalition.user("USA", clearance="COSMIC TOP SECRET"))
    reader = coalition.user("KOR", clearance="NATO SECRET")
    answers = []
    for words_only_max in (0, 2000):
        monkeypatch.setattr(sqlite_listing, "WORDS_ONLY_MAX", words_only_max)
        answers.append(search(client, reader, q))
    assert answers[0]["total"] == answers[1]["total"]
    assert [r["id"] for r in answers[0]["items"]] == [r["id"] for r in answers[1]["items"]]
    expected = {'"convoy near"': 6, '"near convoy"': 0, "convoy -Sinpo": 0, '"item 1"*': 1}[
        q
    ]  # items 1, 10, 11; KOR sees 10
    assert answers[0]["total"] == expected
