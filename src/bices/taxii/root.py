"""The TAXII 2.1 server's behaviour, free of HTTP: discovery, the API root, collections,
objects, manifests, versions, envelopes posted and their status.

Every answer is computed inside one read snapshot from the label ids the viewer may see now
(`bices.policy.may_see`, applied by the store per distinct label), so objects, manifests,
versions, status entries and every count come from the same visible set; a collection,
object or status the viewer may not see answers exactly like a missing one. Reads are
audited like REST reads: one `report.read` event per version something was served from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bices.domain.errors import NotFound
from bices.domain.users import Viewer
from bices.pipeline.collect import Collector
from bices.share.reading import own_event, read_events
from bices.store.base import Store
from bices.store.taxii import TaxiiReads, VersionSelection
from bices.taxii import envelopes, filters, pages
from bices.taxii.collections import Collection, collections_for, find
from bices.taxii.filters import ObjectQuery, VersionMatch, stix_time
from bices.taxii.media import TAXII_21
from bices.taxii.objects import ObjectSource
from bices.taxii.pages import Page

API_ROOT = "bices"
STIX_MEDIA = "application/stix+json;version=2.1"


@dataclass(frozen=True, slots=True)
class VersionsPage:
    versions: list[str]
    more: bool
    next: str | None
    dated: dict[str, str]  # the X-TAXII-Date-Added-First/Last headers of the versions served


class TaxiiRoot:
    def __init__(
        self, store: Store, collector: Collector, max_content_length: int, title: str = "BICES"
    ) -> None:
        self.store = store
        self.collector = collector
        self.max_content_length = max_content_length
        self.title = title
        self.objects = ObjectSource()
        self.sealer = store.sealer  # seals each `next` given out (see `filters.Position`)

    # -- discovery, API root, collections ------------------------------------------------

    def discovery(self, base: str) -> dict[str, Any]:
        root = f"{base}/taxii2/{API_ROOT}/"
        return {
            "title": f"{self.title} TAXII 2.1 server",
            "description": "Coalition intelligence shared under the access rule: each user "
            "sees the reports their member, clearance and caveats allow, nothing else.",
            "default": root,
            "api_roots": [root],
        }

    def api_root(self) -> dict[str, Any]:
        return {
            "title": f"{self.title} reports",
            "description": "Reports of this node as STIX 2.1, and ingest of STIX 2.1 envelopes.",
            "versions": [TAXII_21],
            "max_content_length": self.max_content_length,
        }

    def collections(self, viewer: Viewer) -> list[Collection]:
        coalition = self.store.coalition
        return collections_for(
            viewer, coalition.member_communities(viewer.member), coalition.directory()
        )

    def collection(self, viewer: Viewer, key: str) -> Collection:
        return find(self.collections(viewer), key)

    # -- reads ---------------------------------------------------------------------------

    def query(self, params: list[tuple[str, str]], allowed: frozenset[str]) -> ObjectQuery:
        """A request's query parameters; a `next` must be one this node gave."""
        return filters.parse(params, allowed, self.sealer)

    def next_of(self, page: Page) -> str | None:
        """The `next` of a page that has more: its end, sealed."""
        return page.next.seal(self.sealer) if page.more and page.next is not None else None

    def _selection(
        self, snap: TaxiiReads, visible: tuple[int, ...], collection: Collection, query: ObjectQuery
    ) -> VersionSelection:
        labels = tuple(i for i in visible if collection.admits(snap.label(i)))
        if query.added_after is None:
            return VersionSelection(labels, query.versions.which)
        first = snap.first_added_after(query.added_after)
        if first is None:  # nothing was added since
            return VersionSelection((), query.versions.which, query.added_after)
        return VersionSelection(labels, query.versions.which, query.added_after, from_seq=first)

    def _page(self, viewer: Viewer, key: str, query: ObjectQuery, via: str) -> Page:
        collection = self.collection(viewer, key)
        with self.store.taxii.viewing(viewer) as (snap, visible):
            selection = self._selection(snap, visible, collection, query)
            page = pages.read(snap, selection, query, self.objects, visible)
        self.store.audit.append(read_events(viewer, page.versions, via))
        return page

    def objects_page(self, viewer: Viewer, key: str, query: ObjectQuery) -> Page:
        return self._page(viewer, key, query, "taxii")

    def manifest(self, viewer: Viewer, key: str, query: ObjectQuery) -> Page:
        return self._page(viewer, key, query, "taxii-manifest")

    def object_page(self, viewer: Viewer, key: str, object_id: str, query: ObjectQuery) -> Page:
        """One object's versions (the last by default); 404 when there is none to see."""
        one = _with_id(query, object_id)
        page = self._page(viewer, key, one, "taxii")
        if not page.items and not page.more:
            raise NotFound(f"object {object_id} not found in collection {key}")
        return page

    def versions(
        self, viewer: Viewer, key: str, object_id: str, query: ObjectQuery
    ) -> VersionsPage:
        """The versions of one object, oldest first; 404 when there is none to see."""
        every = _with_id(query, object_id, VersionMatch(last=False, all=True))
        page = self._page(viewer, key, every, "taxii-versions")
        if not page.items and not page.more:
            raise NotFound(f"object {object_id} not found in collection {key}")
        seen: list[str] = []
        for item in page.items:
            version = item.obj.version or item.date_added
            if version not in seen:
                seen.append(version)
        return VersionsPage(seen, page.more, self.next_of(page), page.dated)

    # -- writes and status ---------------------------------------------------------------

    def add(self, viewer: Viewer, key: str, body: bytes) -> dict[str, Any]:
        """Store the reports of a posted envelope, all or nothing; its status resource."""
        collection = self.collection(viewer, key)
        status = envelopes.add(self.collector, self.store, viewer, collection, body)
        return status

    def status(self, viewer: Viewer, status_id: str) -> dict[str, Any]:
        found = self.store.taxii.status(viewer.member, status_id)
        if found is None:
            raise NotFound(f"status {status_id} not found")
        _, requested_at, body = found
        with self.store.taxii.viewing(viewer) as (snap, visible):
            shown = envelopes.visible_status(snap, visible, status_id, requested_at, body)
        self.store.audit.append([own_event(viewer, "taxii.status.read", status_id)])
        return shown


def _with_id(query: ObjectQuery, object_id: str, versions: Any = None) -> ObjectQuery:
    return ObjectQuery(
        added_after=query.added_after,
        limit=query.limit,
        after=query.after,
        ids=frozenset({object_id}),
        types=None,
        versions=query.versions if versions is None else versions,
        spec_versions=query.spec_versions,
    )


def manifest_record(item: pages.Served) -> dict[str, Any]:
    return {
        "id": item.obj.id,
        "date_added": item.date_added,
        "version": item.obj.version or item.date_added,
        "media_type": STIX_MEDIA,
    }


__all__ = ["API_ROOT", "TaxiiRoot", "VersionsPage", "manifest_record", "stix_time"]
