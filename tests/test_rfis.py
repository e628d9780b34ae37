"""Requests for information over the API, the service and the CLI: the life-cycle, illegal
steps, bad input with nothing stored, ordering and filters, the outbox and its payloads,
the audit trail, and the access rule on RFIs and their answers."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bices.api import create_app
from bices.cli import app as cli_app
from bices.coalition import OPERATOR
from bices.domain import rfis as steps
from bices.domain.errors import Conflict, NotFound
from bices.domain.members import MemberStatus
from bices.domain.reports import ReportDraft
from bices.domain.rfis import RfiDraft
from bices.node import Node
from bices.settings import Settings
from bices.share.rfis import reach
from bices.store import pg_rfis, sqlite_rfis
from tests.conftest import Coalition, auth, report_json

RFIS = "/api/v1/rfis"


def deadline(hours: float = 24) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def rfi_json(**overrides: Any) -> dict[str, Any]:
    """A valid RFI body from USA to KOR and JPN; override any field."""
    body: dict[str, Any] = {
        "question": "Where are the Hwasong-18 launchers dispersed?",
        "detail": "Grid references and unit designations where known.",
        "priority": "PRIORITY",
        "deadline": deadline(),
        "addressees": ["KOR", "JPN"],
        "label": {"classification": "NATO SECRET", "releasable_to": ["NATO", "KOR", "JPN"]},
    }
    body.update(overrides)
    return body


@pytest.fixture
def api(node: Node) -> Iterator[TestClient]:
    with TestClient(create_app(node, exploit_thread=False)) as client:
        yield client


@pytest.fixture
def tokens(coalition: Coalition) -> dict[str, str]:
    return {
        "usa": coalition.user("USA", name="usa.analyst"),
        "usa2": coalition.user("USA", name="usa.second"),
        "kor": coalition.user("KOR", name="kor.analyst"),
        "jpn": coalition.user("JPN", name="jpn.analyst"),
        "est": coalition.user("EST", name="est.analyst"),
        "kor.reader": coalition.user("KOR", roles=("member-admin",), name="kor.reader"),
        "kor.low": coalition.user("KOR", clearance="NATO RESTRICTED", name="kor.low"),
    }


def ask(api: TestClient, token: str, **overrides: Any) -> dict[str, Any]:
    response = api.post(RFIS, json=rfi_json(**overrides), headers=auth(token))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def post(api: TestClient, token: str, path: str, body: Any = None) -> Any:
    return api.post(f"{RFIS}/{path}", json=body, headers=auth(token))


def report(api: TestClient, token: str, **overrides: Any) -> str:
    response = api.post("/api/v1/reports", json=report_json(**overrides), headers=auth(token))
    assert response.status_code == 201, response.text
    report_id: str = response.json()["id"]
    return report_id


def rfi_events(node: Node) -> list[Any]:
    return node.store.outbox.after(0, 1000, ["rfi"])


# -- the life-cycle ------------------------------------------------------------------------


def test_life_cycle_over_the_api(api: TestClient, tokens: dict[str, str], node: Node) -> None:
    created = ask(api, tokens["usa"], priority="FLASH")
    rfi_id = created["id"]
    assert uuid.UUID(rfi_id).version == 4
    assert created["state"] == "open"
    assert created["priority"] == "FLASH"
    assert created["label"]["banner"] == "NATO SECRET // REL TO NATO, JPN, KOR"
    assert [a["member"] for a in created["addressees"]] == ["KOR", "JPN"]
    assert created["asker_member"] == "USA"

    accepted = post(api, tokens["kor"], f"{rfi_id}/accept")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["state"] == "accepted"
    also = post(api, tokens["jpn"], f"{rfi_id}/accept").json()
    assert also["state"] == "accepted"
    assert {a["member"] for a in also["addressees"] if a["accepted"]} == {"KOR", "JPN"}

    # KOR answers with a report it already had, releasable to the asker's member.
    existing = report(api, tokens["kor"], title="Launchers seen near Sinpo")
    answered = post(api, tokens["kor"], f"{rfi_id}/answers", {"report_id": existing})
    assert answered.status_code == 201, answered.text
    assert answered.json()["state"] == "answered"

    # JPN answers with a report written for the purpose.
    inline = report_json(
        type="RFI-RESPONSE",
        title="Two TELs at the Kusong site",
        label={"classification": "NATO SECRET", "releasable_to": ["USA", "JPN"]},
    )
    second = post(api, tokens["jpn"], f"{rfi_id}/answers", {"report": inline})
    assert second.status_code == 201, second.text
    # KOR's report is not releasable to JPN: JPN sees its own answer only.
    answers = second.json()["answers"]
    assert [a["title"] for a in answers] == ["Two TELs at the Kusong site"]
    new_id = answers[0]["report_id"]
    stored = api.get(f"/api/v1/reports/{new_id}", headers=auth(tokens["jpn"])).json()
    assert stored["type"] == "RFI-RESPONSE"
    assert stored["originator"] == "JPN"

    seen = api.get(f"{RFIS}/{rfi_id}", headers=auth(tokens["usa2"])).json()
    assert {a["report_id"] for a in seen["answers"]} == {existing, new_id}

    closed = post(api, tokens["usa2"], f"{rfi_id}/close", {"reason": "enough to task ISR"})
    assert closed.status_code == 200, closed.text
    final = closed.json()
    assert final["state"] == "closed"
    assert final["closed_reason"] == "enough to task ISR"
    assert [c["action"] for c in final["history"]] == [
        "create", "accept", "accept", "answer", "answer", "close",
    ]  # fmt: skip
    assert [c["revision"] for c in final["history"]] == [1, 2, 3, 4, 5, 6]
    assert final["revision"] == 6


def test_illegal_transitions_answer_409_naming_the_state(
    api: TestClient, tokens: dict[str, str]
) -> None:
    rfi_id = ask(api, tokens["usa"])["id"]
    mine = report(api, tokens["kor"])

    early = post(api, tokens["kor"], f"{rfi_id}/answers", {"report_id": mine})
    assert early.status_code == 409
    assert "is open" in early.json()["detail"]

    assert post(api, tokens["kor"], f"{rfi_id}/accept").status_code == 200
    twice = post(api, tokens["kor"], f"{rfi_id}/accept")
    assert twice.status_code == 409
    assert "accepted" in twice.json()["detail"]

    assert post(api, tokens["usa"], f"{rfi_id}/close").status_code == 200
    for who, path, body in (
        ("usa", "close", None),
        ("jpn", "accept", None),
        ("kor", "answers", {"report_id": mine}),
    ):
        refused = post(api, tokens[who], f"{rfi_id}/{path}", body)
        assert refused.status_code == 409, (path, refused.text)
        assert "closed" in refused.json()["detail"]


def test_who_may_do_what(api: TestClient, tokens: dict[str, str]) -> None:
    rfi_id = ask(api, tokens["usa"])["id"]
    # EST sees the RFI (REL TO NATO) but is not an addressee.
    assert api.get(f"{RFIS}/{rfi_id}", headers=auth(tokens["est"])).status_code == 200
    refused = post(api, tokens["est"], f"{rfi_id}/accept")
    assert refused.status_code == 403
    assert "EST is not an addressee" in refused.json()["detail"]
    est_report = report(api, tokens["est"])
    assert (
        post(api, tokens["est"], f"{rfi_id}/answers", {"report_id": est_report}).status_code == 403
    )
    # Only the asker's member closes it.
    assert post(api, tokens["kor"], f"{rfi_id}/close").status_code == 403
    # Writers only.
    reader = post(api, tokens["kor.reader"], f"{rfi_id}/accept")
    assert reader.status_code == 403
    assert "role" in reader.json()["detail"]
    assert api.post(RFIS, json=rfi_json(), headers=auth(tokens["kor.reader"])).status_code == 403


def test_hidden_rfi_answers_404_not_403(api: TestClient, tokens: dict[str, str]) -> None:
    # KOR is an addressee, but kor.low's clearance is below the RFI's classification.
    rfi_id = ask(api, tokens["usa"])["id"]
    for path in ("accept", "answers", "close"):
        body = {"report_id": str(uuid.uuid4())} if path == "answers" else None
        refused = post(api, tokens["kor.low"], f"{rfi_id}/{path}", body)
        assert refused.status_code == 404, (path, refused.text)
        assert refused.json()["detail"] == f"RFI {rfi_id} not found"
    missing = str(uuid.uuid4())
    assert api.get(f"{RFIS}/{missing}", headers=auth(tokens["kor.low"])).json() == {
        "detail": f"RFI {missing} not found"
    }
    assert api.get(f"{RFIS}/{rfi_id}", headers=auth(tokens["kor.low"])).json() == {
        "detail": f"RFI {rfi_id} not found"
    }
    # Not releasable to EST at all.
    usa_kor = {"classification": "NATO SECRET", "releasable_to": ["USA", "KOR"]}
    private = ask(api, tokens["usa"], addressees=["KOR"], label=usa_kor)
    assert api.get(f"{RFIS}/{private['id']}", headers=auth(tokens["est"])).status_code == 404
    assert post(api, tokens["est"], f"{private['id']}/accept").status_code == 404
    listed = api.get(RFIS, headers=auth(tokens["est"])).json()
    assert [r["id"] for r in listed["items"]] == [rfi_id]
    assert listed["total"] == 1


def test_hidden_answers_are_never_listed(api: TestClient, tokens: dict[str, str]) -> None:
    rfi_id = ask(api, tokens["usa"])["id"]
    post(api, tokens["kor"], f"{rfi_id}/accept")
    # Releasable to USA but not to JPN, an addressee that sees the RFI.
    narrow = report(api, tokens["kor"], label={"classification": "NATO SECRET",
                                                "releasable_to": ["KOR", "USA"]})  # fmt: skip
    assert post(api, tokens["kor"], f"{rfi_id}/answers", {"report_id": narrow}).status_code == 201

    by_usa = api.get(f"{RFIS}/{rfi_id}", headers=auth(tokens["usa"])).json()
    assert [a["report_id"] for a in by_usa["answers"]] == [narrow]
    assert by_usa["history"][-1]["detail"] == {"report_id": narrow}

    by_jpn = api.get(f"{RFIS}/{rfi_id}", headers=auth(tokens["jpn"])).json()
    assert by_jpn["state"] == "answered"
    assert by_jpn["answers"] == []
    assert by_jpn["history"][-1]["detail"] == {}
    assert narrow not in json.dumps(by_jpn)
    listed = api.get(RFIS, headers=auth(tokens["jpn"])).json()
    assert narrow not in json.dumps(listed)


def test_answer_hidden_once_its_report_is_superseded_under_a_narrower_label(
    api: TestClient, tokens: dict[str, str]
) -> None:
    """Answers are listed where the viewer may see the answer report *now*."""
    rfi_id = ask(api, tokens["usa"])["id"]
    post(api, tokens["kor"], f"{rfi_id}/accept")
    answer_id = report(api, tokens["kor"])
    post(api, tokens["kor"], f"{rfi_id}/answers", {"report_id": answer_id})
    assert len(api.get(f"{RFIS}/{rfi_id}", headers=auth(tokens["usa"])).json()["answers"]) == 1
    narrowed = report_json(label={"classification": "NATO SECRET", "releasable_to": ["KOR"]})
    update = api.put(f"/api/v1/reports/{answer_id}", json=narrowed, headers=auth(tokens["kor"]))
    assert update.status_code == 200, update.text
    assert api.get(f"{RFIS}/{rfi_id}", headers=auth(tokens["usa"])).json()["answers"] == []
    assert len(api.get(f"{RFIS}/{rfi_id}", headers=auth(tokens["kor"])).json()["answers"]) == 1


# -- bad input: a named 4xx and nothing stored ------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "status", "named"),
    [
        ({"addressees": ["KOR", "NZL"]}, 422, "NZL"),
        ({"addressees": ["XYZ"]}, 422, "XYZ"),
        ({"addressees": []}, 422, "addressees"),
        ({"deadline": "2020-01-01T00:00:00Z"}, 422, "deadline"),
        ({"deadline": "2030-01-01T00:00:00"}, 422, "time zone"),
        ({"label": {"classification": "NATO SECRET", "releasable_to": ["NATO", "KOR"]}}, 422,
         "addressee JPN"),
        ({"label": {"classification": "COSMIC TOP SECRET", "releasable_to": ["NATO", "IP4"]}},
         403, "clearance"),
        ({"label": {"classification": "NATO SECRET", "releasable_to": ["KOR", "JPN"]}}, 403,
         "USA"),
        ({"question": "x" * 501}, 422, "question"),
        ({"question": "   "}, 422, "blank"),
        ({"detail": "x" * 20_001}, 422, "detail"),
        ({"priority": "URGENT"}, 422, "priority"),
        ({"extra": 1}, 422, "extra"),
    ],
)  # fmt: skip
def test_bad_rfis_are_refused_naming_the_problem(
    api: TestClient,
    tokens: dict[str, str],
    node: Node,
    overrides: dict[str, Any],
    status: int,
    named: str,
) -> None:
    response = api.post(RFIS, json=rfi_json(**overrides), headers=auth(tokens["usa"]))
    assert response.status_code == status, response.text
    assert named in response.json()["detail"]
    assert api.get(RFIS, headers=auth(tokens["usa"])).json()["total"] == 0
    assert rfi_events(node) == []


def test_a_suspended_addressee_is_refused(
    api: TestClient, tokens: dict[str, str], node: Node
) -> None:
    node.coalition.set_status("JPN", MemberStatus.SUSPENDED)
    response = api.post(RFIS, json=rfi_json(), headers=auth(tokens["usa"]))
    assert response.status_code == 422
    assert "addressee JPN is suspended" in response.json()["detail"]


@pytest.mark.parametrize(
    ("case", "named"),
    [
        ("not-releasable-to-asker", "not releasable to the asker's member USA"),
        ("other-member", "originates from EST"),
        ("unknown", "no such report visible to you"),
        ("hidden", "no such report visible to you"),
        ("neither", "either report_id"),
        ("both", "either report_id"),
    ],
)
def test_bad_answers_are_refused_naming_why(
    api: TestClient, tokens: dict[str, str], node: Node, case: str, named: str
) -> None:
    rfi_id = ask(api, tokens["usa"])["id"]
    post(api, tokens["kor"], f"{rfi_id}/accept")
    own = report(api, tokens["kor"])
    bodies: dict[str, Any] = {
        "not-releasable-to-asker": {"report_id": report(
            api, tokens["kor"], label={"classification": "NATO SECRET", "releasable_to": ["KOR"]})},
        "other-member": {"report_id": report(api, tokens["est"], label={
            "classification": "NATO SECRET", "releasable_to": ["NATO", "KOR"]})},
        "unknown": {"report_id": str(uuid.uuid4())},
        "hidden": {"report_id": report(api, tokens["usa"], label={
            "classification": "NATO SECRET", "releasable_to": ["USA"]})},
        "neither": {},
        "both": {"report_id": own, "report": report_json(type="RFI-RESPONSE")},
    }  # fmt: skip
    before = rfi_events(node)
    response = post(api, tokens["kor"], f"{rfi_id}/answers", bodies[case])
    assert response.status_code == 422, response.text
    assert named in response.json()["detail"]
    after = api.get(f"{RFIS}/{rfi_id}", headers=auth(tokens["usa"])).json()
    assert after["state"] == "accepted"
    assert after["answers"] == []
    assert rfi_events(node) == before


@pytest.mark.parametrize(
    ("overrides", "status", "named"),
    [
        ({"label": {"classification": "NATO SECRET", "releasable_to": ["KOR", "JPN"]}}, 422,
         "not releasable to the asker's member USA"),
        ({"type": "INTREP"}, 422, "RFI-RESPONSE"),
        ({"title": "x" * 501}, 422, "title"),
        ({"label": {"classification": "NATO SECRET", "releasable_to": ["USA"]}}, 403,
         "not releasable to the caller's member KOR"),
    ],
)  # fmt: skip
def test_a_bad_inline_answer_stores_nothing(
    api: TestClient,
    tokens: dict[str, str],
    node: Node,
    overrides: dict[str, Any],
    status: int,
    named: str,
) -> None:
    rfi_id = ask(api, tokens["usa"])["id"]
    post(api, tokens["kor"], f"{rfi_id}/accept")
    body = report_json(**{"type": "RFI-RESPONSE", "title": "Unique inline answer", **overrides})
    before = node.store.outbox.after(0, 1000)
    response = post(api, tokens["kor"], f"{rfi_id}/answers", {"report": body})
    assert response.status_code == status, response.text
    assert named in response.json()["detail"]
    assert node.store.outbox.after(0, 1000) == before
    assert not [v for v in node.store.reports.all_versions() if v.type.value == "RFI-RESPONSE"]


def test_an_inline_answer_whose_link_fails_is_not_stored(
    api: TestClient, tokens: dict[str, str], node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report and its link share one transaction: a failure after the report's rows
    are written (here, the outbox event of the link) leaves neither."""
    rfi_id = ask(api, tokens["usa"])["id"]
    post(api, tokens["kor"], f"{rfi_id}/accept")

    def broken(*args: object, **kwargs: object) -> int:
        raise Conflict("the outbox is full")

    backend = pg_rfis if isinstance(node.store.rfis, pg_rfis.PgRfis) else sqlite_rfis
    monkeypatch.setattr(backend, "append_event", broken)
    body = {"report": report_json(type="RFI-RESPONSE")}
    refused = post(api, tokens["kor"], f"{rfi_id}/answers", body)
    assert refused.status_code == 409
    monkeypatch.undo()
    assert list(node.store.reports.all_versions()) == []
    seen = api.get(f"{RFIS}/{rfi_id}", headers=auth(tokens["kor"])).json()
    assert (seen["state"], seen["revision"], seen["answers"]) == ("accepted", 2, [])
    # And with the outbox back, the same answer goes through whole.
    assert post(api, tokens["kor"], f"{rfi_id}/answers", body).status_code == 201
    assert len(list(node.store.reports.all_versions())) == 1


