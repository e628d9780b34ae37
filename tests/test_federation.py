"""Federation between three national nodes, each a `bices serve` process of its own on a
loopback port: a NATO-side node serving USA, GBR and EST (on each backend), a KOR node
and a JPN node (embedded). What crosses, what does not, store and forward across an
outage, refusals on both sides, suspension, updates, and the pull endpoint.

Absence is shown by order: each node delivers to a peer in its store order, so once a
later report that is due to a peer has arrived, an earlier one that has not arrived never
will; the tests also read the sender's position for that peer."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bices.domain.audit import verify_chain
from bices.domain.labels import Label
from bices.domain.members import MemberStatus
from bices.domain.peers import PeerStatus
from bices.domain.reports import Reliability, ReportType, ReportVersion, Source
from bices.domain.signing import load_private, sign
from bices.federation.wire import NodeKey, item_of, signed_part
from bices.share.reading import verify_version
from tests.conftest import (
    NATS_URL,
    Tamperer,
    free_port,
    new_bus_namespace,
    new_pg_url,
    report_json,
)
from tests.federation_sites import Site, wait_until

NATO_SIDE = {"USA": ["NATO"], "GBR": ["NATO"], "EST": ["NATO"]}


class Coalition:
    def __init__(self, root: Path, backend: str) -> None:
        scale_out: dict[str, Any] = {}
        if backend == "postgres":
            scale_out = {
                "database_url": new_pg_url(),
                "bus_url": NATS_URL,
                "bus_namespace": new_bus_namespace(),
            }
        self.nato = Site(root, "nato", NATO_SIDE, free_port(), **scale_out)
        self.kor = Site(root, "kor", {"KOR": ["IP4"]}, free_port())
        self.jpn = Site(root, "jpn", {"JPN": ["IP4"]}, free_port())
        self.sites = (self.nato, self.kor, self.jpn)
        self.usa = self.nato.user("USA", "usa.analyst")
        self.gbr = self.nato.user("GBR", "gbr.analyst")
        self.releaser = self.nato.user("USA", "usa.releaser", ("analyst", "releaser"))
        self.kor_user = self.kor.user("KOR", "kor.analyst")
        self.jpn_user = self.jpn.user("JPN", "jpn.analyst")
        try:
            for site in self.sites:
                site.start()
        except BaseException:  # a site that did not start leaves none running behind it
            self.close()
            raise
        # Each side registers the other after checking its key's fingerprint. The KOR node
        # is told that the NATO node serves USA and EST only: GBR's reports are refused
        # there, as a misconfigured or compromised sender's would be.
        self.nato.peer_with(self.kor, ["KOR"])
        self.nato.peer_with(self.jpn, ["JPN"])
        self.kor.peer_with(self.nato, ["USA", "EST"])
        self.jpn.peer_with(self.nato, ["USA", "GBR", "EST"])

    def post(self, token: str, **fields: Any) -> str:
        response = httpx.post(
            f"{self.nato.url}/api/v1/reports",
            json=report_json(**fields),
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def close(self) -> None:
        for site in self.sites:
            site.close()


def label(*releasable_to: str, classification: str = "NATO SECRET") -> dict[str, Any]:
    return {"classification": classification, "releasable_to": list(releasable_to)}


def update(site: Site, token: str, report_id: str, title: str) -> httpx.Response:
    """A new version of a report, under REL TO NATO, KOR, asked of one site."""
    return httpx.put(
        f"{site.url}/api/v1/reports/{report_id}",
        json=report_json(title=title, label=label("NATO", "KOR")),
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def held(site: Site, token: str, report_id: str) -> dict[str, Any] | None:
    response = httpx.get(
        f"{site.url}/api/v1/reports/{report_id}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    return response.json() if response.status_code == 200 else None


def arrives(site: Site, token: str, report_id: str, timeout_s: float = 15) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def check() -> bool:
        report = held(site, token, report_id)
        if report is not None:
            found.append(report)
        return bool(found)

    wait_until(check, timeout_s, f"report {report_id} on {site.name}")
    return found[0]


def stored_ids(site: Site) -> list[str]:
    """The report ids of every version the site stored, in its store order."""
    events = site.node.store.outbox.after(0, 100_000, kinds=["report"])
    return [event.item_id for event in events]


def audit_actions(site: Site) -> list[tuple[str, str | None, dict[str, Any]]]:
    return [(e.action, e.target, e.detail) for e in site.node.store.audit.all_events()]


@pytest.fixture(scope="module")
def coalition(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[Coalition]:
    built = Coalition(tmp_path_factory.mktemp(f"federation-{backend}"), backend)
    try:
        yield built
    finally:
        built.close()


def test_a_report_reaches_exactly_the_nodes_it_is_releasable_to(coalition: Coalition) -> None:
    c = coalition
    to_kor = c.post(c.usa, title="Sinpo submarine base activity", label=label("NATO", "KOR"))
    usa_only = c.post(c.usa, title="Collection plan, US eyes", label=label("USA"))
    marker = c.post(c.usa, title="Coalition marker", label=label("NATO", "KOR", "JPN"))
    report = arrives(c.kor, c.kor_user, to_kor)
    assert report["label"]["banner"] == "NATO SECRET // REL TO NATO, KOR"
    assert report["originator"] == "USA" and report["signature"]
    arrives(c.kor, c.kor_user, marker)
    arrives(c.jpn, c.jpn_user, marker)
    # Delivered in store order, so what has not arrived before the marker never will.
    assert held(c.jpn, c.jpn_user, to_kor) is None
    assert held(c.kor, c.kor_user, usa_only) is None and held(c.jpn, c.jpn_user, usa_only) is None
    for site in (c.kor, c.jpn):
        ids = set(stored_ids(site))
        assert usa_only not in ids
    assert to_kor not in stored_ids(c.jpn)
    # The received version verifies on the receiving node against USA's registered key.
    stored = c.kor.node.store.reports.current_unfiltered(to_kor)
    assert stored is not None
    assert verify_version(c.kor.node.store, stored).valid
    # Audited on both sides: sent under the item's label, received with the peer's name.
    sent = [a for a in audit_actions(c.nato) if a[0] == "report.send" and a[1] == to_kor]
    assert [detail["peer"] for _, _, detail in sent] == ["kor"]
    got = [a for a in audit_actions(c.kor) if a[0] == "report.receive" and a[1] == to_kor]
    assert len(got) == 1 and got[0][2]["peer"] == "nato"


def test_a_batch_signed_once_crosses_and_each_report_verifies_there(
    coalition: Coalition,
) -> None:
    c = coalition
    wide = [report_json(title=f"Convoy {i}", label=label("NATO", "KOR")) for i in range(3)]
    reports = [*wide, report_json(title="US eyes only", label=label("USA"))]
    response = httpx.post(
        f"{c.nato.url}/api/v1/reports/batch",
        json={"reports": reports},
        headers={"Authorization": f"Bearer {c.usa}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    ids = response.json()["ids"]
    for report_id in ids[:3]:
        report = arrives(c.kor, c.kor_user, report_id)
        assert report["signature"].startswith("batch1:") and ":3:" in report["signature"]
        stored = c.kor.node.store.reports.current_unfiltered(report_id)
        assert stored is not None
        assert verify_version(c.kor.node.store, stored).valid


def test_new_versions_propagate_and_stay_the_originators(coalition: Coalition) -> None:
    c = coalition
    report_id = c.post(c.usa, title="Launch pad rollout, first look", label=label("NATO", "KOR"))
    arrives(c.kor, c.kor_user, report_id)
    response = update(c.nato, c.usa, report_id, "Launch pad rollout, confirmed")
    assert response.status_code == 200, response.text

    def second_version() -> bool:
        report = held(c.kor, c.kor_user, report_id)
        return report is not None and report["version"] == 2

    wait_until(second_version, 15, "version 2 on kor")
    report = held(c.kor, c.kor_user, report_id)
    assert report is not None and report["title"] == "Launch pad rollout, confirmed"
    # KOR's users may not issue versions of USA's report on their node.
    response = update(c.kor, c.kor_user, report_id, "Altered by the receiver")
    assert response.status_code == 403
    assert "only its originator" in response.json()["detail"]


def test_items_posted_while_a_peer_is_down_arrive_once_in_order(coalition: Coalition) -> None:
    c = coalition
    c.kor.stop(kill=True)
    posted = [
        c.post(c.usa, title=f"Outage report {n}", label=label("NATO", "KOR")) for n in range(25)
    ]

    def failing() -> bool:
        peer = c.nato.node.store.peers.get("kor")
        return peer is not None and peer.failures > 0 and peer.last_error is not None

    wait_until(failing, 15, "the NATO node to notice that KOR is down")
    time.sleep(1.5)  # a few retries with back-off while KOR stays down
    c.kor.start()
    for report_id in posted:
        arrives(c.kor, c.kor_user, report_id, timeout_s=20)
    ids = stored_ids(c.kor)
    received = [i for i in ids if i in set(posted)]
    assert received == posted  # each exactly once, in the order USA posted them
    peer = c.nato.node.store.peers.get("kor")
    assert peer is not None and peer.failures == 0


def test_refused_items_are_logged_and_audited_on_both_sides(coalition: Coalition) -> None:
    c = coalition
    refused = c.post(c.gbr, title="British assessment", label=label("NATO", "KOR"))
    marker = c.post(c.usa, title="Marker after the refusal", label=label("NATO", "KOR"))
    arrives(c.kor, c.kor_user, marker)
    assert held(c.kor, c.kor_user, refused) is None
    reason = "peer nato does not serve originator GBR"
    kor_side = [a for a in audit_actions(c.kor) if a[0] == "federation.refuse" and a[1] == refused]
    assert kor_side and kor_side[0][2]["reason"] == reason
    nato_side = [
        a for a in audit_actions(c.nato) if a[0] == "federation.refused" and a[1] == refused
    ]
    assert nato_side and nato_side[0][2] == {"peer": "kor", "version": 1, "reason": reason}
    assert f"refused item {refused} version 1 from peer nato" in c.kor.log.read_text()


def _rogue_post(c: Coalition, items: list[dict[str, Any]]) -> httpx.Response:
    """POST to KOR's inbox signed with the NATO node's key: a compromised NATO node."""
    key = NodeKey(c.nato.node.store.node_key)
    body = json.dumps({"items": items}).encode()
    headers = key.request_headers(
        "POST", "/federation/v1/inbox", body, c.kor.node.federation.key.fingerprint
    )
    return httpx.post(
        f"{c.kor.url}/federation/v1/inbox",
        content=body,
        headers={**headers, "content-type": "application/json"},
        timeout=10,
    )


def _usa_item(c: Coalition, title: str, releasable_to: list[str]) -> dict[str, Any]:
    """A report version truly signed with USA's key (a compromised NATO node holds it)."""
    now = datetime.now(UTC)
    version = ReportVersion(
        id=str(uuid.uuid4()),
        version=1,
        type=ReportType.INTREP,
        title=title,
        body="Text of the report.",
        language="en",
        label=Label.build("NATO SECRET", releasable_to, "USA"),
        source=Source(name="Liaison", reliability=Reliability.B, credibility=2),
        reported_at=now,
        observed_at=None,
        locations=(),
        attachments=(),
        author="usa.analyst",
        stored_at=now,
    )
    raw_key = c.nato.node.store.coalition.signing_key("USA")
    assert raw_key is not None
    signature = sign(load_private(raw_key), version.signed_content())
    return item_of(replace(version, signature=signature), {})


