"""A page of a collection's object stream, read straight from the store by seq.

The stream of a collection, for one viewer, is: every version the viewer may see under the
collection's labels, in store order (seq), each followed by nothing else, contributing its
STIX objects in the order the mapping gives (the `report` first). An object a version only
refers to (its label's marking definitions, the extension definitions, the originator's
identity) is served once, with the first version of the stream that carries it; every other
object comes with its version. Its `date_added` is when the version was added to this
node (`added_at`: for a version received from a peer, when it arrived, not when its origin
stored it), which never decreases in store order.

A page position is (seq, index of the object in that version); `next` is where a page ended,
sealed (`filters.Position`), so new versions (higher seqs) never shift what a client has not
read yet, and no client learns a seq.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bices.domain.reports import ReportVersion
from bices.store.taxii import TaxiiReads, VersionSelection
from bices.taxii.filters import ObjectQuery, Position
from bices.taxii.objects import ObjectSource, StixObject

REPORT_PREFIX = "report--"
# Versions read per query, and at most per request: a filter that few objects pass (a rare
# `match[type]`) answers a partial page with `more` and a `next` rather than scan on.
BATCH = 200
SCAN_VERSIONS = 5000

Introductions = dict[tuple[str, str], int]


@dataclass(frozen=True, slots=True)
class Served:
    obj: StixObject
    version: ReportVersion
    position: Position
    date_added: str  # when the version was added to this node (`added_at`)


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Served]
    more: bool
    next: Position | None

    @property
    def dated(self) -> dict[str, str]:
        """The X-TAXII-Date-Added-First/Last headers of the page (none when it is empty)."""
        if not self.items:
            return {}
        return {
            "X-TAXII-Date-Added-First": self.items[0].date_added,
            "X-TAXII-Date-Added-Last": self.items[-1].date_added,
        }

    @property
    def versions(self) -> list[ReportVersion]:
        """The distinct versions the page's objects came from, for the audit trail."""
        seen: dict[int, ReportVersion] = {}
        for item in self.items:
            seen.setdefault(item.version.seq, item.version)
        return list(seen.values())


def introductions(
    snap: TaxiiReads, selection: VersionSelection, source: ObjectSource, visible: tuple[int, ...]
) -> Introductions:
    """Where the stream introduces each reference object: the first selected version of each
    label, and of those the earliest that carries the object."""
    firsts = snap.first_seqs(selection)
    if not firsts:
        return {}
    versions = snap.at_seqs(list(firsts.values()), selection.labels)
    extractions = snap.extractions([v.seq for v in versions])
    created = snap.first_stored([v.id for v in versions if v.version > 1], visible)
    found: Introductions = {}
    for version in versions:
        for obj in source.of(version, extractions.get(version.seq), created.get(version.id)):
            if obj.is_reference:
                key = obj.key
                if key not in found or version.seq < found[key]:
                    found[key] = version.seq
    return found


def narrowed(
    selection: VersionSelection, query: ObjectQuery, intro: Introductions
) -> VersionSelection:
    """With `match[id]`, read only the versions that can carry those ids (reports by their
    id; reference objects where introduced); an id of any other object reads them all."""
    if query.ids is None:
        return selection
    report_ids: list[str] = []
    seqs: list[int] = []
    introduced: dict[str, list[int]] = {}
    for (object_id, _), seq in intro.items():
        introduced.setdefault(object_id, []).append(seq)
    for object_id in query.ids:
        if object_id.startswith(REPORT_PREFIX):
            report_ids.append(object_id.removeprefix(REPORT_PREFIX))
        elif object_id in introduced:
            seqs.extend(introduced[object_id])
        else:
            return selection
    return replace(selection, report_ids=tuple(report_ids), seqs=tuple(seqs))


def _admitted(
    obj: StixObject, version: ReportVersion, current: bool, intro: Introductions, query: ObjectQuery
) -> bool:
    if not query.admits(obj.id, obj.type, obj.spec_version):
        return False
    introduced = intro.get(obj.key)
    if introduced is not None and introduced != version.seq:
        return False
    match = query.versions
    if match.all or not match.at:
        return True  # `last`/`first` alone were applied by the store's selection
    return (
        obj.admits_version(match.at)
        or (match.last and current)
        or (match.first and version.version == 1)
    )


def read(
    snap: TaxiiReads,
    selection: VersionSelection,
    query: ObjectQuery,
    source: ObjectSource,
    visible: tuple[int, ...],
) -> Page:
    """One page of the stream after `query.after`, of at most `query.limit` objects.

    `visible` are all the label ids the viewer may see (the selection's are the
    collection's): a report's ``created`` is when the first version of it the viewer may
    see was stored, as `bices stix export` gives it, never when a hidden one was."""
    intro = introductions(snap, selection, source, visible)
    reading = narrowed(selection, query, intro)
    after = query.after
    items: list[Served] = []
    examined = 0
    cursor_seq = max(after.seq - 1, 0)  # the cursor's own version may have objects left
    size = min(BATCH, query.limit + 1)
    while True:
        batch = snap.versions(reading, cursor_seq, size)
        if not batch:
            return Page(items, False, None)
        extractions = snap.extractions([v.seq for v, _, _ in batch])
        created = snap.first_stored([v.id for v, _, _ in batch if v.version > 1], visible)
        for version, current, added in batch:
            objects = source.of(version, extractions.get(version.seq), created.get(version.id))
            for index, obj in enumerate(objects):
                if (version.seq, index) <= (after.seq, after.index):
                    continue
                if not _admitted(obj, version, current, intro, query):
                    continue
                if len(items) == query.limit:
                    return Page(items, True, items[-1].position)
                items.append(Served(obj, version, Position(version.seq, index), added))
            examined += 1
            if examined >= SCAN_VERSIONS:
                return Page(items, True, Position(version.seq, len(objects)))
        if len(batch) < size:
            return Page(items, False, None)
        cursor_seq = batch[-1][0].seq
