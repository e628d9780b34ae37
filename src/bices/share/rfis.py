"""RFIs as a service for the API and the CLI: each step decided by `bices.domain.rfis`,
checked against the access rule, stored with its audit, and every read audited.

A hidden RFI answers 404 exactly like a missing one, before any role or standing is
checked, so that a refusal never tells of an RFI the caller may not see. `acting` names
who really acted on the viewer's behalf (the node operator at the CLI), for the audit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bices.bus.base import RfiChanged
from bices.domain import rfis as steps
from bices.domain.audit import AuditDraft
from bices.domain.errors import Conflict, InvalidInput, NotFound
from bices.domain.labels import Label
from bices.domain.reports import ReportDraft, ReportType, ReportVersion
from bices.domain.rfis import Change, Rfi, RfiDraft, RfiFilter, RfiPage, StaleRfi
from bices.domain.users import Viewer
from bices.pipeline.collect import Collector
from bices.policy import Directory, check_may_create, combine
from bices.share.reading import own_event, read_events
from bices.store.base import ReportWrite, Store

if TYPE_CHECKING:
    from bices.federation.rfi_actions import RfiActions

# A decided step: the change and the audit events that record it.
Decided = tuple[Change, list[AuditDraft]]
STALE_RETRIES = 3


def reach(label: Label, directory: Directory) -> frozenset[str]:
    """The members an item with this label may be released to (their users' clearances
    and caveats aside): the expanded releasability and the originator."""
    return directory.expand(label.releasable_to) | {label.originator}


def _acting(events: list[AuditDraft], viewer: Viewer, acting: str | None) -> list[AuditDraft]:
    if acting is None:
        return events
    return [replace(e, actor=acting, detail={**e.detail, "as": viewer.name}) for e in events]


class RfiService:
    def __init__(self, store: Store, collector: Collector) -> None:
        self.store = store
        self.collector = collector
        self.remote: RfiActions | None = None  # acts on RFIs asked on peer nodes

    def _at_home(
        self, viewer: Viewer, rfi: Rfi, action: str, acting: str | None, **given: str | None
    ) -> bool:
        """Have an RFI asked on a peer node changed there (True), after the checks this
        node can make; False for an RFI asked here."""
        home = self.store.rfis.home_of(rfi.id)
        if home is None:
            return False
        if self.remote is None:
            raise Conflict(f"RFI {rfi.id} was asked on node {home}; change it there")
        self.remote.forward(home, rfi.id, action, viewer, **given)
        event = AuditDraft(viewer.name, viewer.member, f"rfi.{action}", rfi.id,
                           detail={"home": home}, label=rfi.label)  # fmt: skip
        self.store.audit.append(_acting([event], viewer, acting))
        return True

    # -- reads -------------------------------------------------------------------------

    def _visible(self, viewer: Viewer, rfi_id: str) -> Rfi:
        found = self.store.rfis.get(viewer, rfi_id)
        if found is None:
            raise NotFound(f"RFI {rfi_id} not found")
        return found

    def _read_events(self, viewer: Viewer, items: list[Rfi], via: str) -> list[AuditDraft]:
        """One `rfi.read` per RFI served (with its label) and one `report.read` per answer."""
        events: list[AuditDraft] = []
        for rfi in items:
            events.append(
                AuditDraft(viewer.name, viewer.member, "rfi.read", rfi.id, rfi.label_id,
                           {"revision": rfi.revision, "via": via})
            )  # fmt: skip
            answers = [a.report for a in rfi.answers if a.report is not None]
            events.extend(read_events(viewer, answers, "rfi"))
        return events

    def _served(self, viewer: Viewer, rfi_id: str, acting: str | None) -> Rfi:
        """The RFI as it stands after the viewer's change (the change itself is audited):
        the answer reports it lists are reads and are audited as such."""
        rfi = self._visible(viewer, rfi_id)
        answers = [a.report for a in rfi.answers if a.report is not None]
        self.store.audit.append(_acting(read_events(viewer, answers, "rfi"), viewer, acting))
        return rfi

    def get(self, viewer: Viewer, rfi_id: str, acting: str | None = None) -> Rfi:
        """One RFI with the answers the viewer may see; hidden answers like missing."""
        rfi = self._visible(viewer, rfi_id)
        self.store.audit.append(_acting(self._read_events(viewer, [rfi], "get"), viewer, acting))
        return rfi

    def page(
        self,
        viewer: Viewer,
        where: RfiFilter,
        cursor: str | None,
        limit: int,
        acting: str | None = None,
    ) -> RfiPage:
        """Visible RFIs, highest priority then nearest deadline first."""
        page = self.store.rfis.page(viewer, where, cursor, limit, datetime.now(UTC))
        events = [
            own_event(viewer, "rfi.list", detail={**where.to_json(), "total": page.total}),
            *self._read_events(viewer, page.items, "list"),
        ]
        self.store.audit.append(_acting(events, viewer, acting))
        return page

    # -- the life-cycle ------------------------------------------------------------------

    def _audit(
        self, viewer: Viewer, rfi: Rfi, change: Change, acting: str | None, label: Label
    ) -> AuditDraft:
        detail = {"revision": change.revision, "state": change.state.value, **change.detail}
        event = AuditDraft(viewer.name, viewer.member, f"rfi.{change.action}", rfi.id,
                           detail=detail, label=label)  # fmt: skip
        return _acting([event], viewer, acting)[0]

    def _apply(
        self,
        viewer: Viewer,
        rfi_id: str,
        decide: Callable[[Rfi], Decided],
        report: ReportWrite | None = None,
        first: Rfi | None = None,
    ) -> list[ReportVersion]:
        """Decide a step on the RFI as read and store it; if someone else changed the RFI
        in between (two addressees accepting at once), read it again and decide anew."""
        rfi = first or self._visible(viewer, rfi_id)
        for attempt in range(STALE_RETRIES):
            change, events = decide(rfi)
            try:
                stored = self.store.rfis.change(rfi, change, events, report)
                self.collector.bus.publish([RfiChanged(rfi.id)])  # after the commit
                return stored
            except StaleRfi:
                if attempt == STALE_RETRIES - 1:
                    raise
                rfi = self._visible(viewer, rfi_id)
        raise AssertionError("unreachable")

    def create(self, viewer: Viewer, draft: RfiDraft, acting: str | None = None) -> Rfi:
        """Ask an RFI of other members; it must be releasable to every one of them."""
        steps.may_ask(viewer)
        directory = self.store.coalition.directory()
        label = draft.label.bind(viewer.member)
        check_may_create(viewer, label, directory)
        now = datetime.now(UTC)
        rfi = steps.ask(
            viewer, draft, label, reach(label, directory), directory.statuses,
            str(uuid.uuid4()), now,
        )  # fmt: skip
        self.store.rfis.create(rfi, [self._audit(viewer, rfi, rfi.history[0], acting, label)])
        self.collector.bus.publish([RfiChanged(rfi.id)])  # wakes the streams at once
        return self._served(viewer, rfi.id, acting)

    def accept(self, viewer: Viewer, rfi_id: str, acting: str | None = None) -> Rfi:
        """An addressee's user takes the RFI on for its member."""

        def decide(rfi: Rfi) -> Decided:
            change = steps.accept(rfi, viewer, datetime.now(UTC))
            return change, [self._audit(viewer, rfi, change, acting, rfi.label)]

        rfi = self._visible(viewer, rfi_id)
        decide(rfi)  # refuses here what the home would refuse
        if not self._at_home(viewer, rfi, "accept", acting):
            self._apply(viewer, rfi_id, decide, first=rfi)
        return self._served(viewer, rfi_id, acting)

    def answer(
        self,
        viewer: Viewer,
        rfi_id: str,
        report_id: str | None = None,
        draft: ReportDraft | None = None,
        acting: str | None = None,
    ) -> Rfi:
        """Answer with an existing report of the viewer's member (`report_id`) or with a new
        `RFI-RESPONSE` report (`draft`), stored in the transaction that links it."""
        if (report_id is None) == (draft is None):
            raise InvalidInput("give either report_id (an existing report) or report (a new one)")
        rfi = self._visible(viewer, rfi_id)
        steps.may_answer(rfi, viewer)
        write: ReportWrite | None = None
        if draft is not None:
            if draft.type is not ReportType.RFI_RESPONSE:
                raise InvalidInput(
                    f"report.type {draft.type.value!r}: an answer written here is an RFI-RESPONSE"
                )
            write = self.collector.prepare(viewer, [draft], acting)[0]
            report = write.version
        else:
            assert report_id is not None
            found = self.store.reports.current(viewer, report_id)
            if found is None:
                raise InvalidInput(f"report_id {report_id}: no such report visible to you")
            report = found
        directory = self.store.coalition.directory()
        report_reach = reach(report.label, directory)
        if self.store.rfis.home_of(rfi_id) is not None:
            # Refused here what the home would refuse (another member's report, one the
            # asker may not read), before anything is stored or sent; a new answer is this
            # member's report, stored here first.
            steps.answer(rfi, viewer, report, report_reach, datetime.now(UTC))
            if write is not None:
                self.collector.announce(self.store.reports.add([write]))
            self._at_home(viewer, rfi, "answer", acting, report_id=report.id)
            return self._served(viewer, rfi_id, acting)

        def decide(rfi: Rfi) -> Decided:
            change = steps.answer(rfi, viewer, report, report_reach, datetime.now(UTC))
            # The link names the answer report: it may be seen only where both the RFI and
            # the report may be, so its audit event carries the two labels combined.
            link = combine([rfi.label, report.label], viewer.member, directory)
            return change, [
                self._audit(viewer, rfi, replace(change, detail={}), acting, rfi.label),
                self._audit(viewer, rfi, replace(change, action="answer.report"), acting, link),
            ]

        stored = self._apply(viewer, rfi_id, decide, write, first=rfi)
        if stored:
            self.collector.announce(stored)
        return self._served(viewer, rfi_id, acting)

    def close(
        self, viewer: Viewer, rfi_id: str, reason: str | None = None, acting: str | None = None
    ) -> Rfi:
        """The asker's member closes the RFI, answered or not."""

        def decide(rfi: Rfi) -> Decided:
            change = steps.close(rfi, viewer, reason, datetime.now(UTC))
            return change, [self._audit(viewer, rfi, change, acting, rfi.label)]

        rfi = self._visible(viewer, rfi_id)
        decide(rfi)
        if not self._at_home(viewer, rfi, "close", acting, reason=reason):
            self._apply(viewer, rfi_id, decide, first=rfi)
        return self._served(viewer, rfi_id, acting)