def _resigned(c: Coalition, item: dict[str, Any]) -> dict[str, Any]:
    """The item signed again with USA's key over its content as it now stands."""
    raw_key = c.nato.node.store.coalition.signing_key("USA")
    assert raw_key is not None
    return {**item, "signature": sign(load_private(raw_key), signed_part(item))}


def test_a_compromised_peer_cannot_push_what_the_receiver_may_not_hold(
    coalition: Coalition,
) -> None:
    c = coalition
    not_releasable = _usa_item(c, "US only, pushed anyway", ["USA"])
    tampered = _usa_item(c, "Releasable but altered", ["NATO", "KOR"])
    tampered["body"] = "Text changed after signing."
    unknown_peer_speaks_for_kor = _usa_item(c, "Claims to be Korean", ["NATO", "KOR"])
    unknown_peer_speaks_for_kor["label"]["originator"] = "KOR"
    good = _usa_item(c, "Releasable and intact", ["NATO", "KOR"])
    # A version "2" of a report KOR's own analyst wrote, signed by USA.
    korean = httpx.post(
        f"{c.kor.url}/api/v1/reports",
        json=report_json(label=label("KOR")),
        headers={"Authorization": f"Bearer {c.kor_user}"},
        timeout=10,
    )
    assert korean.status_code == 201, korean.text
    hijack = _usa_item(c, "Rewritten by another member", ["NATO", "KOR"])
    hijack["id"], hijack["version"] = korean.json()["id"], 2
    hijack = _resigned(c, hijack)
    bogus = _usa_item(c, "A label no node knows", ["NATO", "KOR"])
    bogus["label"]["classification"] = "BOGUS"
    bogus = _resigned(c, bogus)
    response = _rogue_post(
        c, [not_releasable, tampered, unknown_peer_speaks_for_kor, good, hijack, bogus]
    )
    assert response.status_code == 200, response.text
    outcome = response.json()
    reasons = {r["id"]: r["reason"] for r in outcome["rejected"]}
    assert reasons[not_releasable["id"]] == (
        "label NATO SECRET // REL TO USA is not releasable to a member this node serves (KOR)"
    )
    assert reasons[tampered["id"]] == "the signature of originator USA does not verify"
    assert reasons[unknown_peer_speaks_for_kor["id"]] == (
        "originator KOR is served by this node, not by the peer"
    )
    assert reasons[hijack["id"]] == (
        f"report {hijack['id']} is held here as KOR's; USA cannot issue versions of it"
    )
    assert reasons[bogus["id"]].startswith("malformed item: unknown classification")
    assert outcome["accepted"] == [{"id": good["id"], "version": 1}]
    for refused in (not_releasable, tampered, unknown_peer_speaks_for_kor):
        assert c.kor.node.store.reports.current_unfiltered(refused["id"]) is None
    # The same item twice is one item.
    again = _rogue_post(c, [good]).json()
    assert again["accepted"] == [] and again["duplicates"] == [{"id": good["id"], "version": 1}]
    assert stored_ids(c.kor).count(good["id"]) == 1
    refusals = [a for a in audit_actions(c.kor) if a[0] == "federation.refuse"]
    assert {a[1] for a in refusals} >= set(reasons)


