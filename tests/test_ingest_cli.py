"""`bices ingest PATH|URL`: files, folders and URLs become OSINT reports; bad input is named,
refused, and nothing of it is stored."""

from __future__ import annotations

import gzip
import ipaddress
import json
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from bices.cli import app
from bices.node import Node
from bices.pipeline import sources
from bices.settings import Settings
from tests import ingest_samples as samples
from tests.conftest import Coalition, make_node
from tests.ingest_site import Page, serve

runner = CliRunner()
LABEL = ("--classification", "NATO UNCLASSIFIED", "--rel", "NATO", "--rel", "KOR")
LOCAL = "--allow-private"  # the test sites are on loopback addresses


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A node folder with a collector of the USA and an analyst of Korea."""
    folder = tmp_path / "node"
    node = make_node(folder)
    Coalition(node).user("USA", roles=("collector",), name="usa.collector")
    Coalition(node).user("KOR", name="kor.analyst", clearance="NATO SECRET")
    node.close()
    return folder


def ingest(
    data: Path, target: Path | str, *extra: str, env: dict[str, str] | None = None
) -> Result:
    args = ["--data", str(data), "ingest", str(target), "--user", "usa.collector", *LABEL]
    return runner.invoke(app, [*args, *extra], env=env)


def ingest_json(data: Path, target: Path | str, *extra: str, code: int = 0, **kw: Any) -> Any:
    result = ingest(data, target, "--json", *extra, **kw)
    assert result.exit_code == code, (result.output, result.exception)
    return json.loads(result.stdout)


def reports(data: Path) -> list[dict[str, Any]]:
    node = Node.open(Settings(data=data))
    try:
        return [v.to_json() for v in node.store.reports.all_versions()]
    finally:
        node.close()


def blob_count(data: Path) -> int:
    with sqlite3.connect(f"file:{data / 'bices.db'}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM blobs").fetchone()[0])


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


# -- files and folders --------------------------------------------------------------------------


def test_a_text_file_becomes_a_signed_osint_report(data: Path, tmp_path: Path) -> None:
    path = write(tmp_path, "kapal.txt", samples.TEXT_ID)
    result = ingest(data, path, "--reliability", "C", "--credibility", "3")
    assert result.exit_code == 0, result.output
    assert "stored 1 report(s) from 1 of 1 input(s)" in result.stdout
    [report] = reports(data)
    assert report["type"] == "OSINT"
    assert report["title"] == "Kapal latihan angkatan laut berlabuh di Busan"
    assert report["language"] == "id"
    assert report["source"] == {"name": "kapal.txt", "reliability": "C", "credibility": 3,
                                "grading": "C3"}  # fmt: skip
    assert report["label"]["banner"] == "NATO UNCLASSIFIED // REL TO NATO, KOR"
    assert report["originator"] == "USA"
    assert report["attachments"][0]["name"] == "kapal.txt"
    verify = runner.invoke(app, ["--data", str(data), "report", "verify"])
    assert "1 of 1 version(s) verify" in verify.stdout


def test_default_grading_is_cannot_be_judged(data: Path, tmp_path: Path) -> None:
    ingest_json(data, write(tmp_path, "a.txt", samples.TEXT_EN))
    assert reports(data)[0]["source"]["grading"] == "F6"


def test_the_audit_trail_records_the_operator_acting_for_the_user(
    data: Path, tmp_path: Path
) -> None:
    ingest_json(data, write(tmp_path, "a.txt", samples.TEXT_EN))
    node = Node.open(Settings(data=data))
    try:
        created = [e for e in node.store.audit.all_events() if e.action == "report.create"]
    finally:
        node.close()
    assert [(e.actor, e.member, e.detail.get("as")) for e in created] == [
        ("operator", "USA", "usa.collector")
    ]


def test_a_folder_of_mixed_files_is_ingested_recursively(data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "collected"
    write(folder, "launch.txt", samples.TEXT_EN)
    write(folder, "pages/korsel-nato.html", samples.HTML_ID)
    write(folder, "feeds/pertahanan.rss", samples.RSS)
    write(folder, "feeds/deep/newsroom.atom", samples.ATOM)
    write(folder, ".hidden/skip.txt", samples.TEXT_ID)  # hidden folders are not read
    write(folder, ".notes.txt", samples.TEXT_ID)
    summary = ingest_json(data, folder)
    assert summary["refused"] == []
    assert len(summary["stored"]) == 1 + 1 + 3 + 2
    stored = reports(data)
    assert sorted(r["title"] for r in stored) == sorted(
        [
            "Launch reported off the east coast",
            "Korea Selatan dan NATO perkuat kerja sama pertahanan siber",
            "Korea Utara kembali meluncurkan rudal balistik",
            "Menhan bertemu mitra dari Australia",
            "Latihan gabungan digelar di Natuna",
            "Partners agree on cyber defence cooperation",
            "Summit statement on emerging technologies",
        ]
    )
    assert blob_count(data) == 4  # one original per file, shared by a feed's entries
    languages = {r["title"]: r["language"] for r in stored}
    assert languages["Launch reported off the east coast"] == "en"
    assert languages["Menhan bertemu mitra dari Australia"] == "id"
    html = next(r for r in stored if r["title"].startswith("Korea Selatan dan NATO"))
    assert all(gone not in html["body"] for gone in samples.HTML_ID_GONE)


def test_one_bad_file_among_good_ones_is_reported_and_the_good_ones_stored(
    data: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    write(folder, "a-good.txt", samples.TEXT_EN)
    write(folder, "b-image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    write(folder, "c-empty.txt", b"")
    write(folder, "d-fake.rss", "Ini bukan umpan RSS, hanya teks biasa tentang rudal.")
    write(folder, "e-good.html", samples.HTML_ID)
    result = ingest(data, folder)
    assert result.exit_code == 1, result.output
    assert "stored 2 report(s) from 2 of 5 input(s)" in result.stdout
    assert "refused 3 input(s)" in result.stderr
    assert f"{folder / 'b-image.txt'}: a PNG image, not text" in result.stderr
    assert f"{folder / 'c-empty.txt'}: the file is empty" in result.stderr
    assert f"{folder / 'd-fake.rss'}: not an RSS or Atom feed" in result.stderr
    assert len(reports(data)) == 2
    assert blob_count(data) == 2  # nothing of the refused files


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("binary.dat", bytes(range(256)) * 8, "binary data"),
        ("empty.txt", b"", "the file is empty"),
        ("scan.pdf", b"%PDF-1.5\n%\xb5\xed\xae\xfb\n", "PDF text extraction is not supported"),
        ("feed.rss", samples.HTML_ID.encode(), "not an RSS or Atom feed"),
        ("ads.txt", b"Loading...\nADVERTISEMENT\n", "no text left"),
    ],
    ids=["binary", "empty", "pdf", "not-a-feed", "only-boilerplate"],
)
def test_a_bad_single_file_exits_2_naming_the_problem_and_stores_nothing(
    data: Path, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    result = ingest(data, write(tmp_path, name, content))
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert reports(data) == []
    assert blob_count(data) == 0


def test_a_file_over_the_attachment_limit_is_refused(data: Path, tmp_path: Path) -> None:
    path = write(tmp_path, "huge.txt", (samples.TEXT_EN + "\n") * 100)
    result = ingest(data, path, env={"BICES_MAX_ATTACHMENT_BYTES": "5000"})
    assert result.exit_code == 2
    assert "bytes is over the limit of 5000 bytes" in result.stderr
    assert reports(data) == []


def test_latin1_and_utf16_files_are_decoded(data: Path, tmp_path: Path) -> None:
    text = "Delegasi tiba di Séoul\n\nDelegasi tiba di Séoul pada hari Selasa, kata pejabat itu."
    folder = tmp_path / "encodings"
    write(folder, "latin1.txt", text.encode("latin-1"))
    write(folder, "utf16.txt", text.encode("utf-16"))
    ingest_json(data, folder)
    assert [r["title"] for r in reports(data)] == ["Delegasi tiba di Séoul"] * 2


def test_a_folder_over_the_file_count_is_refused_before_anything_is_read(
    data: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "many"
    for index in range(3):
        write(folder, f"{index}.txt", samples.TEXT_EN)
    result = ingest(data, folder, "--max-files", "2")
    assert result.exit_code == 2
    assert "holds more than 2 files" in result.stderr
    assert reports(data) == []


def test_a_big_folder_goes_in_chunks_of_the_batch_limit(data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "chunks"
    for index in range(5):
        write(folder, f"{index}.txt", f"Laporan nomor {index}\n\nKapal ke-{index} tiba di Busan.")
    summary = ingest_json(data, folder, env={"BICES_MAX_BATCH": "2"})
    assert len(summary["stored"]) == 5
    assert len(reports(data)) == 5


def test_a_feed_over_the_batch_limit_is_refused_whole_not_stored_in_part(
    data: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "feeds"
    write(folder, "a.txt", samples.TEXT_EN)
    write(folder, "z.rss", samples.RSS)  # three entries: more than one chunk holds
    result = ingest(data, folder, env={"BICES_MAX_BATCH": "2"})
    assert result.exit_code == 1, result.output
    assert "stored 1 report(s) from 1 of 2 input(s)" in result.stdout
    assert "over the batch limit of 2 reports" in result.stderr
    assert [r["title"] for r in reports(data)] == ["Launch reported off the east coast"]
    assert blob_count(data) == 1  # nothing of the feed


def test_missing_path_user_or_label_exits_2_before_anything_is_read(
    data: Path, tmp_path: Path
) -> None:
    path = write(tmp_path, "a.txt", samples.TEXT_EN)
    missing = ingest(data, tmp_path / "nowhere")
    assert missing.exit_code == 2 and "no such file or folder" in missing.stderr
    as_user = ["--data", str(data), "ingest", str(path), "--user", "usa.collector"]
    bad_label = runner.invoke(app, [*as_user, "--classification", "TOP", "--rel", "NATO"])
    assert bad_label.exit_code == 2 and "unknown classification 'TOP'" in bad_label.stderr
    not_own = runner.invoke(app, [*as_user, "--classification", "PUBLIC", "--rel", "KOR"])
    assert not_own.exit_code == 2 and "USA" in not_own.stderr
    nobody = runner.invoke(
        app, ["--data", str(data), "ingest", str(path), "--user", "ghost", *LABEL]
    )
    assert nobody.exit_code == 2 and "ghost" in nobody.stderr
    assert reports(data) == []


# -- URLs (served on 127.0.0.1 by the test) ----------------------------------------------------


def test_an_html_page_by_url(data: Path) -> None:
    pages = {"/berita/korsel-nato.html": Page(samples.HTML_ID.encode())}
    with serve(pages) as site:
        summary = ingest_json(data, f"{site.base_url}/berita/korsel-nato.html", LOCAL)
        assert site.requests == ["/berita/korsel-nato.html"]
    [report] = reports(data)
    assert report["title"] == "Korea Selatan dan NATO perkuat kerja sama pertahanan siber"
    assert report["source"]["name"] == "127.0.0.1"
    assert report["language"] == "id"
    assert report["attachments"][0]["name"] == "korsel-nato.html"
    assert report["attachments"][0]["media_type"] == "text/html"
    assert summary["stored"][0]["original"].endswith("/berita/korsel-nato.html")


def test_a_feed_by_url_gives_a_report_per_entry(data: Path) -> None:
    pages = {"/rss": Page(samples.RSS.encode(), "application/rss+xml; charset=utf-8")}
    with serve(pages) as site:
        summary = ingest_json(data, f"{site.base_url}/rss", LOCAL)
    assert len(summary["stored"]) == 3
    assert {r["source"]["name"] for r in reports(data)} == {"pertahanan.example"}


def test_a_redirect_is_followed(data: Path) -> None:
    pages = {
        "/old": Page(b"", status=301, headers={"Location": "/new.txt"}),
        "/new.txt": Page(samples.TEXT_EN.encode(), "text/plain"),
    }
    with serve(pages) as site:
        ingest_json(data, f"{site.base_url}/old", LOCAL)
    assert reports(data)[0]["attachments"][0]["name"] == "new.txt"


@pytest.mark.parametrize(
    ("path", "page", "message"),
    [
        ("/missing", None, "the server answered 404"),
        ("/big", Page(b"x" * 6000, "text/plain"), "over the limit of 5000 bytes"),
        ("/fake-feed", Page(b"Hanya teks biasa.", "application/rss+xml"), "not an RSS or Atom"),
        ("/image", Page(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"), "not text"),
        ("/nul", Page("Caf\u00e9 in Seoul".encode("utf-16-le")[:-1], "text/plain"), "NUL bytes"),
    ],
    ids=["404", "too-big", "not-a-feed", "image", "broken-utf16"],
)
def test_a_bad_url_exits_2_and_stores_nothing(
    data: Path, path: str, page: Page | None, message: str
) -> None:
    pages = {} if page is None else {path: page}
    with serve(pages) as site:
        result = ingest(
            data, f"{site.base_url}{path}", LOCAL, env={"BICES_MAX_ATTACHMENT_BYTES": "5000"}
        )
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert reports(data) == []


def test_an_unreachable_url_exits_2(data: Path) -> None:
    with serve({}) as site:
        base = site.base_url
    result = ingest(data, f"{base}/gone", "--timeout", "2", LOCAL)  # the server has stopped
    assert result.exit_code == 2
    assert "cannot be fetched" in result.stderr


def test_only_http_urls_are_fetched(data: Path) -> None:
    result = ingest(data, "ftp://127.0.0.1/file.txt")
    assert result.exit_code == 2
    assert "only http:// and https:// URLs can be fetched" in result.stderr


# -- what a URL may reach, and for how long ------------------------------------------------------


def test_a_loopback_url_is_refused_without_allow_private(data: Path) -> None:
    with serve({"/secret": Page(b"internal only", "text/plain")}) as site:
        result = ingest(data, f"{site.base_url}/secret")
        assert site.requests == []  # refused before anything was sent
    assert result.exit_code == 2, result.output
    assert "127.0.0.1, a loopback address" in result.stderr
    assert "--allow-private" in result.stderr
    assert reports(data) == []


def test_a_redirect_to_a_loopback_address_is_refused(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A public feed (here 127.0.0.2, taken as public) redirecting to cloud metadata or a
    service on the node's own host (here 127.0.0.1) is not followed."""
    real = sources.address_kind
    monkeypatch.setattr(
        sources, "address_kind", lambda a: None if str(a) == "127.0.0.2" else real(a)
    )
    with serve({"/secret": Page(b"internal only", "text/plain")}) as inside:
        moved = Page(b"", status=302, headers={"Location": f"{inside.base_url}/secret"})
        with serve({"/feed": moved}, host="127.0.0.2") as outside:
            result = ingest(data, f"{outside.base_url}/feed")
            assert outside.requests == ["/feed"]
        assert inside.requests == []
    assert result.exit_code == 2, result.output
    assert f"redirected to {inside.base_url}/secret" in result.stderr
    assert "a loopback address" in result.stderr
    assert reports(data) == []


