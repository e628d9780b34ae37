"""The in-process bus: committed reports reach subscribers; a slow subscriber is cut off."""

from __future__ import annotations

import asyncio

from bices.bus.base import ReportStored
from bices.bus.memory import MemoryBus
from bices.domain.reports import ReportDraft
from bices.node import Node
from tests.conftest import Coalition, report_json


def test_a_stored_batch_reaches_a_subscriber_after_commit(node: Node, coalition: Coalition) -> None:
    coalition.user("USA", name="usa.writer")
    writer = node.coalition.viewer_of("usa.writer")
    drafts = [ReportDraft.model_validate(report_json(title=f"t{i}")) for i in range(3)]

    async def scenario() -> list[ReportStored]:
        subscription = node.bus.subscribe()
        stored = await asyncio.to_thread(node.collector.submit, writer, drafts)
        received: list[ReportStored] = []
        async with asyncio.timeout(5):
            async for event in subscription:
                received.append(event)
                if len(received) == len(stored):
                    break
        committed = {v.id for v in node.store.reports.all_versions()}
        assert {e.report_id for e in received} <= committed
        return received

    received = asyncio.run(scenario())
    assert [e.version for e in received] == [1, 1, 1]
    assert len({e.seq for e in received}) == 3
    assert all(e.label_id > 0 for e in received)


def test_a_subscriber_that_falls_behind_is_closed_not_waited_for() -> None:
    async def scenario() -> tuple[list[int], bool]:
        bus = MemoryBus()
        slow = bus.subscribe(max_pending=2)
        bus.publish([ReportStored(f"r{i}", 1, 1, i) for i in range(5)])
        got: list[int] = []
        async with asyncio.timeout(5):
            async for event in slow:  # ends when the bus closes the overflowed subscription
                got.append(event.seq)
        return got, slow.overflowed

    got, overflowed = asyncio.run(scenario())
    assert overflowed
    assert got == [0, 1]
