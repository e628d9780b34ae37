"""A server and a worker killed (SIGKILL) in the middle of a batch ingest and restarted:
every report acknowledged to the client is stored, exploited once and delivered on the
stream once — on the embedded default, and on PostgreSQL + NATS."""

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
from tests.conftest import free_port, make_node, node_env, report_json, wait_for_health
from tests.sse_client import Event, Listener

BATCH = 20
BATCHES = 24
KILL_AFTER = 8  # batches acknowledged before the kill


class Processes:
    """`bices serve` and `bices worker` of one node, started and killed at will."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.server: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.server = subprocess.Popen(
                [sys.executable, "-m", "bices", "serve", "--port", str(self.port)],
                env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "bices", "worker", "--poll", "0.1", "--nice", "0"],
                env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for_health(f"http://127.0.0.1:{self.port}")

    def kill(self) -> None:
        for process in (self.server, self.worker):
            if process is not None and process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def test_kill_server_and_worker_mid_ingest(tmp_path: Path, backend: str) -> None:
    data = tmp_path / "node"
    node = make_node(data, backend, work_ack_wait_s=2)  # on PostgreSQL, with NATS
    loader = node.coalition.add_user("USA", "usa.loader", "NATO SECRET", (), ("collector",))[1]
    reader = node.coalition.add_user("KOR", "kor.reader", "NATO SECRET")[1]
    watcher = node.coalition.authenticate(reader)
    node.entities.watch(watcher, "Sinpo")
    settings = node.settings
    env = {**node_env(node), "BICES_EXPLOIT": "false", "BICES_WORK_ACK_WAIT_S": "2"}
    node.close()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    processes = Processes(env, port, tmp_path / "processes.log")
    processes.start()
    heard: list[Event] = []
    listener = Listener(base, reader).start()
    acknowledged: list[str] = []
    killed = threading.Event()

    def post(batch: int) -> None:
        label = {"classification": "NATO SECRET", "releasable_to": ["NATO", "KOR"], "caveats": []}
        body = "Another solid-fuel missile was launched from Sinpo towards the East Sea."
        reports = [report_json(title=f"Batch {batch} item {i}", body=body, label=label)
                   for i in range(BATCH)]  # fmt: skip
        headers = {"Authorization": f"Bearer {loader}"}
        for _ in range(200):  # bounded: retries while the server is down
            try:
                answer = httpx.post(f"{base}/api/v1/reports/batch", json={"reports": reports},
                                    headers=headers, timeout=10)  # fmt: skip
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            assert answer.status_code == 201, answer.text
            acknowledged.extend(answer.json()["ids"])
            return
        raise AssertionError(f"batch {batch} was never acknowledged")

    try:
        for batch in range(BATCHES):
            if batch == KILL_AFTER:
                # mid-ingest: a batch is in flight while both processes die
                inflight = threading.Thread(target=post, args=(batch,))
                inflight.start()
                time.sleep(0.02)
                processes.kill()
                killed.set()
                heard.extend(listener.pending())
                listener.close()
                processes.start()
                inflight.join(timeout=60)
                last = heard[-1].id if heard else None
                listener = Listener(base, reader, last_event_id=last).start()
                continue
            post(batch)
        reopened = Node.open(settings)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the restarted processes catch up (bounded)
            heard.extend(listener.pending())
            caught_up = {e.data["id"] for e in heard if e.event == "report"}
            if len(caught_up) >= len(acknowledged) and reopened.exploit_backlog() == 0:
                break
            time.sleep(0.2)
    finally:
        listener.close()
        processes.kill()
    assert killed.is_set() and len(acknowledged) == BATCHES * BATCH
    try:
        stored = [v for v in reopened.store.reports.all_versions()]
        stored_ids = {v.id for v in stored}
        assert set(acknowledged) <= stored_ids, "an acknowledged report was lost"
        streamed = [e.data["id"] for e in heard if e.event == "report"]
        assert len(streamed) == len(set(streamed)), "a report was streamed twice"
        assert set(streamed) == stored_ids, "a stored report was not streamed"
        assert reopened.exploit_backlog() == 0
        assert all(reopened.store.exploits.result(v.seq) is not None for v in stored)
        alerts = reopened.store.exploits.alerts(
            reopened.coalition.authenticate(reader), 0, 10 * len(stored)
        )
        assert sorted(a.report.seq for a in alerts) == sorted(v.seq for v in stored)
        count, broken = verify_chain(reopened.store.audit.all_events())
        assert broken is None and count > 0
    finally:
        reopened.close()
