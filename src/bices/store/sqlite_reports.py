"""Report versions, attachments, listing and FTS5 search in SQLite, filtered by the rule."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime

from bices.domain.audit import AuditDraft
from bices.domain.cursors import Sealer
from bices.domain.errors import Conflict
from bices.domain.labels import Label
from bices.domain.reports import Attachment, Location, ReportType, ReportVersion, Source, iso
from bices.domain.users import Viewer
from bices.store import sqlite_listing as listing
from bices.store.base import Page, ReportFilter, ReportWrite, SearchResult, StoredBlob
from bices.store.query import LIST_CURSOR, SEARCH_CURSOR, decode_cursor, encode_cursor, parse
from bices.store.sqlite_audit import append_audit
from bices.store.sqlite_db import Database
from bices.store.sqlite_labels import label_id as label_id_of
from bices.store.sqlite_outbox import next_seq
from bices.store.visibility import DirectoryState, LabelIndex

COLUMNS = (
    "seq, report_id, version, type, title, body, language, label_id, source_name, reliability, "
    "credibility, reported_at, observed_at, locations, attachments, author, stored_at, signature"
)


def _supersede(conn: sqlite3.Connection, report_id: str, version: int, seq: int) -> None:
    """Take the current version out of the search index and the current set."""
    old = conn.execute("SELECT current_seq FROM reports WHERE id = ?", (report_id,)).fetchone()[0]
    conn.execute(
        "INSERT INTO report_fts (report_fts, rowid, title, body, label_token) "
        "SELECT 'delete', seq, title, body, label_token FROM report_versions WHERE seq = ?",
        (old,),
    )
    conn.execute("UPDATE report_versions SET current = 0 WHERE seq = ?", (old,))
    conn.execute("DELETE FROM current_reports WHERE seq = ?", (old,))
    conn.execute(
        "UPDATE reports SET current_version = ?, current_seq = ? WHERE id = ?",
        (version, seq, report_id),
    )


def _insert(conn: sqlite3.Connection, versions: list[ReportVersion]) -> None:
    """Insert stored versions (seq and label_id assigned) into every table that holds them."""
    conn.executemany(
        "INSERT INTO report_versions VALUES "
        "(?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                v.seq, v.id, v.version, v.type.value, v.title, v.body, v.language, v.label_id,
                int(v.label.classification), v.label.originator, v.source.name,
                v.source.reliability.value, v.source.credibility, iso(v.reported_at),
                v.reported_at.timestamp(),
                None if v.observed_at is None else iso(v.observed_at),
                json.dumps([loc.model_dump() for loc in v.locations]),
                json.dumps([a.to_json() for a in v.attachments]),
                v.author, iso(v.stored_at), v.signature,
            )
            for v in versions
        ],
    )  # fmt: skip
    conn.executemany(
        "INSERT INTO reports VALUES (?, ?, ?)",
        [(v.id, v.version, v.seq) for v in versions if v.version == 1],
    )
    conn.executemany(
        "INSERT INTO current_reports VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (v.seq, v.label_id, v.type.value, v.label.originator, int(v.label.classification),
             v.language, v.reported_at.timestamp())
            for v in versions
        ],
    )  # fmt: skip
    conn.executemany(
        "INSERT INTO report_fts (rowid, title, body, label_token) VALUES (?, ?, ?, ?)",
        [(v.seq, v.title, v.body, f"l{v.label_id}") for v in versions],
    )
    conn.executemany(
        "INSERT INTO events (seq, kind, report_id, version, label_id, at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(v.seq, "report", v.id, v.version, v.label_id, iso(v.stored_at)) for v in versions],
    )


class SqliteReports:
    def __init__(
        self,
        db: Database,
        directory_state: DirectoryState,
        rank_limit: int = 4000,
        *,
        sealer: Sealer,
    ) -> None:
        self._db = db
        self._sealer = sealer  # seals the cursors of listings and searches
        self.rank_limit = rank_limit
        self._directory_state = directory_state
        self.labels = LabelIndex(self._labels_after)

    # -- labels ----------------------------------------------------------------------

    def _labels_after(self, after: int) -> Iterable[tuple[int, Label]]:
        rows = (
            self._db.reader()
            .execute("SELECT id, body FROM labels WHERE id > ? ORDER BY id", (after,))
            .fetchall()
        )
        return [(row["id"], Label.from_json(json.loads(row["body"]))) for row in rows]

    # -- writes ----------------------------------------------------------------------

    def add(self, writes: Sequence[ReportWrite]) -> list[ReportVersion]:
        """Store versions atomically: all of them, their blobs, events and audit, or nothing.

        Sequence numbers are assigned here (the write transaction holds SQLite's write lock,
        across processes too), so every table is filled with one `executemany`.
        """
        with self._db.write() as conn:
            return self.add_in(conn, writes)

    def add_in(
        self, conn: sqlite3.Connection, writes: Sequence[ReportWrite]
    ) -> list[ReportVersion]:
        """`add` inside the caller's write transaction (an RFI answer stores its new report
        with the link to the RFI, so that neither is stored without the other)."""
        stored: list[ReportVersion] = []
        self._check_versions(conn, writes)
        seq = next_seq(conn) - 1
        label_ids: dict[Label, int] = {}
        audits: list[AuditDraft] = []
        blobs: list[tuple[str, int, bytes]] = []
        for write in writes:
            v = write.version
            label_id = label_ids.get(v.label)
            if label_id is None:
                label_id = label_ids[v.label] = label_id_of(conn, v.label)
            seq += 1
            if v.version > 1:
                _supersede(conn, v.id, v.version, seq)
            stored.append(replace(v, seq=seq, label_id=label_id))
            blobs.extend((hashlib.sha256(d).hexdigest(), len(d), d) for d in write.blobs)
            if write.audit is not None:
                audits.append(replace(write.audit, label_id=label_id))
        _insert(conn, stored)
        conn.executemany("INSERT OR IGNORE INTO blobs VALUES (?, ?, ?)", blobs)
        append_audit(conn, audits)
        return stored

    def _check_versions(self, conn: sqlite3.Connection, writes: Sequence[ReportWrite]) -> None:
        """Version 1 must be a new id; version n must follow the current n - 1."""
        new = [w.version.id for w in writes if w.version.version == 1]
        taken = conn.execute(
            "SELECT id FROM reports WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(new),),
        ).fetchone()
        if taken is not None:
            raise Conflict(f"report id {taken[0]} is already taken")
        for write in writes:
            v = write.version
            if v.version == 1:
                continue
            row = conn.execute("SELECT current_version FROM reports WHERE id = ?", (v.id,))
            current = row.fetchone()
            expected = 1 if current is None else current[0] + 1
            if v.version != expected:
                raise Conflict(
                    f"report {v.id} version {v.version} conflicts: the next version is {expected}"
                )

    # -- reads -----------------------------------------------------------------------

    def row(self, row: sqlite3.Row) -> ReportVersion:
        """A stored row as a version (no access check: callers have applied the rule)."""
        return ReportVersion(
            id=row["report_id"],
            version=row["version"],
            type=ReportType(row["type"]),
            title=row["title"],
            body=row["body"],
            language=row["language"],
            label=self.labels.get(row["label_id"]),
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

    @contextmanager
    def viewing(self, viewer: Viewer) -> Iterator[tuple[sqlite3.Connection, tuple[int, ...]]]:
        """A read snapshot and, computed inside it, the viewer's visible label ids.

        Inside one snapshot a row can only carry a label that the same snapshot knows,
        so a version committed meanwhile under a new label is neither hidden nor shown
        by mistake.
        """
        with self._db.snapshot() as conn:
            directory, version = self._directory_state()
            yield conn, self.labels.visible(viewer, directory, version)

    def _visible_rows(
        self, viewer: Viewer, where: str, params: tuple[object, ...]
    ) -> list[ReportVersion]:
        with self.viewing(viewer) as (conn, visible):
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM report_versions WHERE {where} "
                "AND label_id IN (SELECT value FROM json_each(?)) ORDER BY version",
                (*params, json.dumps(visible)),
            ).fetchall()
        return [self.row(row) for row in rows]

    def current(self, viewer: Viewer, report_id: str) -> ReportVersion | None:
        found = self._visible_rows(viewer, "report_id = ? AND current = 1", (report_id,))
        return found[0] if found else None

    def current_unfiltered(self, report_id: str) -> ReportVersion | None:
        """A report's current version whatever its label: for operator tooling and tests of
        the store itself; never served to a user."""
        row = (
            self._db.reader()
            .execute(
                f"SELECT {COLUMNS} FROM report_versions WHERE report_id = ? AND current = 1",
                (report_id,),
            )
            .fetchone()
        )
        return None if row is None else self.row(row)

    def version(self, viewer: Viewer, report_id: str, version: int) -> ReportVersion | None:
        found = self._visible_rows(viewer, "report_id = ? AND version = ?", (report_id, version))
        return found[0] if found else None

    def versions(self, viewer: Viewer, report_id: str) -> list[ReportVersion]:
        return self._visible_rows(viewer, "report_id = ?", (report_id,))

    def blob(self, viewer: Viewer, report_id: str, sha256: str) -> StoredBlob | None:
        """An attachment, only through a visible version of a report that carries it."""
        for v in self.versions(viewer, report_id):
            if any(a.sha256 == sha256 for a in v.attachments):
                row = (
                    self._db.reader()
                    .execute("SELECT data FROM blobs WHERE sha256 = ?", (sha256,))
                    .fetchone()
                )
                if row is not None:
                    return StoredBlob(sha256, bytes(row[0]), v)
        return None

    def rows_by_seq(self, conn: sqlite3.Connection, seqs: list[int]) -> list[ReportVersion]:
        """Full rows for the page served, in the order given."""
        rows = conn.execute(
            f"SELECT {COLUMNS} FROM report_versions WHERE seq IN (SELECT value FROM json_each(?))",
            (json.dumps(seqs),),
        ).fetchall()
        by_seq = {row["seq"]: row for row in rows}
        return [self.row(by_seq[seq]) for seq in seqs]

    def label(self, label_id: int) -> Label:
        return self.labels.get(label_id)

    def by_seq(self, seqs: list[int]) -> list[ReportVersion]:
        """Stored versions by seq, whatever their labels: for the stream, which applies the
        rule to each subscriber before sending anything (system use)."""
        with self._db.snapshot() as conn:
            return self.rows_by_seq(conn, seqs)

    def page(self, viewer: Viewer, where: ReportFilter, cursor: str | None, limit: int) -> Page:
        """Current versions, newest first, with the total the viewer may see."""
        before = decode_cursor(self._sealer, LIST_CURSOR, cursor)
        with self.viewing(viewer) as (conn, visible):
            total, seqs = listing.newest(conn, visible, where, before, limit + 1)
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
            found = listing.search(conn, visible, parsed, where, offset, limit + 1, self.rank_limit)
            items = self.rows_by_seq(conn, found.seqs[:limit])
        more = len(found.seqs) > limit
        next_cursor = encode_cursor(self._sealer, SEARCH_CURSOR, offset + limit) if more else None
        return SearchResult(items, found.total, found.facets, next_cursor, found.exact)

    def all_versions(self) -> Iterator[ReportVersion]:
        for row in self._db.reader().execute(f"SELECT {COLUMNS} FROM report_versions ORDER BY seq"):
            yield self.row(row)
