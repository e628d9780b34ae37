"""The audit trail: every write and read is an event; tampering with events or reports shows."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bices.cli import app as cli
from bices.domain.audit import AuditEvent, verify_chain
from bices.domain.members import MemberKind
from bices.node import Node
from bices.settings import Settings
from tests.conftest import Coalition, Tamperer, auth, cli_args, make_node, report_json, sqlite_only

API = "/api/v1"
runner = CliRunner()


def events(node: Node) -> list[AuditEvent]:
    return list(node.store.audit.all_events())


def new_events(node: Node, after: int) -> list[AuditEvent]:
    return [e for e in events(node) if e.seq > after]


def last_seq(node: Node) -> int:
    found = events(node)
    return found[-1].seq if found else 0


@pytest.fixture
def db(node: Node) -> Iterator[Tamperer]:
    """A separate connection to the node's database, as a tamperer would open it."""
    conn = Tamperer(node, "bices.db")
    yield conn
    conn.close()


@pytest.fixture
def audit_db(node: Node) -> Iterator[Tamperer]:
    """A separate connection to where the node keeps the chain (SQLite: its own file)."""
    conn = Tamperer(node, "audit.db")
    yield conn
    conn.close()


def audit_verify(node: Node) -> tuple[int, str]:
    result = runner.invoke(cli, [*cli_args(node), "audit", "verify"])
    return result.exit_code, result.output


def report_verify(node: Node) -> tuple[int, str]:
    result = runner.invoke(cli, [*cli_args(node), "report", "verify"])
    return result.exit_code, result.output


# -- what is recorded -----------------------------------------------------------------------


def test_writes_are_audited(client: TestClient, coalition: Coalition, node: Node) -> None:
    start = last_seq(node)
    usa = coalition.user("USA", name="usa.writer")
    report_id = client.post(f"{API}/reports", json=report_json(), headers=auth(usa)).json()["id"]
    batch = {"reports": [report_json(title="a"), report_json(title="b")]}
    ids = client.post(f"{API}/reports/batch", json=batch, headers=auth(usa)).json()["ids"]
    client.put(f"{API}/reports/{report_id}", json=report_json(title="v2"), headers=auth(usa))
    recorded = [(e.actor, e.action, e.target) for e in new_events(node, start)]
    assert recorded == [
        ("operator", "user.add", "usa.writer"),
        ("usa.writer", "report.create", report_id),
        ("usa.writer", "report.create", ids[0]),
        ("usa.writer", "report.create", ids[1]),
        ("usa.writer", "report.update", report_id),
    ]
    update = new_events(node, start)[-1]
    assert update.member == "USA"
    assert update.detail["version"] == 2


def test_coalition_changes_are_audited(
    client: TestClient, coalition: Coalition, node: Node
) -> None:
    op = coalition.user("USA", roles=("operator",), name="usa.op")
    admin = coalition.user("GBR", roles=("member-admin",), name="gbr.admin")
    start = last_seq(node)
    body = {"code": "NZL", "name": "New Zealand", "sponsor": "GBR"}
    assert client.post(f"{API}/accessions", json=body, headers=auth(admin)).status_code == 201
    client.post(f"{API}/accessions/NZL/approve", headers=auth(admin))
    client.post(f"{API}/members/KOR/suspend", headers=auth(op))
    client.post(f"{API}/members/KOR/reinstate", headers=auth(op))
    client.post(
        f"{API}/users",
        json={"member": "GBR", "name": "gbr.new", "clearance": "NATO SECRET"},
        headers=auth(admin),
    )
    client.delete(f"{API}/users/gbr.new/tokens", headers=auth(admin))
    client.put(
        f"{API}/communities/AUKUS", json={"members": ["AUS", "GBR", "USA"]}, headers=auth(op)
    )
    recorded = [(e.actor, e.action, e.target) for e in new_events(node, start)]
    assert recorded == [
        ("gbr.admin", "accession.apply", "NZL"),
        ("gbr.admin", "accession.approve", "NZL"),
        ("usa.op", "member.suspended", "KOR"),
        ("usa.op", "member.active", "KOR"),
        ("gbr.admin", "user.add", "gbr.new"),
        ("gbr.admin", "token.revoke", "gbr.new"),
        ("usa.op", "community.define", "AUKUS"),
    ]


