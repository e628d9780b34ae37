"""Standing requirements: each user manages their own; every change and read is audited.

A requirement names only what its owner typed, so its audit events carry the owner's
member-only label (`own_event`): a requirement can name an entity others must not learn
that this member is interested in.
"""

from __future__ import annotations

from dataclasses import replace

from bices.domain.audit import AuditDraft
from bices.domain.errors import InvalidInput, NotFound
from bices.domain.requirements import Requirement, RequirementDraft
from bices.domain.users import Viewer
from bices.share.reading import own_event
from bices.store.base import Store


class RequirementService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _check(self, draft: RequirementDraft) -> None:
        directory = self.store.coalition.directory()
        unknown = [code for code in draft.members if code not in directory.statuses]
        if unknown:
            raise InvalidInput(f"members: unknown member(s) {', '.join(unknown)}")

    def add(
        self, viewer: Viewer, draft: RequirementDraft, acting: str | None = None
    ) -> Requirement:
        """A new requirement; `acting` names who made it on the viewer's behalf (the node
        operator at the CLI), for the audit trail."""
        self._check(draft)
        audit = own_event(viewer, "requirement.create", detail={"name": draft.name})
        return self.store.requirements.add(viewer.user_id, draft, _acting(audit, acting))

    def replace(self, viewer: Viewer, n: int, draft: RequirementDraft) -> Requirement:
        self._check(draft)
        audit = own_event(viewer, "requirement.update", f"requirement/{n}", {"name": draft.name})
        found = self.store.requirements.replace(viewer.user_id, n, draft, audit)
        if found is None:
            raise NotFound(f"requirement {n} not found")
        return found

    def remove(self, viewer: Viewer, n: int, acting: str | None = None) -> None:
        audit = _acting(own_event(viewer, "requirement.delete", f"requirement/{n}"), acting)
        if not self.store.requirements.remove(viewer.user_id, n, audit):
            raise NotFound(f"requirement {n} not found")

    def get(self, viewer: Viewer, n: int) -> Requirement:
        found = self.store.requirements.get(viewer.user_id, n)
        if found is None:
            raise NotFound(f"requirement {n} not found")
        self.store.audit.append([own_event(viewer, "requirement.read", f"requirement/{n}")])
        return found

    def list(self, viewer: Viewer) -> list[Requirement]:
        found = self.store.requirements.of_user(viewer.user_id)
        self.store.audit.append([own_event(viewer, "requirement.list")])
        return found


def _acting(audit: AuditDraft, acting: str | None) -> AuditDraft:
    if acting is None:
        return audit
    return replace(audit, actor=acting, detail={**audit.detail, "as": audit.actor})
