"""What both backends' report stores share: the rows a version is stored as and read
back from, the checks and numbering of a write, and the reads under the rule
(`ReportReads`), which each backend serves over its own connections and full-text search.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from bices.domain.audit import AuditDraft
from bices.domain.cursors import Sealer
from bices.domain.errors import Conflict
from bices.domain.frozen import copied
from bices.domain.labels import Label
from bices.domain.reports import Attachment, Location, ReportType, ReportVersion, Source, iso
from bices.domain.users import Viewer
from bices.store.base import Page, ReportFilter, ReportWrite, SearchResult, StoredBlob
from bices.store.listing import Asked, Dialect, Executes, Found, newest
from bices.store.query import (
    LIST_CURSOR,
    SEARCH_CURSOR,
    decode_cursor,
    encode_cursor,
    parse,
)
from bices.store.rows import RowLike
from bices.store.visibility import LabelIndex

COLUMNS = (
    "seq, report_id, version, type, title, body, language, label_id, source_name, reliability, "
    "credibility, reported_at, observed_at, locations, attachments, author, stored_at, signature"
)
PAGE = 2000  # versions read at a time by `all_versions`


class ExecutesMany(Protocol):
    """A connection (SQLite) or cursor (PostgreSQL) that runs one statement for many rows."""

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]], /) -> Any: ...


ADDED_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width: text order is time order


def added_at(last: str | None, now: datetime | None = None) -> str:
    """When a write's versions are added to this node, as TAXII gives `date_added`: now,
    or a microsecond after the last write's (`last`: the greatest stored so far) if the
    clock is not past it, so that each write is dated after every earlier one and a poll
    from the last date it was given misses no later write."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    if last is not None:
        after_last = datetime.strptime(last, ADDED_FORMAT).replace(tzinfo=UTC)
        moment = max(moment, after_last + timedelta(microseconds=1))
    return moment.strftime(ADDED_FORMAT)


def next_added_at(conn: Executes) -> str:
    """`added_at` for the write the caller's transaction makes, after the newest stored."""
    row = conn.execute("SELECT max(added_at) FROM report_versions", ()).fetchone()
    return added_at(row[0] if row is not None else None)


def version_rows(
    versions: list[ReportVersion], new_ids: set[str], added: str
) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The rows stored versions (seq and label_id assigned) add to the tables both backends
    keep, as (table and columns, rows): the versions, their reports (`new_ids`: those not
    stored before), the current set and the outbox. `added` is when they were added to this
    node (`added_at`). Each backend's full-text index follows by itself."""
    return [
        ("report_versions", [
            (v.seq, v.id, v.version, 1, v.type.value, v.title, v.body, v.language,
             v.label_id, int(v.label.classification), v.label.originator, v.source.name,
             v.source.reliability.value, v.source.credibility, iso(v.reported_at),
             v.reported_at.timestamp(),
             None if v.observed_at is None else iso(v.observed_at),
             json.dumps([loc.model_dump() for loc in v.locations]),
             json.dumps([a.to_json() for a in v.attachments]),
             v.author, iso(v.stored_at), v.signature, added)
            for v in versions
        ]),
        ("reports", [(v.id, v.version, v.seq) for v in versions if v.id in new_ids]),
        ("current_reports (seq, label_id, type, originator, classification, language, "
         "reported_ts)", [
            (v.seq, v.label_id, v.type.value, v.label.originator, int(v.label.classification),
             v.language, v.reported_at.timestamp())
            for v in versions
        ]),
        ("events (seq, kind, report_id, version, label_id, at)",
         [(v.seq, "report", v.id, v.version, v.label_id, iso(v.stored_at)) for v in versions]),
    ]  # fmt: skip


def insert_versions(
    conn: ExecutesMany, mark: str, versions: list[ReportVersion], new_ids: set[str], added: str
) -> None:
    """Insert stored versions with one `executemany` a table (`mark`: the backend's
    parameter marker)."""
    for into, rows in version_rows(versions, new_ids, added):
        if rows:
            values = ", ".join([mark] * len(rows[0]))
            conn.executemany(f"INSERT INTO {into} VALUES ({values})", rows)


def check_versions(writes: Sequence[ReportWrite], current: dict[str, int]) -> set[str]:
    """Version 1 must be a new id; version n must follow the current n - 1 (`current`: the
    current version of each stored report among the writes' ids), except that a version
    received from a peer need only be newer (the ones between were not due here). The ids
    not stored before."""
    for write in writes:
        if write.version.version == 1 and write.version.id in current:
            raise Conflict(f"report id {write.version.id} is already taken")
    seen: set[str] = set()
    for write in writes:
        v = write.version
        if v.id in seen:
            raise Conflict(f"report {v.id} appears twice in one write")
        seen.add(v.id)
        expected = current.get(v.id, 0) + 1
        if write.received and v.version >= expected:
            continue
        if v.version != 1 and v.version != expected:
            raise Conflict(
                f"report {v.id} version {v.version} conflicts: the next version is {expected}"
            )
    return seen - current.keys()


