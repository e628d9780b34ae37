"""What only the PostgreSQL report store has to prove: its text search configuration (accents
and case ignored, as SQLite's tokenizer does), that no input reaches tsquery syntax, that a
body past tsvector's 1 MB limit is still stored and searchable, and that its schema may be
applied again."""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bices.api import create_app
from bices.domain.reports import ReportDraft
from bices.node import Node
from bices.store import pg_reports, pg_search
from bices.store.base import ReportFilter
from bices.store.pg import PostgresStore
from bices.store.query import parse
from tests.conftest import Coalition, auth, make_node, report_json


@pytest.fixture
def pg_node(tmp_path: Path) -> Iterator[Node]:
    node = make_node(tmp_path / "node", "postgres")
    yield node
    node.close()


@pytest.fixture
def pg_client(pg_node: Node) -> Iterator[TestClient]:
    with TestClient(create_app(pg_node)) as client:
        yield client


def pg_store(node: Node) -> PostgresStore:
    assert isinstance(node.store, PostgresStore)
    return node.store


def create(client: TestClient, token: str, **overrides: Any) -> str:
    answer = client.post("/api/v1/reports", json=report_json(**overrides), headers=auth(token))
    assert answer.status_code == 201, answer.text
    report_id: str = answer.json()["id"]
    return report_id


def found(client: TestClient, token: str, q: str) -> set[str]:
    answer = client.get("/api/v1/search", params={"q": q}, headers=auth(token))
    assert answer.status_code == 200, (q, answer.text)
    return {item["id"] for item in answer.json()["items"]}


def test_accents_and_case_are_ignored_both_ways(pg_client: TestClient, pg_node: Node) -> None:
    usa = Coalition(pg_node).user("USA")
    sinpo = create(pg_client, usa, title="Kapal di SINPÓ", body="Kapal selam berlabuh.")
    cafe = create(pg_client, usa, title="Meeting", body="They met at the cafe in Ščedrin Street.")
    assert found(pg_client, usa, "sinpo") == {sinpo}
    assert found(pg_client, usa, "Sinpó") == {sinpo}
    assert found(pg_client, usa, "CAFÉ") == {cafe}
    assert found(pg_client, usa, "scedrin") == {cafe}
    assert found(pg_client, usa, '"SCEDRIN street"') == {cafe}


HOSTILE = [
    "x & y", "x | y", "!launch", "launch:*", "launch:A", "a <-> b", "a <2> b", "'quoted'",
    "it's", "O'Brien*", "\\'", "\\", "(x", "x)", "'", "''", "a:*:*", "!!x", "-!x", "x & !",
    '"a & b"*', "launch OR", "OR launch", "-launch", "_", "_*", "x -_", "%s", "%(x)s", "$1",
]  # fmt: skip


@pytest.mark.parametrize("q", HOSTILE)
def test_tsquery_operators_in_the_input_are_never_read_as_syntax(
    pg_client: TestClient, pg_node: Node, q: str
) -> None:
    usa = Coalition(pg_node).user("USA")
    create(pg_client, usa, title="launch", body="O'Brien saw the launch of x and y.")
    answer = pg_client.get("/api/v1/search", params={"q": q}, headers=auth(usa))
    assert answer.status_code in (200, 422), (q, answer.text)
    if answer.status_code == 422:
        return
    with pg_store(pg_node).db.read() as conn:
        rendered = pg_search.render(conn, parse(q))
        if rendered is not None:  # PostgreSQL's own quoting, joined by operators only
            assert conn.execute("SELECT %s::tsquery", (rendered,)).fetchone() is not None


def test_a_prefix_applies_to_the_last_word_of_a_phrase(
    pg_client: TestClient, pg_node: Node
) -> None:
    usa = Coalition(pg_node).user("USA")
    ten = create(pg_client, usa, title="Convoy", body="convoy near Sinpo, item 10")
    create(pg_client, usa, title="Convoy", body="convoy near Sinpo, item 2")
    assert found(pg_client, usa, '"item 1"*') == {ten}
    assert found(pg_client, usa, '"near Sin"*') == found(pg_client, usa, "convoy")


def test_a_body_past_the_tsvector_limit_is_stored_and_its_start_searchable(
    pg_client: TestClient, pg_node: Node
) -> None:
    """A million characters of distinct words make a tsvector over PostgreSQL's 1 MB:
    the report is stored whole and indexed as far as fits."""
    rnd = random.Random(5)
    words = ["".join(rnd.choices(string.ascii_lowercase, k=8)) for _ in range(110_000)]
    body = ("zeroth " + " ".join(words))[:999_999]
    usa = Coalition(pg_node).user("USA")
    report_id = create(pg_client, usa, title="Long transcript", body=body)
    assert found(pg_client, usa, "zeroth") == {report_id}
    assert found(pg_client, usa, "transcript") == {report_id}
    stored = pg_client.get(f"/api/v1/reports/{report_id}", headers=auth(usa)).json()
    assert stored["body"] == body


