"""Fixtures that build real nodes: a SQLite store in a temporary folder, the in-process bus,
the real ASGI app (in-process) and a real server on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from bices.api import create_app
from bices.domain.members import MemberKind
from bices.node import Node
from bices.settings import Settings

# A small coalition: four NATO nations, three IP4 partners.
MEMBERS = ("USA", "GBR", "EST", "POL", "KOR", "JPN", "AUS")


@dataclass
class Coalition:
    """A node with members and a helper to create users with tokens."""

    node: Node

    def user(
        self,
        member: str,
        clearance: str = "NATO SECRET",
        caveats: tuple[str, ...] = (),
        roles: tuple[str, ...] = ("analyst",),
        name: str | None = None,
    ) -> str:
        count = len(self.node.store.coalition.list_users())
        user_name = name or f"{member.lower()}.user{count}"
        return self.node.coalition.add_user(member, user_name, clearance, caveats, roles)[1]


def make_node(path: Path, **settings: Any) -> Node:
    node = Node.open(Settings(data=path, **settings))
    for code in MEMBERS:
        communities = ["NATO"] if code in {"USA", "GBR", "EST", "POL"} else ["IP4"]
        node.coalition.add_member(code, f"Member {code}", MemberKind.NATION, communities)
    return node


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    node = make_node(tmp_path / "node")
    yield node
    node.close()


@pytest.fixture
def coalition(node: Node) -> Coalition:
    return Coalition(node)


@pytest.fixture
def client(node: Node) -> Iterator[TestClient]:
    with TestClient(create_app(node)) as test_client:
        yield test_client


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def report_json(**overrides: Any) -> dict[str, Any]:
    """A valid report body; override any field."""
    body: dict[str, Any] = {
        "type": "INTREP",
        "title": "Hwasong-18 launch observed from the east coast",
        "body": "A solid-fuel missile was launched towards the East Sea at 07:24 local time.",
        "language": "en",
        "label": {"classification": "NATO SECRET", "releasable_to": ["NATO", "KOR"], "caveats": []},
        "source": {"name": "Coastal radar", "reliability": "B", "credibility": 2},
    }
    body.update(overrides)
    return body


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_health(base: str, timeout_s: float = 20) -> None:
    """Poll /healthz until the server answers, or fail after the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"{base} did not answer /healthz within {timeout_s} s")


@dataclass
class RunningServer:
    base_url: str
    node: Node


@contextmanager
def served(node: Node) -> Iterator[str]:
    """The node's app served by uvicorn on a free loopback port, in a thread; its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(node),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=1,  # open streams never end by themselves
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_for_health(base)
    try:
        yield base
    finally:
        uv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def server(node: Node) -> Iterator[RunningServer]:
    """The node's app served by uvicorn on a free loopback port, in a thread."""
    with served(node) as base:
        yield RunningServer(base, node)
