"""What the SQL backends share of the TAXII records: which report versions a
`VersionSelection` names, in store order, under the viewer's visible label ids, and an
envelope's reports stored with its status resource in one transaction.

SQLite and PostgreSQL write a named parameter and membership in a list differently; a
`Dialect` says how, so the conditions (the access rule among them) are built once. What
only one backend can say well (`first_stored`, `existing`, its connections) is left to its
subclass.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from bices.domain.labels import Label
from bices.domain.reports import ReportVersion, iso
from bices.domain.users import Viewer
from bices.store.reports import ADDED_FORMAT
from bices.store.taxii import VersionSelection
from bices.store.visibility import LabelIndex

if TYPE_CHECKING:  # base.py imports bices.store.taxii
    from bices.store.base import ReportWrite

# `stored_at` is ISO 8601 from `iso()`: microseconds are left out when they are zero, so the
# text is brought to one width before it is compared with a timestamp of the same shape.
STORED_AT = (
    "(CASE WHEN length(stored_at) = 20 THEN substr(stored_at, 1, 19) || '.000000Z' "
    "ELSE stored_at END)"
)


# Versions stored before `added_at` existed: the running greatest `stored_at` in store order
# (so that it never decreases with seq), for either backend's upgrade.
BACKFILL_ADDED = (
    "UPDATE report_versions SET added_at = w.added FROM (SELECT seq, "
    f"max({STORED_AT}) OVER (ORDER BY seq) AS added FROM report_versions) AS w "
    "WHERE w.seq = report_versions.seq AND report_versions.added_at IS NULL"
)


def added_text(moment: datetime) -> str:
    """A timestamp in the fixed-width form of `added_at` (and of `STORED_AT`)."""
    return moment.astimezone(UTC).strftime(ADDED_FORMAT)


@dataclass(frozen=True, slots=True)
class Dialect:
    """How a backend names a parameter (`param`, a format of `name`) and tests a column's
    membership in a list passed as one parameter (`among`, a format of `column` and
    `param`); `listed` makes that parameter's value from a sequence."""

    param_format: str
    among_format: str
    listed: Callable[[Sequence[Any]], Any]

    def param(self, name: str) -> str:
        return self.param_format.format(name=name)

    def among(self, column: str, name: str) -> str:
        return self.among_format.format(column=column, param=self.param(name))