def test_requests_not_signed_by_a_registered_peer_are_refused(coalition: Coalition) -> None:
    c = coalition
    stranger = NodeKey(bytes(range(32)))
    body = json.dumps({"items": []}).encode()
    to = c.kor.node.federation.key.fingerprint
    headers = stranger.request_headers("POST", "/federation/v1/inbox", body, to)
    response = httpx.post(f"{c.kor.url}/federation/v1/inbox", content=body, headers=headers)
    assert response.status_code == 401
    assert "is not a peer" in response.json()["detail"]
    # The NATO node's fingerprint with another key's signature: the signature fails.
    headers["bices-node"] = c.nato.node.federation.key.fingerprint
    response = httpx.post(f"{c.kor.url}/federation/v1/inbox", content=body, headers=headers)
    assert response.status_code == 401
    assert "does not verify against the peer's node key" in response.json()["detail"]
    # A genuine request replayed to another node is refused there.
    nato_key = NodeKey(c.nato.node.store.node_key)
    signed = nato_key.request_headers("POST", "/federation/v1/inbox", body, to)
    response = httpx.post(f"{c.jpn.url}/federation/v1/inbox", content=body, headers=signed)
    assert response.status_code == 401
    assert "addressed to another node" in response.json()["detail"]


def test_suspending_kor_stops_delivery_at_once(coalition: Coalition) -> None:
    c = coalition
    before = c.post(c.usa, title="Before suspension", label=label("NATO", "KOR", "JPN"))
    arrives(c.kor, c.kor_user, before)
    c.nato.node.coalition.set_status("KOR", MemberStatus.SUSPENDED)
    try:
        during = c.post(c.usa, title="During suspension", label=label("NATO", "KOR", "JPN"))
        arrives(c.jpn, c.jpn_user, during)
        seq = max(
            e.seq
            for e in c.nato.node.store.outbox.after(0, 100_000, kinds=["report"])
            if e.item_id == during
        )

        def passed() -> bool:
            peer = c.nato.node.store.peers.get("kor")
            return peer is not None and peer.sent_seq >= seq

        wait_until(passed, 15, "the KOR link to pass the report")
        assert held(c.kor, c.kor_user, during) is None
        assert during not in stored_ids(c.kor)
    finally:
        c.nato.node.coalition.set_status("KOR", MemberStatus.ACTIVE)
    after = c.post(c.usa, title="After reinstatement", label=label("NATO", "KOR"))
    arrives(c.kor, c.kor_user, after)


