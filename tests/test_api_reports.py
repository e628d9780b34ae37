"""Reports through HTTP: create, batch, update and versions, list, search, attachments, signing."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bices.domain.frozen import copied
from bices.domain.reports import ReportDraft, ReportVersion
from bices.domain.signing import load_private, sign
from bices.node import Node
from bices.share.reading import verify_version
from tests.conftest import Coalition, auth, report_json

REPORTS = "/api/v1/reports"
MISSING = "00000000-0000-4000-8000-000000000000"


def stored_versions(node: Node) -> int:
    return sum(1 for _ in node.store.reports.all_versions())


def create(client: TestClient, token: str, **overrides: Any) -> str:
    response = client.post(REPORTS, json=report_json(**overrides), headers=auth(token))
    assert response.status_code == 201, response.text
    report_id: str = response.json()["id"]
    return report_id


def list_all(client: TestClient, token: str, **params: Any) -> tuple[list[str], int]:
    """Follow the cursor to the end; return ids in order and the total of the first page."""
    ids: list[str] = []
    cursor: str | None = None
    total: int | None = None
    for _ in range(1000):
        query = dict(params)
        if cursor is not None:
            query["cursor"] = cursor
        response = client.get(REPORTS, params=query, headers=auth(token))
        assert response.status_code == 200, response.text
        page = response.json()
        total = page["total"] if total is None else total
        ids.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert total is not None
    return ids, total


def search_ids(client: TestClient, token: str, q: str, **params: Any) -> set[str]:
    response = client.get("/api/v1/search", params={"q": q, **params}, headers=auth(token))
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


# -- create ---------------------------------------------------------------------------------


def test_create_single_returns_201_and_id(client: TestClient, coalition: Coalition) -> None:
    usa = coalition.user("USA")
    response = client.post(REPORTS, json=report_json(), headers=auth(usa))
    assert response.status_code == 201, response.text
    created = response.json()
    assert uuid.UUID(created["id"])
    assert created["version"] == 1
    got = client.get(f"{REPORTS}/{created['id']}", headers=auth(usa)).json()
    assert got["title"] == report_json()["title"]
    assert got["originator"] == "USA"
    assert got["label"]["originator"] == "USA"
    assert got["source"]["grading"] == "B2"
    assert got["version"] == 1
    assert got["signature"]


def test_create_batch_returns_all_ids(client: TestClient, coalition: Coalition) -> None:
    usa = coalition.user("USA")
    reports = [report_json(title=f"Report {i}") for i in range(5)]
    response = client.post(f"{REPORTS}/batch", json={"reports": reports}, headers=auth(usa))
    assert response.status_code == 201, response.text
    ids = response.json()["ids"]
    assert len(ids) == len(set(ids)) == 5
    titles = [client.get(f"{REPORTS}/{i}", headers=auth(usa)).json()["title"] for i in ids]
    assert titles == [f"Report {i}" for i in range(5)]


def test_batch_with_one_domain_error_stores_nothing(
    client: TestClient, coalition: Coalition, node: Node
) -> None:
    usa = coalition.user("USA")
    create(client, usa)
    before_total = client.get(REPORTS, headers=auth(usa)).json()["total"]
    before_stored = stored_versions(node)
    reports = [report_json(title=f"Report {i}") for i in range(5)]
    reports[3]["label"] = {"classification": "NATO SECRET", "releasable_to": ["NATO", "XYZ"]}
    response = client.post(f"{REPORTS}/batch", json={"reports": reports}, headers=auth(usa))
    assert 400 <= response.status_code < 500, response.text
    detail = response.json()["detail"]
    assert "reports[3]" in detail
    assert "XYZ" in detail
    assert client.get(REPORTS, headers=auth(usa)).json()["total"] == before_total
    assert stored_versions(node) == before_stored


def test_batch_with_one_schema_error_stores_nothing(
    client: TestClient, coalition: Coalition, node: Node
) -> None:
    usa = coalition.user("USA")
    before_total = client.get(REPORTS, headers=auth(usa)).json()["total"]
    reports = [report_json(title=f"Report {i}") for i in range(5)]
    reports[3]["source"] = {"name": "Radar", "reliability": "B", "credibility": 7}
    response = client.post(f"{REPORTS}/batch", json={"reports": reports}, headers=auth(usa))
    assert 400 <= response.status_code < 500, response.text
    assert "reports[3].source.credibility" in response.json()["detail"]
    assert client.get(REPORTS, headers=auth(usa)).json()["total"] == before_total
    assert stored_versions(node) == 0


# -- update and versions ----------------------------------------------------------------


def test_update_makes_version_2_and_keeps_version_1(
    client: TestClient, coalition: Coalition
) -> None:
    usa = coalition.user("USA")
    kor = coalition.user("KOR")
    report_id = create(client, usa, title="First estimate")
    response = client.put(
        f"{REPORTS}/{report_id}",
        json=report_json(title="Revised estimate", body="Two missiles, not one."),
        headers=auth(usa),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"id": report_id, "version": 2}

    current = client.get(f"{REPORTS}/{report_id}", headers=auth(kor)).json()
    assert (current["version"], current["title"]) == (2, "Revised estimate")
    first = client.get(f"{REPORTS}/{report_id}/versions/1", headers=auth(kor))
    assert first.status_code == 200, first.text
    assert (first.json()["version"], first.json()["title"]) == (1, "First estimate")
    versions = client.get(f"{REPORTS}/{report_id}/versions", headers=auth(kor)).json()
    assert [v["version"] for v in versions] == [1, 2]
    assert client.get(f"{REPORTS}/{report_id}/versions/3", headers=auth(kor)).status_code == 404

    # The listing shows the report once, at its current version.
    items = client.get(REPORTS, headers=auth(kor)).json()["items"]
    assert [(i["id"], i["version"]) for i in items] == [(report_id, 2)]
    # Search finds the current text, not the superseded one.
    assert search_ids(client, kor, "Revised") == {report_id}
    assert search_ids(client, kor, "First") == set()


def test_only_the_originating_member_may_update(
    client: TestClient, coalition: Coalition, node: Node
) -> None:
    usa = coalition.user("USA")
    usa_colleague = coalition.user("USA")
    kor = coalition.user("KOR")
    jpn = coalition.user("JPN")
    report_id = create(client, usa)
    forbidden = client.put(f"{REPORTS}/{report_id}", json=report_json(), headers=auth(kor))
    assert forbidden.status_code == 403, forbidden.text
    assert "USA" in forbidden.json()["detail"]
    hidden = client.put(f"{REPORTS}/{report_id}", json=report_json(), headers=auth(jpn))
    assert hidden.status_code == 404, hidden.text
    assert stored_versions(node) == 1
    colleague = client.put(
        f"{REPORTS}/{report_id}", json=report_json(), headers=auth(usa_colleague)
    )
    assert colleague.status_code == 200, colleague.text
    assert colleague.json()["version"] == 2


def test_update_of_missing_report_is_404(client: TestClient, coalition: Coalition) -> None:
    usa = coalition.user("USA")
    response = client.put(f"{REPORTS}/{MISSING}", json=report_json(), headers=auth(usa))
    assert response.status_code == 404, response.text


# -- list -----------------------------------------------------------------------------------


def test_list_filters(client: TestClient, coalition: Coalition) -> None:
    usa = coalition.user("USA", clearance="COSMIC TOP SECRET")
    kor = coalition.user("KOR")
    a = create(client, usa, type="INTREP", language="en", reported_at="2023-07-12T01:00:00Z")
    b = create(
        client,
        usa,
        type="OSINT",
        language="id",
        label={"classification": "PUBLIC", "releasable_to": ["NATO", "IP4"]},
        reported_at="2023-11-21T13:42:00Z",
    )
    c = create(client, kor, type="SPOTREP", language="ko", reported_at="2024-05-27T14:44:00Z")
    d = create(
        client,
        kor,
        type="OSINT",
        language="en",
        label={"classification": "NATO RESTRICTED", "releasable_to": ["NATO", "KOR"]},
        reported_at="2024-07-10T09:00:00Z",
    )

    def ids(**params: Any) -> set[str]:
        found, total = list_all(client, usa, **params)
        assert total == len(found)
        return set(found)

    assert ids() == {a, b, c, d}
    assert ids(type="OSINT") == {b, d}
    assert ids(type=["OSINT", "SPOTREP"]) == {b, c, d}
    assert ids(member="KOR") == {c, d}
    assert ids(member="kor") == {c, d}
    assert ids(classification="NATO SECRET") == {a, c}
    assert ids(classification=["PUBLIC", "NATO RESTRICTED"]) == {b, d}
    assert ids(language="en") == {a, d}
    assert ids(language=["id", "ko"]) == {b, c}
    assert ids(since="2024-01-01T00:00:00Z") == {c, d}
    assert ids(until="2024-01-01T00:00:00Z") == {a, b}
    assert ids(since="2023-11-01T00:00:00Z", until="2024-06-01T00:00:00Z") == {b, c}
    assert ids(since="2024-07-10T09:00:00Z") == {d}
    assert ids(since="2024-07-10T10:00:00+01:00") == {d}
    assert ids(type="OSINT", member="USA") == {b}
    assert ids(type="TRACK") == set()


def test_list_rejects_unknown_filter_values(client: TestClient, coalition: Coalition) -> None:
    usa = coalition.user("USA")
    for params in (
        {"type": "GOSSIP"},
        {"classification": "TOP SECRET-ISH"},
        {"since": "not a date"},
        {"since": "2024-01-01T00:00:00"},
        {"cursor": "garbage"},
        {"limit": 0},
    ):
        response = client.get(REPORTS, params=params, headers=auth(usa))
        assert 400 <= response.status_code < 500, (params, response.text)


def test_cursor_pagination_has_no_duplicates_or_gaps(
    client: TestClient, coalition: Coalition
) -> None:
    usa = coalition.user("USA")
    jpn = coalition.user("JPN")
    batch = [report_json(title=f"Report {i}") for i in range(23)]
    response = client.post(f"{REPORTS}/batch", json={"reports": batch}, headers=auth(usa))
    created = response.json()["ids"]
    hidden = create(client, usa, label={"classification": "NATO SECRET", "releasable_to": ["USA"]})
    usa_view = {*created, hidden}
    kor = coalition.user("KOR")
    for token, expected in ((usa, usa_view), (kor, set(created)), (jpn, set())):
        for limit in (1, 5, 7, 23, 50):
            ids, total = list_all(client, token, limit=limit)
            assert len(ids) == len(set(ids)), "a page repeated an item"
            assert set(ids) == expected
            assert total == len(expected)
    # Newest first.
    ids, _ = list_all(client, kor, limit=4)
    assert ids == list(reversed(created))


def test_cursor_survives_writes_between_pages(client: TestClient, coalition: Coalition) -> None:
    usa = coalition.user("USA")
    first = [create(client, usa, title=f"Old {i}") for i in range(6)]
    page = client.get(REPORTS, params={"limit": 3}, headers=auth(usa)).json()
    seen = [item["id"] for item in page["items"]]
    create(client, usa, title="Newer, written between pages")
    cursor = page["next_cursor"]
    while cursor is not None:
        page = client.get(REPORTS, params={"limit": 3, "cursor": cursor}, headers=auth(usa)).json()
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
    assert seen == list(reversed(first))


# -- search ---------------------------------------------------------------------------------


def test_search_language(client: TestClient, coalition: Coalition) -> None:
    usa = coalition.user("USA")
    kor = coalition.user("KOR")
    r1 = create(
        client,
        usa,
        title="Destroyer departs Busan",
        body="The destroyer Sejong the Great left Busan harbour at dawn.",
    )
    r2 = create(
        client,
        usa,
        title="Harbour traffic",
        body="Great numbers of vessels; officials from Sejong city met in the harbour.",
    )
    r3 = create(
        client,
        kor,
        type="SPOTREP",
        title="Missile launch",
        body="A Hwasong-18 was launched from Pyongyang.",
    )
    r4 = create(
        client,
        kor,
        type="OSINT",
        language="id",
        title="Peluncuran satelit",
        body="Korea Utara meluncurkan satelit pengintai Malligyong-1 dari Sohae.",
    )
    r5 = create(client, usa, title="Second launch", body="Another missile was launched from Sinpo.")

    assert search_ids(client, usa, "Sejong") == {r1, r2}
    assert search_ids(client, usa, '"Sejong the Great"') == {r1}
    assert search_ids(client, usa, '"great sejong"') == set()
    assert search_ids(client, usa, "Sejong harbour") == {r1, r2}
    assert search_ids(client, usa, "Sejong destroyer") == {r1}
    assert search_ids(client, usa, "Hwasong OR Malligyong") == {r3, r4}
    assert search_ids(client, usa, "Hwasong-18") == {r3}
    assert search_ids(client, usa, "launched") == {r3, r5}
    assert search_ids(client, usa, "launched -Pyongyang") == {r5}
    assert search_ids(client, usa, "launched -Pyongyang -Sinpo") == set()
    assert search_ids(client, usa, "meluncur*") == {r4}
    assert search_ids(client, usa, "harbo*") == {r1, r2}
    assert search_ids(client, usa, "harbo") == set()
    assert search_ids(client, usa, "Busan OR Sohae -satelit") == {r1}
    # Words are matched case-insensitively, titles included.
    assert search_ids(client, usa, "PELUNCURAN") == {r4}
    # Filters combine with the query.
    assert search_ids(client, usa, "launched OR meluncurkan", member="KOR") == {r3, r4}
    assert search_ids(client, usa, "launched OR meluncurkan", language="id") == {r4}


def test_search_syntax_never_fails(client: TestClient, coalition: Coalition) -> None:
    usa = coalition.user("USA")
    create(client, usa)
    for q in ('"unclosed', "AND", "NOT OR", "a*b*", "col:value", "(x", "^", "NEAR(a b)", '""x'):
        response = client.get("/api/v1/search", params={"q": q}, headers=auth(usa))
        assert response.status_code in (200, 422), (q, response.text)


def test_search_totals_and_facets(client: TestClient, coalition: Coalition) -> None:
    usa = coalition.user("USA")
    kor = coalition.user("KOR")
    create(client, usa, type="INTREP", language="en", body="Missile launch near Sinpo.")
    create(
        client,
        usa,
        type="OSINT",
        language="en",
        body="Missile parade in Pyongyang.",
        label={"classification": "PUBLIC", "releasable_to": ["NATO", "IP4"]},
    )
    create(client, kor, type="SPOTREP", language="id", body="Peluncuran missile dari Sohae.")
    # Matches, but hidden from KOR.
    create(
        client,
        usa,
        body="Missile stocks, US eyes only.",
        label={"classification": "NATO SECRET", "releasable_to": ["USA"]},
    )
    for _ in range(3):
        create(client, usa, body="Unrelated logistics report.")

    response = client.get("/api/v1/search", params={"q": "missile"}, headers=auth(kor))
    result = response.json()
    assert result["total"] == 3 == len(result["items"])
    assert result["facets"]["type"] == {"INTREP": 1, "OSINT": 1, "SPOTREP": 1}
    assert result["facets"]["member"] == {"USA": 2, "KOR": 1}
    assert result["facets"]["classification"] == {"NATO SECRET": 2, "PUBLIC": 1}
    assert result["facets"]["language"] == {"en": 2, "id": 1}

    usa_result = client.get("/api/v1/search", params={"q": "missile"}, headers=auth(usa)).json()
    assert usa_result["total"] == 4
    assert usa_result["facets"]["member"] == {"USA": 3, "KOR": 1}

    # Paging through search: limit 1, every hit once.
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"q": "missile", "limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/search", params=params, headers=auth(kor)).json()
        assert page["total"] == 3
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 3


# -- attachments ----------------------------------------------------------------------------


def test_attachment_round_trip_and_hidden_is_404(client: TestClient, coalition: Coalition) -> None:
    usa = coalition.user("USA")
    kor = coalition.user("KOR")
    jpn = coalition.user("JPN")
    data = bytes(range(256)) * 10
    digest = hashlib.sha256(data).hexdigest()
    report_id = create(
        client,
        usa,
        attachments=[
            {
                "name": "launch-site.bin",
                "media_type": "application/octet-stream",
                "content_base64": base64.b64encode(data).decode(),
            }
        ],
    )
    described = client.get(f"{REPORTS}/{report_id}", headers=auth(kor)).json()["attachments"]
    assert described == [
        {
            "sha256": digest,
            "name": "launch-site.bin",
            "media_type": "application/octet-stream",
            "size": len(data),
        }
    ]
    url = f"{REPORTS}/{report_id}/attachments/{digest}"
    response = client.get(url, headers=auth(kor))
    assert response.status_code == 200, response.text
    assert response.content == data

    hidden = client.get(url, headers=auth(jpn))
    missing = client.get(f"{REPORTS}/{MISSING}/attachments/{digest}", headers=auth(jpn))
    assert hidden.status_code == missing.status_code == 404
    assert data not in hidden.content
    # A blob is served only through a report that carries it.
    other = create(client, usa, title="No attachment here")
    assert client.get(f"{REPORTS}/{other}/attachments/{digest}", headers=auth(kor)).status_code == (
        404
    )
    wrong = client.get(f"{REPORTS}/{report_id}/attachments/{'0' * 64}", headers=auth(kor))
    assert wrong.status_code == 404


# -- signatures -----------------------------------------------------------------------------


def signed_report(node: Node, member: str, **overrides: Any) -> dict[str, Any]:
    """A report body signed by the client with the member's private key, as collect.py checks."""
    body = report_json(id=str(uuid.uuid4()), reported_at="2024-07-10T09:00:00Z", **overrides)
    draft = ReportDraft.model_validate(body)
    unsigned = ReportVersion(
        id=body["id"],
        version=1,
        type=draft.type,
        title=draft.title,
        body=draft.body,
        language=draft.language,
        label=draft.label.bind(member),
        source=draft.source,
        reported_at=draft.reported_at or datetime.now(UTC),
        observed_at=draft.observed_at,
        locations=tuple(draft.locations),
        attachments=(),
        author="client",
        stored_at=datetime.now(UTC),
    )
    raw = node.store.coalition.signing_key(member)
    assert raw is not None
    body["signature"] = sign(load_private(raw), unsigned.signed_content())
    return body


