"""Who may manage whose tokens, and what the audit trail shows of it to whom."""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from bices.node import Node
from tests.conftest import Coalition, auth, report_json


def test_a_member_admin_cannot_take_over_an_operator_of_its_member(
    client: TestClient, coalition: Coalition
) -> None:
    coalition.user("USA", roles=("operator",), name="usa.op")
    admin = coalition.user("USA", roles=("member-admin",), name="usa.admin")
    coalition.user("USA", name="usa.analyst")
    assert client.post("/api/v1/users/usa.op/tokens", headers=auth(admin)).status_code == 403
    assert client.delete("/api/v1/users/usa.op/tokens", headers=auth(admin)).status_code == 403
    issued = client.post("/api/v1/users/usa.analyst/tokens", headers=auth(admin))
    assert issued.status_code == 201


def test_issuing_a_token_is_audited(client: TestClient, coalition: Coalition, node: Node) -> None:
    admin = coalition.user("KOR", roles=("member-admin",), name="kor.admin")
    coalition.user("KOR", name="kor.analyst")
    assert client.post("/api/v1/users/kor.analyst/tokens", headers=auth(admin)).status_code == 201
    issued = [e for e in node.store.audit.all_events() if e.action == "token.issue"]
    assert [(e.actor, e.target) for e in issued] == [("kor.admin", "kor.analyst")]


def test_a_refused_write_is_audited_for_its_own_member_only(
    client: TestClient, coalition: Coalition
) -> None:
    """The refusal names a report only USA may see; JPN's operator must not learn of it."""
    writer = coalition.user("USA", name="usa.writer")
    usa_admin = coalition.user("USA", roles=("member-admin",), name="usa.admin")
    jpn_operator = coalition.user(
        "JPN", clearance="COSMIC TOP SECRET", roles=("operator",), name="jpn.op"
    )
    usa_only = report_json(label={"classification": "NATO SECRET", "releasable_to": ["USA"]})
    report_id = client.post("/api/v1/reports", json=usa_only, headers=auth(writer)).json()["id"]
    bad = report_json(label={"classification": "NATO SECRET", "releasable_to": ["NOWHERE"]})
    refused = client.put(f"/api/v1/reports/{report_id}", json=bad, headers=auth(writer))
    assert refused.status_code == 422

    def refusals(token: str) -> list[dict[str, object]]:
        items = client.get("/api/v1/audit?limit=1000", headers=auth(token)).json()["items"]
        return [e for e in items if e["action"] == "request.refused"]

    assert [e["target"] for e in refusals(usa_admin)] == [f"/api/v1/reports/{report_id}"]
    assert refusals(jpn_operator) == []
    everything = str(client.get("/api/v1/audit?limit=1000", headers=auth(jpn_operator)).json())
    assert report_id not in everything


def test_extreme_dates_and_forged_cursors_are_refused_not_crashed(
    client: TestClient, coalition: Coalition
) -> None:
    token = coalition.user("USA")
    for field in ("reported_at", "observed_at"):
        body = report_json(**{field: "0001-01-01T00:00:00+01:00"})
        answer = client.post("/api/v1/reports", json=body, headers=auth(token))
        assert answer.status_code == 422, answer.text
        assert field in answer.json()["detail"]
    forged = base64.urlsafe_b64encode(f"list:{10**25}".encode()).decode().rstrip("=")
    answer = client.get(f"/api/v1/reports?cursor={forged}", headers=auth(token))
    assert answer.status_code == 422
    assert "cursor" in answer.json()["detail"]
