"""What the TAXII server needs of a store: versions in store order under the viewer's
visible labels, a page at a time, and status resources. `SqliteTaxii` implements it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from bices.domain.labels import Label
from bices.domain.reports import ReportVersion
from bices.domain.users import Viewer

if TYPE_CHECKING:  # base.py imports this module
    from bices.store.base import ReportWrite


@dataclass(frozen=True, slots=True)
class VersionSelection:
    """Which versions a TAXII request reads.

    `labels` are the label ids of the collection that the viewer may see; `which` is `last`
    (current versions), `first` (version 1) or `all`; `added_after` keeps versions added to
    this node after it, and `from_seq` is where those start in store order (`added_at`
    never decreases with seq: `TaxiiReads.first_added_after`); `report_ids` and `seqs`,
    when given, narrow the read to versions of those reports or at those seqs (either will
    do).
    """

    labels: tuple[int, ...]
    which: str = "last"
    added_after: datetime | None = None
    report_ids: tuple[str, ...] | None = None
    seqs: tuple[int, ...] | None = None
    from_seq: int = 0


class TaxiiReads(Protocol):
    """Reads inside one snapshot; callers pass only label ids the viewer may see."""

    def versions(
        self, selection: VersionSelection, after_seq: int, limit: int
    ) -> list[tuple[ReportVersion, bool, str]]:
        """The next selected versions after `after_seq` in store order, each with whether it
        is its report's current version and when it was added to this node (as TAXII's
        `date_added`)."""
        ...

    def first_added_after(self, moment: datetime) -> int | None:
        """The seq of the first version added to this node after `moment` (every later seq
        was added after it too); None if there is none."""
        ...

    def at_seqs(self, seqs: Sequence[int], labels: tuple[int, ...]) -> list[ReportVersion]: ...
    def first_seqs(self, selection: VersionSelection) -> dict[int, int]:
        """Each label's first selected seq (ignoring the narrowing by ids and seqs)."""
        ...

    def first_stored(
        self, report_ids: Sequence[str], labels: tuple[int, ...]
    ) -> dict[str, datetime]:
        """When the first version of each report under one of `labels` (the visible) was
        stored; reports with none are left out."""
        ...

    def label(self, label_id: int) -> Label: ...
    def extractions(self, seqs: Sequence[int]) -> dict[int, dict[str, Any]]: ...
    def existing(
        self, versions: Sequence[tuple[str, int]], labels: tuple[int, ...]
    ) -> set[tuple[str, int]]: ...


class TaxiiRecords(Protocol):
    def viewing(
        self, viewer: Viewer
    ) -> AbstractContextManager[tuple[TaxiiReads, tuple[int, ...]]]: ...
    def store_with_status(
        self,
        writes: Sequence[ReportWrite],
        status_id: str,
        viewer: Viewer,
        collection: str,
        requested_at: datetime,
        record: Callable[[list[ReportVersion]], dict[str, Any]],
    ) -> tuple[list[ReportVersion], dict[str, Any]]:
        """An envelope's reports and its status resource, in one transaction."""
        ...

    def status(
        self, member: str, status_id: str
    ) -> tuple[str, datetime, dict[str, Any]] | None: ...