def test_the_pull_endpoint_catches_up_when_pushes_cannot_get_through(
    coalition: Coalition,
) -> None:
    """The NATO node cannot reach KOR (a one-way firewall: its peer address for KOR leads
    nowhere), but KOR can reach it: KOR pulls, through the same checks as a push."""
    c = coalition
    tamper = Tamperer(c.nato.node, "bices.db")
    closed = f"http://127.0.0.1:{free_port()}"
    tamper.execute("UPDATE peers SET url = ? WHERE name = 'kor'", (closed,))
    try:
        waiting = [
            c.post(c.usa, title=f"Waiting report {n}", label=label("NATO", "KOR")) for n in range(5)
        ]
        usa_only = c.post(c.usa, title="Not for Korea", label=label("USA"))
        marker = c.post(c.usa, title="Marker to Japan", label=label("NATO", "JPN"))
        arrives(c.jpn, c.jpn_user, marker)
        assert all(held(c.kor, c.kor_user, i) is None for i in waiting)
        outcome = c.kor.node.federation.pull("nato")
        # From the start of the history: what pushes delivered comes back as duplicates,
        # GBR's reports are refused as before, and what was waiting is stored, in order.
        pulled = [i for i, _ in outcome.accepted]
        assert [i for i in pulled if i in waiting] == waiting
        assert usa_only not in pulled and usa_only not in {i for i, _ in outcome.duplicates}
        assert {r["reason"] for r in outcome.rejected} == {
            "peer nato does not serve originator GBR"
        }
        for report_id in waiting:
            assert held(c.kor, c.kor_user, report_id) is not None
        again = c.kor.node.federation.pull("nato")
        assert again.accepted == []  # its position moved past them
        sent = [a for a in audit_actions(c.nato) if a[0] == "report.send" and a[1] == waiting[0]]
        assert [detail.get("via") for _, _, detail in sent] == ["pull"]
    finally:
        tamper.execute("UPDATE peers SET url = ? WHERE name = 'kor'", (c.kor.url,))
        tamper.close()
    # With the way open again, pushes deliver them too: the receiver holds each once.
    after = c.post(c.usa, title="After the link is restored", label=label("NATO", "KOR"))
    arrives(c.kor, c.kor_user, after)
    ids = stored_ids(c.kor)
    assert all(ids.count(i) == 1 for i in waiting)


