"""The bus on NATS JetStream (`BICES_BUS_URL=nats://…`): events reach every process.

Each event is published, after its transaction commits, to the JetStream stream
`BICES_EVENTS` (subjects `bices.events.<kind>`); every subscriber (each server process's
stream hub, each in-thread exploitation worker) reads it through an ordered consumer of
new messages. Events carry ids and seqs only, never items: whoever receives one reads the
item from the store and applies the access rule there.

The outbox in the store remains the record of what was stored: a publish that fails
(NATS down) is logged and the hubs still find the event by polling the outbox, so a bus
outage slows the streams down to the poll interval and loses nothing.

A bus namespace (`BICES_BUS_NAMESPACE`) gives a node a stream and subjects of its own on a
shared NATS server (`BICES_EVENTS_<NS>`, `bices.<ns>.events.<kind>`), so that nodes of
different namespaces — parallel tests, separate deployments — never hear each other.

nats-py is asyncio-based; the bus runs its client on a loop in a thread of its own, so
that `publish` can be called from any thread (request threads, the worker) as the `Bus`
protocol asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import nats
from nats.js.api import DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from bices.bus.base import Event, ReportStored, RfiChanged
from bices.bus.handoff import Handoff

log = logging.getLogger(__name__)

STREAM = "BICES_EVENTS"
SUBJECTS = "bices.events"
PUBLISH_TIMEOUT_S = 2.0
MAX_AGE_S = 7 * 24 * 3600  # notices only: the outbox keeps the record
NAMESPACE = re.compile(r"[A-Za-z0-9_]{0,32}")


def names(namespace: str = "") -> tuple[str, str]:
    """The stream and the subject prefix of a bus namespace ("" is the default one).

    The stream's name is in upper case and the subjects in lower case, so namespaces that
    differ only in case (`a`, `A`) are one namespace, not two claims on one stream.
    """
    if not NAMESPACE.fullmatch(namespace):
        raise ValueError(
            f"bus namespace {namespace!r}: only letters, digits and _, at most 32 characters"
        )
    if not namespace:
        return STREAM, SUBJECTS
    return f"{STREAM}_{namespace.upper()}", f"bices.{namespace.lower()}.events"


def encode(event: Event) -> tuple[str, bytes]:
    if isinstance(event, ReportStored):
        body: dict[str, Any] = {"report_id": event.report_id, "version": event.version,
                                "label_id": event.label_id, "seq": event.seq}  # fmt: skip
    else:
        body = {"rfi_id": event.rfi_id}
    return event.name, json.dumps(body).encode()


def decode(kind: str, data: bytes) -> Event | None:
    """An event from a message; None for one this release does not know (a newer node's)."""
    try:
        body = json.loads(data)
        if kind == ReportStored.name:
            return ReportStored(str(body["report_id"]), int(body["version"]),
                                int(body["label_id"]), int(body["seq"]))  # fmt: skip
        if kind == RfiChanged.name:
            return RfiChanged(str(body["rfi_id"]))
    except (ValueError, KeyError, TypeError):
        log.warning("ignoring a malformed %s event on the bus", kind)
    return None


class NatsSubscription:
    """Events for one subscriber, handed to its own event loop (`Handoff`)."""

    def __init__(self, bus: NatsBus, max_pending: int) -> None:
        self._bus = bus
        self._handoff = Handoff(max_pending, lambda: bus.forget(self))
        self._nats_sub: Any = None

    @property
    def overflowed(self) -> bool:
        return self._handoff.overflowed

    def deliver(self, event: Event) -> None:
        """From the bus's thread."""
        self._handoff.offer(event)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._handoff.__aiter__()

    def close(self) -> None:
        """End the iteration (from any thread) and stop receiving."""
        self._handoff.offer(None)


class NatsBus:
    def __init__(self, url: str, stream: str = STREAM, subjects: str = SUBJECTS) -> None:
        self.stream, self.subjects = stream, subjects
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bices-nats",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        self._subscriptions: set[NatsSubscription] = set()
        self._lock = threading.Lock()
        try:
            self._nc, self._js = self.call(self._connect(url), timeout=10)
        except Exception as error:
            self._stop_loop()
            reason = str(error) or type(error).__name__
            raise SystemExit(f"cannot use NATS at {url}: {reason}") from None

    def call(self, coroutine: Any, timeout: float) -> Any:
        """Run a coroutine on the bus's loop (from any other thread) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    @property
    def jetstream(self) -> Any:
        """The JetStream context, for coroutines run by `call`."""
        return self._js

    async def _connect(self, url: str) -> tuple[Any, Any]:
        first = urlsplit(url.split(",")[0])
        try:  # a server that cannot be reached is said at once (the client retries forever)
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(first.hostname or "127.0.0.1", first.port or 4222), 5
            )
            writer.close()
        except (OSError, TimeoutError) as error:
            raise ConnectionError(str(error) or "no answer within 5 s") from None
        nc = await nats.connect(url, name="bices", connect_timeout=5, max_reconnect_attempts=-1,
                                error_cb=_log_error)  # fmt: skip
        js = nc.jetstream()
        config = StreamConfig(name=self.stream, subjects=[f"{self.subjects}.>"],
                              storage=StorageType.FILE, max_age=MAX_AGE_S)  # fmt: skip
        try:
            await js.stream_info(self.stream)
        except NotFoundError:
            await js.add_stream(config)
        return nc, js

    def publish(self, events: list[Event]) -> None:
        """Publish committed events and wait for JetStream to store them (a failure is
        logged: the hubs find the events in the outbox anyway)."""
        if not events:
            return
        try:
            self.call(self._publish(events), timeout=PUBLISH_TIMEOUT_S * 2)
        except Exception:
            log.warning("publishing %d event(s) to NATS failed; streams fall back to polling",
                        len(events), exc_info=True)  # fmt: skip

    async def _publish(self, events: list[Event]) -> None:
        acks = []
        for event in events:
            kind, data = encode(event)
            acks.append(self._js.publish(f"{self.subjects}.{kind}", data,
                                         timeout=PUBLISH_TIMEOUT_S))  # fmt: skip
        await asyncio.gather(*acks)

    def subscribe(self, max_pending: int = 1000) -> NatsSubscription:
        """Events published from now on, by any process on the same NATS stream."""
        subscription = NatsSubscription(self, max_pending)

        async def on_message(message: Any) -> None:
            kind = message.subject.rsplit(".", 1)[-1]
            event = decode(kind, message.data)
            if event is not None:
                subscription.deliver(event)

        async def start() -> Any:
            return await self._js.subscribe(f"{self.subjects}.>", cb=on_message,
                                            ordered_consumer=True,
                                            deliver_policy=DeliverPolicy.NEW)  # fmt: skip

        subscription._nats_sub = self.call(start(), timeout=10)
        with self._lock:
            self._subscriptions.add(subscription)
        return subscription

    def forget(self, subscription: NatsSubscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)
        if subscription._nats_sub is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(_unsubscribe(subscription._nats_sub), self._loop)

    def close(self) -> None:
        with self._lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            subscription.close()
        # Every publish has waited for its acknowledgement, so nothing is left to flush:
        # close rather than drain (a drain waits on a pull consumer's open fetch).
        with contextlib.suppress(Exception):
            self.call(self._nc.close(), timeout=5)
        self._stop_loop()

    def _stop_loop(self) -> None:
        with contextlib.suppress(Exception):
            self.call(_cancel_the_rest(), timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


async def _log_error(error: Exception) -> None:
    log.warning("NATS: %s", error)


async def _cancel_the_rest() -> None:
    """Cancel what the client left running, so the loop stops with no task pending."""
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _unsubscribe(nats_sub: Any) -> None:
    with contextlib.suppress(Exception):
        await nats_sub.unsubscribe()
