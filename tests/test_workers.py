"""`bices serve --workers 2`: two processes on one port and one SQLite file write one
consistent store (no lost batch, no fork of the audit chain) and read each other's writes."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bices.domain.audit import verify_chain
from bices.node import Node
from tests.conftest import free_port, make_node, node_env, report_json, wait_for_health


def wait_for_workers(log: Path, workers: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log.read_text().count("Application startup complete") >= workers:
            return
        time.sleep(0.1)
    raise AssertionError(f"{workers} workers did not start:\n{log.read_text()}")


def test_two_worker_processes_share_one_store(tmp_path: Path, backend: str) -> None:
    """On SQLite: two processes on one file; on PostgreSQL + NATS: as on two machines."""
    data = tmp_path / "node"
    node = make_node(data, backend)
    env, settings = node_env(node), node.settings
    writers = [
        node.coalition.add_user(member, f"{member.lower()}.writer", "NATO SECRET")[1]
        for member in ("USA", "GBR", "EST", "POL")
    ]
    node.close()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "bices", "serve", "--port", str(port), "--workers", "2"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        wait_for_health(base)
        wait_for_workers(log, 2)

        def post(job: int) -> tuple[int, list[str]]:
            token = writers[job % len(writers)]
            member = ("USA", "GBR", "EST", "POL")[job % len(writers)]
            label = {"classification": "NATO SECRET", "releasable_to": [member], "caveats": []}
            reports = [report_json(title=f"job {job} item {i}", label=label) for i in range(25)]
            with httpx.Client(base_url=base, timeout=30) as client:
                answer = client.post(
                    "/api/v1/reports/batch",
                    json={"reports": reports},
                    headers={"Authorization": f"Bearer {token}"},
                )
            return answer.status_code, answer.json().get("ids", [])

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(post, range(40)))
        assert {status for status, _ in answers} == {201}
        created = {rid for _, ids in answers for rid in ids}
        assert len(created) == 40 * 25

        # Whichever process answers, each writer sees exactly its member's 250 reports.
        for token in writers:
            with httpx.Client(base_url=base, timeout=30) as client:
                totals = {
                    client.get(
                        "/api/v1/reports",
                        params={"limit": 1},
                        headers={"Authorization": f"Bearer {token}"},
                    ).json()["total"]
                    for _ in range(6)
                }
            assert totals == {250}
    finally:
        server.terminate()
        server.wait(timeout=20)

    reopened = Node.open(settings)
    try:
        stored = {v.id for v in reopened.store.reports.all_versions()}
        assert created <= stored
        count, broken = verify_chain(reopened.store.audit.all_events())
        assert broken is None
        assert count >= 40 + 4 * 6  # one event per batch write at least, plus the listings
    finally:
        reopened.close()