def test_the_schema_applies_again_without_error(pg_node: Node) -> None:
    """Migration 1 runs `SCHEMA` once; its DDL must still be idempotent (a part may be
    re-applied by a later migration, or on a database where another node made it)."""
    store = pg_store(pg_node)
    with store.db.write() as conn:
        conn.execute(pg_reports.SCHEMA)
        configs = conn.execute(
            "SELECT count(*) FROM pg_ts_config WHERE cfgname = 'bices' "
            "AND cfgnamespace = current_schema()::regnamespace"
        ).fetchone()
    assert configs is not None and configs[0] == 1


LABELS = [
    {"classification": "NATO SECRET", "releasable_to": ["NATO", "KOR"]},
    {"classification": "NATO RESTRICTED", "releasable_to": ["USA"]},
    {"classification": "PUBLIC", "releasable_to": ["NATO", "IP4"]},
    {"classification": "NATO CONFIDENTIAL", "releasable_to": ["USA", "JPN"]},
]


@pytest.mark.parametrize("viewer", ["USA", "KOR", "EST"])
def test_asking_the_index_for_the_visible_labels_gives_the_same_answer(
    pg_client: TestClient, pg_node: Node, monkeypatch: pytest.MonkeyPatch, viewer: str
) -> None:
    """Documents carry their label as a lexeme; spelled out in the query or not, the
    answer is the same, and no word a user types reaches those lexemes."""
    writer = Coalition(pg_node).user("USA", clearance="COSMIC TOP SECRET")
    for label in LABELS * 3:  # no digits: "1" must match nothing but label lexemes would
        create(pg_client, writer, title="Convoy", body="convoy near Sinpo", label=label)
    reader = Coalition(pg_node).user(viewer, clearance="NATO SECRET")

    def answer(q: str) -> dict[str, Any]:
        response = pg_client.get("/api/v1/search", params={"q": q}, headers=auth(reader))
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    spelled = answer("convoy Sinpo")
    monkeypatch.setattr(pg_search, "MAX_LABEL_LEXEMES", 0)
    unspelled = answer("convoy Sinpo")
    assert spelled["total"] == unspelled["total"] == {"USA": 12, "KOR": 6, "EST": 6}[viewer]
    assert spelled["facets"] == unspelled["facets"]
    assert [r["id"] for r in spelled["items"]] == [r["id"] for r in unspelled["items"]]
    for q in ("#1", "#2", "'#1'", "1", "2"):
        assert answer(q)["total"] == 0, q


def test_a_frequent_word_is_answered_from_the_newest_windows_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the rank limit, the newest matches found through the recency lexemes alone are
    the newest of all matches: the same answer as reading every match."""
    node = make_node(tmp_path / "node", "postgres", search_rank_limit=3)
    try:
        coalition = Coalition(node)
        usa = coalition.user("USA")
        viewer = node.coalition.authenticate(usa)
        writer = node.coalition.viewer_of(viewer.name)
        store = pg_store(node)
        placed: list[str] = []
        for bucket in (1, 3, 4):  # reports in three recency lexemes, with gaps between
            with store.db.write() as conn:  # move the store's seqs on, as other items would
                conn.execute(
                    "INSERT INTO events (seq, kind, report_id, version, label_id, at) "
                    "VALUES (%s, 'rfi', 'padding', 1, 1, '2024-01-01T00:00:00Z')",
                    (bucket << pg_search.RECENCY_BITS,),
                )
            for n in range(3):
                draft = ReportDraft.model_validate(
                    report_json(title=f"Convoy sighting {bucket}-{n}", body="convoy moving")
                )
                placed.append(node.collector.submit(writer, [draft])[0].id)
        with store.db.read() as conn:
            conn.execute("ANALYZE current_reports")
        where = ReportFilter()
        asked: list[str] = []
        hits = pg_search._hits

        def spy(conn: Any, matching: str, *args: Any, **kwargs: Any) -> Any:
            asked.append(matching)
            return hits(conn, matching, *args, **kwargs)

        monkeypatch.setattr(pg_search, "_hits", spy)
        windowed = node.store.reports.search(viewer, "convoy", where, None, 10)
        # One query, of the two newest recency lexemes, answered it.
        assert len(asked) == 1 and "('@3' | '@4')" in asked[0]
        monkeypatch.setattr(pg_search, "NEWEST_SPANS", ())
        everything = node.store.reports.search(viewer, "convoy", where, None, 10)
        assert not windowed.exact and not everything.exact
        assert [v.id for v in windowed.items] == [v.id for v in everything.items]
        assert [v.id for v in windowed.items] == placed[::-1][:3]
        assert (windowed.total, windowed.facets) == (everything.total, everything.facets)
    finally:
        node.close()
