"""Exploitation results as a viewer may see them, each read audited.

A report's extraction is served only through a visible version of it. Entities exist for
a viewer only through the current reports that viewer may see: their counts, the names
they go by and the reports listed all come from those reports alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bices.domain.corroboration import Cluster, corroborate
from bices.domain.errors import InvalidInput, NotFound
from bices.domain.users import Viewer
from bices.share.reading import Reader, own_event, read_events
from bices.store.base import Alert, EntitySummary, EntityView, Link, Store, Watch

# Events are merged over at most this many of the newest visible reports in the period.
EVENT_REPORTS = 2000


class EntityReader:
    def __init__(self, store: Store, reader: Reader) -> None:
        self.store = store
        self.reader = reader

    def of_report(self, viewer: Viewer, report_id: str) -> dict[str, Any]:
        """The extraction of the current version, or `status: pending` until the worker
        has reached it. Hidden answers like missing (through `Reader.get`)."""
        version = self.reader.get(viewer, report_id)
        result = self.store.exploits.result(version.seq)
        head = {"id": version.id, "version": version.version}
        if result is None:
            return {**head, "status": "pending"}
        status = "failed" if "error" in result else "done"
        return {**head, "status": status, **result}

    def find(
        self, viewer: Viewer, q: str | None, type_: str | None, limit: int
    ) -> list[EntitySummary]:
        found = self.store.exploits.entities(viewer, q, type_, limit)
        detail = {"q": q, "type": type_, "hits": len(found)}
        self.store.audit.append([own_event(viewer, "entity.search", detail=detail)])
        return found

    def entity(self, viewer: Viewer, entity_id: str, limit: int) -> EntityView:
        view = self.store.exploits.entity(viewer, entity_id, limit)
        if view is None:
            raise NotFound(f"entity {entity_id} not found")
        self.store.audit.append(
            [own_event(viewer, "entity.read", entity_id, {"key": view.summary.key}),
             *read_events(viewer, view.reports, "entity")]
        )  # fmt: skip
        return view

    def related(self, viewer: Viewer, report_id: str, limit: int) -> list[Link]:
        """Duplicates, near-duplicates and related reports of a visible report, each one
        visible too (a correlation exists for a user only if all its reports are)."""
        version = self.reader.get(viewer, report_id)
        links = self.store.exploits.related(viewer, version.seq, limit)
        self.store.audit.append(read_events(viewer, [link.report for link in links], "related"))
        return links

    def events(
        self,
        viewer: Viewer,
        since: datetime | None,
        until: datetime | None,
        type_: str | None,
        limit: int,
    ) -> list[Cluster]:
        """Events from visible reports, the same event merged across reports with the
        number of independent sources that report it."""
        reported = self.store.exploits.events(viewer, since, until, EVENT_REPORTS)
        if type_ is not None:
            reported = [e for e in reported if e.type == type_]
        clusters = corroborate(reported)[:limit]
        detail = {"since": None if since is None else since.isoformat(),
                  "until": None if until is None else until.isoformat(),
                  "type": type_, "clusters": len(clusters)}  # fmt: skip
        self.store.audit.append([own_event(viewer, "events.read", detail=detail)])
        return clusters

    # -- watch lists -------------------------------------------------------------------

    def watch(self, viewer: Viewer, name: str) -> Watch:
        """Watch an entity by canonical name; reports exploited from now on raise alerts
        (a worker catching up may raise them for reports stored shortly before)."""
        name = " ".join(name.split())
        if not name:
            raise InvalidInput("name must not be empty")
        audit = own_event(viewer, "watch.add", detail={"name": name})
        return self.store.exploits.watch(viewer.user_id, name, audit)

    def unwatch(self, viewer: Viewer, watch_id: int) -> None:
        audit = own_event(viewer, "watch.remove", str(watch_id))
        if not self.store.exploits.unwatch(viewer.user_id, watch_id, audit):
            raise NotFound(f"watch {watch_id} not found")

    def watches(self, viewer: Viewer) -> list[Watch]:
        return self.store.exploits.watches(viewer.user_id)

    def alerts(self, viewer: Viewer, after: int, limit: int) -> list[Alert]:
        """Alerts about reports the viewer may see now (a report that has become hidden
        takes its alerts with it)."""
        found = self.store.exploits.alerts(viewer, after, limit)
        self.store.audit.append(read_events(viewer, [a.report for a in found], "alert"))
        return found