@dataclass(frozen=True, slots=True)
class Numbered:
    """Writes made ready to store: versions with their seqs and label ids, the attachment
    blobs as (sha256, size, bytes), the audit drafts with their label ids, and the
    tearline links as rows of `tearlines`."""

    versions: list[ReportVersion]
    blobs: list[tuple[str, int, bytes]]
    audits: list[AuditDraft]
    links: list[tuple[str, str, int, str, str]] = field(default_factory=list)


def number(
    writes: Sequence[ReportWrite], first_seq: int, label_id_of: Callable[[Label], int]
) -> Numbered:
    """Assign consecutive seqs from `first_seq` and label ids (looked up once per label)."""
    label_ids: dict[Label, int] = {}
    versions: list[ReportVersion] = []
    blobs: list[tuple[str, int, bytes]] = []
    audits: list[AuditDraft] = []
    links: list[tuple[str, str, int, str, str]] = []
    for seq, write in enumerate(writes, start=first_seq):
        v = write.version
        label_id = label_ids.get(v.label)
        if label_id is None:
            label_id = label_ids[v.label] = label_id_of(v.label)
        versions.append(copied(v, seq=seq, label_id=label_id))
        blobs.extend((sha256, len(data), data) for sha256, data in write.blobs.items())
        if write.audit is not None:
            audits.append(copied(write.audit, label_id=label_id))
        if write.tearline_of is not None:
            source_id, source_version = write.tearline_of
            links.append((v.id, source_id, source_version, v.author, iso(v.stored_at)))
    return Numbered(versions, blobs, audits, links)


def version_of_row(row: RowLike, labels: LabelIndex) -> ReportVersion:
    """A stored row (of `COLUMNS`) as a version, in either backend (no access check:
    callers have applied the rule)."""
    return ReportVersion(
        id=row["report_id"],
        version=row["version"],
        type=ReportType(row["type"]),
        title=row["title"],
        body=row["body"],
        language=row["language"],
        label=labels.get(row["label_id"]),
        source=Source(
            name=row["source_name"],
            reliability=row["reliability"],
            credibility=row["credibility"],
        ),
        reported_at=datetime.fromisoformat(row["reported_at"]),
        observed_at=None
        if row["observed_at"] is None
        else datetime.fromisoformat(row["observed_at"]),
        locations=tuple(Location(**loc) for loc in json.loads(row["locations"])),
        attachments=tuple(Attachment(**a) for a in json.loads(row["attachments"])),
        author=row["author"],
        stored_at=datetime.fromisoformat(row["stored_at"]),
        signature=row["signature"],
        seq=row["seq"],
        label_id=row["label_id"],
    )


C = TypeVar("C", bound=Executes)


