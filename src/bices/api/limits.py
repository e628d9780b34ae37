"""The request body limit, counted as the body is read (a declared Content-Length over the
limit fails at the first read). The 413 goes through the error mapping in `errors`, which
names the limit and records the refusal."""

from __future__ import annotations

from starlette.exceptions import HTTPException
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
