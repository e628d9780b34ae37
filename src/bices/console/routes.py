"""Mount the console's static files and send `/` to it.

The files are served with a Content-Security-Policy that allows nothing but this node
(`'self'`): the console cannot load a script, a style, a font or a map tile from anywhere
else, and a browser refuses it if a change ever tries to.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "/console"

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    # Revalidate on every load (the ETag makes that cheap), so an upgraded node's console
    # is never mixed with modules cached from the previous version.
    (b"cache-control", b"no-cache"),
]


class ConsoleHeaders:
    """Adds the console's security and caching headers to every response of the files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in HEADERS}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = kept + HEADERS
            await send(message)

        await self.app(scope, receive, sending)


def install(app: FastAPI) -> None:
    """Serve the console at `/console/` and, if nothing else answers `/`, redirect there."""
    files = StaticFiles(packages=[("bices.console", "static")], html=True)
    app.mount(PREFIX, GZipMiddleware(ConsoleHeaders(files), minimum_size=1024), name="console")
    if not any(getattr(route, "path", None) == "/" for route in app.routes):

        @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
        def to_console() -> RedirectResponse:
            return RedirectResponse(f"{PREFIX}/", status_code=307)
