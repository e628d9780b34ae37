"""POST /api/v1/ingest: an uploaded document becomes OSINT reports, all or nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bices.api import create_app
from bices.node import Node
from tests import ingest_samples as samples
from tests.conftest import Coalition, Tamperer, auth, make_node
from tests.ingest_site import Page, serve

INGEST = "/api/v1/ingest"
LABEL: dict[str, Any] = {
    "classification": "NATO UNCLASSIFIED",
    "releasable_to": ["NATO", "KOR"],
}


def stored(node: Node) -> tuple[int, int, int]:
    """Report versions, attachment blobs and report.create audit events in the database."""
    versions = sum(1 for _ in node.store.reports.all_versions())
    conn = Tamperer(node, "bices.db")  # a connection of its own, on either backend
    try:
        blobs = conn.execute("SELECT count(*) FROM blobs").fetchone()[0]
    finally:
        conn.close()
    created = sum(1 for e in node.store.audit.all_events() if e.action == "report.create")
    return versions, int(blobs), created


def post(
    client: TestClient,
    token: str,
    body: bytes | str,
    content_type: str | None,
    **params: Any,
) -> Any:
    headers = auth(token)
    if content_type is not None:
        headers["Content-Type"] = content_type
    data = body.encode() if isinstance(body, str) else body
    return client.post(INGEST, content=data, headers=headers, params={**LABEL, **params})


@pytest.fixture
def token(coalition: Coalition) -> str:
    return coalition.user("USA", roles=("collector",), name="usa.collector")


def test_plain_text_becomes_an_osint_report(client: TestClient, node: Node, token: str) -> None:
    response = post(client, token, samples.TEXT_EN, "text/plain", name="launch.txt")
    assert response.status_code == 201, response.text
    [report_id] = response.json()["ids"]
    report = client.get(f"/api/v1/reports/{report_id}", headers=auth(token)).json()
    assert report["type"] == "OSINT"
    assert report["title"] == "Launch reported off the east coast"
    assert report["language"] == "en"
    assert report["label"]["banner"] == "NATO UNCLASSIFIED // REL TO NATO, KOR"
    assert report["source"] == {"name": "launch.txt", "reliability": "F", "credibility": 6,
                                "grading": "F6"}  # fmt: skip
    assert report["author"] == "usa.collector"
    assert report["body"].endswith(
        "Read more: Earlier launches this year\nPhoto: Coastal Guard handout"
    )
    [attachment] = report["attachments"]
    assert attachment["media_type"] == "text/plain"
    assert attachment["sha256"] == hashlib.sha256(samples.TEXT_EN.encode()).hexdigest()
    verify = client.get(f"/api/v1/reports/{report_id}/verify", headers=auth(token)).json()
    assert verify["versions"][0]["valid"] is True


def test_html_page_boilerplate_removed_original_kept(client: TestClient, token: str) -> None:
    response = post(
        client, token, samples.HTML_ID, "text/html; charset=utf-8",
        reliability="B", credibility=3, caveat=[],
    )  # fmt: skip
    assert response.status_code == 201, response.text
    [created] = response.json()["reports"]
    assert created["language"] == "id"
    report = client.get(f"/api/v1/reports/{created['id']}", headers=auth(token)).json()
    for gone in samples.HTML_ID_GONE:
        assert gone not in report["body"], gone
    for kept in samples.HTML_ID_KEPT:
        assert kept in report["body"]
    assert report["source"]["grading"] == "B3"
    assert report["source"]["name"] == "wartanusantara.example"
    assert report["reported_at"].startswith("2024-07-11")  # the page's publication date
    [attachment] = report["attachments"]
    original = client.get(
        f"/api/v1/reports/{created['id']}/attachments/{attachment['sha256']}",
        headers=auth(token),
    )
    assert original.status_code == 200
    assert original.content == samples.HTML_ID.encode()  # boilerplate and all
    assert attachment["media_type"] == "text/html"


@pytest.mark.parametrize(
    ("body", "content_type", "titles"),
    [
        (samples.RSS, "application/rss+xml", 3),
        (samples.ATOM, "application/atom+xml", 2),
    ],
    ids=["rss", "atom"],
)
def test_feed_entries_become_one_report_each_sharing_one_original(
    client: TestClient, node: Node, token: str, body: str, content_type: str, titles: int
) -> None:
    before = stored(node)
    response = post(client, token, body, content_type)
    assert response.status_code == 201, response.text
    ids = response.json()["ids"]
    assert len(ids) == titles
    versions, blobs, created = stored(node)
    assert (versions - before[0], blobs - before[1], created - before[2]) == (titles, 1, titles)
    locations = [r["location"] for r in response.json()["reports"]]
    assert all(location.startswith("https://") for location in locations)


def test_another_member_sees_it_only_where_releasable(
    client: TestClient, coalition: Coalition, token: str
) -> None:
    response = post(client, token, samples.TEXT_ID, "text/plain", releasable_to=["USA", "GBR"])
    assert response.status_code == 201
    [report_id] = response.json()["ids"]
    kor = coalition.user("KOR", name="kor.analyst")
    gbr = coalition.user("GBR", name="gbr.analyst")
    assert client.get(f"/api/v1/reports/{report_id}", headers=auth(kor)).status_code == 404
    assert client.get(f"/api/v1/reports/{report_id}", headers=auth(gbr)).status_code == 200


# -- refusals: a 4xx naming the problem, and nothing stored ----------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "params", "status", "message"),
    [
        (b"", "text/plain", {}, 422, "the file is empty"),
        (b"%PDF-1.4\n1 0 obj", "text/plain", {}, 422, "PDF"),
        (bytes(range(256)) * 4, "text/plain", {}, 422, "binary data"),
        (samples.TEXT_EN, "application/rss+xml", {}, 422, "not an RSS or Atom feed"),
        (samples.TEXT_EN, "application/pdf", {}, 415, "Content-Type application/pdf"),
        (samples.TEXT_EN, None, {}, 415, "Content-Type (none)"),
        (samples.TEXT_EN, "text/plain", {"classification": "NATO PUBLIC"}, 422,
         "unknown classification 'NATO PUBLIC'"),
        (samples.TEXT_EN, "text/plain", {"releasable_to": ["KOR"]}, 403, "USA"),
        (samples.TEXT_EN, "text/plain", {"credibility": 7}, 422, "credibility"),
        (samples.TEXT_EN, "text/plain", {"reliability": "G"}, 422, "reliability"),
        ("Caf\u00e9 di Seoul".encode("latin-1"), "text/plain; charset=undefined", {}, 422,
         "charset 'undefined' is not a character encoding"),
        ("Caf\u00e9 di Seoul".encode("latin-1"), "text/plain; charset=idna", {}, 422,
         "charset 'idna' is not a character encoding"),
        (b'<html><head><meta charset="punycode"></head><body><p>Caf\xe9</p></body></html>',
         "text/html", {}, 422, "charset 'punycode' is not a character encoding"),
        (b'<?xml version="1.0" encoding="undefined"?><rss version="2.0"><channel><item>'
         b"<title>Caf\xe9</title></item></channel></rss>", "application/rss+xml", {}, 422,
         "charset 'undefined' is not a character encoding"),
    ],
    ids=["empty", "pdf", "binary", "not-a-feed", "pdf-type", "no-type", "classification",
         "not-releasable-to-own-member", "credibility", "reliability", "charset-undefined",
         "charset-idna", "meta-charset-punycode", "xml-encoding-undefined"],
)  # fmt: skip
def test_bad_upload_is_refused_and_nothing_is_stored(
    client: TestClient,
    node: Node,
    token: str,
    body: bytes | str,
    content_type: str | None,
    params: dict[str, Any],
    status: int,
    message: str,
) -> None:
    before = stored(node)
    response = post(client, token, body, content_type, **params)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert stored(node) == before


def test_refusal_is_audited(client: TestClient, node: Node, token: str) -> None:
    post(client, token, b"\x89PNG\r\n\x1a\n\x00\x00", "text/plain")
    refused = [e for e in node.store.audit.all_events() if e.action == "request.refused"]
    assert refused and "PNG" in refused[-1].detail["reason"]


def test_unauthenticated_upload_is_refused(client: TestClient, node: Node) -> None:
    before = stored(node)
    response = client.post(INGEST, content=b"text", headers={"Content-Type": "text/plain"},
                           params=LABEL)  # fmt: skip
    assert response.status_code == 401
    assert stored(node) == before


def test_url_in_the_body_is_not_fetched(client: TestClient, token: str) -> None:
    """The API stores a URL as the text it is and never fetches it (no SSRF)."""
    with serve({"/secret": Page(b"internal only")}) as site:
        text = f"Laporan lengkap latihan itu ada di {site.base_url}/secret kata pejabat itu."
        response = post(client, token, text, "text/plain")
        assert response.status_code == 201, response.text
        assert site.requests == []
    [report] = response.json()["reports"]
    assert report["title"] == text


@pytest.fixture
def small(tmp_path: Path, backend: str) -> Iterator[tuple[Node, TestClient, str]]:
    node = make_node(tmp_path / "small", backend, max_attachment_bytes=4000, max_batch=2)
    token = Coalition(node).user("USA", name="usa.small")
    with TestClient(create_app(node)) as client:
        yield node, client, token
    node.close()


def test_upload_over_the_attachment_limit_is_413(small: tuple[Node, TestClient, str]) -> None:
    node, client, token = small
    before = stored(node)
    body = (samples.TEXT_EN + "\n") * 20
    response = post(client, token, body, "text/plain")
    assert response.status_code == 413
    assert "over the attachment limit of 4000 bytes" in response.json()["detail"]
    assert stored(node) == before


def test_feed_over_the_batch_limit_is_413_and_nothing_stored(
    small: tuple[Node, TestClient, str],
) -> None:
    node, client, token = small
    before = stored(node)
    response = post(client, token, samples.RSS, "application/rss+xml")
    assert response.status_code == 413
    assert "more than 2 articles, over the batch limit of 2 reports" in response.json()["detail"]
    assert stored(node) == before


def test_feed_whose_copies_of_the_original_exceed_the_body_limit_is_413(
    tmp_path: Path, backend: str
) -> None:
    """Each entry's report keeps the whole feed; one batch may not hold more than the body
    limit of such copies."""
    node = make_node(tmp_path / "tight", backend, max_body_bytes=4000)
    token = Coalition(node).user("USA", name="usa.tight")
    try:
        with TestClient(create_app(node)) as client:
            before = stored(node)
            response = post(client, token, samples.RSS, "application/rss+xml")
            assert response.status_code == 413, response.text
            assert "split the feed" in response.json()["detail"]
            assert stored(node) == before
    finally:
        node.close()


def test_upload_is_in_the_openapi_document(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"][INGEST]["post"]
    assert set(operation["requestBody"]["content"]) == {
        "text/plain", "text/html", "application/rss+xml", "application/atom+xml",
    }  # fmt: skip
    names = {p["name"] for p in operation["parameters"]}
    assert {"classification", "releasable_to", "caveat", "reliability", "credibility"} <= names


def test_a_field_report_is_stored_whole(client: TestClient, token: str) -> None:
    response = post(client, token, samples.SALUTE_EN, "text/plain", name="salute.txt")
    assert response.status_code == 201, response.text
    [report_id] = response.json()["ids"]
    report = client.get(f"/api/v1/reports/{report_id}", headers=auth(token)).json()
    assert report["body"].split("\n") == samples.SALUTE_EN.strip().split("\n")[1:]


@pytest.mark.timeout(10)
def test_a_line_made_to_backtrack_is_answered_quickly(client: TestClient, token: str) -> None:
    hostile = ("word word word | " * 15) + "y" * 40  # 295 characters: a line rule reads it
    page = f"<html><body><article><p>{hostile}</p></article></body></html>"
    response = post(client, token, page, "text/html")
    assert response.status_code == 201, response.text