def test_the_request_goes_to_the_address_checked_under_the_host_name(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """feed.example resolves (here) to 127.0.0.2, taken as public, then to 127.0.0.1: the
    request goes to the address that was checked, whatever a second lookup would say (DNS
    rebinding), with the host name in the Host header."""
    real = sources.address_kind
    monkeypatch.setattr(
        sources, "address_kind", lambda a: None if str(a) == "127.0.0.2" else real(a)
    )
    lookups: list[str] = []
    real_lookup = socket.getaddrinfo

    def lookup(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "feed.example":
            return real_lookup(host, port, *args, **kwargs)
        lookups.append(host)
        address = "127.0.0.2" if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    page = Page(samples.TEXT_EN.encode(), "text/plain")
    with serve({"/a.txt": page}, "127.0.0.2") as site:
        port = site.base_url.rsplit(":", 1)[1]
        ingest_json(data, f"http://feed.example:{port}/a.txt")
        assert site.request_headers[0]["Host"] == f"feed.example:{port}"
    assert lookups == ["feed.example"]  # looked up once, by the check; never again
    [report] = reports(data)
    assert report["source"]["name"] == "feed.example"


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    assert sources.address_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.timeout(30)
def test_the_timeout_bounds_the_whole_fetch(data: Path) -> None:
    """A server that sends a byte just before each socket timeout is cut off at --timeout."""
    slow = Page(samples.TEXT_EN.encode(), "text/plain", dribble_s=0.3)
    with serve({"/slow.txt": slow}) as site:
        result = ingest(data, f"{site.base_url}/slow.txt", "--timeout", "1", LOCAL)
    assert result.exit_code == 2, result.output
    assert "no complete answer within 1 s" in result.stderr
    assert reports(data) == []


def test_a_compressed_body_is_refused_not_inflated(data: Path) -> None:
    packed = gzip.compress(b"Kapal tiba di Busan pada hari Senin. " * 2000)  # 74 kB of text
    page = Page(packed, "text/plain", headers={"Content-Encoding": "gzip"})
    with serve({"/a.txt": page}) as site:
        result = ingest(data, f"{site.base_url}/a.txt", LOCAL)
        assert site.request_headers[0]["Accept-Encoding"] == "identity"
    assert result.exit_code == 2, result.output
    assert "gzip-encoded body, which was not asked for" in result.stderr
    assert reports(data) == []