def test_client_signed_report_is_accepted_and_verifies(
    client: TestClient, coalition: Coalition, node: Node
) -> None:
    usa = coalition.user("USA")
    body = signed_report(node, "USA")
    response = client.post(REPORTS, json=body, headers=auth(usa))
    assert response.status_code == 201, response.text
    assert response.json()["id"] == body["id"]
    got = client.get(f"{REPORTS}/{body['id']}", headers=auth(usa)).json()
    assert got["signature"] == body["signature"]
    verify = client.get(f"{REPORTS}/{body['id']}/verify", headers=auth(usa))
    assert verify.status_code == 200, verify.text
    assert verify.json()["versions"] == [{"version": 1, "valid": True, "reason": "ok"}]


def test_wrong_signature_is_400_and_nothing_stored(
    client: TestClient, coalition: Coalition, node: Node
) -> None:
    usa = coalition.user("USA")
    tampered = signed_report(node, "USA")
    tampered["body"] += " (edited after signing)"
    other_key = signed_report(node, "GBR")  # signed with another member's key
    garbage = signed_report(node, "USA")
    garbage["signature"] = "not base64!"
    for body in (tampered, other_key, garbage):
        response = client.post(REPORTS, json=body, headers=auth(usa))
        assert response.status_code == 400, response.text
        assert "signature" in response.json()["detail"]
        assert client.get(f"{REPORTS}/{body['id']}", headers=auth(usa)).status_code == 404
    assert stored_versions(node) == 0


