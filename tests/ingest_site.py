"""A small web site on 127.0.0.1 for the ingest tests: fixed pages, counted requests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Page:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    dribble_s: float = 0.0  # send the body a byte at a time, this long apart


@dataclass
class Site:
    base_url: str
    requests: list[str]
    request_headers: list[dict[str, str]] = field(default_factory=list)


@contextmanager
def serve(pages: dict[str, Page], host: str = "127.0.0.1") -> Iterator[Site]:
    """Serve `pages` by path on a free port of `host` (a loopback address) until the block
    ends."""
    requests: list[str] = []
    request_headers: list[dict[str, str]] = []
    closing = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            request_headers.append(dict(self.headers.items()))
            page = pages.get(self.path)
            if page is None:
                self.send_error(404, "Not Found")
                return
            self.send_response(page.status)
            self.send_header("Content-Type", page.content_type)
            self.send_header("Content-Length", str(len(page.body)))
            for name, value in page.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if not page.dribble_s:
                self.wfile.write(page.body)
                return
            try:
                for index in range(len(page.body)):
                    if closing.wait(page.dribble_s):  # a slow server, not synchronisation
                        return
                    self.wfile.write(page.body[index : index + 1])
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return  # the client gave up

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep the test output quiet

    server = ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(f"http://{host}:{server.server_address[1]}", requests, request_headers)
    finally:
        closing.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
