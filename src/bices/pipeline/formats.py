"""What a collected document is (plain text, an HTML page, an RSS or Atom feed) and the
articles in it: title, cleaned text, language hint, publication date, where it came from.

Binary files, PDFs, undecodable text and feeds that are not feeds are refused with a
message naming the problem; nothing here writes anything.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit
from xml.sax import SAXParseException

import charset_normalizer
import feedparser

from bices.domain.errors import InvalidInput, TooLarge
from bices.pipeline.clean import clean, normalise
from bices.pipeline.sources import Original

MAX_BODY_CHARS = 1_000_000  # what a report body holds (ReportDraft.body)
MAX_TITLE_CHARS = 500
SNIFF_BYTES = 4096

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
FEED_TYPES = frozenset({"application/rss+xml", "application/atom+xml", "application/rdf+xml"})
XML_TYPES = frozenset({"application/xml", "text/xml"})
TEXT_TYPES = frozenset({"text/plain", "text/markdown"})
ACCEPTED_TYPES = HTML_TYPES | FEED_TYPES | XML_TYPES | TEXT_TYPES
EXTENSION_KIND = {
    ".html": "html", ".htm": "html", ".xhtml": "html",
    ".rss": "feed", ".atom": "feed", ".xml": "feed", ".rdf": "feed",
    ".txt": "text", ".text": "text", ".md": "text",
}  # fmt: skip

# Leading bytes of formats we cannot read as text, with the name we give them.
MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive (or a DOCX, XLSX or ODT document)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office document"),
    (b"\x7fELF", "an executable"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"OggS", "an Ogg audio or video file"),
    (b"RIFF", "a RIFF audio, video or image file"),
    (b"ID3", "an MP3 audio file"),
)
BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE, whose BOM is its prefix
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Codecs that Python calls text encodings but that no document is written in: decoding with
# them fails on any non-ASCII byte (undefined, idna, punycode) or reads escape sequences.
NOT_CHARSETS = frozenset({"undefined", "idna", "punycode", "unicode-escape", "raw-unicode-escape",
                          "utf-7"})  # fmt: skip
HTML_LANG = re.compile(r"<html\b[^<>]*?\blang\s*=\s*[\"']?([A-Za-z]{2,3})\b", re.IGNORECASE)
META_CHARSET = re.compile(rb"<meta[^<>]+charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)
XML_ENCODING = re.compile(rb"^<\?xml[^>]*encoding\s*=\s*[\"']([\w.:-]+)", re.IGNORECASE)
FEED_ROOT = re.compile(r"<(rss|feed|rdf:RDF)\b", re.IGNORECASE)
HTML_ROOT = re.compile(r"<(!doctype\s+html|html|head|body)\b", re.IGNORECASE)
LEADING_XML = re.compile(r"^(\s|<\?xml[^>]*\?>|<!--.*?-->|<!DOCTYPE[^>]*>)*", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Document:
    """One article found in an original: a file, a page, or one entry of a feed."""

    title: str
    text: str
    language_hint: str | None  # as the document declares it (html lang, feed language)
    published: datetime | None
    location: str  # the article's URL if known, else the original's location
    site: str  # the site or the file it came from: the report's source name
    original: Original
    media_type: str  # of the original, as detected


def documents(original: Original, max_documents: int | None = None) -> list[Document]:
    """The articles in an original, or `InvalidInput` naming why there are none; a feed
    with more than `max_documents` articles is refused (`TooLarge`) as soon as it shows."""
    if not original.data.strip():
        raise InvalidInput(f"{original.location}: the file is empty")
    refuse_binary(original)
    text = decode(original)
    if not text.strip():
        raise InvalidInput(f"{original.location}: the file holds only white space")
    kind = kind_of(original, text)
    if kind == "feed":
        return feed_documents(original, max_documents)
    if kind == "html":
        return [html_document(original, text)]
    return [text_document(original, text)]


# -- what it is --------------------------------------------------------------------------


def refuse_binary(original: Original) -> None:
    data = original.data
    if data.startswith(b"%PDF-") or original.media_type == "application/pdf":
        raise InvalidInput(
            f"{original.location}: a PDF document; PDF text extraction is not supported yet, "
            "convert it to text or HTML first"
        )
    for magic, what in MAGIC:
        if data.startswith(magic):
            raise InvalidInput(f"{original.location}: {what}, not text")
    if original.media_type is not None and original.media_type.startswith(
        ("image/", "audio/", "video/", "font/")
    ):
        raise InvalidInput(f"{original.location}: {original.media_type}, not text")


def decode(original: Original) -> str:
    """The text of an original: by its byte-order mark, as UTF-16 without one, as UTF-8,
    in its declared charset, or by charset detection; refusing what reads as binary."""
    data = original.data
    for bom, encoding in BOMS:
        if data.startswith(bom):
            try:
                return _checked_text(original, data[len(bom) :].decode(encoding), encoding)
            except UnicodeDecodeError as error:
                raise InvalidInput(
                    f"{original.location}: starts with a {encoding} byte-order mark but is "
                    f"not valid {encoding} (byte {error.start})"
                ) from None
    utf16 = _bomless_utf16(data)
    if utf16 is not None:
        try:
            return _checked_text(original, data.decode(utf16), utf16)
        except UnicodeDecodeError:
            pass
    if b"\x00" in data[:SNIFF_BYTES]:
        raise InvalidInput(f"{original.location}: binary data (NUL bytes), not text")
    # Strict UTF-8 first: text in another charset is seldom valid UTF-8 by chance, while
    # pages that declare the wrong charset are common.
    try:
        return _checked_text(original, data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    declared = original.charset or _declared_in_document(data)
    if declared:
        encoding = text_encoding(declared, original.location)
        try:
            return _checked_text(original, data.decode(encoding), encoding)
        except (LookupError, UnicodeError, ValueError):
            pass  # not in the charset it declares: let detection try
    best = charset_normalizer.from_bytes(data).best()
    if best is None or best.encoding is None:
        raise InvalidInput(
            f"{original.location}: not text in any character encoding we can recognise"
        )
    return _checked_text(original, str(best), best.encoding)


def text_encoding(charset: str, location: str) -> str:
    """The Python codec for a declared charset, or `InvalidInput` naming the charset when it
    is unknown or not an encoding documents are written in."""
    try:
        codec = codecs.lookup(charset)
    except (LookupError, ValueError):
        codec = None
    if codec is None or not codec._is_text_encoding or codec.name in NOT_CHARSETS:
        raise InvalidInput(
            f"{location}: charset {charset[:60]!r} is not a character encoding we can read; "
            "declare the real one (e.g. utf-8) or none"
        )
    return codec.name


def _declared_in_document(data: bytes) -> str | None:
    head = data[:SNIFF_BYTES]
    found = XML_ENCODING.search(head) or META_CHARSET.search(head)
    return found.group(1).decode("ascii", "replace").lower() if found else None


def _bomless_utf16(data: bytes) -> str | None:
    """UTF-16 without a byte-order mark shows as NUL in every other byte of Latin text."""
    sample = data[: SNIFF_BYTES - SNIFF_BYTES % 2]
    if len(sample) < 8:
        return None
    even = sample[0::2].count(0) / (len(sample) / 2)
    odd = sample[1::2].count(0) / (len(sample) / 2)
    if odd > 0.3 and even < 0.05:
        return "utf-16-le"
    if even > 0.3 and odd < 0.05:
        return "utf-16-be"
    return None


def _checked_text(original: Original, text: str, encoding: str) -> str:
    """Refuse decoded text that is mostly control characters: binary that happened to
    decode."""
    sample = text[:SNIFF_BYTES]
    control = sum(1 for c in sample if ord(c) < 32 and c not in "\t\n\r\f\v")
    if sample and control / len(sample) > 0.02:
        raise InvalidInput(
            f"{original.location}: binary data ({control} control characters in the first "
            f"{len(sample)} read as {encoding}), not text"
        )
    return text


def kind_of(original: Original, text: str) -> str:
    """``feed``, ``html`` or ``text``: what the bytes look like, and where the declared
    media type or the file name say feed, the bytes must be one."""
    declared = _declared_kind(original)
    head = LEADING_XML.sub("", text[:SNIFF_BYTES], count=1)[:512]
    if FEED_ROOT.match(head):
        return "feed"
    if HTML_ROOT.match(head):
        if declared == "feed":
            raise InvalidInput(f"{original.location}: not an RSS or Atom feed (it is an HTML page)")
        return "html"
    if declared == "feed" or (head.startswith("<") and text.lstrip().startswith("<?xml")):
        return "feed"  # feedparser decides, and refuses with a reason
    if declared == "html" or HTML_ROOT.search(text[:SNIFF_BYTES]):
        return "html"
    return "text"


def _declared_kind(original: Original) -> str | None:
    media_type = original.media_type
    if media_type in HTML_TYPES:
        return "html"
    if media_type in FEED_TYPES:
        return "feed"
    if media_type in TEXT_TYPES:
        return "text"
    return EXTENSION_KIND.get(PurePosixPath(original.name).suffix.lower())


# -- plain text ---------------------------------------------------------------------------


def text_document(original: Original, text: str) -> Document:
    """A text file: its first line is the title when it is short, the rest is the text."""
    lines = normalise(text).strip().split("\n")
    first, rest = lines[0], "\n".join(lines[1:])
    titled = (
        len(first) <= 200
        and clean(first, web=False).text == first
        and bool(clean(rest, web=False).text)
    )
    body = _body(original, rest if titled else "\n".join(lines), web=False)
    title = first if titled else ""
    return Document(
        title=_title(title or body),
        text=body,
        language_hint=None,
        published=None,
        location=original.location,
        site=original.site or original.name,
        original=original,
        media_type="text/plain",
    )


# -- HTML --------------------------------------------------------------------------------


def html_document(original: Original, text: str) -> Document:
    """An HTML page: the article as trafilatura extracts it, then cleaned of the
    boilerplate it left; title, date and site from the page's metadata."""
    try:
        import trafilatura
    except ImportError as error:  # e.g. justext needs lxml_html_clean with lxml >= 5.2
        raise InvalidInput(
            f"{original.location}: HTML pages need the trafilatura package, which cannot be "
            f"imported here ({error})"
        ) from None
    url = original.location if original.site else None
    try:
        extracted = trafilatura.bare_extraction(
            text,
            url=url,
            include_comments=False,
            include_tables=True,
            with_metadata=True,
            date_extraction_params={"original_date": True, "extensive_search": False,
                                    "max_date": datetime.now(UTC).strftime("%Y-%m-%d")},
        )  # fmt: skip
    except Exception as error:  # a parser's failure on hostile markup is bad input, not ours
        raise InvalidInput(f"{original.location}: the HTML cannot be parsed ({error})") from None
    if not isinstance(extracted, trafilatura.settings.Document) or not extracted.text:
        raise InvalidInput(f"{original.location}: no article text found in the HTML page")
    lines = extracted.text.split("\n")
    if extracted.title and lines[0].strip() == extracted.title.strip():
        lines.pop(0)  # the page's heading repeats its title
    body = _body(original, "\n".join(lines))
    lang = HTML_LANG.search(text[: SNIFF_BYTES * 4])
    site = original.site or _host(extracted.url) or extracted.hostname or original.name
    return Document(
        title=_title(extracted.title or body),
        text=body,
        language_hint=lang.group(1).lower() if lang else None,
        published=_day(extracted.date),
        location=original.location,
        site=_site_name(site),
        original=original,
        media_type="text/html",
    )