@pytest.mark.parametrize("field", ["id", "reported_at"])
def test_a_signature_without_the_field_it_covers_is_refused(
    client: TestClient, coalition: Coalition, node: Node, field: str
) -> None:
    """Without them the node would choose an id and a time the client could not have signed."""
    usa = coalition.user("USA")
    body = signed_report(node, "USA")
    del body[field]
    response = client.post(REPORTS, json=body, headers=auth(usa))
    assert response.status_code == 400, response.text
    assert field in response.json()["detail"]
    assert stored_versions(node) == 0


def test_signed_batch_with_one_bad_signature_stores_nothing(
    client: TestClient, coalition: Coalition, node: Node
) -> None:
    usa = coalition.user("USA")
    reports = [signed_report(node, "USA", title=f"Signed {i}") for i in range(4)]
    reports[2]["title"] = "Changed after signing"
    response = client.post(f"{REPORTS}/batch", json={"reports": reports}, headers=auth(usa))
    assert response.status_code == 400, response.text
    assert "reports[2]" in response.json()["detail"]
    assert "signature" in response.json()["detail"]
    assert stored_versions(node) == 0


def test_client_id_cannot_be_reused(client: TestClient, coalition: Coalition, node: Node) -> None:
    usa = coalition.user("USA")
    body = signed_report(node, "USA")
    assert client.post(REPORTS, json=body, headers=auth(usa)).status_code == 201
    again = client.post(REPORTS, json=body, headers=auth(usa))
    assert again.status_code == 409, again.text
    assert stored_versions(node) == 1


