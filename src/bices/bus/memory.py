"""The in-process bus of the embedded node: fan-out to asyncio queues, thread-safe."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator

from bices.bus.base import Event
from bices.bus.handoff import Handoff


class MemorySubscription:
    def __init__(self, bus: MemoryBus, max_pending: int) -> None:
        self._handoff = Handoff(max_pending, lambda: bus.unsubscribe(self))

    @property
    def overflowed(self) -> bool:
        return self._handoff.overflowed

    def offer(self, event: Event) -> None:
        self._handoff.offer(event)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._handoff.__aiter__()

    def close(self) -> None:
        self._handoff.offer(None)


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
