"""A small Server-Sent Events reader for tests: one stream read in a thread into a queue."""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True)
class Event:
    id: str | None  # sealed: opaque to the client
    event: str
    data: dict[str, Any]


@dataclass
class Listener:
    """Reads `GET {base}/api/v1/stream` as `token` until closed or the server ends it."""

    base: str
    token: str
    params: dict[str, Any] = field(default_factory=dict)
    last_event_id: str | None = None
    status: int | None = None
    ended: threading.Event = field(default_factory=threading.Event)
    opened: threading.Event = field(default_factory=threading.Event)
    events: queue.Queue[Event] = field(default_factory=queue.Queue)
    _stop: threading.Event = field(default_factory=threading.Event)
    _socket: socket.socket | None = None
    body: str = ""

    def start(self) -> Listener:
        threading.Thread(target=self._run, daemon=True).start()
        assert self.opened.wait(10), "the stream did not open"
        return self

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = str(self.last_event_id)
        try:
            timeout = httpx.Timeout(5, read=60)
            url = f"{self.base}/api/v1/stream"
            with httpx.stream("GET", url, headers=headers, params=self.params,
                              timeout=timeout) as response:  # fmt: skip
                network = response.extensions.get("network_stream")
                self._socket = network.get_extra_info("socket") if network else None
                self.status = response.status_code
                if response.status_code != 200:
                    self.body = response.read().decode()
                    self.opened.set()
                    return
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if line.startswith(": stream open"):
                        self.opened.set()
                    if self._stop.is_set():
                        return
                    if not line:
                        if "event" in fields:
                            event_id = fields.get("id")
                            data = json.loads(fields.get("data", "{}"))
                            self.events.put(Event(event_id, fields["event"], data))
                        fields = {}
                        continue
                    name, _, value = line.partition(":")
                    if name:
                        fields[name] = value.removeprefix(" ")
        except httpx.HTTPError:
            pass
        finally:
            self.opened.set()
            self.ended.set()

    def take(self, count: int, timeout_s: float = 10) -> list[Event]:
        """The next `count` events, or fail after the timeout."""
        got: list[Event] = []
        deadline = time.monotonic() + timeout_s
        while len(got) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"got {len(got)} of {count} events: {got}")
            try:
                got.append(self.events.get(timeout=remaining))
            except queue.Empty:
                continue
        return got

    def pending(self) -> list[Event]:
        """Whatever has arrived and not been taken."""
        got = []
        while True:
            try:
                got.append(self.events.get_nowait())
            except queue.Empty:
                return got

    def close(self) -> None:
        """Stop reading and hang up at once, as a browser leaving the page does: a stream
        left open would hold the server's shutdown for its whole grace period."""
        self._stop.set()
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
