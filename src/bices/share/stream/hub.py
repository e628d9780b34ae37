"""The hub: one per server process, following the outbox and handing items to subscribers."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import os
import socket
import time
import weakref
from typing import TYPE_CHECKING, Any

from bices.bus.base import Bus
from bices.domain.audit import AuditDraft
from bices.domain.reports import ReportVersion, iso
from bices.domain.requirements import Facts
from bices.domain.users import Viewer
from bices.policy import Directory
from bices.share.stream.items import EVENT_TAG, StreamItem, report_data
from bices.store.base import OutboxEvent, Store

if TYPE_CHECKING:
    from bices.share.stream.subscriber import Subscriber

log = logging.getLogger(__name__)

PRESENCE_S = 5.0  # how often a process tells the store of its streams


class StreamHub:
    """The process's follower of the outbox. `start()` inside the server's event loop."""

    def __init__(
        self,
        store: Store,
        bus: Bus,
        buffer: int = 10_000,
        poll_s: float = 0.25,
        batch: int = 500,
    ) -> None:
        self.store = store
        self.bus = bus
        self.buffer = buffer
        self.poll_s = poll_s
        self.batch = batch
        self._seqs: list[int] = []
        self._items: list[StreamItem] = []
        self.head = 0  # the last outbox seq followed
        self.floor = 0  # every item after this seq is in the buffer
        self.directory: Directory = Directory({})
        self.directory_version = 0
        self.requirements_version = 0
        # Weak: a subscriber whose stream never started (its client left first) just goes.
        self._subscribers: weakref.WeakSet[Subscriber] = weakref.WeakSet()
        self._task: asyncio.Task[None] | None = None
        self._extractor: Any = None
        self._audits: list[AuditDraft] = []  # reads delivered, appended once per tick
        self.events_sent = 0  # events handed to subscribers since start (for /metrics)
        self.process = f"{socket.gethostname()}:{os.getpid()}"
        self._presence_at = 0.0
        self._presence_said = -1

    # -- the follower ----------------------------------------------------------------

    async def start(self) -> None:
        self.head = self.floor = await asyncio.to_thread(self.store.outbox.head)
        await self._refresh()
        self._task = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for subscriber in list(self._subscribers):
            subscriber.wake.set()
        await self._flush_audit()
        with contextlib.suppress(Exception):  # a stopped process serves no streams
            await asyncio.to_thread(self.store.operations.report_presence, self.process, 0)

    def audit(self, viewer: Viewer, item: StreamItem) -> None:
        """Record that `viewer` was sent `item` (appended to the audit log within a tick)."""
        data = item.data
        if item.kind == "rfi":
            action, target, detail = "rfi.read", data["id"], {"revision": data["revision"]}
        else:
            report = data if item.kind == "report" else data["report"]
            action, target, detail = "report.read", report["id"], {"version": report["version"]}
        detail["via"] = "stream" if item.kind != "alert" else "alert"
        self.events_sent += 1
        self._audits.append(AuditDraft(viewer.name, viewer.member, action, target,
                                       item.label_id, detail))  # fmt: skip

    async def _say_presence(self, every_s: float = PRESENCE_S) -> None:
        """Tell the store how many streams this process serves (for `bices status`)."""
        count = len(self._subscribers)
        if count != self._presence_said or time.monotonic() - self._presence_at >= every_s:
            self._presence_at, self._presence_said = time.monotonic(), count
            await asyncio.to_thread(self.store.operations.report_presence, self.process, count)

    async def _flush_audit(self) -> None:
        if self._audits:
            drafts, self._audits = self._audits, []
            try:
                await asyncio.to_thread(self.store.audit.append, drafts)
            except BaseException:
                self._audits = drafts + self._audits  # the next tick tries again
                raise

    async def _follow(self) -> None:
        woken = asyncio.Event()
        listener = asyncio.create_task(self._listen(woken))
        try:
            while True:
                # asyncio.timeout, not wait_for: in 3.11 wait_for can swallow a cancellation.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_s):
                        await woken.wait()
                woken.clear()
                try:
                    await self._refresh()
                    while await self._advance():
                        pass
                    await self._flush_audit()
                    await self._say_presence()
                except Exception:  # the next tick tries again; the outbox keeps everything
                    log.exception("following the outbox failed")
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _listen(self, woken: asyncio.Event) -> None:
        """Wake the follower whenever this process's bus says something was stored."""
        while True:
            subscription = self.bus.subscribe(max_pending=10_000)
            try:
                async for _ in subscription:
                    woken.set()
            finally:
                subscription.close()
            woken.set()  # a burst overflowed the subscription: read the outbox anyway
            await asyncio.sleep(0.05)

    async def _refresh(self) -> None:
        """The directory and requirements as of now; subscribers re-check on a change."""
        directory, version = await asyncio.to_thread(self.store.coalition.directory_state)
        requirements = await asyncio.to_thread(self.store.requirements.version)
        changed = (version, requirements) != (self.directory_version, self.requirements_version)
        self.directory, self.directory_version = directory, version
        self.requirements_version = requirements
        if changed:
            self._notify()

    async def _advance(self) -> bool:
        """Read the next outbox rows into the buffer; True if there may be more."""
        if not self._subscribers:
            # Nobody listens: read and keep no items (that would cost every write its share
            # of this process), just move to the newest; whoever connects later with an
            # older id reads the store.
            newest = await asyncio.to_thread(self.store.outbox.head)
            if not self._subscribers:  # still nobody, now that the read is back
                if newest > self.head:
                    self._seqs.clear()
                    self._items.clear()
                    self.head = self.floor = newest
                return False
        rows = await asyncio.to_thread(self.store.outbox.after, self.head, self.batch)
        if not rows:
            return False
        # The directory read after the rows is at least as new as each row: a suspension
        # committed before a row was stored is known before that row is handed out.
        await self._refresh()
        items = await asyncio.to_thread(self.build, rows, self.wants_exploitation)
        for item in items:
            self._seqs.append(item.seq)
            self._items.append(item)
        before, self.head = self.head, rows[-1].seq
        if len(self._items) > 2 * self.buffer:
            cut = len(self._items) - self.buffer
            self.floor = self._seqs[cut - 1]
            del self._seqs[:cut], self._items[:cut]
        self._dispatch(items, before)
        return len(rows) == self.batch

    def _dispatch(self, items: list[StreamItem], before: int) -> None:
        """Wake the subscribers that have something to send. One that waits at the head,
        with nothing in the new items for it, just moves its cursor on: deciding that here
        costs a few lookups, where waking it would cost a task switch (most items are for
        few subscribers)."""
        for subscriber in list(self._subscribers):
            waiting = subscriber.idle and subscriber.cursor == before and subscriber.current
            if waiting and subscriber.needs_exploitation:
                # Deciding would run the extractor here, on the event loop: let it decide.
                waiting = all(item.exploited is not None or item.version is None
                              for item in items)  # fmt: skip
            if waiting and all(subscriber.admit(item) is None for item in items):
                subscriber.cursor = self.head
                continue
            subscriber.wake.set()

    def _notify(self) -> None:
        for subscriber in list(self._subscribers):
            subscriber.wake.set()

    # -- building items (in a thread) --------------------------------------------------

    @property
    def wants_exploitation(self) -> bool:
        return any(s.needs_exploitation for s in self._subscribers)

    def build(self, rows: list[OutboxEvent], exploit: bool) -> list[StreamItem]:
        """Items for outbox rows; rows whose item is gone or unknown are skipped."""
        reports = [row.seq for row in rows if row.kind == "report"]
        versions = {v.seq: v for v in self.store.reports.by_seq(reports)} if reports else {}
        items: list[StreamItem] = []
        for row in rows:
            item: StreamItem | None = None
            if row.kind == "report" and row.seq in versions:
                item = self._report_item(row.seq, versions[row.seq])
            elif row.kind == "alert" and row.user_id is not None:
                item = self._alert_item(row)
            elif row.kind == "rfi":
                item = self._rfi_item(row)
            if item is not None:
                item.event_id = self.seal(item.seq)
                if exploit and item.version is not None:
                    self.exploit(item)
                items.append(item)
        return items

    def seal(self, seq: int) -> str:
        """The event id clients see for an outbox seq."""
        return self.store.sealer.seal(EVENT_TAG, seq)

    def open(self, event_id: str) -> int | None:
        """The seq of an event id this node gave out, or None."""
        found = self.store.sealer.open(EVENT_TAG, event_id)
        return None if found is None else found[0]

    def _report_item(self, seq: int, version: ReportVersion) -> StreamItem:
        return StreamItem(seq, "report", version.label_id, version.label, None,
                          report_data(version), version)  # fmt: skip

    def _alert_item(self, row: OutboxEvent) -> StreamItem | None:
        assert row.user_id is not None
        found = self.store.exploits.alert_of(row.user_id, row.revision)
        if found is None:
            return None
        watch, seq = found
        versions = self.store.reports.by_seq([seq])
        if not versions:
            return None
        version = versions[0]
        data = {"alert": row.revision, "watch": watch, "report": report_data(version),
                "at": iso(row.at)}  # fmt: skip
        return StreamItem(row.seq, "alert", version.label_id, version.label, row.user_id, data)

    def _rfi_item(self, row: OutboxEvent) -> StreamItem | None:
        rfis = getattr(self.store, "rfis", None)
        if rfis is None:
            return None
        data = rfis.event_payload(row.item_id, row.revision)
        if data is None:
            return None
        label = self.store.reports.label(row.label_id)
        return StreamItem(row.seq, "rfi", row.label_id, label, None, data)

    def exploit(self, item: StreamItem) -> Facts:
        """The report's facts with entities and topics: the worker's stored extraction if it
        has run, else the engine's, here (once per item and process)."""
        if item.exploited is not None:
            return item.exploited
        assert item.version is not None
        v = item.version
        result = self.store.exploits.result(item.seq)
        if result is None:
            if self._extractor is None:
                from bices.pipeline.exploit import default_extractor

                self._extractor = default_extractor()
            result = self._extractor(v.body, v.title, v.language, v.reported_at.date())
        from bices.exploit import extract

        # The stored result's entities are the text's; the title's are found here.
        title = [{"canonical": e.canonical, "text": e.text, "lat": e.lat, "lon": e.lon}
                 for e in extract(v.title, language=v.language).entities]  # fmt: skip
        names: set[str] = set()
        places: list[tuple[float, float]] = []
        for entity in [*result.get("entities", []), *title]:
            names.add(entity["canonical"])
            names.add(entity["text"])
            if entity.get("lat") is not None and entity.get("lon") is not None:
                places.append((entity["lat"], entity["lon"]))
        topics = [topic["name"] for topic in result.get("topics", [])]
        item.exploited = Facts.of(item.version, names, topics, places)
        return item.exploited

    # -- reading -----------------------------------------------------------------------

    def buffered_after(self, seq: int, limit: int) -> list[StreamItem] | None:
        """Items after `seq` from memory, or None if the buffer no longer reaches back."""
        if seq < self.floor:
            return None
        start = bisect.bisect_right(self._seqs, seq)
        return self._items[start : start + limit]

    def stored_after(self, seq: int, limit: int, exploit: bool) -> tuple[int, list[StreamItem]]:
        """Items after `seq` rebuilt from the outbox (a subscriber catching up), and the
        last seq read; call in a thread."""
        rows = self.store.outbox.after(seq, limit)
        if not rows:
            return seq, []
        return rows[-1].seq, self.build(rows, exploit)

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.add(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)
