"""What a collected document is and the articles in it; bad input is refused by name."""

from __future__ import annotations

import codecs
from datetime import UTC, datetime

import pytest

from bices.domain.errors import InvalidInput, TooLarge
from bices.exploit.language import detect_language
from bices.pipeline import formats, ingest
from bices.pipeline.clean import Cleaned
from bices.pipeline.formats import documents, text_of_html
from bices.pipeline.ingest import language_of
from bices.pipeline.sources import Original
from tests import ingest_samples as samples


def original(name: str, data: bytes | str, media_type: str | None = None) -> Original:
    raw = data.encode() if isinstance(data, str) else data
    return Original(location=name, name=name, data=raw, media_type=media_type)


def test_plain_text_first_line_is_the_title() -> None:
    [doc] = documents(original("launch.txt", samples.TEXT_EN))
    assert doc.title == "Launch reported off the east coast"
    assert doc.text.startswith("Coastal observers reported")
    # Plain text is not a web page: its "X: ..." lines are kept, whatever they look like.
    assert doc.text.endswith("Read more: Earlier launches this year\nPhoto: Coastal Guard handout")
    assert doc.site == "launch.txt"
    assert doc.media_type == "text/plain"
    assert doc.published is None


def test_a_single_line_of_text_is_title_and_text() -> None:
    [doc] = documents(original("one.txt", "Kapal latihan tiba di Busan pada hari Senin."))
    assert doc.title == doc.text == "Kapal latihan tiba di Busan pada hari Senin."


def test_html_page_article_metadata_and_no_boilerplate() -> None:
    [doc] = documents(original("korsel-nato.html", samples.HTML_ID))
    assert doc.title == "Korea Selatan dan NATO perkuat kerja sama pertahanan siber"
    for kept in samples.HTML_ID_KEPT:
        assert kept in " ".join(doc.text.split())
    for gone in samples.HTML_ID_GONE:
        assert gone not in doc.text, gone
    assert doc.language_hint == "id"
    assert doc.published == datetime(2024, 7, 11, tzinfo=UTC)
    assert doc.site == "wartanusantara.example"  # from the page's own URL, not the file
    assert doc.media_type == "text/html"


def test_html_is_recognised_without_an_extension() -> None:
    [doc] = documents(original("download", samples.HTML_ID))
    assert doc.media_type == "text/html"


def test_rss_feed_gives_one_document_per_item() -> None:
    docs = documents(original("berita.rss", samples.RSS))
    assert [d.title for d in docs] == [
        "Korea Utara kembali meluncurkan rudal balistik",
        "Menhan bertemu mitra dari Australia",
        "Latihan gabungan digelar di Natuna",
    ]
    first = docs[0]
    assert first.location == "https://pertahanan.example/berita/rudal-1"
    assert first.published == datetime(2023, 7, 12, 1, 24, tzinfo=UTC)
    assert first.site == "pertahanan.example"
    assert first.language_hint == "id"
    assert "Baca juga" not in first.text and "<p>" not in first.text
    assert all(d.original.data == samples.RSS.encode() for d in docs)
    assert {d.media_type for d in docs} == {"application/rss+xml"}


def test_atom_feed_gives_one_document_per_entry() -> None:
    docs = documents(original("newsroom.xml", samples.ATOM))
    assert [d.title for d in docs] == [
        "Partners agree on cyber defence cooperation",
        "Summit statement on emerging technologies",
    ]
    assert docs[0].text.startswith("Allied and partner ministers agreed")
    assert "Share on Facebook" not in docs[0].text
    assert docs[1].published == datetime(2024, 7, 11, 10, 30, tzinfo=UTC)  # updated, no published
    assert {d.media_type for d in docs} == {"application/atom+xml"}
    assert docs[0].language_hint == "en"


# -- encodings -------------------------------------------------------------------------------

LATIN_TEXT = (
    "Delegasi tiba di Séoul\n\nDelegasi menteri pertahanan tiba di Séoul pada hari Selasa untuk "
    "membahas kerja sama, kata pejabat itu. Pertemuan lanjutan diadakan di kafé dekat markas."
)


