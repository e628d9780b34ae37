"""Members, accession, suspension, users and tokens over the API."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from bices.domain.signing import new_key, public_b64
from bices.node import Node
from tests.conftest import MEMBERS, Coalition, auth, report_json, sqlite_only

API = "/api/v1"


def admins(coalition: Coalition, *members: str) -> dict[str, str]:
    return {
        m: coalition.user(m, roles=("member-admin",), name=f"{m.lower()}.admin") for m in members
    }


def operator(coalition: Coalition) -> str:
    return coalition.user(
        "USA", clearance="COSMIC TOP SECRET", roles=("operator",), name="usa.operator"
    )


def apply_nzl(client: TestClient, token: str, **extra: object) -> dict[str, object]:
    body = {"code": "NZL", "name": "New Zealand", "sponsor": "USA", "communities": ["IP4"], **extra}
    response = client.post(f"{API}/accessions", json=body, headers=auth(token))
    assert response.status_code == 201, response.text
    result: dict[str, object] = response.json()
    return result


# -- accession ------------------------------------------------------------------------------


def test_accession_reaches_quorum_and_applicant_becomes_active(
    client: TestClient, coalition: Coalition, node: Node
) -> None:
    # Seven active members: a majority is four approvals.
    tokens = admins(coalition, *MEMBERS)
    applied = apply_nzl(client, tokens["USA"])
    assert applied["status"] == "pending"
    assert client.get(f"{API}/members/NZL", headers=auth(tokens["USA"])).status_code == 404

    for count, voter in enumerate(("USA", "GBR", "KOR"), start=1):
        response = client.post(f"{API}/accessions/NZL/approve", headers=auth(tokens[voter]))
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "pending"
        assert len(response.json()["approvals"]) == count
    # A second vote by the same member does not count twice.
    again = client.post(f"{API}/accessions/NZL/approve", headers=auth(tokens["GBR"]))
    assert again.json()["status"] == "pending"
    assert sorted(again.json()["approvals"]) == ["GBR", "KOR", "USA"]

    final = client.post(f"{API}/accessions/NZL/approve", headers=auth(tokens["EST"]))
    assert final.status_code == 200, final.text
    assert final.json()["status"] == "approved"

    member = client.get(f"{API}/members/NZL", headers=auth(tokens["JPN"]))
    assert member.status_code == 200, member.text
    assert member.json()["status"] == "active"
    assert member.json()["sponsor"] == "USA"
    assert "IP4" in member.json()["communities"]
    assert len(base64.b64decode(member.json()["public_key"])) == 32

    # The new member takes part at once: its users see IP4 reports and may write.
    usa_analyst = coalition.user("USA")
    ip4 = {"classification": "NATO SECRET", "releasable_to": ["NATO", "IP4"]}
    posted = client.post(f"{API}/reports", json=report_json(label=ip4), headers=auth(usa_analyst))
    nzl = coalition.user("NZL")
    assert client.get(f"{API}/reports/{posted.json()['id']}", headers=auth(nzl)).status_code == 200
    written = client.post(f"{API}/reports", json=report_json(label=ip4), headers=auth(nzl))
    assert written.status_code == 201, written.text
    verify = client.get(f"{API}/reports/{written.json()['id']}/verify", headers=auth(nzl)).json()
    assert verify["versions"][0]["valid"] is True

    # A decided application takes no more votes.
    late = client.post(f"{API}/accessions/NZL/approve", headers=auth(tokens["POL"]))
    assert 400 <= late.status_code < 500


def test_accession_with_the_applicants_own_public_key(
    client: TestClient, coalition: Coalition
) -> None:
    tokens = admins(coalition, *MEMBERS)
    key = public_b64(new_key())
    apply_nzl(client, tokens["USA"], public_key=key)
    for voter in ("USA", "GBR", "EST", "POL"):
        client.post(f"{API}/accessions/NZL/approve", headers=auth(tokens[voter]))
    member = client.get(f"{API}/members/NZL", headers=auth(tokens["USA"])).json()
    assert (member["status"], member["public_key"]) == ("active", key)


def test_accession_rejected(client: TestClient, coalition: Coalition) -> None:
    tokens = admins(coalition, *MEMBERS)
    apply_nzl(client, tokens["USA"])
    client.post(f"{API}/accessions/NZL/approve", headers=auth(tokens["USA"]))
    # 7 voters, 4 needed: after four rejections approval is out of reach.
    for count, voter in enumerate(("GBR", "EST", "POL"), start=1):
        response = client.post(f"{API}/accessions/NZL/reject", headers=auth(tokens[voter]))
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "pending"
        assert len(response.json()["rejections"]) == count
    final = client.post(f"{API}/accessions/NZL/reject", headers=auth(tokens["JPN"]))
    assert final.json()["status"] == "rejected"
    assert client.get(f"{API}/accessions/NZL", headers=auth(tokens["USA"])).json()["status"] == (
        "rejected"
    )
    assert client.get(f"{API}/members/NZL", headers=auth(tokens["USA"])).status_code == 404
    more = client.post(f"{API}/accessions/NZL/approve", headers=auth(tokens["KOR"]))
    assert 400 <= more.status_code < 500
    # A rejected applicant may apply again.
    assert apply_nzl(client, tokens["USA"])["status"] == "pending"


def test_only_member_admins_apply_and_vote(client: TestClient, coalition: Coalition) -> None:
    tokens = admins(coalition, "USA", "GBR")
    analyst = coalition.user("GBR")
    body = {"code": "NZL", "name": "New Zealand", "sponsor": "GBR"}
    refused = client.post(f"{API}/accessions", json=body, headers=auth(analyst))
    assert refused.status_code == 403, refused.text
    assert "member-admin" in refused.json()["detail"]
    # An administrator sponsors only for its own member.
    other = client.post(f"{API}/accessions", json=body, headers=auth(tokens["USA"]))
    assert other.status_code == 403, other.text
    assert client.get(f"{API}/accessions", headers=auth(analyst)).json() == []

    apply_nzl(client, tokens["USA"])
    vote = client.post(f"{API}/accessions/NZL/approve", headers=auth(analyst))
    assert vote.status_code == 403, vote.text
    assert "member-admin" in vote.json()["detail"]
    reject = client.post(f"{API}/accessions/NZL/reject", headers=auth(analyst))
    assert reject.status_code == 403
    listed = client.get(f"{API}/accessions/NZL", headers=auth(analyst)).json()
    assert (listed["approvals"], listed["rejections"]) == ([], [])


def test_accession_input_is_checked(client: TestClient, coalition: Coalition) -> None:
    admin = admins(coalition, "USA")["USA"]
    for body, named in (
        ({"code": "QQQ", "name": "Nowhere", "sponsor": "USA"}, "QQQ"),
        ({"code": "NZL", "name": "New Zealand", "sponsor": "USA", "communities": ["FVEY"]}, "FVEY"),
        ({"code": "KOR", "name": "Korea", "sponsor": "USA"}, "KOR"),
        ({"code": "NZL", "name": "New Zealand", "sponsor": "USA", "public_key": "nope"}, "nope"),
    ):
        response = client.post(f"{API}/accessions", json=body, headers=auth(admin))
        assert 400 <= response.status_code < 500, response.text
        assert named in response.json()["detail"]
    assert client.get(f"{API}/accessions", headers=auth(admin)).json() == []
    missing = client.post(f"{API}/accessions/FIN/approve", headers=auth(admin))
    assert missing.status_code == 404


# -- suspension and withdrawal --------------------------------------------------------------


def test_suspension_takes_effect_at_once_and_reinstatement_restores(
    client: TestClient, coalition: Coalition
) -> None:
    op = operator(coalition)
    usa = coalition.user("USA")
    kor = coalition.user("KOR")
    report_id = client.post(f"{API}/reports", json=report_json(), headers=auth(usa)).json()["id"]
    reads = (
        f"{API}/reports/{report_id}",
        f"{API}/reports",
        f"{API}/search?q=missile",
        f"{API}/reports/{report_id}/versions",
    )
    for path in reads:
        assert client.get(path, headers=auth(kor)).status_code == 200, path

    suspended = client.post(f"{API}/members/KOR/suspend", headers=auth(op))
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["status"] == "suspended"
    for path in reads:
        response = client.get(path, headers=auth(kor))
        assert response.status_code == 403, (path, response.text)
        assert "KOR" in response.json()["detail"]
    assert client.post(f"{API}/reports", json=report_json(), headers=auth(kor)).status_code == 403
    # Other members are unaffected.
    assert client.get(f"{API}/reports/{report_id}", headers=auth(usa)).status_code == 200

    reinstated = client.post(f"{API}/members/KOR/reinstate", headers=auth(op))
    assert reinstated.status_code == 200, reinstated.text
    assert reinstated.json()["status"] == "active"
    for path in reads:
        assert client.get(path, headers=auth(kor)).status_code == 200, path


def test_suspension_needs_the_operator(client: TestClient, coalition: Coalition) -> None:
    kor_admin = admins(coalition, "KOR", "USA")
    response = client.post(f"{API}/members/KOR/suspend", headers=auth(kor_admin["USA"]))
    assert response.status_code == 403, response.text
    own = client.post(f"{API}/members/KOR/suspend", headers=auth(kor_admin["KOR"]))
    assert own.status_code == 403
    member = client.get(f"{API}/members/KOR", headers=auth(kor_admin["USA"])).json()
    assert member["status"] == "active"


def test_withdrawal(client: TestClient, coalition: Coalition) -> None:
    op = operator(coalition)
    tokens = admins(coalition, "JPN", "KOR")
    jpn = coalition.user("JPN")
    # An administrator may withdraw its own member, not another.
    other = client.post(f"{API}/members/JPN/withdraw", headers=auth(tokens["KOR"]))
    assert other.status_code == 403
    response = client.post(f"{API}/members/JPN/withdraw", headers=auth(tokens["JPN"]))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "withdrawn"
    assert client.get(f"{API}/reports", headers=auth(jpn)).status_code == 403
    assert client.get(f"{API}/search?q=x", headers=auth(jpn)).status_code == 403
    # Withdrawal is for good.
    back = client.post(f"{API}/members/JPN/reinstate", headers=auth(op))
    assert back.status_code == 409, back.text
    assert client.get(f"{API}/reports", headers=auth(jpn)).status_code == 403
    # The operator may withdraw a suspended member too.
    client.post(f"{API}/members/KOR/suspend", headers=auth(op))
    assert client.post(f"{API}/members/KOR/withdraw", headers=auth(op)).status_code == 200


@pytest.mark.parametrize("verb", ["suspend", "reinstate", "withdraw"])
def test_status_change_of_unknown_member_is_404(
    client: TestClient, coalition: Coalition, verb: str
) -> None:
    op = operator(coalition)
    assert client.post(f"{API}/members/FIN/{verb}", headers=auth(op)).status_code == 404


# -- tokens ---------------------------------------------------------------------------------


def test_revoking_tokens_makes_the_next_request_401(
    client: TestClient, coalition: Coalition, node: Node
) -> None:
    kor_admin = admins(coalition, "KOR")["KOR"]
    kor = coalition.user("KOR", name="kor.analyst")
    second = client.post(f"{API}/users/kor.analyst/tokens", headers=auth(kor_admin))
    assert second.status_code == 201, second.text
    second_token = second.json()["token"]
    for token in (kor, second_token):
        assert client.get(f"{API}/users/me", headers=auth(token)).status_code == 200

    revoked = client.delete(f"{API}/users/kor.analyst/tokens", headers=auth(kor_admin))
    assert revoked.status_code == 200, revoked.text
    assert revoked.json() == {"revoked": 2}
    for token in (kor, second_token):
        response = client.get(f"{API}/users/me", headers=auth(token))
        assert response.status_code == 401, response.text
        assert client.get(f"{API}/reports", headers=auth(token)).status_code == 401
    # The administrator's own token still works.
    assert client.get(f"{API}/users/me", headers=auth(kor_admin)).status_code == 200


def test_user_may_revoke_own_tokens_not_others(client: TestClient, coalition: Coalition) -> None:
    mine = coalition.user("KOR", name="kor.one")
    theirs = coalition.user("KOR", name="kor.two")
    usa_admin = admins(coalition, "USA")["USA"]
    assert client.delete(f"{API}/users/kor.two/tokens", headers=auth(mine)).status_code == 403
    # Another member's administrator does not even learn that the user exists.
    assert client.delete(f"{API}/users/kor.two/tokens", headers=auth(usa_admin)).status_code == 404
    assert client.get(f"{API}/users/me", headers=auth(theirs)).status_code == 200
    assert client.delete(f"{API}/users/kor.one/tokens", headers=auth(mine)).status_code == 200
    assert client.get(f"{API}/users/me", headers=auth(mine)).status_code == 401


@sqlite_only  # on PostgreSQL: tests/test_pg_store.py scans every table
def test_tokens_are_stored_hashed(client: TestClient, coalition: Coalition, node: Node) -> None:
    admin = admins(coalition, "KOR")["KOR"]
    tokens = [coalition.user("KOR", name="kor.hashed")]
    added = client.post(
        f"{API}/users",
        json={"member": "KOR", "name": "kor.via.api", "clearance": "NATO SECRET"},
        headers=auth(admin),
    )
    tokens.append(added.json()["token"])
    issued = client.post(f"{API}/users/kor.hashed/tokens", headers=auth(admin))
    tokens.append(issued.json()["token"])
    tokens.append(admin)
    for token in tokens:
        assert client.get(f"{API}/users/me", headers=auth(token)).status_code == 200

    folder = node.settings.data
    files = [p for p in folder.iterdir() if p.name.startswith("bices.db")]
    assert {p.name for p in files} >= {"bices.db", "bices.db-wal"}
    stored = b"".join(p.read_bytes() for p in files)
    assert b"kor.via.api" in stored  # the files read are the node's own
    for token in tokens:
        assert token.encode() not in stored
        secret = token.removeprefix("bices_")
        assert secret.encode() not in stored
        assert secret[:16].encode() not in stored


# -- users ----------------------------------------------------------------------------------


def test_member_admin_adds_users_of_own_member_only(
    client: TestClient, coalition: Coalition
) -> None:
    tokens = admins(coalition, "KOR")
    body = {
        "member": "KOR",
        "name": "kor.new",
        "clearance": "NATO CONFIDENTIAL",
        "caveats": ["commercial imagery"],
        "roles": ["analyst", "releaser"],
    }
    created = client.post(f"{API}/users", json=body, headers=auth(tokens["KOR"]))
    assert created.status_code == 201, created.text
    user = created.json()["user"]
    assert (user["member"], user["name"], user["clearance"]) == (
        "KOR",
        "kor.new",
        "NATO CONFIDENTIAL",
    )
    assert user["caveats"] == ["COMMERCIAL IMAGERY"]
    assert user["roles"] == ["analyst", "releaser"]
    me = client.get(f"{API}/users/me", headers=auth(created.json()["token"]))
    assert me.status_code == 200, me.text
    assert me.json()["name"] == "kor.new"

    other_member = client.post(
        f"{API}/users",
        json={**body, "member": "USA", "name": "usa.new"},
        headers=auth(tokens["KOR"]),
    )
    assert other_member.status_code == 403, other_member.text
    assert "USA" in other_member.json()["detail"]
    analyst = coalition.user("KOR")
    by_analyst = client.post(
        f"{API}/users", json={**body, "name": "kor.other"}, headers=auth(analyst)
    )
    assert by_analyst.status_code == 403
    operator_role = client.post(
        f"{API}/users",
        json={**body, "name": "kor.op", "roles": ["operator"]},
        headers=auth(tokens["KOR"]),
    )
    assert operator_role.status_code == 403
    taken = client.post(f"{API}/users", json=body, headers=auth(tokens["KOR"]))
    assert taken.status_code == 409
    names = {u["name"] for u in client.get(f"{API}/users", headers=auth(tokens["KOR"])).json()}
    assert "kor.new" in names
    assert not names & {"usa.new", "kor.other", "kor.op"}
    assert all(
        u["member"] == "KOR" for u in client.get(f"{API}/users", headers=auth(tokens["KOR"])).json()
    )
    assert client.get(f"{API}/users", headers=auth(analyst)).status_code == 403


def test_user_input_is_checked(client: TestClient, coalition: Coalition) -> None:
    admin = admins(coalition, "KOR")["KOR"]
    for body, named in (
        ({"member": "KOR", "name": "k1", "clearance": "ULTRA"}, "ULTRA"),
        ({"member": "KOR", "name": "k2", "clearance": "NATO SECRET", "roles": ["king"]}, "king"),
        ({"member": "KOR", "name": "a:b", "clearance": "NATO SECRET"}, "a:b"),
    ):
        response = client.post(f"{API}/users", json=body, headers=auth(admin))
        assert 400 <= response.status_code < 500, response.text
        assert named in response.json()["detail"]
