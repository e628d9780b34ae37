"""The live stream over HTTP: delivery to the entitled only, resume, requirements, alerts,
suspension and revocation mid-stream, bad options; and the WebSocket twin."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.websockets import WebSocketDisconnect

from bices.domain.members import MemberStatus
from tests.conftest import Coalition, RunningServer, auth, make_node, report_json, served
from tests.sse_client import Listener

KOREA_ONLY = {"classification": "NATO SECRET", "releasable_to": ["NATO", "KOR"], "caveats": []}
IP4 = {"classification": "NATO SECRET", "releasable_to": ["NATO", "IP4"], "caveats": []}


def post(base: str, token: str, **overrides: Any) -> str:
    response = httpx.post(f"{base}/api/v1/reports", json=report_json(**overrides),
                          headers=auth(token))  # fmt: skip
    assert response.status_code == 201, response.text
    report_id: str = response.json()["id"]
    return report_id


def test_each_report_reaches_the_entitled_and_no_one_else(
    server: RunningServer, coalition: Coalition
) -> None:
    usa, kor, jpn = coalition.user("USA"), coalition.user("KOR"), coalition.user("JPN")
    korea, japan = Listener(server.base_url, kor).start(), Listener(server.base_url, jpn).start()
    first = post(server.base_url, usa, label=KOREA_ONLY, title="Sinpo activity")
    second = post(server.base_url, usa, label=IP4, title="Partners' summary")
    got = korea.take(2)
    assert [e.data["id"] for e in got] == [first, second]
    assert [e.event for e in got] == ["report", "report"]
    # Ids are sealed: distinct, opaque, and tell nothing of what happened between them.
    assert got[0].id is not None and got[1].id is not None and got[0].id != got[1].id
    assert all(len(e.id or "") == 22 for e in got)
    assert got[0].data["title"] == "Sinpo activity"
    assert got[0].data["label"]["banner"] == "NATO SECRET // REL TO NATO, KOR"
    assert got[0].data["requirements"] == []
    # Japan's first event is the second report: the first never reached it.
    assert [e.data["id"] for e in japan.take(1)] == [second]
    korea.close()
    japan.close()


def test_resume_with_last_event_id_gets_what_was_missed_once_in_order(
    server: RunningServer, coalition: Coalition
) -> None:
    usa, kor = coalition.user("USA"), coalition.user("KOR")
    listener = Listener(server.base_url, kor).start()
    before = [post(server.base_url, usa, title=f"before {i}") for i in range(3)]
    got = listener.take(3)
    assert [e.data["id"] for e in got] == before
    listener.close()
    missed = [post(server.base_url, usa, title=f"missed {i}") for i in range(4)]
    resumed = Listener(server.base_url, kor, last_event_id=got[1].id).start()
    again = resumed.take(5)
    assert [e.data["id"] for e in again] == [before[2], *missed]
    later = post(server.base_url, usa, title="after the resume")
    assert [e.data["id"] for e in resumed.take(1)] == [later]
    ids = [e.id for e in again]
    assert len(set(ids)) == len(ids)
    # The same resume through the query string, which browsers' EventSource cannot set.
    by_query = Listener(server.base_url, kor, params={"after": got[2].id}).start()
    assert [e.data["id"] for e in by_query.take(5)] == [*missed, later]
    resumed.close()
    by_query.close()


def test_requirements_mark_and_filter_reports(server: RunningServer, coalition: Coalition) -> None:
    usa, kor = coalition.user("USA"), coalition.user("KOR")
    for body in (
        {"name": "Sinpo", "keywords": ["Sinpo"]},
        {"name": "open sources", "types": ["OSINT"]},
        {"name": "the North", "entities": ["Korut"]},  # an alias: needs exploitation
        {"name": "launches", "topics": ["missile launches and provocations"]},
        {"name": "near Sinpo", "area": {"circle": {"lat": 40.03, "lon": 128.18, "radius_km": 30}}},
    ):
        created = httpx.post(f"{server.base_url}/api/v1/requirements", json=body,
                             headers=auth(kor))  # fmt: skip
        assert created.status_code == 201, created.text
    everything = Listener(server.base_url, kor).start()
    sinpo_only = Listener(server.base_url, kor, params={"matched": "true", "requirement": [1, 5]})
    sinpo_only.start()
    launch = post(server.base_url, usa, title="Korea Utara meluncurkan rudal dari Sinpo",
                  body="Rudal balistik diluncurkan ke Laut Timur.", language="id")  # fmt: skip
    osint = post(server.base_url, usa, type="OSINT", title="Harvest festival in Gangwon",
                 body="Farmers gathered for the autumn market.")  # fmt: skip
    placed = post(server.base_url, usa, title="Vessel movements", body="Two hulls moved.",
                  locations=[{"lat": 40.0, "lon": 128.2}])  # fmt: skip
    got = {e.data["id"]: e.data["requirements"] for e in everything.take(3)}
    assert got == {launch: [1, 3, 4], osint: [2], placed: [5]}
    filtered = sinpo_only.take(2)
    assert [(e.data["id"], e.data["requirements"]) for e in filtered] == [
        (launch, [1]), (placed, [5])]  # fmt: skip
    # A changed requirement applies to open streams at once.
    changed = httpx.put(f"{server.base_url}/api/v1/requirements/2", headers=auth(kor),
                        json={"name": "open sources", "types": ["INTREP"]})  # fmt: skip
    assert changed.status_code == 200
    after = post(server.base_url, usa, title="Quiet night", body="Nothing to report.")
    assert [(e.data["id"], e.data["requirements"]) for e in everything.take(1)] == [(after, [2])]
    everything.close()
    sinpo_only.close()


def test_alerts_reach_their_watcher_only_when_entitled(
    server: RunningServer, coalition: Coalition
) -> None:
    usa, kor, jpn = coalition.user("USA"), coalition.user("KOR"), coalition.user("JPN")
    for token in (kor, jpn):
        watched = httpx.post(f"{server.base_url}/api/v1/watchlist", json={"name": "Kim Jong Un"},
                             headers=auth(token))  # fmt: skip
        assert watched.status_code == 201
    korea = Listener(server.base_url, kor, params={"events": "alert"}).start()
    japan = Listener(server.base_url, jpn, params={"events": "alert"}).start()
    hidden = post(server.base_url, usa, label=KOREA_ONLY, title="Kim Jong Un visits Sinpo",
                  body="Kim Jong Un inspected the shipyard.")  # fmt: skip
    shared = post(server.base_url, usa, label=IP4, title="Kim Jong Un speech",
                  body="Kim Jong Un spoke at a rally.")  # fmt: skip
    got = korea.take(2, timeout_s=20)
    assert [(e.event, e.data["report"]["id"], e.data["watch"]) for e in got] == [
        ("alert", hidden, "Kim Jong Un"), ("alert", shared, "Kim Jong Un")]  # fmt: skip
    assert [e.data["report"]["id"] for e in japan.take(1, timeout_s=20)] == [shared]
    korea.close()
    japan.close()


def test_suspension_closes_open_streams_at_once(
    server: RunningServer, coalition: Coalition
) -> None:
    usa, kor = coalition.user("USA"), coalition.user("KOR")
    listener = Listener(server.base_url, kor).start()
    first = post(server.base_url, usa)
    assert [e.data["id"] for e in listener.take(1)] == [first]
    server.node.coalition.set_status("KOR", MemberStatus.SUSPENDED)
    closing = listener.take(1)[0]
    assert closing.event == "closed"
    assert "no longer active" in closing.data["reason"]
    assert listener.ended.wait(5)
    post(server.base_url, usa)
    assert listener.pending() == []
    again = Listener(server.base_url, kor).start()
    assert again.status == 403


def test_revoked_token_closes_its_stream(server: RunningServer, coalition: Coalition) -> None:
    usa = coalition.user("USA")
    kor = coalition.user("KOR", name="kor.analyst")
    listener = Listener(server.base_url, kor).start()
    server.node.coalition.revoke("kor.analyst")
    assert listener.take(1)[0].event == "closed"
    assert listener.ended.wait(5)
    post(server.base_url, usa)
    assert listener.pending() == []


def test_rfi_changes_reach_those_who_may_see_the_rfi(
    server: RunningServer, coalition: Coalition
) -> None:
    usa, kor, jpn = coalition.user("USA"), coalition.user("KOR"), coalition.user("JPN")
    korea = Listener(server.base_url, kor, params={"events": "rfi"}).start()
    japan = Listener(server.base_url, jpn, params={"events": "rfi,report"}).start()
    deadline = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    asked = httpx.post(f"{server.base_url}/api/v1/rfis", headers=auth(usa), json={
        "question": "Where is the Sinpo-class boat today?", "priority": "IMMEDIATE",
        "deadline": deadline, "addressees": ["KOR"], "label": KOREA_ONLY})  # fmt: skip
    assert asked.status_code == 201, asked.text
    rfi = asked.json()["id"]
    assert httpx.post(f"{server.base_url}/api/v1/rfis/{rfi}/accept",
                      headers=auth(kor)).status_code == 200  # fmt: skip
    got = korea.take(2)
    assert [(e.event, e.data["id"], e.data["state"], e.data["revision"]) for e in got] == [
        ("rfi", rfi, "open", 1), ("rfi", rfi, "accepted", 2)]  # fmt: skip
    assert got[0].data["priority"] == "IMMEDIATE"
    assert got[0].data["label"] == "NATO SECRET // REL TO NATO, KOR"
    # Japan may not see this RFI: its first event is a report it may see, posted after.
    shared = post(server.base_url, usa, label=IP4)
    assert [(e.event, e.data["id"]) for e in japan.take(1)] == [("report", shared)]
    korea.close()
    japan.close()


def test_a_closed_stream_resumes_from_what_it_received_not_past_hidden_events(
    server: RunningServer, coalition: Coalition
) -> None:
    usa = coalition.user("USA")
    kor = coalition.user("KOR", name="kor.watcher")
    listener = Listener(server.base_url, kor).start()
    post(server.base_url, usa, label=KOREA_ONLY)
    (received,) = listener.take(1)
    for _ in range(3):  # events Korea may not see: its cursor must not tell of them
        post(server.base_url, usa, label={"classification": "NATO SECRET",
                                          "releasable_to": ["USA"]})  # fmt: skip
    time.sleep(0.5)  # the hub has read them past Korea's last event
    server.node.coalition.revoke("kor.watcher")
    closing = listener.take(1)[0]
    assert closing.event == "closed" and closing.id is None
    assert closing.data["resume_after"] == received.id


def test_what_a_stream_sends_is_audited(server: RunningServer, coalition: Coalition) -> None:
    usa = coalition.user("USA")
    kor = coalition.user("KOR", name="kor.reader")
    listener = Listener(server.base_url, kor).start()
    sent = post(server.base_url, usa, label=KOREA_ONLY)
    listener.take(1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        reads = [e for e in server.node.store.audit.all_events()
                 if e.action == "report.read" and e.actor == "kor.reader"]  # fmt: skip
        if reads:
            break
        time.sleep(0.1)
    assert [(e.target, e.detail["via"]) for e in reads] == [(sent, "stream")]
    assert reads[0].label_id == server.node.store.reports.current_unfiltered(sent).label_id  # type: ignore[union-attr]
    listener.close()


@pytest.mark.parametrize(
    ("headers", "params", "status", "message"),
    [
        ({"Last-Event-ID": "abc"}, {}, 422, "Last-Event-ID 'abc' is not an event id of this"),
        ({"Last-Event-ID": "999999"}, {}, 422, "'999999' is not an event id of this node"),
        # An id sealed by another node's key (a real one of ours, one character changed).
        ({"Last-Event-ID": "fxvhK1uG8FYa6Jxcnzk5NA"}, {}, 422, "is not an event id of this"),
        ({}, {"events": "report,gossip"}, 422, "unknown kind(s) gossip"),
        ({}, {"requirement": 7}, 404, "requirement 7 not found"),
        ({}, {"after": -1}, 422, "after '-1' is not an event id of this node"),
    ],
)
def test_bad_stream_options_are_named(
    server: RunningServer,
    coalition: Coalition,
    headers: dict[str, str],
    params: dict[str, Any],
    status: int,
    message: str,
) -> None:
    kor = coalition.user("KOR")
    response = httpx.get(f"{server.base_url}/api/v1/stream", params=params,
                         headers={**auth(kor), **headers}, timeout=5)  # fmt: skip
    assert response.status_code == status
    assert message in response.text
    unauthenticated = httpx.get(f"{server.base_url}/api/v1/stream", timeout=5)
    assert unauthenticated.status_code == 401


# -- WebSocket --------------------------------------------------------------------------


def test_websocket_carries_the_same_events(client: TestClient, coalition: Coalition) -> None:
    usa, kor, jpn = coalition.user("USA"), coalition.user("KOR"), coalition.user("JPN")
    with client.websocket_connect("/api/v1/ws", headers=auth(jpn)) as japan, \
            client.websocket_connect("/api/v1/ws") as korea:  # fmt: skip
        korea.send_json({"token": kor})
        hidden = client.post("/api/v1/reports", json=report_json(label=KOREA_ONLY),
                             headers=auth(usa)).json()["id"]  # fmt: skip
        shared = client.post("/api/v1/reports", json=report_json(label=IP4),
                             headers=auth(usa)).json()["id"]  # fmt: skip
        first, second = korea.receive_json(), korea.receive_json()
        assert [first["data"]["id"], second["data"]["id"]] == [hidden, shared]
        assert first["event"] == "report" and first["id"] != second["id"]
        assert japan.receive_json()["data"]["id"] == shared
    # Resume from a cursor: what came after it, in order.
    with client.websocket_connect(f"/api/v1/ws?cursor={first['id']}", headers=auth(kor)) as again:
        assert again.receive_json()["data"]["id"] == shared


@pytest.mark.parametrize(
    ("first", "code", "message"),
    [
        ({"token": "not-a-token"}, 4401, "token is unknown"),
        ({"hello": 1}, 4422, 'send {"token": "..."} first'),
        ({"token": "t", "events": 5}, 4422, "events: a list of kinds"),
        ({"token": "t", "requirements": 5}, 4422, "requirements: a list of requirement ids"),
        ({"token": "t", "matched": "false"}, 4422, "matched: true or false"),
        ({"token": "t", "cursor": 7}, 4422, "cursor: an event id"),
        ({"token": "t", "colour": "red"}, 4422, "unknown field(s) in the first message: colour"),
    ],
)
def test_websocket_refuses_bad_credentials(
    client: TestClient, first: dict[str, Any], code: int, message: str
) -> None:
    with client.websocket_connect("/api/v1/ws") as ws:
        ws.send_json(first)
        error = ws.receive_json()
        assert error["event"] == "error" and message in error["data"]["detail"]
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == code


def test_websocket_refuses_a_binary_first_message(client: TestClient) -> None:
    with client.websocket_connect("/api/v1/ws") as ws:
        ws.send_bytes(b'{"token": "x"}')
        assert "first as text" in ws.receive_json()["data"]["detail"]
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4422


def test_websocket_bad_cursor(client: TestClient, coalition: Coalition) -> None:
    kor = coalition.user("KOR")
    with client.websocket_connect("/api/v1/ws?cursor=nope", headers=auth(kor)) as ws:
        assert (
            "cursor 'nope' is not an event id of this node" in ws.receive_json()["data"]["detail"]
        )
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4422


# What a client can put in a header value: visible ASCII (httpx refuses the rest).
HEADER_TEXT = st.characters(min_codepoint=0x21, max_codepoint=0x7E)


@given(
    last_event_id=st.one_of(st.none(), st.text(HEADER_TEXT, max_size=12)),
    after=st.one_of(st.none(), st.integers(-5, 10**12), st.text(max_size=6)),
    events=st.lists(st.text(max_size=10), max_size=3),
    matched=st.one_of(st.none(), st.sampled_from(["true", "false", "yes", "2"])),
    requirement=st.lists(st.one_of(st.integers(-3, 5), st.text(max_size=4)), max_size=3),
)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_stream_options_never_answer_5xx(
    fuzzed_server: tuple[str, str],
    last_event_id: str | None,
    after: int | str | None,
    events: list[str],
    matched: str | None,
    requirement: list[int | str],
) -> None:
    base, token = fuzzed_server
    headers = auth(token)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    params: dict[str, Any] = {"events": events, "requirement": requirement}
    if after is not None:
        params["after"] = after
    if matched is not None:
        params["matched"] = matched
    with httpx.stream("GET", f"{base}/api/v1/stream", headers=headers, params=params,
                      timeout=10) as response:  # fmt: skip
        assert response.status_code in {200, 400, 404, 422}, response.read()
        if response.status_code == 200:
            first = next(response.iter_lines())
            assert first.startswith("retry:")
        else:
            response.read()
            assert response.json()["detail"]
            if response.status_code == 400:  # the one 400 of the stream: U+0000 in the query
                assert "NUL" in response.json()["detail"]
                given = [x for v in params.values() for x in (v if isinstance(v, list) else [v])]
                assert any("\x00" in str(x) for x in given)


@pytest.fixture(scope="module")
def fuzzed_server(
    tmp_path_factory: pytest.TempPathFactory, backend: str
) -> Iterator[tuple[str, str]]:
    """One server for every fuzzed example, with a report and a requirement."""
    node = make_node(Path(tmp_path_factory.mktemp("fuzz")) / "node", backend)
    token = Coalition(node).user("KOR")
    with served(node) as base:
        httpx.post(f"{base}/api/v1/requirements", json={"name": "x", "types": ["OSINT"]},
                   headers=auth(token))  # fmt: skip
        post(base, token, label={"classification": "NATO SECRET", "releasable_to": ["KOR"]})
        yield base, token
    node.close()
