"""The `bices` command on a data folder, and its tokens against the API on the same folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bices.api import create_app
from bices.cli import app
from bices.node import Node
from bices.settings import Settings
from tests.conftest import auth, report_json

runner = CliRunner()


def bices(data: Path, *args: str) -> Result:
    return runner.invoke(app, ["--data", str(data), *args])


def ok(data: Path, *args: str) -> Result:
    result = bices(data, *args)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result


def last_line(result: Result) -> str:
    lines = result.stdout.strip().splitlines()
    assert lines, result.output
    return lines[-1].strip()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "node"
    ok(folder, "member", "add", "USA", "--name", "United States", "--community", "NATO")
    ok(folder, "member", "add", "GBR", "--name", "United Kingdom", "--community", "NATO")
    ok(folder, "member", "add", "EST", "--name", "Estonia", "--community", "NATO")
    return folder


@pytest.fixture
def api(data: Path) -> Iterator[TestClient]:
    """The API on the same data folder the CLI writes to."""
    node = Node.open(Settings(data=data))
    with TestClient(create_app(node)) as client:
        yield client
    node.close()


def add_user(data: Path, member: str, name: str, *extra: str) -> str:
    result = ok(data, "user", "add", "--member", member, "--name", name, *extra)
    return last_line(result)


# -- members --------------------------------------------------------------------------------


def test_member_add_and_list(data: Path) -> None:
    result = ok(data, "member", "list")
    for code in ("USA", "GBR", "EST"):
        assert code in result.stdout
    assert "active" in result.stdout


def test_member_add_prints_the_public_key(tmp_path: Path) -> None:
    result = ok(tmp_path / "n", "member", "add", "kor", "--name", "Korea", "--community", "IP4")
    assert "KOR" in result.stdout
    assert "public key" in result.stdout


@pytest.mark.parametrize("code", ["QQQ", "XYZ"])
def test_unknown_iso_code_exits_2_with_a_message(data: Path, code: str) -> None:
    result = bices(data, "member", "add", code, "--name", "Nowhere")
    assert result.exit_code == 2, result.output
    assert code in result.output
    assert "ISO 3166" in result.output
    assert code not in ok(data, "member", "list").stdout


def test_organisation_code_is_allowed_with_kind(data: Path) -> None:
    ok(data, "member", "add", "NATO-HQ", "--name", "NATO HQ", "--kind", "organisation")
    assert "NATO-HQ" in ok(data, "member", "list").stdout


def test_duplicate_member_and_unknown_community_exit_2(data: Path) -> None:
    again = bices(data, "member", "add", "USA", "--name", "United States")
    assert again.exit_code == 2
    assert "USA" in again.output
    unknown = bices(data, "member", "add", "FRA", "--name", "France", "--community", "NOPE")
    assert unknown.exit_code == 2
    assert "NOPE" in unknown.output
    assert "FRA" not in ok(data, "member", "list").stdout


# -- users and tokens -----------------------------------------------------------------------


def test_user_add_prints_a_working_token_last(data: Path, api: TestClient) -> None:
    result = ok(
        data, "user", "add", "--member", "USA", "--name", "usa.analyst",
        "--clearance", "NATO SECRET", "--caveat", "ATOMAL", "--role", "analyst",
    )  # fmt: skip
    token = last_line(result)
    assert " " not in token
    me = api.get("/api/v1/users/me", headers=auth(token))
    assert me.status_code == 200, me.text
    assert me.json()["name"] == "usa.analyst"
    assert me.json()["member"] == "USA"
    assert me.json()["clearance"] == "NATO SECRET"
    assert me.json()["caveats"] == ["ATOMAL"]
    assert me.json()["roles"] == ["analyst"]
    label = {"classification": "NATO SECRET", "releasable_to": ["NATO"], "caveats": ["ATOMAL"]}
    posted = api.post("/api/v1/reports", json=report_json(label=label), headers=auth(token))
    assert posted.status_code == 201, posted.text


def test_user_add_rejects_bad_input(data: Path) -> None:
    for args, named in (
        (("--member", "USA", "--name", "a", "--clearance", "ULTRA"), "ULTRA"),
        (("--member", "FRA", "--name", "b", "--clearance", "NATO SECRET"), "FRA"),
        (
            ("--member", "USA", "--name", "c", "--clearance", "NATO SECRET", "--role", "king"),
            "king",
        ),
    ):
        result = bices(data, "user", "add", *args)
        assert result.exit_code == 2, result.output
        assert named in result.output


def test_user_token_and_revoke(data: Path, api: TestClient) -> None:
    first = add_user(data, "GBR", "gbr.analyst", "--clearance", "NATO SECRET")
    second = last_line(ok(data, "user", "token", "gbr.analyst"))
    assert first != second
    for token in (first, second):
        assert api.get("/api/v1/users/me", headers=auth(token)).status_code == 200
    revoked = ok(data, "user", "revoke", "gbr.analyst")
    assert "2" in revoked.stdout
    for token in (first, second):
        assert api.get("/api/v1/users/me", headers=auth(token)).status_code == 401


# -- accession ------------------------------------------------------------------------------


def test_member_apply_and_approve(data: Path, api: TestClient) -> None:
    applied = ok(data, "member", "apply", "KOR", "--name", "Korea", "--sponsor", "USA",
                 "--community", "IP4")  # fmt: skip
    assert "KOR" in applied.stdout
    # Three active members: a majority is two.
    first = ok(data, "member", "approve", "KOR", "--as-member", "USA")
    assert "pending" in first.stdout
    refused = bices(data, "user", "add", "--member", "KOR", "--name", "k", "--clearance", "PUBLIC")
    assert refused.exit_code == 2, refused.output
    second = ok(data, "member", "approve", "KOR", "--as-member", "GBR")
    assert "approved" in second.stdout
    listing = ok(data, "member", "list").stdout
    assert any("KOR" in line and "active" in line for line in listing.splitlines())

    token = add_user(data, "KOR", "kor.analyst", "--clearance", "NATO SECRET")
    usa = add_user(data, "USA", "usa.analyst", "--clearance", "NATO SECRET")
    label = {"classification": "NATO SECRET", "releasable_to": ["NATO", "IP4"]}
    report_id = api.post(
        "/api/v1/reports", json=report_json(label=label), headers=auth(usa)
    ).json()["id"]
    assert api.get(f"/api/v1/reports/{report_id}", headers=auth(token)).status_code == 200
    member = api.get("/api/v1/members/KOR", headers=auth(token)).json()
    assert member["public_key"]


def test_member_reject_and_bad_votes(data: Path) -> None:
    ok(data, "member", "apply", "KOR", "--name", "Korea", "--sponsor", "USA")
    unknown_voter = bices(data, "member", "approve", "KOR", "--as-member", "FRA")
    assert unknown_voter.exit_code == 2
    assert "FRA" in unknown_voter.output
    ok(data, "member", "reject", "KOR", "--as-member", "USA")
    final = ok(data, "member", "reject", "KOR", "--as-member", "GBR")
    assert "rejected" in final.stdout
    late = bices(data, "member", "approve", "KOR", "--as-member", "EST")
    assert late.exit_code == 2
    assert "KOR" not in ok(data, "member", "list").stdout
    bad_sponsor = bices(data, "member", "apply", "JPN", "--name", "Japan", "--sponsor", "FRA")
    assert bad_sponsor.exit_code == 2


def test_member_suspend_and_reinstate(data: Path, api: TestClient) -> None:
    token = add_user(data, "EST", "est.analyst", "--clearance", "NATO RESTRICTED")
    assert api.get("/api/v1/reports", headers=auth(token)).status_code == 200
    assert "suspended" in ok(data, "member", "suspend", "EST").stdout
    assert api.get("/api/v1/reports", headers=auth(token)).status_code == 403
    assert "active" in ok(data, "member", "reinstate", "EST").stdout
    assert api.get("/api/v1/reports", headers=auth(token)).status_code == 200
    assert "withdrawn" in ok(data, "member", "withdraw", "EST").stdout
    assert api.get("/api/v1/reports", headers=auth(token)).status_code == 403
    assert bices(data, "member", "reinstate", "EST").exit_code == 2


# -- communities ----------------------------------------------------------------------------


def test_community_define(data: Path, api: TestClient) -> None:
    ok(data, "member", "add", "AUS", "--name", "Australia", "--community", "IP4")
    defined = ok(data, "community", "define", "aukus", "AUS", "GBR", "USA")
    assert "AUKUS" in defined.stdout
    assert "AUKUS: AUS, GBR, USA" in ok(data, "community", "list").stdout

    usa = add_user(data, "USA", "usa.analyst", "--clearance", "NATO SECRET")
    aus = add_user(data, "AUS", "aus.analyst", "--clearance", "NATO SECRET")
    est = add_user(data, "EST", "est.analyst", "--clearance", "NATO SECRET")
    label = {"classification": "NATO SECRET", "releasable_to": ["AUKUS"]}
    posted = api.post("/api/v1/reports", json=report_json(label=label), headers=auth(usa))
    assert posted.status_code == 201, posted.text
    report_id = posted.json()["id"]
    assert api.get(f"/api/v1/reports/{report_id}", headers=auth(aus)).status_code == 200
    assert api.get(f"/api/v1/reports/{report_id}", headers=auth(est)).status_code == 404

    # Redefining the community changes who sees at once.
    ok(data, "community", "define", "AUKUS", "EST", "GBR", "USA")
    assert api.get(f"/api/v1/reports/{report_id}", headers=auth(aus)).status_code == 404
    assert api.get(f"/api/v1/reports/{report_id}", headers=auth(est)).status_code == 200


def test_community_with_unknown_member_exits_2(data: Path) -> None:
    result = bices(data, "community", "define", "QUAD", "USA", "IND", "JPN")
    assert result.exit_code == 2, result.output
    assert "IND" in result.output and "JPN" in result.output
    assert "QUAD" not in ok(data, "community", "list").stdout


# -- search ---------------------------------------------------------------------------------


def test_search_as_a_user_obeys_the_rule(data: Path, api: TestClient) -> None:
    usa = add_user(data, "USA", "usa.analyst", "--clearance", "NATO SECRET")
    add_user(data, "GBR", "gbr.analyst", "--clearance", "NATO SECRET")
    add_user(data, "EST", "est.analyst", "--clearance", "NATO RESTRICTED")
    shared = {"classification": "NATO RESTRICTED", "releasable_to": ["NATO"]}
    secret = {"classification": "NATO SECRET", "releasable_to": ["USA", "GBR"]}
    for title, label in (("Hwasong shared", shared), ("Hwasong secret", secret)):
        response = api.post(
            "/api/v1/reports", json=report_json(title=title, label=label), headers=auth(usa)
        )
        assert response.status_code == 201, response.text

    def found(user: str) -> dict[str, object]:
        result = ok(data, "search", "hwasong", "--user", user, "--json")
        parsed: dict[str, object] = json.loads(result.stdout)
        return parsed

    gbr = found("gbr.analyst")
    assert gbr["total"] == 2
    est = found("est.analyst")
    assert est["total"] == 1
    assert [item["title"] for item in est["items"]] == ["Hwasong shared"]  # type: ignore[attr-defined]
    assert est["facets"]["classification"] == {"NATO RESTRICTED": 1}  # type: ignore[index]

    text = ok(data, "search", "hwasong", "--user", "est.analyst").stdout
    assert "1 hit" in text
    assert "Hwasong shared" in text
    assert "Hwasong secret" not in text

    unknown = bices(data, "search", "hwasong", "--user", "nobody")
    assert unknown.exit_code == 2
    assert "nobody" in unknown.output


def test_a_cli_search_is_audited_as_the_operator_acting_for_the_user(data: Path) -> None:
    add_user(data, "EST", "est.analyst", "--clearance", "NATO RESTRICTED")
    ok(data, "search", "hwasong", "--user", "est.analyst")
    node = Node.open(Settings(data=data))
    try:
        searches = [e for e in node.store.audit.all_events() if e.action == "search"]
    finally:
        node.close()
    assert [(e.actor, e.member, e.detail.get("as")) for e in searches] == [
        ("operator", "EST", "est.analyst")
    ]


def test_search_as_suspended_members_user_finds_nothing(data: Path, api: TestClient) -> None:
    usa = add_user(data, "USA", "usa.analyst", "--clearance", "NATO SECRET")
    add_user(data, "EST", "est.analyst", "--clearance", "NATO SECRET")
    label = {"classification": "NATO RESTRICTED", "releasable_to": ["NATO"]}
    api.post("/api/v1/reports", json=report_json(label=label), headers=auth(usa))
    ok(data, "member", "suspend", "EST")
    result = bices(data, "search", "missile", "--user", "est.analyst", "--json")
    if result.exit_code == 0:
        assert json.loads(result.stdout)["total"] == 0
    else:
        assert result.exit_code == 2
        assert "EST" in result.output


def test_no_data_folder_uses_bices_data_env(tmp_path: Path) -> None:
    folder = tmp_path / "from-env"
    result = runner.invoke(
        app, ["member", "add", "USA", "--name", "US"], env={"BICES_DATA": str(folder)}
    )
    assert result.exit_code == 0, result.output
    assert (folder / "bices.db").exists()


def test_db_optimize_merges_the_search_index_and_search_answers_alike(
    data: Path, api: TestClient
) -> None:
    usa = add_user(data, "USA", "usa.analyst", "--clearance", "NATO SECRET")
    for batch in range(6):  # each batch is its own transaction, so its own FTS5 segment
        label = {"classification": "NATO SECRET", "releasable_to": ["NATO"]}
        reports = [report_json(title=f"Convoy {batch}.{i}", body="convoy near Sinpo", label=label)
                   for i in range(5)]  # fmt: skip
        answer = api.post("/api/v1/reports/batch", json={"reports": reports}, headers=auth(usa))
        assert answer.status_code == 201, answer.text
    before = ok(data, "search", "convoy", "--user", "usa.analyst", "--json").stdout
    result = ok(data, "db", "optimize")
    words = result.stdout.split()
    assert int(words[words.index("segment(s)") - 1]) > 1, result.stdout
    assert words[words.index("into") + 1] == "1", result.stdout
    after = ok(data, "search", "convoy", "--user", "usa.analyst", "--json").stdout
    assert json.loads(before)["total"] == json.loads(after)["total"] == 30
    assert json.loads(before)["items"] == json.loads(after)["items"]


def test_extract_prints_the_design_json_with_offsets_into_the_file(tmp_path: Path) -> None:
    text = (
        "Menteri Pertahanan Korea Selatan Shin Won-sik bertemu Sekjen NATO Jens Stoltenberg "
        "di Seoul pada Senin (30/1/2023). Menteri Shin mengatakan Korut meluncurkan rudal.\n"
    )
    source = tmp_path / "laporan.txt"
    source.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["extract", str(source), "--json", "--published", "2023-01-31"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert set(found) == {"language", "date", "entities", "events", "topics", "quantities"}
    assert found["language"] == "id"
    for entity in found["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"]
    canon = {(e["canonical"], e["type"]) for e in found["entities"]}
    assert {("Shin Won-sik", "PERSON"), ("NATO", "ORG"), ("North Korea", "GPE")} <= canon
    shin = [e["text"] for e in found["entities"] if e["canonical"] == "Shin Won-sik"]
    assert "Shin" in shin  # "Menteri Shin" later is the minister named earlier
    meeting = [e for e in found["events"] if e["type"] == "meeting"]
    assert meeting and meeting[0]["date"] == "2023-01-30" and meeting[0]["place"] == "Seoul"


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, [], "cannot be read"),
        (b"", [], "empty"),
        (b"\x00\x01\x02\xff" * 64, [], "binary"),
        (b"North Korea fired a missile.", ["--published", "31/01/2023"], "YYYY-MM-DD"),
    ],
)
def test_extract_refuses_bad_input_with_a_message(
    tmp_path: Path, content: bytes | None, args: list[str], message: str
) -> None:
    source = tmp_path / "input.txt"
    if content is not None:
        source.write_bytes(content)
    result = runner.invoke(app, ["extract", str(source), "--json", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_worker_once_exploits_what_is_pending(data: Path) -> None:
    usa = add_user(data, "USA", "usa.analyst", "--clearance", "NATO SECRET")
    node = Node.open(Settings(data=data, exploit=False))
    try:
        with TestClient(create_app(node)) as client:
            label = {"classification": "NATO SECRET", "releasable_to": ["NATO"]}
            body = report_json(body="North Korea fired a missile near Japan.", label=label)
            rid = client.post("/api/v1/reports", json=body, headers=auth(usa)).json()["id"]
            pending = client.get(f"/api/v1/reports/{rid}/entities", headers=auth(usa)).json()
            assert pending["status"] == "pending"
            result = ok(data, "worker", "--once", "--nice", "0")
            assert "exploited 1 report version" in result.stdout
            done = client.get(f"/api/v1/reports/{rid}/entities", headers=auth(usa)).json()
            assert done["status"] == "done"
            assert {"North Korea", "Japan"} <= {e["canonical"] for e in done["entities"]}
            assert "exploited 0" in ok(data, "worker", "--once", "--nice", "0").stdout
    finally:
        node.close()
