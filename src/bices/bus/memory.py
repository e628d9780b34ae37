"""The in-process bus of the embedded node: fan-out to asyncio queues, thread-safe."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator

from bices.bus.base import Event

_CLOSED = None


class MemorySubscription:
    def __init__(self, bus: MemoryBus, max_pending: int) -> None:
        self._bus = bus
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(max_pending + 1)
        self._max_pending = max_pending
        self.overflowed = False

    def offer(self, event: Event) -> None:
        self._hand_over(event)

    def _hand_over(self, event: Event | None) -> None:
        """Hand over to the subscriber's loop; a loop that has ended gets nothing more."""
        if self._loop.is_closed():
            self._bus.unsubscribe(self)
            return
        try:
            self._loop.call_soon_threadsafe(self._put, event)
        except RuntimeError:  # the loop closed between the check and the call
            self._bus.unsubscribe(self)

    def _put(self, event: Event | None) -> None:
        if self._queue.qsize() >= self._max_pending and event is not None:
            self.overflowed = True
            self._bus.unsubscribe(self)
            event = _CLOSED
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(event)

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            event = await self._queue.get()
            if event is None:
                return
            yield event

    def close(self) -> None:
        self._bus.unsubscribe(self)
        self._hand_over(_CLOSED)


class MemoryBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[MemorySubscription] = []

    def publish(self, events: list[Event]) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            for event in events:
                subscriber.offer(event)

    def subscribe(self, max_pending: int = 1000) -> MemorySubscription:
        subscription = MemorySubscription(self, max_pending)
        with self._lock:
            self._subscribers.append(subscription)
        return subscription

    def unsubscribe(self, subscription: MemorySubscription) -> None:
        with self._lock:
            if subscription in self._subscribers:
                self._subscribers.remove(subscription)

    def close(self) -> None:
        with self._lock:
            subscribers, self._subscribers = self._subscribers, []
        for subscriber in subscribers:
            subscriber.close()