class ReportReads(ABC, Generic[C]):
    """The reads of `bices.store.base.Reports`, alike in both backends: each gives its SQL
    dialect, its connections and its full-text search."""

    dialect: ClassVar[Dialect]
    labels: LabelIndex
    rank_limit: int
    _sealer: Sealer  # seals the cursors of listings and searches

    @abstractmethod
    def viewing(self, viewer: Viewer) -> AbstractContextManager[tuple[C, tuple[int, ...]]]:
        """A read snapshot and, computed inside it, the viewer's visible label ids."""

    @abstractmethod
    def reading(self) -> AbstractContextManager[C]:
        """A connection for one statement (system reads, outside any snapshot)."""

    @abstractmethod
    def matches(self, conn: C, visible: tuple[int, ...], asked: Asked) -> Found:
        """The backend's full-text search over visible current versions."""

    def row(self, row: RowLike) -> ReportVersion:
        """A stored row as a version (no access check: callers have applied the rule)."""
        return version_of_row(row, self.labels)

    def label(self, label_id: int) -> Label:
        return self.labels.get(label_id)

    def _visible_rows(
        self, viewer: Viewer, where: str, params: tuple[object, ...]
    ) -> list[ReportVersion]:
        with self.viewing(viewer) as (conn, visible):
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM report_versions WHERE {where} "
                f"AND {self.dialect.among.format('label_id')} ORDER BY version",
                (*params, self.dialect.pack(list(visible))),
            ).fetchall()
        return [self.row(row) for row in rows]

    def current(self, viewer: Viewer, report_id: str) -> ReportVersion | None:
        m = self.dialect.mark
        found = self._visible_rows(viewer, f"report_id = {m} AND current = 1", (report_id,))
        return found[0] if found else None

    def current_unfiltered(self, report_id: str) -> ReportVersion | None:
        """A report's current version whatever its label: for operator tooling and tests of
        the store itself; never served to a user."""
        with self.reading() as conn:
            row = conn.execute(
                f"SELECT {COLUMNS} FROM report_versions "
                f"WHERE report_id = {self.dialect.mark} AND current = 1",
                (report_id,),
            ).fetchone()
        return None if row is None else self.row(row)

    def signatures(self, report_id: str) -> dict[int, str]:
        """The signature of each stored version of a report, whatever its label (system use:
        a peer's item is checked against what is stored)."""
        with self.reading() as conn:
            rows = conn.execute(
                "SELECT version, signature FROM report_versions "
                f"WHERE report_id = {self.dialect.mark}",
                (report_id,),
            ).fetchall()
        return {int(row[0]): str(row[1]) for row in rows}

    def blob_bytes(self, shas: list[str]) -> dict[str, bytes]:
        """Attachment bytes by digest, whatever carries them (system use: a version sent to a
        peer has passed the boundary rule)."""
        if not shas:
            return {}
        with self.reading() as conn:
            rows = conn.execute(
                f"SELECT sha256, data FROM blobs WHERE {self.dialect.among.format('sha256')}",
                (self.dialect.pack(sorted(set(shas))),),
            ).fetchall()
        return {str(row[0]): bytes(row[1]) for row in rows}

    def version(self, viewer: Viewer, report_id: str, version: int) -> ReportVersion | None:
        m = self.dialect.mark
        found = self._visible_rows(
            viewer, f"report_id = {m} AND version = {m}", (report_id, version)
        )
        return found[0] if found else None

    def versions(self, viewer: Viewer, report_id: str) -> list[ReportVersion]:
        return self._visible_rows(viewer, f"report_id = {self.dialect.mark}", (report_id,))

    def blob(self, viewer: Viewer, report_id: str, sha256: str) -> StoredBlob | None:
        """An attachment, only through a visible version of a report that carries it."""
        for v in self.versions(viewer, report_id):
            if any(a.sha256 == sha256 for a in v.attachments):
                with self.reading() as conn:
                    row = conn.execute(
                        f"SELECT data FROM blobs WHERE sha256 = {self.dialect.mark}", (sha256,)
                    ).fetchone()
                if row is not None:
                    return StoredBlob(sha256, bytes(row[0]), v)
        return None

    def rows_by_seq(self, conn: C, seqs: list[int]) -> list[ReportVersion]:
        """Full rows for the page served, in the order given."""
        rows = conn.execute(
            f"SELECT {COLUMNS} FROM report_versions WHERE {self.dialect.among.format('seq')}",
            (self.dialect.pack(list(seqs)),),
        ).fetchall()
        by_seq = {row["seq"]: row for row in rows}
        return [self.row(by_seq[seq]) for seq in seqs]

    def by_seq(self, seqs: list[int]) -> list[ReportVersion]:
        """Stored versions by seq, whatever their labels: for the stream, which applies the
        rule to each subscriber before sending anything (system use)."""
        with self.reading() as conn:
            return self.rows_by_seq(conn, seqs)

    def page(self, viewer: Viewer, where: ReportFilter, cursor: str | None, limit: int) -> Page:
        """Current versions, newest first, with the total the viewer may see."""
        before = decode_cursor(self._sealer, LIST_CURSOR, cursor)
        with self.viewing(viewer) as (conn, visible):
            total, seqs = newest(conn, visible, where, before, limit + 1, self.dialect)
            items = self.rows_by_seq(conn, seqs[:limit])
        more = len(seqs) > limit
        next_cursor = encode_cursor(self._sealer, LIST_CURSOR, items[-1].seq) if more else None
        return Page(items, total, next_cursor)

    def search(
        self, viewer: Viewer, query: str, where: ReportFilter, cursor: str | None, limit: int
    ) -> SearchResult:
        """Full-text search over current versions: ranked hits, total and facets, all visible."""
        offset = decode_cursor(self._sealer, SEARCH_CURSOR, cursor) or 0
        parsed = parse(query)
        with self.viewing(viewer) as (conn, visible):
            asked = Asked(parsed, where, offset, limit + 1, self.rank_limit)
            found = self.matches(conn, visible, asked)
            items = self.rows_by_seq(conn, found.seqs[:limit])
        more = len(found.seqs) > limit
        next_cursor = encode_cursor(self._sealer, SEARCH_CURSOR, offset + limit) if more else None
        return SearchResult(items, found.total, found.facets, next_cursor, found.exact)

    def all_versions(self) -> Iterator[ReportVersion]:
        """Every stored version in seq order, read a page at a time (no connection is held
        while the caller works on a page)."""
        after, m = 0, self.dialect.mark
        while True:
            with self.reading() as conn:
                rows = conn.execute(
                    f"SELECT {COLUMNS} FROM report_versions WHERE seq > {m} ORDER BY seq LIMIT {m}",
                    (after, PAGE),
                ).fetchall()
            yield from (self.row(row) for row in rows)
            if len(rows) < PAGE:
                return
            after = int(rows[-1]["seq"])
