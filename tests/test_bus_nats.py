"""The NATS JetStream bus against the NATS server on 127.0.0.1:4222: events published in
one process reach subscribers in others, and streams on one server process hear of what
another stored at once. With CI=true a missing NATS is a failure, not a skip."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from nats.js.errors import NotFoundError

from bices.bus.base import Event, ReportStored, RfiChanged
from bices.bus.nats import NatsBus, names
from bices.domain.reports import ReportDraft
from bices.node import Node, open_bus
from bices.settings import Settings
from bices.share.stream import StreamHub, Subscriber
from tests.conftest import Coalition, make_node, report_json

URL = "nats://127.0.0.1:4222"


def _reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 4222), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def buses() -> Iterator[Callable[[], NatsBus]]:
    """Buses on a stream of this test's own (deleted afterwards)."""
    if not _reachable():
        if os.environ.get("CI") == "true":
            pytest.fail("NATS is not reachable on 127.0.0.1:4222 (CI needs it)")
        pytest.skip("NATS is not running on 127.0.0.1:4222")
    name = f"BICES_TEST_{uuid.uuid4().hex[:12].upper()}"
    subjects = f"bices.test.{name.lower()}.events"
    made: list[NatsBus] = []

    def bus() -> NatsBus:
        made.append(NatsBus(URL, stream=name, subjects=subjects))
        return made[-1]

    yield bus
    if made:
        for stream in (name, f"{name}_WORK"):  # the events, and the work queue if made
            with contextlib.suppress(NotFoundError):
                made[0].call(made[0].jetstream.delete_stream(stream), timeout=5)
    for each in made:
        each.close()


def test_an_event_reaches_a_subscriber_of_another_bus(buses: Callable[[], NatsBus]) -> None:
    sender, receiver = buses(), buses()  # as two processes would hold them

    async def scenario() -> list[object]:
        subscription = receiver.subscribe()
        got: list[object] = []
        await asyncio.to_thread(sender.publish, [ReportStored("r-1", 1, 7, 42), RfiChanged("q")])
        async with asyncio.timeout(5):
            async for event in subscription:
                got.append(event)
                if len(got) == 2:
                    break
        subscription.close()
        return got

    assert asyncio.run(scenario()) == [ReportStored("r-1", 1, 7, 42), RfiChanged("q")]


def test_a_subscriber_that_falls_behind_is_closed(buses: Callable[[], NatsBus]) -> None:
    bus = buses()

    async def scenario() -> bool:
        subscription = bus.subscribe(max_pending=3)
        await asyncio.to_thread(bus.publish, [ReportStored(f"r-{i}", 1, 1, i) for i in range(10)])
        async with asyncio.timeout(5):
            async for _ in subscription:
                pass  # ends: the subscription was closed when it overflowed
        return subscription.overflowed

    assert asyncio.run(scenario())


def test_a_stream_hears_at_once_of_a_report_stored_by_another_process(
    tmp_path: Path, buses: Callable[[], NatsBus], backend: str
) -> None:
    """Two nodes on one store, each with its own bus (two server processes); the hub
    polls only every 30 s, so only the bus can bring the report in time."""
    first = make_node(tmp_path / "node", backend)
    second = Node.open(first.settings)
    for node in (first, second):  # each process on the NATS bus of this test's stream
        node.bus.close()
        node.bus = node.collector.bus = buses()
    coalition = Coalition(first)
    writer = first.coalition.authenticate(coalition.user("USA"))
    reader_token = coalition.user("KOR")

    async def scenario() -> int | None:
        hub = StreamHub(second.store, second.bus, poll_s=30)
        await hub.start()
        await asyncio.sleep(0.1)
        subscriber = Subscriber(hub, second.coalition.authenticate(reader_token), reader_token,
                                hub.head)  # fmt: skip
        stream = subscriber.events(keepalive_s=30).__aiter__()
        draft = ReportDraft.model_validate(report_json())
        stored = await asyncio.to_thread(first.collector.submit, writer, [draft])
        async with asyncio.timeout(3):
            sent = await anext(stream)
        await hub.stop()
        assert sent is not None and sent.id == stored[0].seq
        return sent.id

    try:
        assert asyncio.run(scenario()) is not None
    finally:
        first.store.close()
        second.store.close()