class _TextOfHtml(HTMLParser):
    """The text of an HTML fragment (a feed entry), a line break at each block."""

    BLOCKS = frozenset(
        ("p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
         "section", "article", "ul", "ol", "table", "pre")
    )  # fmt: skip
    SKIP = frozenset({"script", "style", "noscript", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def text_of_html(fragment: str) -> str:
    if "<" not in fragment and "&" not in fragment:
        return fragment
    parser = _TextOfHtml()
    try:
        parser.feed(fragment)
        parser.close()
    except Exception:  # html.parser gives up on a few malformed declarations
        return re.sub(r"<[^<>]*>", " ", fragment)
    return "".join(parser.parts)


# -- feeds -------------------------------------------------------------------------------


def feed_documents(original: Original, max_documents: int | None = None) -> list[Document]:
    """Each entry of an RSS or Atom feed; the whole feed is every entry's original. More
    than `max_documents` articles are refused (`TooLarge`) before the rest are read."""
    charset = ""
    if original.charset:  # decode() has checked it, unless the feed is valid UTF-8
        with contextlib.suppress(InvalidInput):
            charset = "; charset=" + text_encoding(original.charset, original.location)
    headers = {
        "content-location": original.location,
        "content-type": (original.media_type or "application/xml") + charset,
    }
    try:
        # Bytes in a stream: feedparser never takes them for a URL or a file name to open.
        parsed = feedparser.parse(io.BytesIO(original.data), response_headers=headers)
    except Exception as error:  # feedparser means not to raise; hostile input may still
        raise InvalidInput(f"{original.location}: not an RSS or Atom feed ({error})") from None
    version = str(parsed.get("version") or "")
    entries: list[Any] = list(parsed.get("entries") or [])
    if not version:
        problem = parsed.get("bozo_exception")
        why = (
            f"the XML is not well-formed: {_first_line(problem.getMessage())}"
            if isinstance(problem, SAXParseException)
            else "no <rss>, <feed> or <rdf:RDF> document"
        )
        raise InvalidInput(f"{original.location}: not an RSS or Atom feed ({why})")
    if not entries:
        raise InvalidInput(f"{original.location}: the feed holds no entries")
    feed = parsed.get("feed") or {}
    media_type = "application/atom+xml" if version.startswith("atom") else "application/rss+xml"
    feed_site = original.site or _host(feed.get("link")) or original.name
    language = _language_tag(feed.get("language"))
    found: list[Document] = []
    for index, entry in enumerate(entries):
        title = normalise(text_of_html(str(entry.get("title") or ""))).replace("\n", " ")
        content = entry.get("content") or []
        raw = str(content[0].get("value") or "") if content else ""
        raw = raw or str(entry.get("summary") or entry.get("description") or "")
        body = clean(text_of_html(raw)).text
        if not title.strip() and not body:
            continue  # an entry without a title or text is not an article
        if max_documents is not None and len(found) >= max_documents:
            raise TooLarge(
                f"{original.location}: the feed holds more than {max_documents} articles, "
                f"over the batch limit of {max_documents} reports; split the feed"
            )
        if len(body) > MAX_BODY_CHARS:
            raise InvalidInput(
                f"{original.location}: entry {index + 1} holds {len(body)} characters of "
                f"text; a report holds at most {MAX_BODY_CHARS}"
            )
        link = str(entry.get("link") or "")
        found.append(
            Document(
                title=_title(title.strip() or body),
                text=body or title.strip(),
                language_hint=_language_tag(entry.get("language")) or language,
                published=_struct_time(entry.get("published_parsed") or
                                       entry.get("updated_parsed")),
                location=link or f"{original.location}#entry-{index + 1}",
                site=_site_name(_host(link) or feed_site),
                original=original,
                media_type=media_type,
            )
        )  # fmt: skip
    if not found:
        raise InvalidInput(f"{original.location}: no entry of the feed has a title or text")
    return found


# -- helpers -----------------------------------------------------------------------------


def _body(original: Original, text: str, web: bool = True) -> str:
    body = clean(text, web).text
    if not body:
        raise InvalidInput(f"{original.location}: no text left once web boilerplate is removed")
    if len(body) > MAX_BODY_CHARS:
        raise InvalidInput(
            f"{original.location}: {len(body)} characters of text; a report holds at most "
            f"{MAX_BODY_CHARS}"
        )
    return body


def _title(text: str) -> str:
    """A title from a line of text, shortened at a word boundary to what a report holds."""
    line = next((line for line in text.split("\n") if line.strip()), "").strip()
    if len(line) <= MAX_TITLE_CHARS:
        return line
    cut = line[: MAX_TITLE_CHARS - 1].rsplit(" ", 1)[0]
    return cut + "…"


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0][:300]


def _host(url: object) -> str | None:
    if not isinstance(url, str) or not url:
        return None
    try:
        return urlsplit(url).hostname or None
    except ValueError:
        return None


def _site_name(site: str) -> str:
    """``www.example.org`` → ``example.org``; at most the 200 characters a source name holds."""
    return site.removeprefix("www.")[:200] or "unknown"


def _language_tag(value: object) -> str | None:
    """``id-ID`` → ``id``; None for anything that is not a language tag."""
    if not isinstance(value, str):
        return None
    found = re.match(r"^\s*([A-Za-z]{2,3})\b", value)
    return found.group(1).lower() if found else None


def _struct_time(value: object) -> datetime | None:
    """feedparser's UTC `time.struct_time` as an aware datetime."""
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except ValueError:
        return None


def _day(value: str | None) -> datetime | None:
    """A ``YYYY-MM-DD`` publication date as midnight UTC."""
    if not value:
        return None
    try:
        return datetime.strptime(value[:10], "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None