def test_a_suspended_peer_holds_its_items_until_reinstated(coalition: Coalition) -> None:
    c = coalition
    c.nato.node.federation.set_status("kor", PeerStatus.SUSPENDED)
    try:
        held_back = c.post(c.usa, title="Held for a suspended peer", label=label("NATO", "KOR"))
        marker = c.post(c.usa, title="Marker to Japan again", label=label("NATO", "JPN"))
        arrives(c.jpn, c.jpn_user, marker)
        time.sleep(0.5)  # several polls of the KOR link while it is suspended
        assert held(c.kor, c.kor_user, held_back) is None
    finally:
        c.nato.node.federation.set_status("kor", PeerStatus.ACTIVE)
    arrives(c.kor, c.kor_user, held_back)


def _tearline(c: Coalition, token: str, source: str, **fields: Any) -> httpx.Response:
    return httpx.post(
        f"{c.nato.url}/api/v1/reports/{source}/tearline",
        json=report_json(**fields),
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def test_a_tearline_goes_where_its_own_label_allows(coalition: Coalition) -> None:
    c = coalition
    secret = c.post(c.usa, title="Source-revealing assessment", label=label("USA"))
    # Only the originator's releasing officer, under a label no higher and not the same.
    lower = label("NATO", "KOR", classification="NATO RESTRICTED")
    assert _tearline(c, c.usa, secret, label=lower).status_code == 403
    higher = label("NATO", "KOR", classification="COSMIC TOP SECRET")
    refused = _tearline(c, c.releaser, secret, label=higher)
    assert refused.status_code == 422 and "may not exceed" in refused.json()["detail"]
    same = _tearline(c, c.releaser, secret, label=label("USA"))
    assert same.status_code == 422 and "another label" in same.json()["detail"]
    made = _tearline(c, c.releaser, secret, title="Sanitised assessment", label=lower)
    assert made.status_code == 201, made.text
    tearline = made.json()["id"]
    # On KOR's node: the tearline, without a link to a report KOR may not hold.
    report = arrives(c.kor, c.kor_user, tearline)
    assert report["label"]["banner"] == "NATO RESTRICTED // REL TO NATO, KOR"
    assert report["tearline_of"] is None
    assert secret not in stored_ids(c.kor)
    # On the NATO node, USA sees both ends of the link; GBR only the tearline.
    auth = {"Authorization": f"Bearer {c.usa}"}
    original = httpx.get(f"{c.nato.url}/api/v1/reports/{secret}", headers=auth).json()
    assert original["tearlines"] == [tearline]
    linked = httpx.get(f"{c.nato.url}/api/v1/reports/{tearline}", headers=auth).json()
    assert linked["tearline_of"] == {"id": secret, "version": 1}
    as_gbr = held(c.nato, c.gbr, tearline)
    assert as_gbr is not None and as_gbr["tearline_of"] is None
    # A tearline of a report KOR may hold carries its link there.
    shared = c.post(c.usa, title="Shared assessment", label=label("NATO", "KOR"))
    wider = label("NATO", "KOR", "JPN", classification="NATO RESTRICTED")
    made = _tearline(c, c.releaser, shared, title="For Japan too", label=wider)
    assert made.status_code == 201, made.text
    report = arrives(c.kor, c.kor_user, made.json()["id"])
    assert report["tearline_of"] == {"id": shared, "version": 1}
    on_jpn = arrives(c.jpn, c.jpn_user, made.json()["id"])
    assert on_jpn["tearline_of"] is None


def _rfi_call(site: Site, token: str, path: str, body: Any = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if body is None:
        return httpx.get(f"{site.url}/api/v1/rfis{path}", headers=headers, timeout=30)
    return httpx.post(f"{site.url}/api/v1/rfis{path}", json=body, headers=headers, timeout=30)


def _rfi_state(site: Site, token: str, rfi_id: str) -> str | None:
    response = _rfi_call(site, token, f"/{rfi_id}")
    return str(response.json()["state"]) if response.status_code == 200 else None


def test_an_rfi_asked_on_one_node_is_worked_on_another(coalition: Coalition) -> None:
    c = coalition
    deadline = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    asked = _rfi_call(c.nato, c.usa, "", {
        "question": "Where is the TEL seen near Sinpo now?", "priority": "IMMEDIATE",
        "deadline": deadline, "addressees": ["KOR"], "label": label("NATO", "KOR"),
    })  # fmt: skip
    assert asked.status_code == 201, asked.text
    rfi_id = asked.json()["id"]
    # It reaches KOR's node (the boundary rule), and not JPN's.
    wait_until(lambda: _rfi_state(c.kor, c.kor_user, rfi_id) == "open", 15, "the RFI on kor")
    marker = c.post(c.usa, title="Marker after the RFI", label=label("NATO", "KOR", "JPN"))
    arrives(c.jpn, c.jpn_user, marker)
    assert _rfi_call(c.jpn, c.jpn_user, f"/{rfi_id}").status_code == 404
    # KOR's analyst accepts it on KOR's node: decided at its home, mirrored back at once.
    accepted = _rfi_call(c.kor, c.kor_user, f"/{rfi_id}/accept", {})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["state"] == "accepted"
    at_home = _rfi_call(c.nato, c.usa, f"/{rfi_id}").json()
    assert at_home["state"] == "accepted"
    assert at_home["addressees"][0]["accepted_by"] == "kor.analyst@kor"
    # Refused on KOR's node as at home: only the asker's member closes it.
    refused = _rfi_call(c.kor, c.kor_user, f"/{rfi_id}/close", {"reason": "done"})
    assert refused.status_code == 403, refused.text
    # A report the asker may not read cannot answer it, and does not leave KOR's node.
    own = httpx.post(
        f"{c.kor.url}/api/v1/reports",
        json=report_json(label=label("KOR")),
        headers={"Authorization": f"Bearer {c.kor_user}"},
        timeout=10,
    )
    kor_only = own.json()["id"]
    wrong = _rfi_call(c.kor, c.kor_user, f"/{rfi_id}/answers", {"report_id": kor_only})
    assert 400 <= wrong.status_code < 500, wrong.text
    assert c.nato.node.store.reports.current_unfiltered(kor_only) is None
    # KOR answers with a new report: stored on KOR's node, sent home with the answer.
    answer = report_json(type="RFI-RESPONSE", title="TEL moved north of Sinpo",
                         label=label("NATO", "KOR"))  # fmt: skip
    answered = _rfi_call(c.kor, c.kor_user, f"/{rfi_id}/answers", {"report": answer})
    assert answered.status_code == 201, answered.text
    assert answered.json()["state"] == "answered"
    home = _rfi_call(c.nato, c.usa, f"/{rfi_id}").json()
    assert home["state"] == "answered"
    [listed] = home["answers"]
    assert listed["member"] == "KOR" and listed["title"] == "TEL moved north of Sinpo"
    assert held(c.nato, c.usa, listed["report_id"]) is not None
    # The asker closes it at home; KOR's mirror follows.
    closed = _rfi_call(c.nato, c.usa, f"/{rfi_id}/close", {"reason": "answered in time"})
    assert closed.status_code == 200, closed.text
    wait_until(lambda: _rfi_state(c.kor, c.kor_user, rfi_id) == "closed", 15, "closed on kor")
    mirror = _rfi_call(c.kor, c.kor_user, f"/{rfi_id}").json()
    assert [h["action"] for h in mirror["history"]] == ["create", "accept", "answer", "close"]


def test_audit_chains_stay_whole_on_every_node(coalition: Coalition) -> None:
    for site in coalition.sites:
        events = list(site.node.store.audit.all_events())
        count, broken = verify_chain(events)
        assert broken is None and count == len(events) > 0


def test_peer_administration_over_the_api(tmp_path: Path) -> None:
    """Operators only; bad keys, unknown members and duplicates are refused by name."""
    one = Site(tmp_path, "one", {"USA": ["NATO"]}, free_port())
    two = Site(tmp_path, "two", {"KOR": ["IP4"]}, free_port())
    try:
        operator = one.user("USA", "usa.operator", ("operator",))
        analyst = one.user("USA", "usa.analyst2")
        two.start()
        one.start()
        api = f"{one.url}/api/v1/peers"
        fingerprint = two.node.federation.key.fingerprint
        body = {"url": two.url, "key": fingerprint, "members": ["KOR"]}

        def post(payload: dict[str, Any], token: str = operator) -> httpx.Response:
            return httpx.post(api, json=payload, headers={"Authorization": f"Bearer {token}"})

        assert post(body, analyst).status_code == 403
        wrong = post({**body, "key": "00" * 32})
        assert wrong.status_code == 403 and "check the key" in wrong.json()["detail"]
        unknown = post({**body, "members": ["JPN"]})
        assert unknown.status_code == 422 and "does not serve JPN" in unknown.json()["detail"]
        added = post(body)
        assert added.status_code == 201, added.text
        assert added.json()["members"] == ["KOR"] and added.json()["fingerprint"] == fingerprint
        assert post(body).status_code == 409
        auth = {"Authorization": f"Bearer {operator}"}
        # Operators see where delivery stands in /metrics and `bices status`.
        metrics = httpx.get(f"{one.url}/metrics", headers=auth).text
        assert 'bices_peer_active{peer="two"} 1.0' in metrics
        assert 'bices_peer_failures{peer="two"} 0.0' in metrics
        status = subprocess.run(
            one.command("--data", str(one.node.settings.data), "status", "--json"),
            capture_output=True, check=True, env=one.env(),
        )  # fmt: skip
        peers = json.loads(status.stdout)["peers"]
        assert peers["two"]["status"] == "active" and peers["two"]["failures"] == 0
        suspended = httpx.post(f"{api}/two/suspend", headers=auth)
        assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
        assert httpx.delete(f"{api}/two", headers=auth).status_code == 204
        assert httpx.get(f"{api}/two", headers=auth).status_code == 404
        # KOR, registered from the peer's signed description, has the peer's key.
        kor = one.node.store.coalition.get_member("KOR")
        two_kor = two.node.store.coalition.get_member("KOR")
        assert kor is not None and two_kor is not None and kor.public_key == two_kor.public_key
        assert one.node.store.coalition.signing_key("KOR") is None
    finally:
        one.close()
        two.close()
