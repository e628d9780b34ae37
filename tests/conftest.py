"""Fixtures that build real nodes — on SQLite in a temporary folder with the in-process bus,
and on PostgreSQL in a schema of their own — the real ASGI app (in-process) and a real
server on a free loopback port."""

from __future__ import annotations

import contextlib
import functools
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from fastapi.testclient import TestClient
from nats.js.errors import NotFoundError

from bices.api import create_app
from bices.bus.nats import NatsBus, names
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


# The behavioural suite runs on both backends: the embedded default, and PostgreSQL with
# the NATS bus (each node in a schema and a bus namespace of its own, dropped at the end).
BACKENDS = ("sqlite", "postgres")
PG_URL = os.environ.get("BICES_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
NATS_URL = os.environ.get("BICES_TEST_BUS_URL", "nats://127.0.0.1:4222")
_schemas: list[str] = []
_namespaces: list[str] = []


def require_service(name: str, reachable: bool) -> None:
    """Skip a test whose service is missing, except under CI=true, where it fails."""
    if reachable:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is not reachable, and CI=true needs it")
    pytest.skip(f"{name} is not running")


@functools.cache
def _postgres_ready() -> bool:
    """Whether PostgreSQL answers; the extensions the store uses are installed in `public`
    once, so that per-test schemas (dropped afterwards) never carry them."""
    try:
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=3) as conn:
            # Test processes running in parallel would race to create them: one at a time.
            conn.execute("SELECT pg_advisory_lock(hashtext('bices tests: extensions'))")
            for extension in ("unaccent", "pg_trgm"):
                conn.execute(f"CREATE EXTENSION IF NOT EXISTS {extension} SCHEMA public")
    except psycopg.OperationalError:
        return False
    return True


def new_pg_url() -> str:
    """The URL of a new, empty schema of the test database."""
    require_service(f"PostgreSQL at {PG_URL}", _postgres_ready())
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    _schemas.append(schema)
    # Commits do not wait for the WAL to reach the disk: what is under test is the node,
    # not PostgreSQL's own durability (the benchmarks keep the server's defaults).
    options = f"-csearch_path%3D{schema}%2Cpublic%20-csynchronous_commit%3Doff"
    return f"{PG_URL}?options={options}"


@functools.cache
def _nats_ready() -> bool:
    host, _, port = NATS_URL.removeprefix("nats://").partition(":")
    try:
        with socket.create_connection((host, int(port or 4222)), timeout=2):
            return True
    except OSError:
        return False


def new_bus_namespace() -> str:
    """A namespace of this test's own on the NATS server (its streams deleted at the end)."""
    require_service(f"NATS at {NATS_URL}", _nats_ready())
    namespace = f"T{uuid.uuid4().hex[:16].upper()}"
    _namespaces.append(namespace)
    return namespace


@pytest.fixture(scope="session", autouse=True)
def _drop_schemas_and_streams() -> Iterator[None]:
    yield
    if _schemas:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute("SET synchronous_commit = off")
            for schema in _schemas:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    if _namespaces:
        bus = NatsBus(NATS_URL)
        try:
            for namespace in _namespaces:
                stream, _ = names(namespace)
                for name in (stream, f"{stream}_WORK"):
                    with contextlib.suppress(NotFoundError):
                        bus.call(bus.jetstream.delete_stream(name), timeout=5)
        finally:
            bus.close()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend a test's nodes use: every test that asks runs on each."""
    return str(request.param)


# For a test of the embedded backend's own files: it runs on SQLite only.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


def node_env(node: Node) -> dict[str, str]:
    """The environment that opens the same node in another process (server, worker)."""
    env = {**os.environ, "BICES_DATA": str(node.settings.data)}
    for name in ("database_url", "bus_url", "bus_namespace"):
        value = getattr(node.settings, name)
        if value:
            env[f"BICES_{name.upper()}"] = str(value)
    return env


def cli_args(node: Node) -> list[str]:
    """The options that point the CLI at the same store as `node`."""
    args = ["--data", str(node.settings.data)]
    if node.settings.database_url:
        args += ["--database-url", node.settings.database_url]
    return args


class Tamperer:
    """A connection of its own to a node's database, as someone altering it would open;
    `execute` takes `?` placeholders on either backend."""

    def __init__(self, node: Node, sqlite_file: str) -> None:
        self._pg = node.settings.database_url
        if self._pg:
            self._conn: Any = psycopg.connect(self._pg, autocommit=True)
        else:
            import sqlite3

            self._conn = sqlite3.connect(node.settings.data / sqlite_file, isolation_level=None)

    def execute(self, sql: str, params: Any = ()) -> Any:
        return self._conn.execute(sql.replace("?", "%s") if self._pg else sql, params)

    def close(self) -> None:
        self._conn.close()


def make_node(path: Path, backend: str = "sqlite", **settings: Any) -> Node:
    if backend == "postgres":  # with the NATS bus: the scale-out node
        settings.setdefault("database_url", new_pg_url())
        if "bus_url" not in settings:
            settings.update(bus_url=NATS_URL, bus_namespace=new_bus_namespace())
    node = Node.open(Settings(data=path, **settings))
    for code in MEMBERS:
        communities = ["NATO"] if code in {"USA", "GBR", "EST", "POL"} else ["IP4"]
        node.coalition.add_member(code, f"Member {code}", MemberKind.NATION, communities)
    return node


@pytest.fixture
def node(tmp_path: Path, backend: str) -> Iterator[Node]:
    node = make_node(tmp_path / "node", backend)
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


# Ports for test servers come from below the kernel's ephemeral range (32768 and up on
# Linux), so that no outgoing connection holds one; under pytest-xdist each worker probes
# only its own share of the range, so two workers never pick the same port between
# finding it free and binding it.
_PORTS = range(20000, 32000)
_ports_given: set[int] = set()
_port_order = random.Random()  # not the global one, which hypothesis seeds


def free_port() -> int:
    """A loopback port that is free now and that this process never gave out before."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    share = list(_PORTS[worker::workers])
    _port_order.shuffle(share)
    for port in share:
        if port in _ports_given:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports_given.add(port)
        return port
    raise RuntimeError(f"no free loopback port left in {_PORTS} for this worker")


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