def test_reads_are_audited(client: TestClient, coalition: Coalition, node: Node) -> None:
    usa = coalition.user("USA")
    kor = coalition.user("KOR", name="kor.reader")
    a = client.post(f"{API}/reports", json=report_json(title="Alpha"), headers=auth(usa)).json()
    b = client.post(
        f"{API}/reports", json=report_json(title="Bravo", body="Nothing."), headers=auth(usa)
    ).json()
    hidden = client.post(
        f"{API}/reports",
        json=report_json(label={"classification": "NATO SECRET", "releasable_to": ["USA"]}),
        headers=auth(usa),
    ).json()

    def reads(since: int) -> list[tuple[str, str | None, object]]:
        return [
            (e.action, e.target, e.detail.get("via"))
            for e in new_events(node, since)
            if e.actor == "kor.reader"
        ]

    start = last_seq(node)
    assert client.get(f"{API}/reports/{a['id']}", headers=auth(kor)).status_code == 200
    assert reads(start) == [("report.read", a["id"], "get")]

    start = last_seq(node)
    client.get(f"{API}/reports/{a['id']}/versions/1", headers=auth(kor))
    assert reads(start) == [("report.read", a["id"], "get")]

    start = last_seq(node)
    listed = client.get(f"{API}/reports", headers=auth(kor)).json()
    assert {i["id"] for i in listed["items"]} == {a["id"], b["id"]}
    assert sorted(reads(start)) == sorted(
        [("report.read", a["id"], "list"), ("report.read", b["id"], "list")]
    )

    start = last_seq(node)
    found = client.get(f"{API}/search", params={"q": "missile"}, headers=auth(kor)).json()
    assert [i["id"] for i in found["items"]] == [a["id"]]
    recorded = [e for e in new_events(node, start) if e.actor == "kor.reader"]
    searches = [e for e in recorded if e.action == "search"]
    assert len(searches) == 1
    assert searches[0].detail["q"] == "missile"
    assert [(e.action, e.target, e.detail["via"]) for e in recorded if e.action != "search"] == [
        ("report.read", a["id"], "search")
    ]

    # A refused read (hidden answers 404) serves nothing, so records no read of it.
    start = last_seq(node)
    assert client.get(f"{API}/reports/{hidden['id']}", headers=auth(kor)).status_code == 404
    assert ("report.read", hidden["id"], "get") not in reads(start)


def test_attachment_reads_are_audited(client: TestClient, coalition: Coalition, node: Node) -> None:
    import base64
    import hashlib

    usa = coalition.user("USA")
    kor = coalition.user("KOR", name="kor.viewer")
    data = b"imagery"
    attachment = {"name": "img.bin", "content_base64": base64.b64encode(data).decode()}
    created = client.post(
        f"{API}/reports", json=report_json(attachments=[attachment]), headers=auth(usa)
    ).json()
    digest = hashlib.sha256(data).hexdigest()
    start = last_seq(node)
    response = client.get(f"{API}/reports/{created['id']}/attachments/{digest}", headers=auth(kor))
    assert response.content == data
    recorded = [(e.actor, e.action, e.target) for e in new_events(node, start)]
    assert ("kor.viewer", "attachment.read", created["id"]) in recorded


def test_audit_view_obeys_the_rule(client: TestClient, coalition: Coalition) -> None:
    usa = coalition.user("USA")
    kor_admin = coalition.user("KOR", roles=("member-admin", "analyst"), name="kor.admin")
    op = coalition.user("JPN", roles=("operator",), clearance="NATO SECRET", name="jpn.op")
    visible = client.post(f"{API}/reports", json=report_json(), headers=auth(usa)).json()["id"]
    hidden = client.post(
        f"{API}/reports",
        json=report_json(label={"classification": "NATO SECRET", "releasable_to": ["USA"]}),
        headers=auth(usa),
    ).json()["id"]
    client.get(f"{API}/reports/{visible}", headers=auth(kor_admin))
    client.get(f"{API}/search", params={"q": "missile"}, headers=auth(usa))
    client.get(f"{API}/reports", headers=auth(usa))

    trail = client.get(f"{API}/audit", params={"limit": 1000}, headers=auth(op))
    assert trail.status_code == 200, trail.text
    assert trail.json()["items"], "the operator sees events without an item"
    # The JPN operator may see neither report (both exclude JPN): neither id appears anywhere,
    # not as a target and not inside the detail of a search or listing event.
    assert visible not in trail.text
    assert hidden not in trail.text

    own = client.get(f"{API}/audit", params={"limit": 1000}, headers=auth(kor_admin)).json()
    assert {e["member"] for e in own["items"]} == {"KOR"}
    assert visible in {e["target"] for e in own["items"]}
    assert client.get(f"{API}/audit", headers=auth(usa)).status_code == 403


