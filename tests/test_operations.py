"""Operations: /healthz, /metrics (operators only) and `bices status`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from bices.cli import app as cli
from bices.domain.reports import ReportDraft
from bices.pipeline.queued import QueuedExploiter
from tests.conftest import Coalition, RunningServer, auth, make_node, node_env, report_json
from tests.sse_client import Listener


def scrape(base: str, token: str) -> dict[str, float]:
    response = httpx.get(f"{base}/metrics", headers=auth(token), timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


def test_metrics_answer_operators_only(server: RunningServer, coalition: Coalition) -> None:
    analyst = coalition.user("KOR")
    refused = httpx.get(f"{server.base_url}/metrics", headers=auth(analyst), timeout=10)
    assert refused.status_code == 403 and "operator role" in refused.text
    assert httpx.get(f"{server.base_url}/metrics", timeout=10).status_code == 401
    assert httpx.get(f"{server.base_url}/healthz", timeout=10).json() == {"status": "ok"}


def test_metrics_count_the_node_and_this_process(
    server: RunningServer, coalition: Coalition
) -> None:
    operator = coalition.user("USA", roles=("operator", "analyst"))
    kor = coalition.user("KOR")
    listener = Listener(server.base_url, kor).start()
    for title in ("one", "two"):
        posted = httpx.post(f"{server.base_url}/api/v1/reports", json=report_json(title=title),
                            headers=auth(operator), timeout=10)  # fmt: skip
        assert posted.status_code == 201
    listener.take(2)
    deadline = time.monotonic() + 10
    while True:
        values = scrape(server.base_url, operator)
        if values["bices_node_stream_subscribers"] == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert values["bices_reports"] == 2
    assert values["bices_stream_subscribers"] == 1
    assert values["bices_node_stream_subscribers"] == 1
    assert values["bices_node_server_processes"] == 1
    assert values["bices_stream_events_sent_total"] >= 2
    assert values["bices_http_requests_total{method=POST,route=/api/v1/reports,status=201}"] == 2
    listener.close()


def test_status_command(tmp_path: Path) -> None:
    runner = CliRunner()
    data = str(tmp_path / "node")
    assert (
        runner.invoke(cli, ["--data", data, "member", "add", "USA", "--name", "US"]).exit_code == 0
    )
    shown = runner.invoke(cli, ["--data", data, "status", "--json"])
    assert shown.exit_code == 0, shown.output
    found = json.loads(shown.output)
    assert found["store"].startswith("sqlite:") and found["bus"] == "in-process"
    assert found["members"] == 1 and found["reports"] == 0 and found["exploit_lag"] == 0
    assert found["stream_subscribers"] == 0
    table = runner.invoke(cli, ["--data", data, "status"])
    assert "exploit lag" in table.output and "stream subscribers" in table.output


def test_status_on_postgres_and_nats_names_both_and_the_work_queue(tmp_path: Path) -> None:
    node = make_node(tmp_path / "node", "postgres", exploit=False)
    try:
        token = Coalition(node).user("USA")
        viewer = node.coalition.authenticate(token)
        node.collector.submit(viewer, [ReportDraft.model_validate(report_json())] * 3)
        env = {k: v for k, v in node_env(node).items() if k.startswith("BICES_")}
        shown = CliRunner().invoke(cli, ["status", "--json"], env=env)
        assert shown.exit_code == 0, shown.output
        found = json.loads(shown.output)
        assert found["store"].startswith("postgresql://") and found["bus"].startswith("nats://")
        assert found["reports"] == 3 and found["exploit_lag"] == 3  # none dispatched yet
        assert found["work_queue"] == 0
        worker = node.exploitation()
        assert isinstance(worker, QueuedExploiter) and worker.dispatch() == 3
        found = json.loads(CliRunner().invoke(cli, ["status", "--json"], env=env).output)
        assert found["work_queue"] == 3 and found["exploit_lag"] == 3
        assert worker.drain(max_batches=20) == 3
        found = json.loads(CliRunner().invoke(cli, ["status", "--json"], env=env).output)
        assert found["work_queue"] == 0 and found["exploit_lag"] == 0
    finally:
        node.close()


def test_unusable_backends_and_settings_are_named_not_a_traceback(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data", str(tmp_path / "node")]
    bad = runner.invoke(cli, [*data, "--bus-namespace", "no-dashes", "status"])
    assert bad.exit_code == 2 and "bus_namespace" in bad.output
    pg = runner.invoke(
        cli, [*data, "--database-url", "postgresql://bices:s3cret@127.0.0.1:1/x", "status"]
    )
    assert pg.exit_code == 1 and "cannot use PostgreSQL at" in pg.output
    assert "s3cret" not in pg.output  # the password is never shown
    nats = runner.invoke(cli, [*data, "--bus-url", "nats://127.0.0.1:1", "status"])
    assert nats.exit_code == 1 and "cannot use NATS at nats://127.0.0.1:1" in nats.output
