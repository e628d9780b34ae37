"""What a request may carry, checked as it is read: the body limit (a declared
Content-Length over the limit fails at the first read), and no NUL character in text.
Refusals go through the error mapping in `errors`, which names the problem and records it.
"""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException, WebSocketException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length", b"")
        seen = int(declared) if declared.isdigit() else 0

        async def counting_receive() -> Message:
            nonlocal seen
            if seen > self.max_bytes:
                # An HTTPException passes FastAPI's body parsing on to the error handlers.
                raise HTTPException(413)
            message = await receive()
            if message["type"] == "http.request" and not declared.isdigit():
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413)
            return message

        await self.app(scope, counting_receive, send)


NUL_TEXT = "text may not contain the NUL character (U+0000)"
JSON_TYPES = (b"application/json", b"application/taxii+json", b"application/stix+json")
# The JSON escape of U+0000, where its backslash is not itself escaped (an odd run).
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


class NulScanner:
    """Finds U+0000 in a JSON body read in chunks, as the escape `\\u0000` (a raw NUL byte
    is not JSON: the parser refuses the body as malformed)."""

    def __init__(self) -> None:
        self._tail = b""

    def feed(self, chunk: bytes) -> bool:
        data = self._tail + chunk
        # The regex has no literal prefix to skip ahead with (it starts at a lookbehind), so
        # it would try every position: look for the escape itself first (a fast byte search).
        if b"\\u0000" in data and _ESCAPED_NUL.search(data):
            return True
        # Keep what a match across the next chunk boundary may begin with: the last five
        # bytes and the run of backslashes before them (its parity decides).
        start = max(0, len(data) - 5)
        while start > 0 and data[start - 1 : start] == b"\\":
            start -= 1
        self._tail = data[start:]
        return False


class NoNul:
    """Refuse U+0000 in JSON bodies, on every route: no store keeps it (PostgreSQL's text
    cannot hold it) and no report needs it, so both backends refuse it alike, with a 400
    that says so (`refuse_nul` does the same for the path and the query)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_type = dict(scope.get("headers", ())).get(b"content-type", b"").lower()
        if scope["type"] != "http" or not content_type.startswith(JSON_TYPES):
            await self.app(scope, receive, send)
            return
        scanner = NulScanner()

        async def scanning_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and scanner.feed(message.get("body", b"")):
                raise HTTPException(400, NUL_TEXT)  # inside the app: mapped by `errors`
            return message

        await self.app(scope, scanning_receive, send)


async def refuse_nul(connection: HTTPConnection) -> None:
    """A dependency of every route: U+0000 in the path or the query is refused (a
    WebSocket is closed with 1008, policy violation)."""
    if "\x00" in connection.url.path or any(
        "\x00" in key or "\x00" in value for key, value in connection.query_params.multi_items()
    ):
        if connection.scope["type"] == "websocket":
            raise WebSocketException(1008, NUL_TEXT)
        raise HTTPException(400, NUL_TEXT)
