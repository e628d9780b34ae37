"""The live stream: the outbox, followed once per process, checked for each subscriber.

One `StreamHub` per server process follows the `events` outbox (woken by the bus at once,
and polling for what other processes stored: a worker's alerts, another server process's
reports, the operator's CLI). It turns each row into a `StreamItem` and keeps the newest
ones in memory. Each subscriber pulls from there at its own pace with its own cursor (the
outbox seq, which is the SSE `id:`), so a slow subscriber slows no one and holds no queue:
what it has not read yet stays in the hub's buffer, shared by all. A subscriber that
falls out of the buffer while live is told to resume (`overflow`, with its cursor) and
disconnected; one that connects with an old cursor catches up from the store.

Every item passes `bices.policy.may_see` for the subscriber at send time, against the
directory of that moment. When the directory changes (a suspension, a withdrawal, a
revoked token) every subscriber re-checks its token before it sends anything more, and
is closed if the token or its member no longer passes.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bices.bus.base import Bus
from bices.coalition import hash_token
from bices.domain.audit import AuditDraft
from bices.domain.errors import InvalidInput
from bices.domain.labels import Label
from bices.domain.members import MemberStatus
from bices.domain.reports import ReportVersion, iso
from bices.domain.requirements import Compiled, Facts, fold, needs_exploitation
from bices.domain.users import Viewer
from bices.policy import Directory, may_see
from bices.store.base import OutboxEvent, Store

log = logging.getLogger(__name__)

KINDS = ("report", "rfi", "alert")
PRESENCE_S = 5.0  # how often a process tells the store of its streams
EVENT_TAG = b"e"  # the sealer's tag of stream event ids


@dataclass(slots=True)
class StreamItem:
    """One outbox row made ready to send: `data` is the payload before the subscriber's
    own fields (`requirements`); `version` lets reports be matched to requirements."""

    seq: int
    kind: str
    label_id: int
    label: Label
    user_id: int | None
    data: dict[str, Any]
    version: ReportVersion | None = None
    facts: Facts | None = None  # the report's own fields
    exploited: Facts | None = None  # with entities and topics, once known
    event_id: str = ""  # the seq sealed under the node's key: what the client sees
    _head: bytes = b""  # the SSE frame up to the data's closing brace, encoded once
    _frames: dict[tuple[int, ...] | None, bytes] = field(default_factory=dict)

    def frame(self, requirements: tuple[int, ...] | None) -> bytes:
        found = self._frames.get(requirements)
        if found is not None:
            return found
        if not self._head:
            body = json.dumps(self.data, ensure_ascii=False, separators=(",", ":")).encode()
            self._head = b"id: %s\nevent: %s\ndata: %s" % (
                self.event_id.encode(), self.kind.encode(), body[:-1])  # fmt: skip
        tail = b"}" if requirements is None else (
            b',"requirements":[%s]}' % ",".join(map(str, requirements)).encode())  # fmt: skip
        frame = self._head + tail + b"\n\n"
        if len(self._frames) < 64:  # most subscribers share a few combinations
            self._frames[requirements] = frame
        return frame


@dataclass(frozen=True, slots=True)
class Sent:
    """What a subscriber receives: `event:` and `data:`, and for events of the outbox the
    SSE `id:` (`event_id`, the sealed seq; `id` is the seq itself, kept inside the node).
    A report's data is the item's, plus the subscriber's own `requirements`; the item's
    part is encoded once for every subscriber (`frame`)."""

    id: int | None
    event: str
    base: dict[str, Any]
    requirements: tuple[int, ...] | None = None  # reports only
    item: StreamItem | None = None

    @property
    def event_id(self) -> str | None:
        return None if self.item is None else self.item.event_id

    @property
    def data(self) -> dict[str, Any]:
        if self.requirements is None:
            return self.base
        return {**self.base, "requirements": list(self.requirements)}

    def frame(self) -> bytes:
        """The SSE message (a control message has no id: the client keeps its last)."""
        if self.item is None:
            body = json.dumps(self.data, ensure_ascii=False, separators=(",", ":")).encode()
            return b"event: %s\ndata: %s\n\n" % (self.event.encode(), body)
        return self.item.frame(self.requirements)


class StreamClosed(Exception):
    """The subscriber may not go on: the token or member no longer passes, or it fell
    behind; `event` and `data` say why, and `data["resume_after"]` where to resume."""

    def __init__(self, event: str, data: dict[str, Any]) -> None:
        super().__init__(data.get("reason", event))
        self.event = event
        self.data = data


def report_data(version: ReportVersion) -> dict[str, Any]:
    label = version.label.to_json()
    label["banner"] = version.label.render()
    return {
        "id": version.id,
        "version": version.version,
        "type": version.type.value,
        "title": version.title,
        "language": version.language,
        "label": label,
        "originator": version.label.originator,
        "source": version.source.name,
        "grading": version.source.grading,
        "reported_at": iso(version.reported_at),
        "stored_at": iso(version.stored_at),
        "locations": [loc.model_dump() for loc in version.locations],
    }


def canonical_names(name: str) -> list[str]:
    """The canonical names an alias stands for in the knowledge base."""
    from bices.exploit import kb
    from bices.exploit.text import alias_keys

    keys = alias_keys(name)
    gazetteer = kb.gazetteer()
    found = gazetteer.lookup(" ".join(keys)) or gazetteer.lookup("".join(keys))
    return [alias.entry.canonical for alias in found]


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
        self._subscribers: set[Subscriber] = set()
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
        for subscriber in self._subscribers:
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
        for subscriber in self._subscribers:
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
                          report_data(version), version, Facts.of(version))  # fmt: skip

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
        assert item.version is not None and item.facts is not None
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


@dataclass(eq=False)
class Subscriber:
    """One open stream of one user: its own cursor, filters and requirements."""

    hub: StreamHub
    viewer: Viewer
    token: str  # checked again whenever the directory changes
    cursor: int
    kinds: frozenset[str] = frozenset(KINDS)
    only_matched: bool = False
    chosen: frozenset[int] | None = None  # requirement ids to use (None: all of the user's)
    live_since: float = field(default_factory=time.monotonic)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    requirements: list[Compiled] = field(default_factory=list)
    _directory_version: int = -1
    _requirements_version: int = -1
    _seen: dict[int, bool] = field(default_factory=dict)  # label id -> may see (this directory)
    _checked_at: float = field(default_factory=time.monotonic)
    catching_up: bool = False
    idle: bool = False  # waiting for the hub, with nothing left to send
    last_sent: int = -1  # the seq of the last event delivered (-1: none yet: the start)
    start: int = field(init=False)  # where it began: the resume point until it gets one

    def delivered(self, sent: Sent) -> None:
        """The client has been handed `sent`: resume from here, and audit the read."""
        if sent.id is None or sent.item is None:
            return
        self.last_sent = sent.id
        self.hub.audit(self.viewer, sent.item)

    def _resume_after(self) -> str:
        return self.hub.seal(self.start if self.last_sent < 0 else self.last_sent)

    RECHECK_S = 30.0  # tokens expire; a stream re-checks its token this often at least

    def __post_init__(self) -> None:
        self.start = self.cursor

    @property
    def current(self) -> bool:
        """Checked against the hub's present directory and requirements."""
        hub = self.hub
        return (
            hub.directory_version == self._directory_version
            and hub.requirements_version == self._requirements_version
            and time.monotonic() - self._checked_at <= self.RECHECK_S
        )

    @property
    def needs_exploitation(self) -> bool:
        return any(needs_exploitation(r.draft) for r in self.requirements)

    async def _recheck(self) -> None:
        """Before anything more is sent: the token and member still pass, with the
        directory and requirements of now."""
        hub = self.hub
        stale_token = time.monotonic() - self._checked_at > self.RECHECK_S
        if hub.directory_version != self._directory_version or stale_token:
            viewer = await asyncio.to_thread(self._current_viewer)
            if viewer is None or viewer.member_status is not MemberStatus.ACTIVE:
                reason = "token revoked or expired, or member no longer active"
                raise StreamClosed("closed", {"reason": reason,
                                              "resume_after": self._resume_after()})  # fmt: skip
            self.viewer = viewer
            self._seen.clear()
            self._directory_version = hub.directory_version
            self._checked_at = time.monotonic()
        if hub.requirements_version != self._requirements_version:
            self._requirements_version = hub.requirements_version
            self.requirements = await asyncio.to_thread(self._load_requirements)

    def _current_viewer(self) -> Viewer | None:
        coalition = self.hub.store.coalition
        return coalition.viewer_for_token(hash_token(self.token), datetime.now(UTC))

    def _load_requirements(self) -> list[Compiled]:
        found = self.hub.store.requirements.of_user(self.viewer.user_id)
        return [
            Compiled.of(r, canonical_names)
            for r in found
            if self.chosen is None or r.id in self.chosen
        ]

    def _may_see(self, label: Label, label_key: int) -> bool:
        seen = self._seen.get(label_key)
        if seen is None:
            seen = self._seen[label_key] = may_see(self.viewer, label, self.hub.directory)
        return seen

    def admit(self, item: StreamItem) -> Sent | None:
        """What this subscriber receives of an item: nothing unless the rule allows it."""
        if item.kind not in self.kinds:
            return None
        if item.user_id is not None and item.user_id != self.viewer.user_id:
            return None
        if not self._may_see(item.label, item.label_id):
            return None
        if item.kind != "report":
            return Sent(item.seq, item.kind, item.data, None, item)
        matched = self._matched(item)
        if self.only_matched and not matched:
            return None
        return Sent(item.seq, "report", item.data, tuple(matched), item)

    def _matched(self, item: StreamItem) -> list[int]:
        if not self.requirements:
            return []  # the common case: no work, and a frame shared with everyone alike
        assert item.facts is not None
        matched = []
        for requirement in self.requirements:
            facts = item.facts
            if needs_exploitation(requirement.draft):
                facts = item.exploited or self.hub.exploit(item)
            if requirement.matches(facts):
                matched.append(requirement.id)
        return matched

    async def events(self, keepalive_s: float = 15.0) -> AsyncIterator[Sent | None]:
        """What to send, in order, from the cursor on; None asks for a keep-alive. Raises
        `StreamClosed` when the stream must end."""
        hub = self.hub
        hub.subscribe(self)
        try:
            while True:
                self.wake.clear()
                await self._recheck()
                items = hub.buffered_after(self.cursor, 200)
                if items is None:
                    if not self.catching_up and self.cursor != 0:
                        reason = "fell behind the stream; reconnect with Last-Event-ID to resume"
                        resume = self._resume_after()
                        raise StreamClosed("overflow", {"reason": reason, "resume_after": resume})
                    last, items = await asyncio.to_thread(
                        hub.stored_after, self.cursor, 200, self.needs_exploitation
                    )
                    if not items:
                        self.cursor = max(self.cursor, last)
                        continue
                else:
                    self.catching_up = False
                if not items:
                    self.cursor = max(self.cursor, hub.head)  # the rows after it made no items
                    self.idle = True
                    try:
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(keepalive_s):
                                await self.wake.wait()
                    finally:
                        self.idle = False
                    if not self.wake.is_set():
                        yield None
                    continue
                if self.needs_exploitation:  # entities and topics, found off the event loop
                    for item in items:
                        if item.version is not None and item.exploited is None:
                            await asyncio.to_thread(hub.exploit, item)
                for item in items:
                    if item.seq <= self.cursor:
                        continue
                    if hub.directory_version != self._directory_version:
                        await self._recheck()
                    sent = self.admit(item)
                    self.cursor = item.seq
                    if sent is not None:
                        yield sent
        finally:
            hub.unsubscribe(self)


def parse_kinds(values: Iterable[str]) -> frozenset[str]:
    kinds = {fold(v) for value in values for v in value.split(",") if v.strip()}
    unknown = sorted(kinds - set(KINDS))
    if unknown:
        raise InvalidInput(
            f"events: unknown kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}"
        )
    return frozenset(kinds) or frozenset(KINDS)
