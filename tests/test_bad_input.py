"""Bad input: each refusal is a 4xx whose message names the problem, and nothing is stored."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bices.api import create_app
from bices.domain.members import MemberStatus
from bices.node import Node
from bices.store.pg import PostgresStore
from tests.conftest import Coalition, auth, make_node, report_json

REPORTS = "/api/v1/reports"


def counts(node: Node) -> tuple[int, int]:
    """Stored report versions and attachment blobs, read straight from the database."""
    versions = sum(1 for _ in node.store.reports.all_versions())
    if isinstance(node.store, PostgresStore):
        with node.store.db.read() as pg:
            row = pg.execute(
                "SELECT (SELECT count(*) FROM blobs), (SELECT count(*) FROM current_reports), "
                "(SELECT count(*) FROM reports)"
            ).fetchone()
        assert row is not None
        assert row[1] == row[2]  # the search index holds each report's current version
        return versions, int(row[0])
    with sqlite3.connect(f"file:{node.settings.data / 'bices.db'}?mode=ro", uri=True) as conn:
        blobs = conn.execute("SELECT count(*) FROM blobs").fetchone()[0]
        fts = conn.execute("SELECT count(*) FROM report_fts").fetchone()[0]
    assert fts == versions
    return versions, int(blobs)


@pytest.fixture
def small_node(tmp_path: Path, backend: str) -> Iterator[Node]:
    node = make_node(
        tmp_path / "small", backend, max_body_bytes=2000, max_attachment_bytes=100, max_batch=3
    )
    yield node
    node.close()


@pytest.fixture
def small_client(small_node: Node) -> Iterator[TestClient]:
    with TestClient(create_app(small_node)) as test_client:
        yield test_client


def refused(
    client: TestClient, node: Node, token: str | None, body: Any, status: int | tuple[int, ...]
) -> str:
    """POST a single report (or a batch when `body` has `reports`); check the refusal."""
    before = counts(node)
    path = f"{REPORTS}/batch" if isinstance(body, dict) and "reports" in body else REPORTS
    headers = auth(token) if token is not None else {}
    response = client.post(path, json=body, headers=headers)
    allowed = (status,) if isinstance(status, int) else status
    assert response.status_code in allowed, response.text
    assert counts(node) == before, "a refused input left something stored"
    detail: str = response.json()["detail"]
    return detail


# -- size limits ----------------------------------------------------------------------------


def test_oversized_body_is_413_naming_the_limit(small_client: TestClient, small_node: Node) -> None:
    token = Coalition(small_node).user("USA")
    detail = refused(small_client, small_node, token, report_json(body="x" * 5000), 413)
    assert "2000" in detail


def test_oversized_streamed_body_without_length_is_413(
    small_client: TestClient, small_node: Node
) -> None:
    token = Coalition(small_node).user("USA")
    payload = json.dumps(report_json(body="x" * 5000)).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(payload), 500):
            yield payload[start : start + 500]

    response = small_client.post(
        REPORTS,
        content=chunks(),
        headers={**auth(token), "Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert "2000" in response.json()["detail"]
    assert counts(small_node) == (0, 0)


def test_body_under_the_limit_is_accepted(small_client: TestClient, small_node: Node) -> None:
    token = Coalition(small_node).user("USA")
    response = small_client.post(REPORTS, json=report_json(), headers=auth(token))
    assert response.status_code == 201, response.text


def test_batch_over_max_batch_is_413(small_client: TestClient, small_node: Node) -> None:
    token = Coalition(small_node).user("USA")
    batch = {"reports": [report_json(title=f"r{i}", body="") for i in range(4)]}
    detail = refused(small_client, small_node, token, batch, 413)
    assert "3" in detail and "4" in detail


def test_attachment_over_the_limit_is_413(small_client: TestClient, small_node: Node) -> None:
    token = Coalition(small_node).user("USA")
    attachment = {"name": "photo.jpg", "content_base64": base64.b64encode(b"\xff" * 101).decode()}
    detail = refused(small_client, small_node, token, report_json(attachments=[attachment]), 413)
    assert "photo.jpg" in detail
    assert "100" in detail
    ok = {"name": "thumb.jpg", "content_base64": base64.b64encode(b"\xff" * 100).decode()}
    response = small_client.post(REPORTS, json=report_json(attachments=[ok]), headers=auth(token))
    assert response.status_code == 201, response.text


def test_attachment_over_the_limit_in_a_batch_stores_no_blob(
    small_client: TestClient, small_node: Node
) -> None:
    token = Coalition(small_node).user("USA")
    small = {"name": "a.bin", "content_base64": base64.b64encode(b"a" * 10).decode()}
    big = {"name": "b.bin", "content_base64": base64.b64encode(b"b" * 101).decode()}
    batch = {
        "reports": [
            report_json(title="a", body="", attachments=[small]),
            report_json(title="b", body="", attachments=[big]),
        ]
    }
    detail = refused(small_client, small_node, token, batch, 413)
    assert "reports[1]" in detail and "b.bin" in detail


# -- malformed requests ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", [b"{", b'{"type": "INTREP",}', b"not json at all", b"\xff\xfe\x00", b'{"a": 1} trailing']
)
def test_malformed_json_is_400(
    client: TestClient, coalition: Coalition, node: Node, raw: bytes
) -> None:
    token = coalition.user("USA")
    response = client.post(
        REPORTS, content=raw, headers={**auth(token), "Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert "malformed JSON" in response.json()["detail"]
    assert counts(node) == (0, 0)


def test_wrong_json_shape_is_422(client: TestClient, coalition: Coalition, node: Node) -> None:
    token = coalition.user("USA")
    for body in ([], "a string", 42, None, {"reports": "x"}):
        response = client.post(REPORTS, json=body, headers=auth(token))
        assert response.status_code == 422, (body, response.text)
    assert counts(node) == (0, 0)


def test_missing_and_unknown_fields_are_named(
    client: TestClient, coalition: Coalition, node: Node
) -> None:
    token = coalition.user("USA")
    body = report_json()
    del body["title"]
    assert "title" in refused(client, node, token, body, 422)
    assert "colour" in refused(client, node, token, report_json(colour="red"), 422)
    assert "type" in refused(client, node, token, report_json(type="GOSSIP"), 422)
    assert "title" in refused(client, node, token, report_json(title="   "), 422)


# -- labels ---------------------------------------------------------------------------------


@pytest.mark.parametrize("unknown", ["XYZ", "FVEY"])
def test_unknown_member_or_community_is_named(
    client: TestClient, coalition: Coalition, node: Node, unknown: str
) -> None:
    token = coalition.user("USA")
    label = {"classification": "NATO SECRET", "releasable_to": ["NATO", unknown]}
    detail = refused(client, node, token, report_json(label=label), (400, 422))
    assert unknown in detail
    assert "releasable_to" in detail


def test_malformed_releasability_code_is_named(
    client: TestClient, coalition: Coalition, node: Node
) -> None:
    token = coalition.user("USA")
    label = {"classification": "NATO SECRET", "releasable_to": ["NATO", "k!r"]}
    assert "k!r" in refused(client, node, token, report_json(label=label), (400, 422))
    empty = {"classification": "NATO SECRET", "releasable_to": []}
    assert "releasable_to" in refused(client, node, token, report_json(label=empty), 422)


def test_unknown_classification_is_named(
    client: TestClient, coalition: Coalition, node: Node
) -> None:
    token = coalition.user("USA")
    label = {"classification": "TOP SECRET", "releasable_to": ["NATO"]}
    assert "TOP SECRET" in refused(client, node, token, report_json(label=label), (400, 422))


def test_label_above_clearance_is_403(client: TestClient, coalition: Coalition, node: Node) -> None:
    token = coalition.user("USA", clearance="NATO RESTRICTED")
    label = {"classification": "NATO SECRET", "releasable_to": ["NATO"]}
    detail = refused(client, node, token, report_json(label=label), 403)
    assert "NATO SECRET" in detail
    assert "clearance" in detail


def test_caveat_not_held_is_403(client: TestClient, coalition: Coalition, node: Node) -> None:
    token = coalition.user("USA", caveats=("COMMERCIAL IMAGERY",))
    label = {"classification": "NATO SECRET", "releasable_to": ["NATO"], "caveats": ["ATOMAL"]}
    detail = refused(client, node, token, report_json(label=label), 403)
    assert "ATOMAL" in detail
    held = {**label, "caveats": ["commercial imagery"]}
    response = client.post(REPORTS, json=report_json(label=held), headers=auth(token))
    assert response.status_code == 201, response.text


def test_not_releasable_to_own_member_is_403(
    client: TestClient, coalition: Coalition, node: Node
) -> None:
    token = coalition.user("USA")
    label = {"classification": "NATO SECRET", "releasable_to": ["IP4", "GBR"]}
    detail = refused(client, node, token, report_json(label=label), 403)
    assert "USA" in detail
    assert "releasable" in detail


# -- grading, times, language, attachments --------------------------------------------------


@pytest.mark.parametrize(
    ("source", "field"),
    [
        ({"name": "Radar", "reliability": "G", "credibility": 2}, "source.reliability"),
        ({"name": "Radar", "reliability": "B", "credibility": 7}, "source.credibility"),
        ({"name": "Radar", "reliability": "B", "credibility": 0}, "source.credibility"),
        ({"name": "", "reliability": "B", "credibility": 2}, "source.name"),
        ({"name": "Radar", "reliability": "B"}, "source.credibility"),
    ],
)
def test_invalid_grading_is_422_naming_the_field(
    client: TestClient, coalition: Coalition, node: Node, source: dict[str, Any], field: str
) -> None:
    token = coalition.user("USA")
    assert field in refused(client, node, token, report_json(source=source), 422)


@pytest.mark.parametrize("field", ["reported_at", "observed_at"])
def test_naive_datetime_is_422(
    client: TestClient, coalition: Coalition, node: Node, field: str
) -> None:
    token = coalition.user("USA")
    detail = refused(client, node, token, report_json(**{field: "2024-07-10T09:00:00"}), 422)
    assert field in detail
    assert "time zone" in detail


@pytest.mark.parametrize("language", ["zz", "english", "x", "qqq"])
def test_bad_language_is_422(
    client: TestClient, coalition: Coalition, node: Node, language: str
) -> None:
    token = coalition.user("USA")
    assert "language" in refused(client, node, token, report_json(language=language), 422)


def test_bad_location_is_422(client: TestClient, coalition: Coalition, node: Node) -> None:
    token = coalition.user("USA")
    detail = refused(client, node, token, report_json(locations=[{"lat": 91, "lon": 0}]), 422)
    assert "locations[0].lat" in detail


def test_bad_base64_attachment_is_422(client: TestClient, coalition: Coalition, node: Node) -> None:
    token = coalition.user("USA")
    attachment = {"name": "scan.pdf", "content_base64": "this is *not* base64"}
    detail = refused(client, node, token, report_json(attachments=[attachment]), 422)
    assert "base64" in detail
    assert "scan.pdf" in detail


# -- authentication -------------------------------------------------------------------------


def test_missing_token_is_401(client: TestClient, node: Node) -> None:
    detail = refused(client, node, None, report_json(), 401)
    assert "Authorization" in detail
    response = client.get(REPORTS)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_invalid_token_is_401(client: TestClient, coalition: Coalition, node: Node) -> None:
    coalition.user("USA")
    assert "token" in refused(client, node, "bices_not-a-real-token", report_json(), 401)
    response = client.post(REPORTS, json=report_json(), headers={"Authorization": "Basic eDp5"})
    assert response.status_code == 401, response.text
    assert counts(node) == (0, 0)


def test_revoked_token_is_401(client: TestClient, coalition: Coalition, node: Node) -> None:
    token = coalition.user("USA", name="usa.leaver")
    node.coalition.revoke("usa.leaver")
    assert "revoked" in refused(client, node, token, report_json(), 401)


def test_expired_token_is_401(client: TestClient, coalition: Coalition, node: Node) -> None:
    from datetime import timedelta

    coalition.user("USA", name="usa.temp")
    user = node.coalition.user("usa.temp")
    token = node.coalition.issue_token(user, ttl=timedelta(seconds=-1))
    assert "expired" in refused(client, node, token, report_json(), 401)


def test_suspended_members_token_is_403(
    client: TestClient, coalition: Coalition, node: Node
) -> None:
    token = coalition.user("KOR")
    node.coalition.set_status("KOR", MemberStatus.SUSPENDED)
    detail = refused(client, node, token, report_json(), 403)
    assert "KOR" in detail
    assert "suspended" in detail


def test_role_without_write_access_is_403(
    client: TestClient, coalition: Coalition, node: Node
) -> None:
    token = coalition.user("USA", roles=("member-admin",))
    assert "role" in refused(client, node, token, report_json(), 403)


# -- the audit trail records refusals (DESIGN.md §6) ----------------------------------------


def test_refused_input_is_logged_in_the_audit_trail(
    client: TestClient, coalition: Coalition, node: Node
) -> None:
    token = coalition.user("USA", clearance="NATO RESTRICTED", name="usa.overreach")
    before = [e.seq for e in node.store.audit.all_events()]
    label = {"classification": "NATO SECRET", "releasable_to": ["NATO"]}
    response = client.post(REPORTS, json=report_json(label=label), headers=auth(token))
    assert response.status_code == 403
    new = [e for e in node.store.audit.all_events() if e.seq not in before]
    assert any(e.actor == "usa.overreach" for e in new), (
        "DESIGN.md §6: a refused input is logged in the audit trail"
    )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", REPORTS, {"reports_json": True}),
        ("GET", "/api/v1/search?q=a%00b", None),
        ("POST", "/api/v1/watchlist", {"name": "Kim\u0000"}),
    ],
)
def test_a_nul_character_is_refused_on_either_backend(
    client: TestClient, coalition: Coalition, node: Node, method: str, path: str, body: object
) -> None:
    """PostgreSQL's text cannot hold U+0000; SQLite's could, but both refuse it alike."""
    token = coalition.user("USA")
    if body == {"reports_json": True}:
        body = report_json(title="Launch\u0000 at dawn")
    before = counts(node)
    answer = client.request(method, path, json=body, headers=auth(token))
    assert answer.status_code == 400, answer.text
    assert "NUL" in answer.json()["detail"]
    assert counts(node) == before


def test_an_escaped_backslash_before_u0000_is_text_not_nul(
    client: TestClient, coalition: Coalition
) -> None:
    token = coalition.user("USA")
    title = "A path C:\\u0000 in a log line"  # a backslash, then the letters u0000
    created = client.post(REPORTS, json=report_json(title=title), headers=auth(token))
    assert created.status_code == 201, created.text
    got = client.get(f"{REPORTS}/{created.json()['id']}", headers=auth(token))
    assert got.json()["title"] == title