class Rows(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Executes(Protocol):
    """A connection of either backend, as this module uses it."""

    def execute(self, sql: str, params: Any, /) -> Rows: ...


class RowReader(Protocol):
    """The reports part of a backend, as a snapshot reads it: rows as versions, labels."""

    labels: LabelIndex

    def row(self, row: Any) -> ReportVersion: ...


C = TypeVar("C", bound=Executes)  # a backend's connection
C_co = TypeVar("C_co", bound=Executes, covariant=True)


class Reports(RowReader, Protocol[C]):
    """The reports part of a backend, as the TAXII records use it."""

    def viewing(self, viewer: Viewer) -> AbstractContextManager[tuple[C, tuple[int, ...]]]: ...
    def add_in(self, conn: C, writes: Sequence[ReportWrite]) -> list[ReportVersion]: ...


class Writes(Protocol[C_co]):
    def write(self) -> AbstractContextManager[C_co]: ...


def selection_where(
    selection: VersionSelection, dialect: Dialect, narrowed: bool = True
) -> tuple[str, dict[str, Any]]:
    """The SQL condition and parameters of a selection."""
    clauses = [dialect.among("label_id", "labels")]
    params: dict[str, Any] = {"labels": dialect.listed(selection.labels)}
    if selection.which == "last":
        clauses.append("current = 1")
    elif selection.which == "first":
        clauses.append("version = 1")
    if selection.added_after is not None:
        clauses.append(f"added_at > {dialect.param('added_after')}")
        params["added_after"] = added_text(selection.added_after)
    if selection.from_seq:
        clauses.append(f"seq >= {dialect.param('from_seq')}")
        params["from_seq"] = selection.from_seq
    if narrowed and (selection.report_ids is not None or selection.seqs is not None):
        # One list of seqs, each half found by its own index: written as an OR of the two,
        # both planners walk every selected version in seq order instead (a fetch by id
        # then reads the whole collection).
        clauses.append(
            f"seq IN (SELECT seq FROM report_versions WHERE "
            f"{dialect.among('report_id', 'report_ids')} UNION ALL "
            f"SELECT seq FROM report_versions WHERE {dialect.among('seq', 'seqs')})"
        )
        params["report_ids"] = dialect.listed(selection.report_ids or ())
        params["seqs"] = dialect.listed(selection.seqs or ())
    return " AND ".join(clauses), params


def status_of_row(row: Any) -> tuple[str, datetime, dict[str, Any]]:
    """(collection, requested_at, body) of a `taxii_status` row read in that order."""
    return row[0], datetime.fromisoformat(row[1]), dict(json.loads(row[2]))


class SelectionReads(ABC):
    """Queries inside one read snapshot; callers pass only label ids the viewer may see."""

    def __init__(self, conn: Executes, reports: RowReader, dialect: Dialect, columns: str) -> None:
        self.conn = conn
        self._reports = reports
        self._dialect = dialect
        self._columns = columns  # the report_versions columns `reports.row` reads

    def versions(
        self, selection: VersionSelection, after_seq: int, limit: int
    ) -> list[tuple[ReportVersion, bool, str]]:
        """The next `limit` selected versions after `after_seq` in store order, each with
        whether it is its report's current version and its `added_at`."""
        if not selection.labels:
            return []
        d = self._dialect
        # One lower bound on seq, so that the planner walks the index from it.
        after_seq = max(after_seq, selection.from_seq - 1)
        where, params = selection_where(replace(selection, from_seq=0), d)
        rows = self.conn.execute(
            f"SELECT {self._columns}, current, added_at FROM report_versions "
            f"WHERE seq > {d.param('after')} AND {where} ORDER BY seq LIMIT {d.param('limit')}",
            {**params, "after": after_seq, "limit": limit},
        ).fetchall()
        return [(self._reports.row(row), bool(row["current"]), row["added_at"]) for row in rows]

    def first_added_after(self, moment: datetime) -> int | None:
        row = self.conn.execute(
            f"SELECT seq FROM report_versions WHERE added_at > {self._dialect.param('moment')} "
            "ORDER BY added_at, seq LIMIT 1",
            {"moment": added_text(moment)},
        ).fetchone()
        return None if row is None else int(row[0])

    def at_seqs(self, seqs: Sequence[int], labels: tuple[int, ...]) -> list[ReportVersion]:
        """The versions at `seqs` under one of `labels` (the visible ones), in store order."""
        d = self._dialect
        rows = self.conn.execute(
            f"SELECT {self._columns} FROM report_versions WHERE {d.among('seq', 'seqs')} "
            f"AND {d.among('label_id', 'labels')} ORDER BY seq",
            {"seqs": d.listed(sorted(set(seqs))), "labels": d.listed(labels)},
        ).fetchall()
        return [self._reports.row(row) for row in rows]

    def first_seqs(self, selection: VersionSelection) -> dict[int, int]:
        """For each label of the selection, the seq of its first selected version (labels
        with none are left out): one indexed probe per label."""
        found: dict[int, int] = {}
        where, params = selection_where(selection, self._dialect, narrowed=False)
        for label_id in selection.labels:
            row = self.conn.execute(
                f"SELECT seq FROM report_versions WHERE label_id = {self._dialect.param('one')} "
                f"AND {where} ORDER BY seq LIMIT 1",
                {**params, "one": label_id},
            ).fetchone()
            if row is not None:
                found[label_id] = int(row[0])
        return found

    def label(self, label_id: int) -> Label:
        return self._reports.labels.get(label_id)

    def extractions(self, seqs: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Stored extractions of versions the caller has reached visibly."""
        rows = self.conn.execute(
            f"SELECT seq, result FROM extractions WHERE {self._dialect.among('seq', 'seqs')}",
            {"seqs": self._dialect.listed(list(seqs))},
        ).fetchall()
        return {row[0]: dict(json.loads(row[1])) for row in rows}

    @abstractmethod
    def first_stored(
        self, report_ids: Sequence[str], labels: tuple[int, ...]
    ) -> dict[str, datetime]:
        """When the first version of each report under one of `labels` (the visible ones)
        was stored: the STIX `created` of its later versions. A hidden version 1 says
        nothing, not even when it was stored."""

    @abstractmethod
    def existing(
        self, versions: Sequence[tuple[str, int]], labels: tuple[int, ...]
    ) -> set[tuple[str, int]]:
        """Which (report id, version) pairs are stored under one of `labels` (the visible)."""


class SqlTaxii(ABC, Generic[C]):
    """`bices.store.taxii.TaxiiRecords` over a backend's reports and `taxii_status` table."""

    def __init__(self, db: Writes[C], reports: Reports[C], dialect: Dialect) -> None:
        self._db = db
        self._reports = reports
        self._dialect = dialect

    @abstractmethod
    def reads(self, conn: C) -> SelectionReads:
        """The backend's queries on a snapshot connection."""

    @abstractmethod
    def status(self, member: str, status_id: str) -> tuple[str, datetime, dict[str, Any]] | None:
        """(collection, requested_at, body) of a status resource posted by `member`'s users."""

    @contextmanager
    def viewing(self, viewer: Viewer) -> Iterator[tuple[SelectionReads, tuple[int, ...]]]:
        """One read snapshot for a whole TAXII answer, and the viewer's visible label ids."""
        with self._reports.viewing(viewer) as (conn, visible):
            yield self.reads(conn), visible

    def store_with_status(
        self,
        writes: Sequence[ReportWrite],
        status_id: str,
        viewer: Viewer,
        collection: str,
        requested_at: datetime,
        record: Callable[[list[ReportVersion]], dict[str, Any]],
    ) -> tuple[list[ReportVersion], dict[str, Any]]:
        """Store an envelope's reports and its status resource in one transaction: a status
        exists exactly when its reports do. `record` makes the status body from what was
        stored."""
        columns = ("id", "member", "user_name", "collection", "requested_at", "body")
        values = ", ".join(self._dialect.param(name) for name in columns)
        with self._db.write() as conn:
            stored = self._reports.add_in(conn, writes)
            body = record(stored)
            conn.execute(
                f"INSERT INTO taxii_status ({', '.join(columns)}) VALUES ({values})",
                {"id": status_id, "member": viewer.member, "user_name": viewer.name,
                 "collection": collection, "requested_at": iso(requested_at),
                 "body": json.dumps(body)},
            )  # fmt: skip
        return stored, body
