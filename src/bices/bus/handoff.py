"""Handing events from any thread to one subscriber's event loop, bounded.

Both buses deliver through this: a subscriber that falls `max_pending` events behind is
closed (its iteration ends; it then reads the outbox), never waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from bices.bus.base import Event


class Handoff:
    """A bounded queue on the subscriber's loop, fed from any thread. `on_end` is called
    (on the subscriber's loop, or in the caller's thread if that loop is gone) once the
    subscription ends, by `close()` or by overflow."""

    def __init__(self, max_pending: int, on_end: Callable[[], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(max_pending + 1)
        self._max_pending = max_pending
        self._on_end = on_end
        self._ended = False
        self.overflowed = False

    def offer(self, event: Event | None) -> None:
        """From any thread; `None` ends the subscription."""
        if self._loop.is_closed():
            self._end()
            return
        try:
            self._loop.call_soon_threadsafe(self._put, event)
        except RuntimeError:  # the loop closed between the check and the call
            self._end()

    def _put(self, event: Event | None) -> None:
        if self._ended:
            return
        if event is not None and self._queue.qsize() >= self._max_pending:
            self.overflowed = True
            event = None
        if event is None:
            self._end()
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(event)

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._on_end()

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            event = await self._queue.get()
            if event is None:
                return
            yield event
