"""What the bus carries and the interface every bus backend implements.

Events are published only after the transaction that stored their item commits; each
carries the store's event sequence so that a stream can resume from the outbox.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ReportStored:
    """A report version was stored and may be disseminated."""

    name = "report"
    report_id: str
    version: int
    label_id: int
    seq: int


@dataclass(frozen=True, slots=True)
class RfiChanged:
    """An RFI was created or changed; the stream reads what changed from the outbox."""

    name = "rfi"
    rfi_id: str


Event = ReportStored | RfiChanged


class Subscription(Protocol):
    def __aiter__(self) -> AsyncIterator[Event]: ...
    def close(self) -> None: ...


class Bus(Protocol):
    def publish(self, events: list[Event]) -> None:
        """Hand committed events to every subscriber; safe to call from any thread."""

    def subscribe(self, max_pending: int = 1000) -> Subscription:
        """A bounded subscription; a subscriber that falls behind is closed, not waited for."""

    def close(self) -> None: ...