# -- verifying the chain --------------------------------------------------------------------


@pytest.fixture
def busy(client: TestClient, coalition: Coalition, node: Node) -> Node:
    """A node with a dozen or more events of every kind."""
    usa = coalition.user("USA")
    kor = coalition.user("KOR")
    for i in range(3):
        report_id = client.post(
            f"{API}/reports", json=report_json(title=f"Report {i}"), headers=auth(usa)
        ).json()["id"]
        client.get(f"{API}/reports/{report_id}", headers=auth(kor))
    client.get(f"{API}/search", params={"q": "missile"}, headers=auth(kor))
    assert last_seq(node) >= 12
    return node


def test_audit_verify_passes_on_an_intact_chain(busy: Node) -> None:
    code, output = audit_verify(busy)
    assert code == 0, output
    assert "intact" in output
    assert str(last_seq(busy)) in output


def broken_at(output: str) -> int:
    found = re.search(r"broken at event (\d+)", output)
    assert found is not None, output
    return int(found.group(1))


def test_audit_verify_detects_a_changed_event(busy: Node, audit_db: Tamperer) -> None:
    audit_db.execute("""UPDATE audit SET detail = '{"version": 99}' WHERE seq = 9""")
    code, output = audit_verify(busy)
    assert code == 1, output
    assert broken_at(output) == 9
    assert "changed" in output


@pytest.mark.parametrize("column", ["actor", "action", "target", "at", "member"])
def test_audit_verify_detects_any_changed_column(
    busy: Node, audit_db: Tamperer, column: str
) -> None:
    value = "2020-01-01T00:00:00Z" if column == "at" else "someone-else"
    audit_db.execute(f"UPDATE audit SET {column} = ? WHERE seq = 7", (value,))
    code, output = audit_verify(busy)
    assert code == 1, output
    assert broken_at(output) == 7


def test_audit_verify_detects_a_changed_label_reference(busy: Node, audit_db: Tamperer) -> None:
    seq = next(e.seq for e in events(busy) if e.label_id is not None)
    audit_db.execute("UPDATE audit SET label_id = label_id + 1000 WHERE seq = ?", (seq,))
    code, output = audit_verify(busy)
    assert code == 1, output
    assert broken_at(output) == seq


def test_audit_verify_detects_a_removed_event(busy: Node, audit_db: Tamperer) -> None:
    audit_db.execute("DELETE FROM audit WHERE seq = 5")
    code, output = audit_verify(busy)
    assert code == 1, output
    # The first event that no longer holds is the one after the gap.
    assert broken_at(output) == 6
    assert "removed" in output


def test_audit_verify_detects_removal_of_the_last_events_and_renumbering(
    busy: Node, audit_db: Tamperer
) -> None:
    # Delete event 4 and renumber the rest to close the gap: the hashes cover seq and prev.
    audit_db.execute("DELETE FROM audit WHERE seq = 4")
    audit_db.execute("UPDATE audit SET seq = -(seq - 1) WHERE seq > 4")
    audit_db.execute("UPDATE audit SET seq = -seq WHERE seq < 0")
    code, output = audit_verify(busy)
    assert code == 1, output
    assert broken_at(output) == 4


def test_audit_verify_detects_a_reordered_pair(busy: Node, audit_db: Tamperer) -> None:
    columns = ["at", "actor", "member", "action", "target", "label_id", "detail", "prev", "hash"]
    row5 = audit_db.execute(f"SELECT {', '.join(columns)} FROM audit WHERE seq = 5").fetchone()
    row6 = audit_db.execute(f"SELECT {', '.join(columns)} FROM audit WHERE seq = 6").fetchone()
    assignments = ", ".join(f"{c} = ?" for c in columns)
    audit_db.execute("BEGIN")
    audit_db.execute(f"UPDATE audit SET {assignments} WHERE seq = 5", row6)
    audit_db.execute(f"UPDATE audit SET {assignments} WHERE seq = 6", row5)
    audit_db.execute("COMMIT")
    code, output = audit_verify(busy)
    assert code == 1, output
    assert broken_at(output) == 5


