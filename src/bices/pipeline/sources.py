"""Where collected text comes from: a file, a folder of files, or an http(s) URL.

Each source yields `Original`s: the bytes exactly as collected, with what they claim to
be. Limits are checked while reading, so a huge file or response is refused before it
is held in memory, and a folder is counted before anything in it is read.

A URL is fetched only from public addresses unless the operator allows private ones: a
public feed that redirects to ``http://169.254.169.254/`` must not turn the node's cloud
metadata into an OSINT report.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

import bices
from bices.domain.errors import InvalidInput, TooLarge

log = logging.getLogger(__name__)
DEFAULT_MAX_FILES = 10_000
DEFAULT_TIMEOUT_S = 20.0  # for the whole fetch of a URL, redirects and all
MAX_REDIRECTS = 5
HEADERS = {
    "User-Agent": f"bices/{bices.__version__} (+OSINT collection)",
    "Accept": "text/html, application/xhtml+xml, application/rss+xml, "
    "application/atom+xml, application/xml;q=0.9, text/plain;q=0.8, */*;q=0.1",
    # The size limit counts the bytes kept: no compressed body that could inflate past it.
    "Accept-Encoding": "identity",
}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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


def fetch(
    url: str,
    max_bytes: int,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    allow_private: bool = False,
) -> Original:
    """GET an http(s) URL, following a few redirects, refusing a response over `max_bytes`
    (counted as it arrives), a compressed one, one from a non-public address unless
    `allow_private`, and a fetch not complete within `timeout_s` all told."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidInput(f"{url}: only http:// and https:// URLs can be fetched")
    outcome: list[Original | Exception] = []
    stop = threading.Event()

    def run() -> None:
        try:
            outcome.append(_fetch(url, max_bytes, timeout_s, allow_private, stop))
        except Exception as error:  # raised again in the caller's thread
            outcome.append(error)

    # A worker thread keeps the deadline whatever blocks: name resolution, a server that
    # sends a byte just before each socket timeout. A daemon: it never delays exiting.
    worker = threading.Thread(target=run, name="bices-fetch", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive() or not outcome:
        stop.set()  # the worker drops the response at its next chunk or socket timeout
        raise InvalidInput(f"{url}: no complete answer within {timeout_s:g} s")
    [result] = outcome
    if isinstance(result, Exception):
        raise result
    return result


def _fetch(
    url: str, max_bytes: int, timeout_s: float, allow_private: bool, stop: threading.Event
) -> Original:
    deadline = time.monotonic() + timeout_s
    try:
        current = httpx.URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            if stop.is_set():
                raise InvalidInput(f"{url}: no complete answer within {timeout_s:g} s")
            target, headers, extensions = _pinned(url, current, allow_private)
            remaining = max(deadline - time.monotonic(), 0.001)
            # A client per hop: a connection kept for one host name is never reused for
            # another that resolves to the same address.
            with (
                httpx.Client(timeout=remaining, headers=HEADERS) as client,
                client.stream("GET", target, headers=headers, extensions=extensions) as response,
            ):
                if response.is_redirect:
                    current = current.join(response.headers["location"])
                    if current.scheme not in {"http", "https"} or not current.host:
                        raise InvalidInput(f"{url}: redirected to {current}, not an http(s) URL")
                    continue
                data = _body(url, response, max_bytes, deadline, stop)
                media_type, charset = split_content_type(response.headers.get("content-type"))
                return Original(
                    location=str(current),
                    name=url_file_name(str(current)),
                    data=data,
                    media_type=media_type,
                    charset=charset,
                    site=current.host or None,
                )
    except httpx.TimeoutException:
        raise InvalidInput(f"{url}: no answer within {timeout_s:g} s") from None
    except httpx.InvalidURL as error:
        raise InvalidInput(f"{url}: not a URL that can be fetched ({error})") from None
    except httpx.HTTPError as error:
        raise InvalidInput(f"{url}: cannot be fetched ({error})") from None
    raise InvalidInput(f"{url}: more than {MAX_REDIRECTS} redirects")


def _body(
    url: str, response: httpx.Response, max_bytes: int, deadline: float, stop: threading.Event
) -> bytes:
    """The body as sent, refused when the server answered an error, compressed it anyway,
    or sends more than `max_bytes`."""
    if response.status_code >= 400:
        raise InvalidInput(
            f"{url}: the server answered {response.status_code} {response.reason_phrase}".rstrip()
        )
    coding = response.headers.get("content-encoding", "identity").strip().lower()
    if coding not in {"", "identity"}:
        raise InvalidInput(
            f"{url}: the server sent a {coding}-encoded body, which was not asked for"
        )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise TooLarge(f"{url}: {declared} bytes is over the limit of {max_bytes} bytes")
    data = bytearray()
    for chunk in response.iter_raw():
        if stop.is_set() or time.monotonic() > deadline:
            raise InvalidInput(f"{url}: the answer did not arrive in time")
        data.extend(chunk)
        if len(data) > max_bytes:
            raise TooLarge(f"{url}: the response is over the limit of {max_bytes} bytes")
    return bytes(data)


def _pinned(
    url: str, current: httpx.URL, allow_private: bool
) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """Where to send the request for `current`, with its headers and extensions: to the
    address its host resolves to, once checked to be public, so that a second resolution
    (DNS rebinding) cannot send the request elsewhere; the Host header and TLS server
    name stay the host name, so that virtual hosts and certificates are checked as usual.
    With `allow_private`, anywhere, resolved by the HTTP client."""
    if allow_private:
        return current, {}, {}
    host = current.host
    port = current.port or (443 if current.scheme == "https" else 80)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise InvalidInput(f"{url}: the host {host} cannot be resolved ({error})") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0])) for info in found))
    if not addresses:
        raise InvalidInput(f"{url}: the host {host} has no address")
    for address in addresses:
        kind = address_kind(address)
        if kind is not None:
            via = "" if str(current) == url else f" (redirected to {current})"
            raise InvalidInput(
                f"{url}{via}: {host} is at {address}, a {kind} address; only public "
                "addresses are fetched unless private ones are allowed (--allow-private)"
            )
    headers = {"Host": current.netloc.decode("ascii")}
    extensions: dict[str, Any] = {"sni_hostname": host} if current.scheme == "https" else {}
    return current.copy_with(host=str(addresses[0])), headers, extensions


def address_kind(address: IPAddress) -> str | None:
    """What kind of non-public address `address` is (``loopback``, ``private``...), or
    None for a public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    kinds = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("non-public", not address.is_global),  # e.g. 100.64.0.0/10, shared by carriers
    )
    return next((kind for kind, found in kinds if found), None)


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
    allow_private: bool = False,
) -> tuple[int, Iterator[Original | Refusal]]:
    """How many inputs `target` (a path or a URL) holds, and the inputs read one at a time;
    an input that cannot be read comes as a `Refusal`, so that the others still can be."""
    if is_url(target):
        return 1, iter([fetch(target, max_bytes, timeout_s, allow_private)])
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]+://", target):
        raise InvalidInput(f"{target}: only http:// and https:// URLs can be fetched")
    files = list_files(Path(target), max_files)

    def read_each() -> Iterator[Original | Refusal]:
        for path in files:
            try:
                yield read_file(path, max_bytes)
            except (InvalidInput, TooLarge) as error:
                yield Refusal(str(path), str(error))
            except Exception as error:  # one unreadable file must not stop the folder
                log.exception("ingest: unexpected error reading %s", path)
                yield Refusal(str(path), f"not read: unexpected {type(error).__name__}: {error}")

    return len(files), read_each()
