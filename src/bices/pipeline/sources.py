"""Where collected text comes from: a file, a folder of files, or an http(s) URL.

Each source yields `Original`s: the bytes exactly as collected, with what they claim to
be. Limits are checked while reading, so a huge file or response is refused before it
is held in memory, and a folder is counted before anything in it is read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

import httpx

import bices
from bices.domain.errors import InvalidInput, TooLarge

DEFAULT_MAX_FILES = 10_000
DEFAULT_TIMEOUT_S = 20.0
MAX_REDIRECTS = 5


@dataclass(frozen=True, slots=True)
class Original:
    """A collected document as received: kept whole as the report's attachment."""

    location: str  # the file path or URL it was read from
    name: str  # a file name for the attachment
    data: bytes
    media_type: str | None = None  # as declared by the server or the uploader, lower case
    charset: str | None = None  # as declared with the media type
    site: str | None = None  # host name of the URL


@dataclass(frozen=True, slots=True)
class Refusal:
    """An input that was not stored, and why."""

    location: str
    reason: str


def is_url(target: str) -> bool:
    return target.lower().startswith(("http://", "https://"))


def split_content_type(value: str | None) -> tuple[str | None, str | None]:
    """``text/html; charset=ISO-8859-1`` → (``text/html``, ``iso-8859-1``)."""
    if not value:
        return None, None
    message = Message()
    message["content-type"] = value
    media_type = message.get_content_type().lower()
    charset = message.get_param("charset")
    return media_type, charset.lower() if isinstance(charset, str) else None


# -- files and folders -------------------------------------------------------------------


def list_files(path: Path, max_files: int = DEFAULT_MAX_FILES) -> list[Path]:
    """The file itself, or every file under a folder (recursively, sorted), refusing a
    folder with more than `max_files` files. Hidden files and folders (``.git``) and
    symbolic links to folders are skipped."""
    if not path.exists():
        raise InvalidInput(f"{path}: no such file or folder")
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InvalidInput(f"{path}: not a regular file or folder")
    found: list[Path] = []
    for folder, subfolders, names in os.walk(path):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(names):
            candidate = Path(folder) / name
            if name.startswith(".") or not candidate.is_file():
                continue
            found.append(candidate)
            if len(found) > max_files:
                raise TooLarge(
                    f"{path} holds more than {max_files} files; ingest it in parts "
                    "or raise --max-files"
                )
    if not found:
        raise InvalidInput(f"{path}: the folder holds no files")
    return found


def read_file(path: Path, max_bytes: int) -> Original:
    """A file's bytes, refusing one over `max_bytes` before reading it."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise TooLarge(f"{path}: {size} bytes is over the limit of {max_bytes} bytes")
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise InvalidInput(f"{path}: cannot be read ({error.strerror or error})") from None
    if len(data) > max_bytes:  # the file grew while we looked
        raise TooLarge(f"{path}: over the limit of {max_bytes} bytes")
    return Original(location=str(path), name=path.name, data=data)


# -- URLs --------------------------------------------------------------------------------


def fetch(url: str, max_bytes: int, timeout_s: float = DEFAULT_TIMEOUT_S) -> Original:
    """GET an http(s) URL, following a few redirects, refusing a response over `max_bytes`
    (counted as it arrives) or slower than `timeout_s` per network operation."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidInput(f"{url}: only http:// and https:// URLs can be fetched")
    headers = {
        "User-Agent": f"bices/{bices.__version__} (+OSINT collection)",
        "Accept": "text/html, application/xhtml+xml, application/rss+xml, "
        "application/atom+xml, application/xml;q=0.9, text/plain;q=0.8, */*;q=0.1",
    }
    try:
        with (
            httpx.Client(
                timeout=timeout_s,
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                headers=headers,
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                raise InvalidInput(
                    f"{url}: the server answered {response.status_code} "
                    f"{response.reason_phrase}".rstrip()
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise TooLarge(f"{url}: {declared} bytes is over the limit of {max_bytes} bytes")
            data = bytearray()
            for chunk in response.iter_bytes():
                data.extend(chunk)
                if len(data) > max_bytes:
                    raise TooLarge(f"{url}: the response is over the limit of {max_bytes} bytes")
            final = response.url
            media_type, charset = split_content_type(response.headers.get("content-type"))
    except httpx.TimeoutException:
        raise InvalidInput(f"{url}: no answer within {timeout_s:g} s") from None
    except httpx.TooManyRedirects:
        raise InvalidInput(f"{url}: more than {MAX_REDIRECTS} redirects") from None
    except httpx.HTTPError as error:
        raise InvalidInput(f"{url}: cannot be fetched ({error})") from None
    return Original(
        location=str(final),
        name=url_file_name(str(final)),
        data=bytes(data),
        media_type=media_type,
        charset=charset,
        site=final.host or None,
    )


def url_file_name(url: str) -> str:
    """A file name for what a URL served: its last path segment, or the host name."""
    parts = urlsplit(url)
    segment = PurePosixPath(unquote(parts.path)).name
    return (segment or parts.hostname or "document")[:255]


def originals(
    target: str,
    max_bytes: int,
    max_files: int = DEFAULT_MAX_FILES,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> tuple[int, Iterator[Original | Refusal]]:
    """How many inputs `target` (a path or a URL) holds, and the inputs read one at a time;
    an input that cannot be read comes as a `Refusal`, so that the others still can be."""
    if is_url(target):
        return 1, iter([fetch(target, max_bytes, timeout_s)])
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]+://", target):
        raise InvalidInput(f"{target}: only http:// and https:// URLs can be fetched")
    files = list_files(Path(target), max_files)

    def read_each() -> Iterator[Original | Refusal]:
        for path in files:
            try:
                yield read_file(path, max_bytes)
            except (InvalidInput, TooLarge) as error:
                yield Refusal(str(path), str(error))

    return len(files), read_each()