def test_a_change_made_meanwhile_refuses_a_stale_one(
    api: TestClient, tokens: dict[str, str], node: Node
) -> None:
    rfi_id = ask(api, tokens["usa"])["id"]
    kor = node.coalition.authenticate(tokens["kor"])
    jpn = node.coalition.authenticate(tokens["jpn"])
    stale = node.store.rfis.get(kor, rfi_id)
    assert stale is not None
    node.rfis.accept(jpn, rfi_id)
    change = steps.accept(stale, kor, datetime.now(UTC))
    with pytest.raises(Conflict, match="changed meanwhile"):
        node.store.rfis.change(stale, change, [])
    now = node.store.rfis.get(kor, rfi_id)
    assert now is not None
    assert now.accepted == {"JPN"}


def test_a_step_decided_on_a_stale_reading_is_decided_again(
    api: TestClient, tokens: dict[str, str], node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two addressees accepting at once both succeed: the second is re-read and re-decided."""
    rfi_id = ask(api, tokens["usa"])["id"]
    jpn = node.coalition.authenticate(tokens["jpn"])
    kor = node.coalition.authenticate(tokens["kor"])
    real_change = node.store.rfis.change
    calls: list[int] = []

    def racing(rfi: Any, change: Any, audit: Any, report: Any = None) -> Any:
        calls.append(rfi.revision)
        if len(calls) == 1:  # JPN's acceptance lands between KOR's reading and writing
            fresh = node.store.rfis.get(jpn, rfi_id)
            assert fresh is not None
            real_change(fresh, steps.accept(fresh, jpn, datetime.now(UTC)), [])
        return real_change(rfi, change, audit, report)

    monkeypatch.setattr(node.store.rfis, "change", racing)
    done = node.rfis.accept(kor, rfi_id)
    assert calls == [1, 2]
    assert done.accepted == {"KOR", "JPN"}
    assert [c.action for c in done.history] == ["create", "accept", "accept"]
    assert done.history[2].member == "KOR"


def test_duplicate_answer_is_a_conflict(api: TestClient, tokens: dict[str, str]) -> None:
    rfi_id = ask(api, tokens["usa"])["id"]
    post(api, tokens["kor"], f"{rfi_id}/accept")
    answer_id = report(api, tokens["kor"])
    assert (
        post(api, tokens["kor"], f"{rfi_id}/answers", {"report_id": answer_id}).status_code == 201
    )
    again = post(api, tokens["kor"], f"{rfi_id}/answers", {"report_id": answer_id})
    assert again.status_code == 409
    assert "already answers" in again.json()["detail"]


# -- listing: order, filters, pagination ----------------------------------------------------


def test_list_orders_by_priority_then_deadline_and_pages(
    api: TestClient, tokens: dict[str, str]
) -> None:
    made = [
        ("ROUTINE", 5), ("FLASH", 30), ("PRIORITY", 2), ("FLASH", 3), ("IMMEDIATE", 1),
        ("ROUTINE", 1), ("PRIORITY", 2),
    ]  # fmt: skip
    ids = {}
    for i, (priority, hours) in enumerate(made):
        rfi = ask(api, tokens["usa"], priority=priority, deadline=deadline(hours + i / 100),
                  question=f"question {i}")  # fmt: skip
        ids[rfi["id"]] = (priority, hours + i / 100)
    everything = api.get(RFIS, headers=auth(tokens["kor"])).json()
    order = [(r["priority"], r["question"]) for r in everything["items"]]
    assert order == [
        ("FLASH", "question 3"), ("FLASH", "question 1"), ("IMMEDIATE", "question 4"),
        ("PRIORITY", "question 2"), ("PRIORITY", "question 6"), ("ROUTINE", "question 5"),
        ("ROUTINE", "question 0"),
    ]  # fmt: skip
    assert everything["total"] == 7

    paged: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.get(RFIS, params=params, headers=auth(tokens["kor"])).json()
        assert page["total"] == 7
        paged += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == [r["id"] for r in everything["items"]]

    for raw in ("not-a-cursor", f"rfis:1:{2**70}:{uuid.uuid4()}", f"rfis:9:0:{uuid.uuid4()}"):
        cursor = base64.urlsafe_b64encode(raw.encode()).decode()
        bad = api.get(RFIS, params={"cursor": cursor}, headers=auth(tokens["kor"]))
        assert bad.status_code == 422, raw
        assert "cursor" in bad.json()["detail"]


def test_list_filters(api: TestClient, tokens: dict[str, str], node: Node) -> None:
    to_kor = ask(api, tokens["usa"], addressees=["KOR"])["id"]
    to_jpn = ask(api, tokens["usa2"], addressees=["JPN"])["id"]
    kor_usa = {"classification": "NATO SECRET", "releasable_to": ["KOR", "USA"]}
    by_kor = ask(api, tokens["kor"], addressees=["USA"], label=kor_usa)["id"]
    post(api, tokens["kor"], f"{to_kor}/accept")
    # An overdue one: asked long ago with a deadline now past (stored as the domain made it).
    usa = node.coalition.authenticate(tokens["usa"])
    directory = node.store.coalition.directory()
    draft = RfiDraft.model_validate(rfi_json(deadline="2001-01-01T00:00:00Z"))
    label = draft.label.bind("USA")
    past = datetime(2000, 1, 1, tzinfo=UTC)
    late = steps.ask(usa, draft, label, reach(label, directory), directory.statuses,
                     str(uuid.uuid4()), past)  # fmt: skip
    node.store.rfis.create(late, [])

    def ids(token: str, **params: Any) -> set[str]:
        response = api.get(RFIS, params=params, headers=auth(token))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] == len(body["items"])
        return {r["id"] for r in body["items"]}

    assert ids(tokens["usa"], state="accepted") == {to_kor}
    assert ids(tokens["usa"], state=["open", "accepted"]) == {to_kor, to_jpn, by_kor, late.id}
    assert ids(tokens["kor"], addressed_to_me=True) == {to_kor, late.id}
    assert ids(tokens["usa"], addressed_to_me=True) == {by_kor}
    assert ids(tokens["usa"], mine=True) == {to_kor, late.id}
    assert ids(tokens["usa2"], mine=True) == {to_jpn}
    assert ids(tokens["usa"], overdue=True) == {late.id}
    assert ids(tokens["jpn"], overdue=True, addressed_to_me=True) == {late.id}
    shown = api.get(f"{RFIS}/{late.id}", headers=auth(tokens["usa"])).json()
    assert shown["overdue"] is True
    assert ids(tokens["usa"], state="closed") == set()
    assert api.get(RFIS, params={"state": "lost"}, headers=auth(tokens["usa"])).status_code == 422


# -- outbox, stream payloads, audit ---------------------------------------------------------


def test_every_change_appends_an_rfi_event_with_its_payload(
    api: TestClient, tokens: dict[str, str], node: Node
) -> None:
    rfi_id = ask(api, tokens["usa"], priority="IMMEDIATE")["id"]
    post(api, tokens["kor"], f"{rfi_id}/accept")
    post(api, tokens["kor"], f"{rfi_id}/answers", {"report": report_json(type="RFI-RESPONSE")})
    post(api, tokens["usa"], f"{rfi_id}/close", {"reason": "done"})
    events = [e for e in rfi_events(node) if e.item_id == rfi_id]
    assert [e.revision for e in events] == [1, 2, 3, 4]
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    rfi = node.store.rfis.get(node.coalition.authenticate(tokens["usa"]), rfi_id)
    assert rfi is not None
    assert {e.label_id for e in events} == {rfi.label_id}
    states = ["open", "accepted", "answered", "closed"]
    actions = ["create", "accept", "answer", "close"]
    for event, state, action in zip(events, states, actions, strict=True):
        payload = node.store.rfis.event_payload(rfi_id, event.revision)
        assert payload is not None
        assert datetime.fromisoformat(payload.pop("deadline")) == rfi.deadline
        assert payload == {
            "id": rfi_id,
            "question": rfi.question,
            "priority": "IMMEDIATE",
            "state": state,
            "asker_member": "USA",
            "addressees": ["KOR", "JPN"],
            "revision": event.revision,
            "action": action,
            "at": rfi.history[event.revision - 1].to_json()["at"],
            "label": "NATO SECRET // REL TO NATO, JPN, KOR",
        }
    assert node.store.rfis.event_payload(rfi_id, 5) is None
    assert node.store.rfis.event_payload(str(uuid.uuid4()), 1) is None
    # The answer's report has an event of its own, stored with the answer.
    report_events = node.store.outbox.after(events[1].seq, 1000, ["report"])
    assert [e.seq for e in report_events] == [events[2].seq - 1]
    assert report_events[0].item_id == rfi.answers[0].report_id


def test_writes_and_reads_are_audited_under_the_rfis_label(
    api: TestClient, tokens: dict[str, str], node: Node
) -> None:
    rfi_id = ask(api, tokens["usa"])["id"]
    post(api, tokens["kor"], f"{rfi_id}/accept")
    answer_id = report(api, tokens["kor"], label={"classification": "NATO SECRET",
                                                   "releasable_to": ["KOR", "USA"]})  # fmt: skip
    post(api, tokens["kor"], f"{rfi_id}/answers", {"report_id": answer_id})
    api.get(f"{RFIS}/{rfi_id}", headers=auth(tokens["usa"]))
    api.get(RFIS, headers=auth(tokens["usa"]))
    post(api, tokens["usa"], f"{rfi_id}/close")
    events = list(node.store.audit.all_events())
    usa = node.coalition.authenticate(tokens["usa"])
    rfi = node.store.rfis.get(usa, rfi_id)
    assert rfi is not None
    about = [e for e in events if e.target == rfi_id]
    actions = [e.action for e in about]
    for action in ("rfi.create", "rfi.accept", "rfi.answer", "rfi.read", "rfi.close"):
        assert action in actions
    for event in about:
        if event.action != "rfi.answer.report":
            assert event.label_id == rfi.label_id, event
    link = next(e for e in about if e.action == "rfi.answer.report")
    assert link.detail["report_id"] == answer_id
    plain = next(e for e in about if e.action == "rfi.answer")
    assert "report_id" not in plain.detail
    # The link names a report JPN may not see: JPN's member-admin does not see that event.
    reads = [e for e in events if e.action == "report.read" and e.target == answer_id]
    assert any(e.detail.get("via") == "rfi" and e.actor == "usa.analyst" for e in reads)
    listed = next(e for e in events if e.action == "rfi.list")
    assert listed.detail["total"] == 1

    coalition = Coalition(node)
    jpn_admin = coalition.user("JPN", roles=("member-admin", "operator"), name="jpn.admin")
    jpn = node.coalition.authenticate(jpn_admin)
    visible = {e.seq for e in node.store.audit.events(jpn, None, 0, 10_000)}
    assert link.seq not in visible
    assert next(e for e in about if e.action == "rfi.accept").seq in visible


# -- suspension -------------------------------------------------------------------------


def test_a_suspended_member_sees_nothing(
    api: TestClient, tokens: dict[str, str], node: Node
) -> None:
    rfi_id = ask(api, tokens["usa"])["id"]
    kor = node.coalition.viewer_of("kor.analyst")
    assert node.rfis.page(kor, steps.RfiFilter(), None, 50).total == 1
    node.coalition.set_status("KOR", MemberStatus.SUSPENDED)
    kor = node.coalition.viewer_of("kor.analyst")
    assert node.rfis.page(kor, steps.RfiFilter(), None, 50).total == 0
    with pytest.raises(NotFound):
        node.rfis.get(kor, rfi_id)
    assert api.get(RFIS, headers=auth(tokens["kor"])).status_code == 403
    assert post(api, tokens["kor"], f"{rfi_id}/accept").status_code == 403


# -- the CLI ------------------------------------------------------------------------------

runner = CliRunner()


def bices(data: Path, *args: str) -> Result:
    return runner.invoke(cli_app, ["--data", str(data), *args])


def ok(data: Path, *args: str) -> Result:
    result = bices(data, *args)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    data = tmp_path / "node"
    for code, name in (("USA", "United States"), ("KOR", "Korea"), ("JPN", "Japan"),
                       ("EST", "Estonia")):  # fmt: skip
        ok(data, "member", "add", code, "--name", name)
    for member, name in (("USA", "alice"), ("KOR", "minji"), ("JPN", "haruto"), ("EST", "mari")):
        ok(data, "user", "add", "--member", member, "--name", name, "--clearance", "NATO SECRET")
    return data


def test_cli_life_cycle(folder: Path) -> None:
    created = ok(folder, "rfi", "create", "--user", "alice", "--question", "Where is the TEL?",
                 "--to", "KOR", "--to", "JPN", "--priority", "flash", "--deadline", deadline(),
                 "--classification", "NATO SECRET", "--rel", "NATO", "--rel", "IP4")  # fmt: skip
    rfi_id = created.stdout.splitlines()[0].strip()
    assert uuid.UUID(rfi_id)
    assert "FLASH" in created.stdout

    listed = json.loads(ok(folder, "rfi", "list", "--user", "minji", "--json").stdout)
    assert listed["total"] == 1
    assert listed["items"][0]["id"] == rfi_id
    hidden = json.loads(ok(folder, "rfi", "list", "--user", "mari", "--json").stdout)
    assert hidden["total"] == 1  # EST is in NATO

    assert "accepted" in ok(folder, "rfi", "accept", rfi_id, "--user", "minji").stdout
    node = Node.open(Settings(data=folder))
    try:
        minji = node.coalition.viewer_of("minji")
        stored = node.collector.submit(minji, [ReportDraft.model_validate(report_json())])
        answer_id = stored[0].id
    finally:
        node.close()
    answered = ok(folder, "rfi", "answer", rfi_id, "--user", "minji", "--report", answer_id)
    assert "answered" in answered.stdout
    shown = json.loads(ok(folder, "rfi", "show", rfi_id, "--user", "alice", "--json").stdout)
    assert [a["report_id"] for a in shown["answers"]] == [answer_id]
    text = ok(folder, "rfi", "show", rfi_id, "--user", "alice").stdout
    assert "NATO SECRET // REL TO NATO, IP4" in text
    assert (
        "closed" in ok(folder, "rfi", "close", rfi_id, "--user", "alice", "--reason", "ok").stdout
    )

    node = Node.open(Settings(data=folder))
    try:
        actors = {(e.action, e.actor, e.detail.get("as")) for e in node.store.audit.all_events()
                  if e.target == rfi_id}  # fmt: skip
    finally:
        node.close()
    assert ("rfi.create", OPERATOR, "alice") in actors
    assert ("rfi.accept", OPERATOR, "minji") in actors
    assert ("rfi.close", OPERATOR, "alice") in actors


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--to", "NZL"), "NZL"),
        (("--to", "KOR", "--deadline", "2020-01-01T00:00:00Z"), "deadline"),
        (("--to", "KOR", "--deadline", "tomorrow"), "deadline"),
        (("--to", "KOR", "--priority", "URGENT"), "priority"),
        (("--to", "EST"), "addressee EST"),
    ],
)
def test_cli_errors_exit_2_with_a_message(folder: Path, args: tuple[str, ...], named: str) -> None:
    base = ["rfi", "create", "--user", "alice", "--question", "Q?", "--classification",
            "NATO SECRET", "--rel", "USA", "--rel", "IP4"]  # fmt: skip
    if "--deadline" not in args:
        base += ["--deadline", deadline()]
    result = bices(folder, *base, *args)
    assert result.exit_code == 2, result.output
    assert named in result.output
    assert json.loads(ok(folder, "rfi", "list", "--user", "alice", "--json").stdout)["total"] == 0


def test_cli_hidden_and_illegal(folder: Path) -> None:
    created = ok(folder, "rfi", "create", "--user", "alice", "--question", "Q?", "--to", "KOR",
                 "--deadline", deadline(), "--classification", "NATO SECRET",
                 "--rel", "USA", "--rel", "KOR")  # fmt: skip
    rfi_id = created.stdout.splitlines()[0].strip()
    hidden = bices(folder, "rfi", "show", rfi_id, "--user", "mari")
    assert hidden.exit_code == 2
    assert "not found" in hidden.output
    early = bices(folder, "rfi", "close", rfi_id, "--user", "minji")
    assert early.exit_code == 2
    assert "only its users may close" in early.output
    ok(folder, "rfi", "close", rfi_id, "--user", "alice")
    late = bices(folder, "rfi", "accept", rfi_id, "--user", "minji")
    assert late.exit_code == 2
    assert "closed" in late.output