def test_verify_of_node_signed_report_and_its_versions(
    client: TestClient, coalition: Coalition
) -> None:
    usa = coalition.user("USA")
    jpn = coalition.user("JPN")
    report_id = create(client, usa)
    client.put(f"{REPORTS}/{report_id}", json=report_json(title="v2"), headers=auth(usa))
    response = client.get(f"{REPORTS}/{report_id}/verify", headers=auth(usa))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": report_id,
        "versions": [
            {"version": 1, "valid": True, "reason": "ok"},
            {"version": 2, "valid": True, "reason": "ok"},
        ],
    }
    assert client.get(f"{REPORTS}/{report_id}/verify", headers=auth(jpn)).status_code == 404


def test_a_batch_is_signed_once_per_label_and_each_report_verifies_alone(
    client: TestClient, coalition: Coalition, node: Node
) -> None:
    usa, kor = coalition.user("USA"), coalition.user("KOR")
    wide = {"classification": "NATO SECRET", "releasable_to": ["NATO", "KOR"], "caveats": []}
    narrow = {"classification": "NATO SECRET", "releasable_to": ["USA"], "caveats": []}
    reports = [report_json(title=f"Report {i}", label=wide if i % 3 else narrow)
               for i in range(9)]  # fmt: skip
    response = client.post(f"{REPORTS}/batch", json={"reports": reports}, headers=auth(usa))
    assert response.status_code == 201, response.text
    ids = response.json()["ids"]
    heads: dict[int, set[str]] = {}
    for i, report_id in enumerate(ids):
        signature = client.get(f"{REPORTS}/{report_id}", headers=auth(usa)).json()["signature"]
        _, index, size, head, _ = signature.split(":")
        # A tree per label: what KOR may see tells of KOR's six reports, never of USA's three.
        assert int(size) == (6 if i % 3 else 3) and int(index) < int(size)
        heads.setdefault(i % 3 and 1, set()).add(head)
        verify = client.get(f"{REPORTS}/{report_id}/verify", headers=auth(usa))
        assert verify.json()["versions"] == [{"version": 1, "valid": True, "reason": "ok"}]
    assert len(heads[0]) == len(heads[1]) == 1 and heads[0] != heads[1]
    seen = client.get(f"{REPORTS}/{ids[1]}/verify", headers=auth(kor))
    assert seen.json()["versions"] == [{"version": 1, "valid": True, "reason": "ok"}]
    # Changing a stored report breaks its own signature, and no other one.
    stored = node.store.reports.current_unfiltered(ids[1])
    assert stored is not None
    other = node.store.reports.current_unfiltered(ids[2])
    assert other is not None
    assert not verify_version(node.store, copied(stored, title="Report 1, changed")).valid
    assert verify_version(node.store, other).valid


