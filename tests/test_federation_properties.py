"""The boundary rule against the access rule, over random labels, peers and member
statuses: a node sends a peer exactly the versions that some user of an active member the
peer serves could ever see (with every clearance and caveat), and a receiving node accepts
exactly those that some user of an active member it serves could. Both sides are driven
in-process (the HTTP path is covered by the multi-process tests)."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bices.domain.labels import Classification, Label
from bices.domain.members import MemberKind, MemberStatus
from bices.domain.peers import Peer, PeerStatus
from bices.domain.reports import LabelDraft, ReportDraft, ReportVersion
from bices.domain.rfis import RfiDraft
from bices.domain.users import Role, Viewer
from bices.federation.forward import next_batch, rfi_items, wire_items
from bices.federation.wire import NodeKey
from bices.node import Node
from bices.policy import Directory, may_see
from bices.settings import Settings
from tests.conftest import report_json

CAVEATS = ("ATOMAL", "CRYPTO")
SERVED_HERE = ("USA", "GBR")  # the sending node's members
ELSEWHERE = ("KOR", "JPN", "EST")  # members other nodes serve
CODES = (*SERVED_HERE, *ELSEWHERE, "NATO", "IP4")
RULES = settings(
    max_examples=80, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)  # fmt: skip

labels = st.builds(
    lambda level, rel, caveats: (level, rel, caveats),
    st.sampled_from([c.marking for c in Classification]),
    st.lists(st.sampled_from(CODES), min_size=1, max_size=3, unique=True),
    st.lists(st.sampled_from(CAVEATS), max_size=2, unique=True),
)


def top_viewer(member: str, status: MemberStatus) -> Viewer:
    """Any user a member could ever have: every clearance, every caveat."""
    return Viewer(0, f"{member}.any", member, status, Classification.COSMIC_TOP_SECRET,
                  frozenset(CAVEATS), frozenset({Role.ANALYST}))  # fmt: skip


def could_see(members: tuple[str, ...], label: Label, directory: Directory) -> bool:
    return any(
        may_see(top_viewer(m, directory.statuses.get(m, MemberStatus.WITHDRAWN)), label, directory)
        for m in members
    )


@pytest.fixture(scope="module")
def sender(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    node = Node.open(Settings(data=tmp_path_factory.mktemp("sender")))
    for code in SERVED_HERE:
        node.coalition.add_member(code, code, MemberKind.NATION, ["NATO"])
    for code in ELSEWHERE:
        key = NodeKey(bytes([len(code)] * 32)).public  # any valid key: never used to verify
        community = "NATO" if code == "EST" else "IP4"
        node.coalition.add_member(code, code, MemberKind.NATION, [community], None, key)
    for code in SERVED_HERE:
        node.coalition.add_user(code, f"{code.lower()}.writer", "COSMIC TOP SECRET",
                                CAVEATS, ("analyst",))  # fmt: skip
    yield node
    node.close()


_names = itertools.count()
Posted = list[tuple[str, tuple[str, list[str], list[str]]]]


def _post(node: Node, posted: Posted) -> list[ReportVersion]:
    """Each (member, label) posted by that member's writer; the stored versions."""
    stored = []
    for member, (level, rel, caveats) in posted:
        writer = node.coalition.viewer_of(f"{member.lower()}.writer")
        draft = ReportDraft.model_validate(report_json())
        draft = draft.model_copy(update={"label": LabelDraft(
            classification=level, releasable_to=[*rel, member], caveats=caveats)})  # fmt: skip
        stored += node.collector.submit(writer, [draft])
    return stored


def _peer(node: Node, prefix: str, members: list[str]) -> Peer:
    """An active peer serving `members`, never reached (batches are only built), that has
    been sent everything stored so far."""
    return Peer(f"{prefix}{next(_names)}", "http://127.0.0.1:9", NodeKey(bytes(32)).public,
                tuple(members), PeerStatus.ACTIVE, datetime.now(UTC),
                sent_seq=node.store.outbox.head())  # fmt: skip


def _set_statuses(node: Node, suspended: set[str]) -> None:
    for code in ELSEWHERE:
        member = node.store.coalition.get_member(code)
        assert member is not None
        wanted = MemberStatus.SUSPENDED if code in suspended else MemberStatus.ACTIVE
        if member.status is not wanted:
            node.coalition.set_status(code, wanted)