@pytest.mark.parametrize(
    "encoding", ["latin-1", "cp1252", "utf-16", "utf-16-le", "utf-16-be", "utf-8-sig", "utf-32"]
)
def test_text_in_other_encodings_is_decoded_correctly(encoding: str) -> None:
    [doc] = documents(original("seoul.txt", LATIN_TEXT.encode(encoding)))
    assert doc.title == "Delegasi tiba di Séoul"
    assert "kafé dekat markas" in doc.text


def test_declared_charset_is_honoured() -> None:
    data = "Kunjungan ke Jeju\n\nMenteri mengunjungi pangkalan di Jeju pada hari Rabu.".encode(
        "cp1252"
    )
    raw = Original("upload.txt", "upload.txt", data, "text/plain", "windows-1252")
    assert documents(raw)[0].title == "Kunjungan ke Jeju"


def test_html_meta_charset_is_honoured() -> None:
    page = samples.HTML_ID.replace('charset="utf-8"', 'charset="iso-8859-1"').replace(
        "Kamis", "Kamis di caf\u00e9"
    )
    [doc] = documents(original("page.html", page.encode("latin-1")))
    assert "café" in doc.text


@pytest.mark.parametrize("charset", ["undefined", "idna", "punycode", "utf-7", "base64", "no-such"])
def test_a_declared_charset_that_is_no_text_encoding_is_refused_by_name(charset: str) -> None:
    data = "Kunjungan ke Jeju\n\nMenteri tiba di Jeju pada hari Rabu.".encode("cp1252") + b"\xe9"
    raw = Original("upload.txt", "upload.txt", data, "text/plain", charset)
    with pytest.raises(InvalidInput, match=f"charset '{charset}' is not a character encoding"):
        documents(raw)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("page.html", b'<html><head><meta charset="undefined"></head><body><p>Caf\xe9</p>'),
        ("feed.rss", b'<?xml version="1.0" encoding="idna"?><rss version="2.0"><channel>'
         b"<item><title>Caf\xe9</title></item></channel></rss>"),
    ],
    ids=["html-meta", "xml-declaration"],
)  # fmt: skip
def test_a_charset_declared_in_the_document_is_checked_too(name: str, data: bytes) -> None:
    with pytest.raises(InvalidInput, match="is not a character encoding"):
        documents(original(name, data))


def test_a_utf8_feed_with_a_bogus_declared_charset_is_read() -> None:
    """UTF-8 is tried first; a bogus charset it makes moot does not reach feedparser."""
    raw = Original("news.rss", "news.rss", samples.RSS.encode(), "application/rss+xml", "undefined")
    assert len(documents(raw)) == 3


