"""The demo: a seeded coalition whose users see what the rule allows, and `bices demo` running."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bices.api import create_app
from bices.cli import app as cli
from bices.demo import DemoUser, seed
from bices.domain.reports import ReportVersion
from bices.node import Node
from bices.policy import may_see
from bices.settings import Settings
from tests.conftest import auth, free_port

USER_LINE = re.compile(
    r"^\s+(?P<name>\S+)\s+(?P<member>[A-Z]{3})\s+(?P<clearance>.+?)\s+(?P<token>\S+)\s*$"
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, list[DemoUser]]]:
    node = Node.open(Settings(data=tmp_path_factory.mktemp("demo") / "node"))
    users = seed(node)
    yield node, users
    node.close()


@pytest.fixture(scope="module")
def client(demo: tuple[Node, list[DemoUser]]) -> Iterator[TestClient]:
    with TestClient(create_app(demo[0])) as test_client:
        yield test_client


def token_of(users: list[DemoUser], name: str) -> str:
    return next(u.token for u in users if u.name == name)


def current_versions(node: Node) -> dict[str, ReportVersion]:
    latest: dict[str, ReportVersion] = {}
    for v in node.store.reports.all_versions():
        if v.id not in latest or v.version > latest[v.id].version:
            latest[v.id] = v
    return latest


def listed_ids(client: TestClient, token: str) -> list[str]:
    ids: list[str] = []
    params: dict[str, str | int] = {"limit": 7}
    while True:
        response = client.get("/api/v1/reports", params=params, headers=auth(token))
        assert response.status_code == 200, response.text
        page = response.json()
        ids.extend(item["id"] for item in page["items"])
        if page["next_cursor"] is None:
            return ids
        params["cursor"] = page["next_cursor"]


def test_demo_has_enough_reports_in_both_languages(demo: tuple[Node, list[DemoUser]]) -> None:
    node, _ = demo
    reports = current_versions(node)
    assert len(reports) >= 30
    assert {v.language for v in reports.values()} >= {"en", "id"}
    assert len({v.label for v in reports.values()}) >= 5, "a variety of labels"
    assert len({v.label.originator for v in reports.values()}) >= 5


def test_demo_coalition(demo: tuple[Node, list[DemoUser]]) -> None:
    node, users = demo
    members = {m.code: m for m in node.store.coalition.list_members()}
    assert {"USA", "GBR", "EST", "SWE", "AUS", "JPN", "KOR", "NZL"} <= set(members)
    assert all(m.status.value == "active" and m.public_key for m in members.values())
    assert members["KOR"].sponsor is not None
    assert {u.member for u in users} >= {"USA", "KOR", "JPN"}
    assert len({u.clearance for u in users}) >= 3


def test_demo_users_tokens_work(client: TestClient, demo: tuple[Node, list[DemoUser]]) -> None:
    _, users = demo
    for user in users:
        response = client.get("/api/v1/users/me", headers=auth(user.token))
        assert response.status_code == 200, (user.name, response.text)
        assert response.json()["name"] == user.name
        assert response.json()["member"] == user.member
        assert response.json()["clearance"] == user.clearance


def test_kor_analyst_sees_rel_kor_and_not_rel_usa(
    client: TestClient, demo: tuple[Node, list[DemoUser]]
) -> None:
    node, users = demo
    reports = current_versions(node)
    rel_nato_kor = {i for i, v in reports.items() if v.label.releasable_to == {"NATO", "KOR"}}
    rel_usa = {i for i, v in reports.items() if v.label.releasable_to == {"USA"}}
    assert rel_nato_kor and rel_usa

    seen = listed_ids(client, token_of(users, "kor.analyst"))
    assert len(seen) == len(set(seen))
    assert rel_nato_kor <= set(seen)
    assert not rel_usa & set(seen)
    for report_id in rel_usa:
        hidden = client.get(
            f"/api/v1/reports/{report_id}", headers=auth(token_of(users, "kor.analyst"))
        )
        assert hidden.status_code == 404

    # Exactly what the rule allows, nothing more or less.
    viewer = node.coalition.viewer_of("kor.analyst")
    directory = node.store.coalition.directory()
    allowed = {i for i, v in reports.items() if may_see(viewer, v.label, directory)}
    assert set(seen) == allowed


def test_every_demo_user_sees_what_the_rule_allows(
    client: TestClient, demo: tuple[Node, list[DemoUser]]
) -> None:
    node, users = demo
    reports = current_versions(node)
    directory = node.store.coalition.directory()
    for user in users:
        viewer = node.coalition.viewer_of(user.name)
        allowed = {i for i, v in reports.items() if may_see(viewer, v.label, directory)}
        assert set(listed_ids(client, user.token)) == allowed, user.name
        found = client.get(
            "/api/v1/search", params={"q": "Korea OR Korut", "limit": 200}, headers=auth(user.token)
        ).json()
        assert {item["id"] for item in found["items"]} <= allowed, user.name
        assert found["total"] == len(found["items"])


def test_demo_search_in_both_languages(
    client: TestClient, demo: tuple[Node, list[DemoUser]]
) -> None:
    _, users = demo
    token = token_of(users, "usa.operator")
    found = client.get(
        "/api/v1/search", params={"q": "NATO", "limit": 200}, headers=auth(token)
    ).json()
    assert found["total"] > 0
    assert set(found["facets"]["language"]) == {"en", "id"}


def test_demo_signatures_verify(demo: tuple[Node, list[DemoUser]]) -> None:
    node, _ = demo
    result = CliRunner().invoke(cli, ["--data", str(node.settings.data), "report", "verify"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["--data", str(node.settings.data), "audit", "verify"])
    assert result.exit_code == 0, result.output


def test_demo_seed_only_honours_the_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    folder = tmp_path / "chosen"
    result = CliRunner().invoke(cli, ["--data", str(folder), "demo", "--seed-only"])
    assert result.exit_code == 0, result.output
    assert (folder / "bices.db").exists(), "demo ignored --data and seeded another folder"
    again = CliRunner().invoke(cli, ["--data", str(folder), "demo", "--seed-only"])
    assert again.exit_code == 2
    assert "fresh" in again.output


# -- the real command -----------------------------------------------------------------------


def bices_command() -> str:
    script = Path(sys.executable).parent / "bices"
    assert script.exists(), f"the console script is not installed beside {sys.executable}"
    return str(script)


def test_bices_demo_serves(tmp_path: Path) -> None:
    port = free_port()
    out_path = tmp_path / "stdout.txt"
    err_path = tmp_path / "stderr.txt"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("BICES_DATA", None)
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [bices_command(), "demo", "--port", str(port)],
            stdout=out,
            stderr=err,
            env=env,
            cwd=tmp_path,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (
                f"bices demo exited with {proc.returncode}: {err_path.read_text()}"
            )
            assert time.monotonic() < deadline, "bices demo did not answer /healthz in 60 s"
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)

        users: dict[str, tuple[str, str]] = {}
        deadline = time.monotonic() + 10
        while "kor.analyst" not in users:
            assert time.monotonic() < deadline, out_path.read_text()
            for line in out_path.read_text().splitlines():
                match = USER_LINE.match(line)
                if match:
                    users[match["name"]] = (match["member"], match["token"])
            time.sleep(0.05)
        stdout = out_path.read_text()
        assert f"{base}/api/v1" in stdout
        assert "curl" in stdout

        member, token = users["kor.analyst"]
        assert member == "KOR"
        me = httpx.get(f"{base}/api/v1/users/me", headers=auth(token), timeout=10)
        assert me.status_code == 200, me.text
        assert me.json()["name"] == "kor.analyst"
        listed = httpx.get(f"{base}/api/v1/reports", headers=auth(token), timeout=10)
        assert listed.status_code == 200, listed.text
        assert listed.json()["total"] > 0
        found = httpx.get(
            f"{base}/api/v1/search", params={"q": "NATO"}, headers=auth(token), timeout=10
        )
        assert found.status_code == 200, found.text
        # The worker exploits the sample reports in the background: entities appear.
        deadline = time.monotonic() + 60
        while True:
            entities = httpx.get(f"{base}/api/v1/entities", params={"q": "Korea"},
                                 headers=auth(token), timeout=10)  # fmt: skip
            assert entities.status_code == 200, entities.text
            names = {e["canonical"] for e in entities.json()["items"]}
            if {"North Korea", "South Korea"} <= names:
                break
            assert time.monotonic() < deadline, f"no entities exploited in 60 s: {names}"
            time.sleep(0.5)
        assert httpx.get(f"{base}/openapi.json", timeout=10).status_code == 200
        assert httpx.get(f"{base}/api/v1/reports", timeout=10).status_code == 401
        # The console the demo points browsers at is served.
        assert f"{base}/console/" in stdout
        console = httpx.get(f"{base}/console/", timeout=10)
        assert console.status_code == 200 and "<html" in console.text.lower()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    # The demo made its fresh folder under the temporary directory it was given.
    made = list(tmp_path.glob("bices-demo-*/bices.db"))
    assert len(made) == 1, list(tmp_path.iterdir())
