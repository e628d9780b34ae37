"""The stream hub against a real store: the access rule for every subscriber on every
item (property-based, with suspension mid-stream), and slow subscribers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bices.domain.labels import Classification, Label
from bices.domain.members import MemberStatus
from bices.domain.reports import ReportDraft
from bices.domain.rfis import RfiDraft
from bices.domain.users import Viewer
from bices.node import Node
from bices.policy import may_see
from bices.share.stream import Sent, StreamClosed, StreamHub, Subscriber
from tests.conftest import MEMBERS, Coalition, make_node, report_json

CAVEATS = ("ATOMAL", "CRYPTO")
LEVELS = list(Classification)


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, backend: str
) -> Iterator[tuple[Node, dict[str, str]]]:
    """One node for every example: a writer per member who may write any label."""
    node = make_node(Path(tmp_path_factory.mktemp("stream")) / "node", backend)
    coalition = Coalition(node)
    writers = {code: coalition.user(code, clearance="COSMIC TOP SECRET", caveats=CAVEATS,
                                    name=f"writer.{code.lower()}") for code in MEMBERS}  # fmt: skip
    yield node, writers
    node.close()


labels = st.builds(
    lambda level, originator, rel, caveats: (
        level,
        originator,
        sorted(set(rel) | {originator}),
        sorted(caveats),
    ),
    st.sampled_from(LEVELS),
    st.sampled_from(MEMBERS),
    st.lists(st.sampled_from([*MEMBERS, "NATO", "IP4"]), max_size=3),
    st.sets(st.sampled_from(CAVEATS)),
)
viewers = st.tuples(
    st.sampled_from(MEMBERS), st.sampled_from(LEVELS), st.sets(st.sampled_from(CAVEATS))
)


async def _drain(
    subscriber: Subscriber,
    until: int,
    got: list[Sent],
    stream: AsyncIterator[Sent | None] | None = None,
) -> str:
    """Collect what the subscriber is sent until its cursor reaches `until`; how it ended.
    Pass `stream` to go on with an iteration already begun."""
    stream = stream or subscriber.events(keepalive_s=0.05).__aiter__()
    try:
        async with asyncio.timeout(20):
            while subscriber.cursor < until:
                sent = await anext(stream)
                if sent is not None:
                    got.append(sent)
    except StreamClosed as closed:
        return closed.event
    except StopAsyncIteration:
        return "ended"
    return "caught up"


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(items=st.lists(labels, min_size=2, max_size=8), people=st.lists(viewers, min_size=1,
       max_size=5), suspended=st.sampled_from(MEMBERS), split=st.integers(1, 7))  # fmt: skip
def test_every_subscriber_gets_exactly_what_the_rule_allows(
    world: tuple[Node, dict[str, str]],
    items: list[tuple[Classification, str, list[str], list[str]]],
    people: list[tuple[str, Classification, set[str]]],
    suspended: str,
    split: int,
) -> None:
    node, writers = world
    coalition = Coalition(node)
    tokens = [coalition.user(member, clearance=level.marking, caveats=tuple(sorted(caveats)))
              for member, level, caveats in people]  # fmt: skip
    split = min(split, len(items) - 1)

    async def scenario() -> None:
        hub = StreamHub(node.store, node.bus, poll_s=0.02)
        await hub.start()
        subscribers = [Subscriber(hub, node.coalition.authenticate(t), t, hub.head) for t in tokens]
        streams = [s.events(keepalive_s=0.05).__aiter__() for s in subscribers]
        directory = node.store.coalition.directory()
        before = [await asyncio.to_thread(_submit, node, writers[originator], level, rel, caveats)
                  for level, originator, rel, caveats in items[:split]]  # fmt: skip
        got: list[list[Sent]] = [[] for _ in subscribers]
        for subscriber, stream, sent in zip(subscribers, streams, got, strict=True):
            assert await _drain(subscriber, before[-1][0], sent, stream) == "caught up"
        # Suspension mid-stream: the member's open streams close before anything more.
        node.coalition.set_status(suspended, MemberStatus.SUSPENDED)
        after = [await asyncio.to_thread(_submit, node, writers[originator], level, rel, caveats)
                 for level, originator, rel, caveats in items[split:]
                 if originator != suspended]  # fmt: skip
        # And one report every active member may see, so that there is always an "after".
        other = next(code for code in MEMBERS if code != suspended)
        after.append(await asyncio.to_thread(_submit, node, writers[other], Classification.PUBLIC,
                                             ["NATO", "IP4"], []))  # fmt: skip
        last = max(seq for seq, _ in before + after)
        endings = []
        for subscriber, stream, sent in zip(subscribers, streams, got, strict=True):
            endings.append(await _drain(subscriber, last, sent, stream))
        await hub.stop()
        node.coalition.set_status(suspended, MemberStatus.ACTIVE)
        for subscriber, sent, ending in zip(subscribers, got, endings, strict=True):
            viewer = subscriber.viewer
            allowed = before if viewer.member == suspended else before + after
            expected = [seq for seq, label in allowed if may_see(viewer, label, directory)]
            assert [s.id for s in sent] == expected, (viewer, sent)
            assert ending == ("closed" if viewer.member == suspended else "caught up")

    asyncio.run(scenario())


def _submit(
    node: Node, token: str, level: Classification, rel: list[str], caveats: list[str]
) -> tuple[int, Label]:
    writer = node.coalition.authenticate(token)
    body = report_json(label={"classification": level.marking, "releasable_to": rel,
                              "caveats": caveats})  # fmt: skip
    version = node.collector.submit(writer, [ReportDraft.model_validate(body)])[0]
    return version.seq, version.label


def test_slow_subscriber_is_told_to_resume_and_others_go_on(
    world: tuple[Node, dict[str, str]],
) -> None:
    node, writers = world
    reader_token = Coalition(node).user("KOR")
    usa = node.coalition.authenticate(writers["USA"])

    async def scenario() -> None:
        hub = StreamHub(node.store, node.bus, buffer=20, batch=10, poll_s=0.02)
        await hub.start()
        viewer: Viewer = node.coalition.authenticate(reader_token)
        slow = Subscriber(hub, viewer, reader_token, hub.head)
        fast = Subscriber(hub, viewer, reader_token, hub.head)
        slow_events = slow.events().__aiter__()
        first = asyncio.create_task(anext(slow_events))
        got: list[Sent] = []
        reading = asyncio.create_task(_drain(fast, 2**62, got))
        drafts = [ReportDraft.model_validate(report_json(title=f"burst {i}")) for i in range(120)]
        stored = []
        for start in range(0, 120, 30):
            stored += await asyncio.to_thread(
                node.collector.submit, usa, drafts[start : start + 30]
            )
        first_sent = await first
        assert first_sent is not None and first_sent.id == stored[0].seq
        slow.delivered(first_sent)
        async with asyncio.timeout(10):
            while len(got) < len(stored):
                await asyncio.sleep(0.01)
        reading.cancel()
        assert [s.id for s in got] == [v.seq for v in stored]
        # The slow one has read one item; the hub's buffer has moved on past it.
        with pytest.raises(StreamClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    await anext(slow_events)
        assert closed.value.event == "overflow"
        # The resume point is the last event it was handed (sealed), not past it.
        resume = hub.open(closed.value.data["resume_after"])
        assert resume == stored[0].seq
        # Resuming from the cursor it was given yields the rest, from the store, in order.
        again = Subscriber(hub, viewer, reader_token, resume)
        again.catching_up = True
        rest: list[Sent] = []
        assert await _drain(again, stored[-1].seq, rest) == "caught up"
        assert [s.id for s in rest] == [v.seq for v in stored if v.seq > resume]
        assert len(hub.buffered_after(hub.floor, 10_000) or []) <= 2 * hub.buffer
        await hub.stop()

    asyncio.run(scenario())


def test_stores_wake_the_hub_at_once_without_waiting_for_its_poll(
    world: tuple[Node, dict[str, str]],
) -> None:
    """Reports and RFI changes are announced on the bus after their commit; a hub that
    polls only every 30 s still hands them out at once."""
    node, writers = world
    usa = node.coalition.authenticate(writers["USA"])
    kor_token = Coalition(node).user("KOR")

    async def scenario() -> None:
        hub = StreamHub(node.store, node.bus, poll_s=30)
        await hub.start()
        await asyncio.sleep(0.05)  # let the hub's first poll pass
        subscriber = Subscriber(hub, node.coalition.authenticate(kor_token), kor_token, hub.head)
        stream = subscriber.events(keepalive_s=30).__aiter__()
        draft = RfiDraft.model_validate({
            "question": "Which berth is the boat at?", "addressees": ["KOR"],
            "deadline": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
            "label": {"classification": "NATO SECRET",
                      "releasable_to": ["NATO", "KOR"]}})  # fmt: skip
        rfi = await asyncio.to_thread(node.rfis.create, usa, draft)
        async with asyncio.timeout(3):
            sent = await anext(stream)
        assert sent is not None and (sent.event, sent.data["id"]) == ("rfi", rfi.id)
        report = ReportDraft.model_validate(report_json())
        stored = await asyncio.to_thread(node.collector.submit, usa, [report])
        async with asyncio.timeout(3):
            sent = await anext(stream)
        assert sent is not None and (sent.event, sent.id) == ("report", stored[0].seq)
        await hub.stop()

    asyncio.run(scenario())
