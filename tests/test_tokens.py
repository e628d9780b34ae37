from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from bices.node import Node
from tests.conftest import Coalition, auth


def test_an_expired_token_is_refused_and_a_fresh_one_works(
    client: TestClient, coalition: Coalition, node: Node
) -> None:
    coalition.user("USA", name="alice")
    alice = node.coalition.user("alice")
    expired = node.coalition.issue_token(alice, timedelta(seconds=-1))
    fresh = node.coalition.issue_token(alice, timedelta(days=1))
    refused = client.get("/api/v1/users/me", headers=auth(expired))
    assert refused.status_code == 401
    assert "expired" in refused.json()["detail"]
    assert client.get("/api/v1/users/me", headers=auth(fresh)).json()["name"] == "alice"


def test_a_user_can_issue_itself_an_expiring_token_over_the_api(
    client: TestClient, coalition: Coalition
) -> None:
    token = coalition.user("KOR", name="kim")
    answer = client.post("/api/v1/users/kim/tokens?expires_in_days=7", headers=auth(token))
    assert answer.status_code == 201
    second = answer.json()["token"]
    assert second != token
    assert client.get("/api/v1/users/me", headers=auth(second)).json()["member"] == "KOR"