def test_bices_bus_url_puts_the_node_on_nats(tmp_path: Path, buses: Callable[[], NatsBus]) -> None:
    node = make_node(tmp_path / "node", bus_url=URL)
    try:
        assert isinstance(node.bus, NatsBus) and node.bus.stream == "BICES_EVENTS"
        coalition = Coalition(node)
        writer = node.coalition.authenticate(coalition.user("USA"))

        async def scenario() -> object:
            subscription = node.bus.subscribe()
            draft = ReportDraft.model_validate(report_json())
            stored = await asyncio.to_thread(node.collector.submit, writer, [draft])
            async with asyncio.timeout(5):
                async for event in subscription:
                    if isinstance(event, ReportStored) and event.seq == stored[0].seq:
                        subscription.close()
                        return event
            return None

        found = asyncio.run(scenario())
        assert isinstance(found, ReportStored)
    finally:
        node.close()


@pytest.fixture
def namespaced() -> Iterator[Callable[[str], NatsBus]]:
    """Buses opened as a node opens its own, in bus namespaces of this test's own (their
    streams deleted afterwards)."""
    if not _reachable():
        if os.environ.get("CI") == "true":
            pytest.fail("NATS is not reachable on 127.0.0.1:4222 (CI needs it)")
        pytest.skip("NATS is not running on 127.0.0.1:4222")
    made: list[NatsBus] = []

    def bus(namespace: str) -> NatsBus:
        opened = open_bus(Settings(bus_url=URL, bus_namespace=namespace))
        assert isinstance(opened, NatsBus)
        made.append(opened)
        return opened

    yield bus
    for each in made:
        with contextlib.suppress(NotFoundError):
            each.call(each.jetstream.delete_stream(each.stream), timeout=5)
        each.close()


def test_bus_namespaces_do_not_hear_each_other(namespaced: Callable[[str], NatsBus]) -> None:
    tag = uuid.uuid4().hex[:12]
    first, second = namespaced(f"t{tag}a"), namespaced(f"T{tag}B")
    assert first.stream == f"BICES_EVENTS_T{tag.upper()}A"
    assert second.subjects == f"bices.t{tag}b.events"
    again = namespaced(f"T{tag}A")  # case does not make another namespace
    assert (again.stream, again.subjects) == (first.stream, first.subjects)

    async def scenario() -> tuple[list[Event], list[Event]]:
        subscriptions = first.subscribe(), second.subscribe()
        heard_first, heard_second = (each.__aiter__() for each in subscriptions)
        await asyncio.to_thread(first.publish, [ReportStored("first-1", 1, 1, 1)])
        await asyncio.to_thread(second.publish, [ReportStored("second-1", 1, 1, 2)])
        await asyncio.to_thread(first.publish, [ReportStored("first-2", 1, 1, 3)])
        async with asyncio.timeout(5):
            # Had the namespaces shared a stream, each would hear the other's in between.
            got_first = [await anext(heard_first), await anext(heard_first)]
            got_second = [await anext(heard_second)]
        for each in subscriptions:
            each.close()
        return got_first, got_second

    got_first, got_second = asyncio.run(scenario())
    assert got_first == [ReportStored("first-1", 1, 1, 1), ReportStored("first-2", 1, 1, 3)]
    assert got_second == [ReportStored("second-1", 1, 1, 2)]


@pytest.mark.parametrize("namespace", ["a.b", "a-b", "a b", "é", "x" * 33])
def test_a_bus_namespace_is_letters_digits_and_underscores(namespace: str) -> None:
    with pytest.raises(ValueError, match="bus_namespace"):
        Settings(bus_namespace=namespace)
    with pytest.raises(ValueError, match="bus namespace"):
        names(namespace)
