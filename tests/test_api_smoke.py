from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import Coalition, auth, report_json


def test_post_then_get_and_hidden_is_404(client: TestClient, coalition: Coalition) -> None:
    usa = coalition.user("USA")
    kor = coalition.user("KOR")
    jpn = coalition.user("JPN")
    created = client.post("/api/v1/reports", json=report_json(), headers=auth(usa))
    assert created.status_code == 201, created.text
    report_id = created.json()["id"]
    seen = client.get(f"/api/v1/reports/{report_id}", headers=auth(kor))
    assert seen.status_code == 200
    assert seen.json()["label"]["banner"] == "NATO SECRET // REL TO NATO, KOR"
    hidden = client.get(f"/api/v1/reports/{report_id}", headers=auth(jpn))
    missing = client.get("/api/v1/reports/00000000-0000-4000-8000-000000000000", headers=auth(jpn))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace(report_id, "X") == missing.json()["detail"].replace(
        "00000000-0000-4000-8000-000000000000", "X"
    )