def test_a_bom_that_lies_is_refused() -> None:
    with pytest.raises(InvalidInput, match="utf-8 byte-order mark but is not valid utf-8"):
        documents(original("lie.txt", codecs.BOM_UTF8 + b"abc \xff\xfe\xfa def"))


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.txt", b"", "the file is empty"),
        ("blank.txt", b"  \n\t\n", "the file is empty"),
        ("report.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF text extraction"),
        ("photo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a PNG image, not text"),
        ("photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF", "a JPEG image, not text"),
        ("files.zip", b"PK\x03\x04\x14\x00\x00\x00", "ZIP archive"),
        ("blob.dat", bytes(range(256)) * 16, "binary data"),
        ("ads.txt", b"Loading...\nADVERTISEMENT\n", "no text left"),
        ("news.rss", b"this is plain text, not a feed at all", "not an RSS or Atom feed"),
        ("news.atom", samples.HTML_ID.encode(), "not an RSS or Atom feed (it is an HTML page)"),
        ("data.xml", b'<?xml version="1.0"?><catalog><book>x</book></catalog>', "no <rss>"),
        ("feed.xml", b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>"
         b"</channel></rss>", "the feed holds no entries"),
        ("ctl.rss", b'<?xml version="1.0"?>\n<rss><channel>\x01\x02</rss>', "binary data"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_naming_the_problem(name: str, data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        documents(original(name, data))
    assert message in str(refused.value)
    assert str(refused.value).startswith(f"{name}: ")


def test_declared_feed_media_type_must_be_a_feed() -> None:
    with pytest.raises(InvalidInput, match="not an RSS or Atom feed"):
        documents(original("upload", samples.TEXT_EN, "application/rss+xml"))


def test_html_without_article_text_is_refused() -> None:
    page = "<html><body><nav>Home | News</nav><script>var x = 1;</script></body></html>"
    with pytest.raises(InvalidInput, match=r"page\.html: no"):
        documents(original("page.html", page))


# -- helpers ---------------------------------------------------------------------------------


def test_text_of_html_breaks_lines_at_blocks_and_skips_scripts() -> None:
    html = "<p>Satu &amp; dua</p><script>alert(1)</script><ul><li>tiga</li><li>empat</li></ul>"
    assert [line for line in text_of_html(html).split("\n") if line] == [
        "Satu & dua",
        "tiga",
        "empat",
    ]


def test_language_tells_english_from_indonesian() -> None:
    assert language_of(samples.TEXT_EN) == "en"
    assert language_of(samples.TEXT_ID, hint="en") == "id"  # the text wins over the hint
    assert language_of(samples.TEXT_ID) == detect_language(samples.TEXT_ID) == "id"


def test_where_the_text_says_nothing_the_declaration_decides() -> None:
    assert language_of("12345", hint="ja") == "ja"
    assert language_of("12345", hint="zz") == "und"  # not a language code
    assert language_of("12345") == "und"


def test_language_is_the_engines_when_it_tells(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "detect_language", {"Seoul 2024": "ko"}.__getitem__)
    assert language_of("Seoul 2024", hint="en") == "ko"


# -- plain-text field reports ---------------------------------------------------------------


def test_a_salute_report_comes_through_whole() -> None:
    [doc] = documents(original("salute-0412.txt", samples.SALUTE_EN))
    lines = samples.SALUTE_EN.strip().split("\n")
    assert doc.title == lines[0]
    assert doc.text.split("\n") == lines[1:]


def test_an_indonesian_report_comes_through_whole() -> None:
    [doc] = documents(original("laporan.txt", samples.LAPORAN_ID))
    lines = samples.LAPORAN_ID.strip().split("\n")
    assert doc.title == lines[0]
    assert doc.text.split("\n") == lines[1:]
    assert "Laporan: Pergerakan kapal tak dikenal di perairan Natuna" in doc.text


def test_the_same_lines_in_a_web_page_are_still_cleaned() -> None:
    page = (
        "<html><body><article><h1>Latihan di Natuna</h1>"
        "<p>Ribuan prajurit mengikuti latihan gabungan di Kepulauan Natuna selama dua minggu, "
        "kata juru bicara tentara pada hari Jumat.</p>"
        "<p>Editor: Rina Wulandari</p><p>Topics: maritim, latihan</p></article></body></html>"
    )
    [doc] = documents(original("natuna.html", page))
    assert "Ribuan prajurit" in doc.text
    assert "Editor:" not in doc.text and "Topics:" not in doc.text


# -- feeds over the batch limit -------------------------------------------------------------


def test_a_feed_over_the_limit_stops_at_the_first_article_too_many(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = "".join(
        f"<item><title>Berita {n}</title><description>Kapal ke-{n} tiba di Busan.</description>"
        "</item>"
        for n in range(500)
    )
    feed = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
    )
    cleaned: list[str] = []
    real = formats.clean

    def counting(text: str, web: bool = True) -> Cleaned:
        cleaned.append(text)
        return real(text, web)

    monkeypatch.setattr(formats, "clean", counting)
    with pytest.raises(TooLarge, match="more than 2 articles, over the batch limit of 2 reports"):
        documents(original("big.rss", feed), max_documents=2)
    assert len(cleaned) == 3  # not 500
    assert len(documents(original("big.rss", feed), max_documents=500)) == 500