def test_audit_chain_stays_intact_when_the_cli_writes(busy: Node) -> None:
    """The CLI opens the same file and appends to the chain the API writes."""
    result = runner.invoke(
        cli, [*cli_args(busy), "user", "add", "--member", "GBR", "--name", "gbr.cli",
              "--clearance", "NATO SECRET"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    code, output = audit_verify(busy)
    assert code == 0, output


# -- tampering with stored reports ----------------------------------------------------------


def test_tampered_report_body_fails_verification(
    client: TestClient, coalition: Coalition, node: Node, db: Tamperer
) -> None:
    usa = coalition.user("USA")
    kept = client.post(f"{API}/reports", json=report_json(), headers=auth(usa)).json()["id"]
    target = client.post(f"{API}/reports", json=report_json(), headers=auth(usa)).json()["id"]
    assert report_verify(node)[0] == 0

    db.execute(
        "UPDATE report_versions SET body = 'No launch took place.' WHERE report_id = ?", (target,)
    )
    response = client.get(f"{API}/reports/{target}/verify", headers=auth(usa))
    assert response.status_code == 200, response.text
    assert response.json()["versions"][0]["valid"] is False
    untouched = client.get(f"{API}/reports/{kept}/verify", headers=auth(usa)).json()
    assert untouched["versions"][0]["valid"] is True
    code, output = report_verify(node)
    assert code == 1, output
    assert target in output
    assert kept not in output


def test_tampered_report_label_fails_verification(
    client: TestClient, coalition: Coalition, node: Node, db: Tamperer
) -> None:
    usa = coalition.user("USA")
    wide = client.post(
        f"{API}/reports",
        json=report_json(label={"classification": "PUBLIC", "releasable_to": ["NATO", "IP4"]}),
        headers=auth(usa),
    ).json()["id"]
    narrow = client.post(
        f"{API}/reports",
        json=report_json(label={"classification": "NATO SECRET", "releasable_to": ["USA"]}),
        headers=auth(usa),
    ).json()["id"]
    # Rebind the US-only report to the label of the widely releasable one.
    db.execute(
        "UPDATE report_versions SET label_id = "
        "(SELECT label_id FROM report_versions WHERE report_id = ?) WHERE report_id = ?",
        (wide, narrow),
    )
    response = client.get(f"{API}/reports/{narrow}/verify", headers=auth(usa))
    assert response.status_code == 200, response.text
    assert response.json()["versions"][0]["valid"] is False
    code, output = report_verify(node)
    assert code == 1, output
    assert narrow in output


@pytest.mark.parametrize(
    ("column", "value"),
    [("title", "Forged title"), ("reliability", "A"), ("credibility", 1), ("language", "id")],
)
def test_tampered_report_fields_fail_verification(
    client: TestClient,
    coalition: Coalition,
    node: Node,
    db: Tamperer,
    column: str,
    value: object,
) -> None:
    usa = coalition.user("USA")
    target = client.post(f"{API}/reports", json=report_json(), headers=auth(usa)).json()["id"]
    db.execute(f"UPDATE report_versions SET {column} = ? WHERE report_id = ?", (value, target))
    verdict = client.get(f"{API}/reports/{target}/verify", headers=auth(usa)).json()
    assert verdict["versions"][0]["valid"] is False
    assert report_verify(node)[0] == 1


def test_a_write_whose_audit_event_was_not_yet_chained_is_chained_on_reopening(
    tmp_path: Path,
) -> None:
    """The event is committed with the write (in the main file's outbox); a crash before
    it reaches the chain in audit.db only delays it."""
    node = make_node(tmp_path / "node")
    node.store.db.after_commit = None  # as if the process died right after the commit
    node.coalition.add_member("CAN", "Canada", MemberKind.NATION, ["NATO"])
    node.close()
    reopened = Node.open(Settings(data=tmp_path / "node"))
    try:
        found = [e for e in reopened.store.audit.all_events() if e.target == "CAN"]
        assert [e.action for e in found] == ["member.add"]
        assert verify_chain(reopened.store.audit.all_events())[1] is None
    finally:
        reopened.close()


@sqlite_only
def test_reads_do_not_write_the_main_file(node: Node, client: TestClient) -> None:
    """Audited reads go to audit.db only, so readers of the main file keep their caches."""
    token = Coalition(node).user("USA")
    created = client.post(f"{API}/reports", json=report_json(), headers=auth(token)).json()["id"]
    client.get(f"{API}/search", params={"q": "launch"}, headers=auth(token))  # labels seen once
    watcher = sqlite3.connect(node.settings.data / "bices.db")
    before = watcher.execute("PRAGMA data_version").fetchone()[0]
    for path in (f"{API}/reports/{created}", f"{API}/reports", f"{API}/search?q=launch"):
        assert client.get(path, headers=auth(token)).status_code == 200
    after = watcher.execute("PRAGMA data_version").fetchone()[0]
    watcher.close()
    assert after == before, "a read changed the main database file"
    reads = [e for e in node.store.audit.all_events() if e.action in {"report.read", "search"}]
    assert len(reads) >= 4


@sqlite_only
def test_chained_outbox_rows_are_pruned_from_the_main_file(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bices.store import sqlite_audit

    monkeypatch.setattr(sqlite_audit, "PRUNE_EVERY", 5)
    for code in ("CAN", "FRA", "DEU", "ITA", "ESP", "NOR", "DNK"):
        node.coalition.add_member(code, f"Member {code}", MemberKind.NATION, ["NATO"])
    main = sqlite3.connect(node.settings.data / "bices.db")
    left = main.execute("SELECT count(*) FROM audit_outbox").fetchone()[0]
    main.close()
    assert left < 5  # pruned at least once
    added = [e.target for e in node.store.audit.all_events() if e.action == "member.add"]
    assert {"CAN", "FRA", "DEU", "ITA", "ESP", "NOR", "DNK"} <= set(added)
    assert verify_chain(node.store.audit.all_events())[1] is None


def test_a_main_file_older_than_the_chain_is_noticed_and_new_events_still_chained(
    tmp_path: Path,
) -> None:
    """bices.db restored from an older copy than audit.db: its outbox would hand out ids
    the chain already took, and their events would be skipped without the resync."""
    import shutil

    folder = tmp_path / "node"
    node = make_node(folder)
    node.close()
    for name in ("bices.db", "bices.db-wal", "bices.db-shm"):
        if (folder / name).exists():
            shutil.copy(folder / name, tmp_path / name)  # last night's backup of the main file
    node = Node.open(Settings(data=folder))
    for code in ("CAN", "FRA"):
        node.coalition.add_member(code, f"Member {code}", MemberKind.NATION, ["NATO"])
    node.close()
    for name in ("bices.db", "bices.db-wal", "bices.db-shm"):
        (folder / name).unlink(missing_ok=True)
        if (tmp_path / name).exists():
            shutil.copy(tmp_path / name, folder / name)  # restored; audit.db kept
    node = Node.open(Settings(data=folder))
    try:
        node.coalition.add_member("DEU", "Member DEU", MemberKind.NATION, ["NATO"])
        events = list(node.store.audit.all_events())
        assert [e.action for e in events if e.action == "audit.resync"] == ["audit.resync"]
        assert "DEU" in [e.target for e in events if e.action == "member.add"]
        assert verify_chain(node.store.audit.all_events())[1] is None
    finally:
        node.close()


def test_a_first_release_folder_with_the_chain_in_the_main_file_is_moved(tmp_path: Path) -> None:
    folder = tmp_path / "node"
    make_node(folder).close()
    chain = sqlite3.connect(folder / "audit.db")
    rows = chain.execute("SELECT * FROM audit ORDER BY seq").fetchall()
    chain.close()
    for name in ("audit.db", "audit.db-wal", "audit.db-shm"):
        (folder / name).unlink(missing_ok=True)
    main = sqlite3.connect(folder / "bices.db")  # as the first release kept it
    main.execute(
        "CREATE TABLE audit (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, "
        "member TEXT, action TEXT NOT NULL, target TEXT, label_id INTEGER, detail TEXT NOT NULL, "
        "prev TEXT NOT NULL, hash TEXT NOT NULL)"
    )
    main.executemany("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    main.execute("DROP TABLE audit_outbox")  # which the first release did not have
    main.commit()
    main.close()
    node = Node.open(Settings(data=folder))
    try:
        moved = list(node.store.audit.all_events())
        assert [e.hash for e in moved] == [r[-1] for r in rows]
        assert verify_chain(node.store.audit.all_events())[1] is None
        main = sqlite3.connect(folder / "bices.db")
        assert main.execute("SELECT 1 FROM sqlite_master WHERE name = 'audit'").fetchone() is None
        main.close()
    finally:
        node.close()