def test_list_cursor_is_sealed_and_tells_nothing_of_hidden_reports(
    client: TestClient, coalition: Coalition
) -> None:
    """A listing cursor once was base64 of `list:SEQ`: two of them, a page apart, counted the
    versions hidden between. Now it is sealed: opaque, and never made up."""
    usa = coalition.user("USA", clearance="COSMIC TOP SECRET")
    kor = coalition.user("KOR")
    hidden = {"classification": "NATO SECRET", "releasable_to": ["USA"], "caveats": []}
    first = create(client, usa, title="Oldest")
    for i in range(4):
        create(client, usa, title=f"Hidden {i}", label=hidden)
    create(client, usa, title="Newer")
    create(client, usa, title="Newest")
    page = client.get(REPORTS, params={"limit": 1}, headers=auth(kor)).json()
    cursor = page["next_cursor"]
    assert len(cursor) == 22
    raw = base64.urlsafe_b64decode(cursor + "==")
    assert len(raw) == 16 and not raw.startswith(b"list:")  # one AES block, not the old text
    ids, _ = list_all(client, kor, limit=1)
    assert len(ids) == 3 and ids[-1] == first
    search = client.get("/api/v1/search", params={"q": "missile", "limit": 1}, headers=auth(kor))
    search_cursor = search.json()["next_cursor"]
    assert search_cursor is not None and len(search_cursor) == 22
    old_style = base64.urlsafe_b64encode(b"list:3").decode().rstrip("=")
    tampered = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    for forged in (old_style, tampered, search_cursor, "bGlzdDo5OTk5OTk5OTk5OTk5OTk5OTk5OTk5"):
        refused = client.get(REPORTS, params={"cursor": forged}, headers=auth(kor))
        assert refused.status_code == 422, refused.text
        assert "is not a cursor of this listing" in refused.text
    for forged in (cursor, base64.urlsafe_b64encode(b"search:1").decode().rstrip("=")):
        refused = client.get("/api/v1/search", params={"q": "missile", "cursor": forged},
                             headers=auth(kor))  # fmt: skip
        assert refused.status_code == 422, refused.text
        assert "is not a cursor of this listing" in refused.text
    nxt = client.get("/api/v1/search", params={"q": "missile", "limit": 1, "cursor": search_cursor},
                     headers=auth(kor))  # fmt: skip
    assert nxt.status_code == 200 and len(nxt.json()["items"]) == 1
