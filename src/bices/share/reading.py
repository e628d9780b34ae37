"""Every read of reports and of the audit trail, each through the rule and each audited.

The store applies `bices.policy.may_see`; this layer records what was read, by whom:
one `report.read` event per item served (the item's label travels with the event, so the
audit view obeys the rule too), plus one event per listing or search with its filters.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from bices.domain.audit import AuditDraft, AuditEvent
from bices.domain.errors import Forbidden, NotFound
from bices.domain.reports import ReportVersion
from bices.domain.signing import load_public, verifies
from bices.domain.users import Role, Viewer
from bices.policy import member_only
from bices.store.base import Page, ReportFilter, SearchResult, Store, StoredBlob


@dataclass(frozen=True, slots=True)
class Verification:
    report_id: str
    version: int
    valid: bool
    reason: str


class Reader:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _read(self, viewer: Viewer, items: list[ReportVersion], via: str) -> None:
        self.store.audit.append(read_events(viewer, items, via))

    def get(self, viewer: Viewer, report_id: str, version: int | None = None) -> ReportVersion:
        """One report (its current version, or a given one); hidden answers like missing."""
        found = (
            self.store.reports.current(viewer, report_id)
            if version is None
            else self.store.reports.version(viewer, report_id, version)
        )
        if found is None:
            raise NotFound(f"report {report_id} not found")
        self._read(viewer, [found], "get")
        return found

    def tearline_links(self, viewer: Viewer, report_id: str) -> dict[str, Any]:
        """The report a tearline was made from, and the tearlines made from a report, each
        only if the viewer may see it (so a tearline never names a report hidden from its
        reader)."""
        source = self.store.tearlines.source_of(report_id)
        shown = None
        if source is not None and self.store.reports.version(viewer, *source) is not None:
            shown = {"id": source[0], "version": source[1]}
        made = [
            tid
            for tid in self.store.tearlines.made_from(report_id)
            if self.store.reports.current(viewer, tid) is not None
        ]
        return {"tearline_of": shown, "tearlines": made}

    def versions(self, viewer: Viewer, report_id: str) -> list[ReportVersion]:
        found = self.store.reports.versions(viewer, report_id)
        if not found:
            raise NotFound(f"report {report_id} not found")
        self._read(viewer, found, "versions")
        return found

    def attachment(self, viewer: Viewer, report_id: str, sha256: str) -> StoredBlob:
        """An attachment, served only through a visible version of a report that carries it."""
        blob = self.store.reports.blob(viewer, report_id, sha256)
        if blob is None:
            raise NotFound(f"attachment {sha256} of report {report_id} not found")
        carrier = blob.carrier
        self.store.audit.append(
            [AuditDraft(viewer.name, viewer.member, "attachment.read", report_id,
                        carrier.label_id, {"sha256": sha256, "version": carrier.version})]
        )  # fmt: skip
        return blob

    def page(self, viewer: Viewer, where: ReportFilter, cursor: str | None, limit: int) -> Page:
        page = self.store.reports.page(viewer, where, cursor, limit)
        self._read(viewer, page.items, "list")
        return page

    def search(
        self,
        viewer: Viewer,
        q: str,
        where: ReportFilter,
        cursor: str | None,
        limit: int,
        acting: str | None = None,
    ) -> SearchResult:
        """Search as the viewer sees it; `acting` names who really asked on the viewer's
        behalf (the node operator at the CLI), and the audit trail records that name."""
        result = self.store.reports.search(viewer, q, where, cursor, limit)
        events = [own_event(viewer, "search", detail={"q": q}),
                  *read_events(viewer, result.items, "search")]  # fmt: skip
        if acting is not None:
            events = [
                replace(e, actor=acting, detail={**e.detail, "as": viewer.name}) for e in events
            ]
        self.store.audit.append(events)
        return result

    def verify(self, viewer: Viewer, report_id: str) -> list[Verification]:
        """Check every visible version's signature against its originator's registered key."""
        return [verify_version(self.store, v) for v in self.versions(viewer, report_id)]

    def audit_trail(self, viewer: Viewer, after: int, limit: int) -> list[AuditEvent]:
        """Operators see every event whose item they may see; member-admins their member's."""
        if viewer.has(Role.OPERATOR):
            member = None
        elif viewer.has(Role.MEMBER_ADMIN):
            member = viewer.member
        else:
            raise Forbidden("the audit trail needs the member-admin or operator role")
        events = self.store.audit.events(viewer, member, after, limit)
        self.store.audit.append([own_event(viewer, "audit.read", detail={"after": after})])
        return events


def own_event(
    viewer: Viewer, action: str, target: str | None = None, detail: dict[str, Any] | None = None
) -> AuditDraft:
    """An event of the viewer's own doing (a search, a list read, a watch): only the
    viewer's member may see it, since what it names may be hidden from others."""
    return AuditDraft(viewer.name, viewer.member, action, target, detail=detail or {},
                      label=member_only(viewer.member))  # fmt: skip


def read_events(viewer: Viewer, items: list[ReportVersion], via: str) -> list[AuditDraft]:
    """One `report.read` event per item served, carrying the item's label."""
    return [
        AuditDraft(
            viewer.name,
            viewer.member,
            "report.read",
            v.id,
            v.label_id,
            {"version": v.version, "via": via},
        )
        for v in items
    ]


def verify_version(store: Store, version: ReportVersion) -> Verification:
    """Recompute the canonical content from what is stored and check the signature."""
    member = store.coalition.get_member(version.label.originator)
    if member is None or member.public_key is None:
        return Verification(version.id, version.version, False, "originator has no registered key")
    if not verifies(load_public(member.public_key), version.signed_content(), version.signature):
        return Verification(
            version.id, version.version, False, "signature does not match stored content and label"
        )
    return Verification(version.id, version.version, True, "ok")