@RULES
@given(
    posted=st.lists(st.tuples(st.sampled_from(SERVED_HERE), labels), min_size=1, max_size=6),
    peer_members=st.lists(st.sampled_from(ELSEWHERE), min_size=1, max_size=2, unique=True),
    suspended=st.sets(st.sampled_from(ELSEWHERE)),
)
def test_a_peer_is_sent_exactly_what_its_members_could_see(
    sender: Node,
    posted: list[tuple[str, tuple[str, list[str], list[str]]]],
    peer_members: list[str],
    suspended: set[str],
) -> None:
    node = sender
    _set_statuses(node, suspended)
    peer = _peer(node, "p", peer_members)
    stored = _post(node, posted)
    batch = next_batch(node.store, peer, limit=1000)
    assert batch is not None
    sent = {v.id for v in batch.versions}
    directory = node.store.coalition.directory()
    expected = {v.id for v in stored if could_see(peer.members, v.label, directory)}
    assert sent == expected
    assert batch.upto == max(v.seq for v in stored)
    # Nothing of a version not sent leaks in the items of the ones sent.
    hidden = [v for v in stored if v.id not in sent]
    text = repr(wire_items(node.store, peer, batch.versions))
    for v in hidden:
        assert v.id not in text


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory, sender: Node) -> Iterator[Node]:
    node = Node.open(Settings(data=tmp_path_factory.mktemp("receiver")))
    node.coalition.add_member("KOR", "KOR", MemberKind.NATION, ["IP4"])
    for code in SERVED_HERE:
        member = sender.store.coalition.get_member(code)
        assert member is not None and member.public_key is not None
        node.coalition.add_member(code, code, MemberKind.NATION, ["NATO"], None, member.public_key)
    yield node
    node.close()


@RULES
@given(posted=st.lists(st.tuples(st.sampled_from(SERVED_HERE), labels), min_size=1, max_size=6))
def test_a_receiver_accepts_exactly_what_its_members_could_see(
    sender: Node, receiver: Node, posted: list[tuple[str, tuple[str, list[str], list[str]]]]
) -> None:
    _set_statuses(sender, set())
    stored = _post(sender, posted)
    # A compromised sender: every version goes, releasable or not.
    as_seen = Peer("sender", "http://127.0.0.1:9", sender.federation.key.public, SERVED_HERE,
                   PeerStatus.ACTIVE, datetime.now(UTC))  # fmt: skip
    items = wire_items(sender.store, as_seen, stored)
    outcome = receiver.federation.receiver.receive(as_seen, items)
    directory = receiver.store.coalition.directory()
    accepted = {i for i, _ in outcome.accepted}
    expected = {v.id for v in stored if could_see(("KOR",), v.label, directory)}
    assert accepted == expected
    assert {r["id"] for r in outcome.rejected} == {v.id for v in stored} - expected
    for v in stored:
        held = receiver.store.reports.current_unfiltered(v.id)
        assert (held is not None) == (v.id in expected)


@RULES
@given(
    asked=st.lists(labels, min_size=1, max_size=4),
    peer_members=st.lists(st.sampled_from(ELSEWHERE), min_size=1, max_size=2, unique=True),
    suspended=st.sets(st.sampled_from(ELSEWHERE)),
)
def test_a_peer_is_sent_exactly_the_rfis_its_members_could_see(
    sender: Node,
    asked: list[tuple[str, list[str], list[str]]],
    peer_members: list[str],
    suspended: set[str],
) -> None:
    node = sender
    _set_statuses(node, suspended)
    peer = _peer(node, "r", peer_members)
    usa = node.coalition.viewer_of("usa.writer")
    rfis = []
    for level, rel, caveats in asked:
        draft = RfiDraft.model_validate({
            "question": "Who moved the convoy?", "deadline": "2099-01-01T00:00:00Z",
            "addressees": ["GBR"], "label": {"classification": level,
                                             "releasable_to": [*rel, "USA", "GBR"],
                                             "caveats": caveats},
        })  # fmt: skip
        rfis.append(node.rfis.create(usa, draft))
    batch = next_batch(node.store, peer, limit=1000)
    assert batch is not None
    sent = {item["id"] for item in rfi_items(node.store, peer, batch.rfi_ids)}
    directory = node.store.coalition.directory()
    assert sent == {r.id for r in rfis if could_see(peer.members, r.label, directory)}


def test_a_batch_stops_growing_before_the_peers_body_limit(sender: Node) -> None:
    """Versions with large attachments go a few at a time, so no batch outgrows what a
    peer accepts (and delivery never wedges on one)."""
    _set_statuses(sender, set())
    peer = _peer(sender, "b", ["KOR"])
    writer = sender.coalition.viewer_of("usa.writer")
    big = base64.b64encode(bytes(2 * 1024 * 1024)).decode()  # ~2.8 MB a version in a batch
    stored = []
    for n in range(3):
        draft = ReportDraft.model_validate(report_json(
            title=f"Imagery {n}", label={"classification": "NATO SECRET",
                                         "releasable_to": ["NATO", "KOR"]},
            attachments=[{"name": f"image{n}.bin", "content_base64": big}]))  # fmt: skip
        stored += sender.collector.submit(writer, [draft])
    first = next_batch(sender.store, peer, limit=100)
    assert first is not None
    assert [v.id for v in first.versions] == [v.id for v in stored[:2]]
    assert first.upto == stored[1].seq  # the third waits for the next batch
