"""Search specifics of the SQLite store: label tokens inside FTS5 and the fallback."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from bices.store import sqlite_listing
from tests.conftest import Coalition, auth, report_json

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
    with_tokens = search(client, reader, "convoy Sinpo")
    monkeypatch.setattr(sqlite_listing, "MAX_LABEL_TOKENS", 0)
    without = search(client, reader, "convoy Sinpo")
    assert with_tokens["total"] == without["total"]
    assert with_tokens["facets"] == without["facets"]
    assert {r["id"] for r in with_tokens["items"]} == {r["id"] for r in without["items"]}
    expected = {"USA": 12, "KOR": 6, "JPN": 6, "EST": 6}[viewer]
    assert with_tokens["total"] == expected
