"""One open stream of one user: its cursor, filters and requirements, and the rule applied
to every item before it is sent."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bices.coalition import hash_token
from bices.domain.labels import Label
from bices.domain.members import MemberStatus
from bices.domain.requirements import Compiled, needs_exploitation
from bices.domain.users import Viewer
from bices.policy import may_see
from bices.share.stream.hub import StreamHub
from bices.share.stream.items import KINDS, Sent, StreamClosed, StreamItem, canonical_names


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
        # Known to the hub from now on, so that what is stored before its stream starts
        # stays buffered for it.
        self.hub.subscribe(self)

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
        hub.subscribe(self)  # again, after a previous iteration ended
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
