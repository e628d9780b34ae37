"""Nodes as separate `bices serve` processes on loopback ports, for the federation tests
and the federation benchmark: each with its own data folder (or PostgreSQL schema), the
members it serves, and users."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bices.domain.members import MemberKind
from bices.node import Node
from bices.settings import Settings


class Site:
    """One national node: opened in this process for set-up and inspection, served by a
    `bices serve` process of its own."""

    def __init__(
        self,
        root: Path,
        name: str,
        serves: dict[str, list[str]],
        port: int,
        netns: str | None = None,
        host: str = "127.0.0.1",
        **settings: Any,
    ) -> None:
        self.name = name
        self.port = port
        self.netns = netns  # a network namespace to serve in (made by the caller)
        self.host = host
        self.url = f"http://{host}:{port}"
        self.log = root / f"{name}.log"
        self.node = Node.open(Settings(data=root / name, node_name=name, **settings))
        for code, communities in serves.items():
            self.node.coalition.add_member(code, f"Member {code}", MemberKind.NATION, communities)
        self.process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        env = {**os.environ, "BICES_DATA": str(self.node.settings.data),
               "BICES_NODE_NAME": self.name, "BICES_FEDERATION_POLL_S": "0.2",
               "BICES_FEDERATION_MAX_BACKOFF_S": "1", "BICES_EXPLOIT": "false"}  # fmt: skip
        for field in ("database_url", "bus_url", "bus_namespace"):
            value = getattr(self.node.settings, field)
            if value:
                env[f"BICES_{field.upper()}"] = str(value)
        return env

    def user(self, member: str, name: str, roles: tuple[str, ...] = ("analyst",)) -> str:
        return self.node.coalition.add_user(member, name, "COSMIC TOP SECRET", (), roles)[1]

    def command(self, *args: str) -> list[str]:
        """A `bices` command line for this node, inside its namespace if it has one."""
        inside = ["ip", "netns", "exec", self.netns] if self.netns else []
        return [*inside, sys.executable, "-m", "bices", *args]

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command("serve", "--host", self.host, "--port", str(self.port)),
                env=self.env(), stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_until(self._healthy, 30, f"{self.name} to start")

    def _healthy(self) -> bool:
        if self.netns:  # this process cannot reach into the namespace: ask from inside
            probe = f"import httpx; httpx.get('{self.url}/healthz', timeout=1).raise_for_status()"
            inside = ["ip", "netns", "exec", self.netns, sys.executable, "-c", probe]
            return subprocess.run(inside, capture_output=True).returncode == 0
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self, kill: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def peer_with(self, other: Site, members: list[str]) -> None:
        """Register `other` as a peer, its key checked by fingerprint (as operators do)."""
        fingerprint = other.node.federation.key.fingerprint
        self.node.federation.add_peer(other.url, fingerprint, members, other.name)

    def close(self) -> None:
        self.stop()
        self.node.close()


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
