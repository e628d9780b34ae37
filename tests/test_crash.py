"""A crash (SIGKILL) of a serving node loses no report whose creation was acknowledged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from bices.domain.audit import verify_chain
from bices.node import Node
from bices.share.reading import verify_version
from tests.conftest import free_port, make_node, node_env, report_json, wait_for_health


def serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bices", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def test_sigkill_mid_ingest_loses_no_acknowledged_report(tmp_path: Path, backend: str) -> None:
    data = tmp_path / "node"
    node = make_node(data, backend)
    env, settings = node_env(node), node.settings
    token = node.coalition.add_user("USA", "usa.loader", "NATO SECRET", (), ("collector",))[1]
    node.close()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = serve(env, port)
    acknowledged: list[str] = []
    stop = threading.Event()

    def load() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            for batch in range(10_000):  # bounded; the kill ends it much sooner
                if stop.is_set():
                    return
                reports = [report_json(title=f"batch {batch} item {i}") for i in range(50)]
                try:
                    answer = client.post("/api/v1/reports/batch", json={"reports": reports})
                except httpx.TransportError:
                    return
                if answer.status_code == 201:
                    acknowledged.extend(answer.json()["ids"])

    try:
        wait_for_health(base)
        loader = threading.Thread(target=load)
        loader.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < 500 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(server.pid, signal.SIGKILL)  # in the middle of the stream of batches
        server.wait(timeout=10)
        stop.set()
        loader.join(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    assert len(acknowledged) >= 500

    restarted = Node.open(settings)
    try:
        stored = {v.id for v in restarted.store.reports.all_versions()}
        missing = [rid for rid in acknowledged if rid not in stored]
        assert missing == [], f"{len(missing)} acknowledged reports lost"
        assert len(stored) % 50 == 0, "a batch was half stored"
        count, broken = verify_chain(restarted.store.audit.all_events())
        assert broken is None and count > 0
        bad = [
            v.id
            for v in restarted.store.reports.all_versions()
            if not verify_version(restarted.store, v).valid
        ]
        assert bad == []
    finally:
        restarted.close()
