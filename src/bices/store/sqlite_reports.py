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
from bices.domain.errors import Conflict
from bices.domain.labels import Classification, Label
from bices.domain.reports import Attachment, Location, ReportType, ReportVersion, Source, iso
from bices.domain.signing import canonical
from bices.domain.users import Viewer
from bices.store.base import Page, ReportFilter, ReportWrite, SearchResult, StoredBlob
from bices.store.query import decode_cursor, encode_cursor, parse, to_fts5
from bices.store.sqlite_audit import append_audit
from bices.store.sqlite_db import Database
from bices.store.visibility import DirectoryState, LabelIndex

COLUMNS = (
    "seq, report_id, version, type, title, body, language, label_id, source_name, reliability, "
    "credibility, reported_at, observed_at, locations, attachments, author, stored_at, signature"
)
FACETS = {"type": "type", "member": "originator", "classification": "classification",
          "language": "language"}  # fmt: skip


def label_key(label: Label) -> str:
    return canonical(label.to_json()).decode()


class SqliteReports:
    def __init__(self, db: Database, directory_state: DirectoryState) -> None:
        self._db = db
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

    def _label_id(self, conn: sqlite3.Connection, label: Label) -> int:
        key = label_key(label)
        row = conn.execute("SELECT id FROM labels WHERE key = ?", (key,)).fetchone()
        if row is not None:
            return int(row[0])
        cursor = conn.execute("INSERT INTO labels (key, body) VALUES (?, ?)", (key, key))
        # Not cached here: the transaction may still roll back and the id be reused.
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def _visible(self, viewer: Viewer) -> str:
        directory, version = self._directory_state()
        return json.dumps(self.labels.visible(viewer, directory, version))

    # -- writes ----------------------------------------------------------------------

    def add(self, writes: Sequence[ReportWrite]) -> list[ReportVersion]:
        """Store versions atomically: all of them, their blobs, events and audit, or nothing."""
        stored: list[ReportVersion] = []
        with self._db.write() as conn:
            label_ids: dict[Label, int] = {}
            audits: list[AuditDraft] = []
            for write in writes:
                v = write.version
                label_id = label_ids.get(v.label)
                if label_id is None:
                    label_id = label_ids[v.label] = self._label_id(conn, v.label)
                for data in write.blobs:
                    conn.execute(
                        "INSERT OR IGNORE INTO blobs VALUES (?, ?, ?)",
                        (hashlib.sha256(data).hexdigest(), len(data), data),
                    )
                seq = self._insert_version(conn, v, label_id)
                stored.append(replace(v, seq=seq, label_id=label_id))
                if write.audit is not None:
                    audits.append(replace(write.audit, label_id=label_id))
            append_audit(conn, audits)
        return stored

    def _insert_version(self, conn: sqlite3.Connection, v: ReportVersion, label_id: int) -> int:
        previous = conn.execute(
            "SELECT current_version, current_seq FROM reports WHERE id = ?", (v.id,)
        ).fetchone()
        expected = 1 if previous is None else previous["current_version"] + 1
        if v.version != expected:
            raise Conflict(
                f"report {v.id} version {v.version} conflicts: the next version is {expected}"
            )
        cursor = conn.execute(
            "INSERT INTO report_versions VALUES "
            "(NULL, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                v.id, v.version, v.type.value, v.title, v.body, v.language, label_id,
                int(v.label.classification), v.label.originator, v.source.name,
                v.source.reliability.value, v.source.credibility, iso(v.reported_at),
                v.reported_at.timestamp(),
                None if v.observed_at is None else iso(v.observed_at),
                json.dumps([loc.model_dump() for loc in v.locations]),
                json.dumps([a.to_json() for a in v.attachments]),
                v.author, iso(v.stored_at), v.signature,
            ),
        )  # fmt: skip
        seq = cursor.lastrowid
        assert seq is not None
        if previous is None:
            conn.execute("INSERT INTO reports VALUES (?, ?, ?)", (v.id, v.version, seq))
        else:
            old = previous["current_seq"]
            conn.execute(
                "INSERT INTO report_fts (report_fts, rowid, title, body) "
                "SELECT 'delete', seq, title, body FROM report_versions WHERE seq = ?",
                (old,),
            )
            conn.execute("UPDATE report_versions SET current = 0 WHERE seq = ?", (old,))
            conn.execute(
                "UPDATE reports SET current_version = ?, current_seq = ? WHERE id = ?",
                (v.version, seq, v.id),
            )
        conn.execute(
            "INSERT INTO report_fts (rowid, title, body) VALUES (?, ?, ?)", (seq, v.title, v.body)
        )
        conn.execute(
            "INSERT INTO events (kind, report_id, version, label_id, at) VALUES (?, ?, ?, ?, ?)",
            ("report", v.id, v.version, label_id, iso(v.stored_at)),
        )
        return seq

    # -- reads -----------------------------------------------------------------------

    def _row(self, row: sqlite3.Row) -> ReportVersion:
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
    def _viewing(self, viewer: Viewer) -> Iterator[tuple[sqlite3.Connection, str]]:
        """A read snapshot and, computed inside it, the viewer's visible label ids.

        Inside one snapshot a row can only carry a label that the same snapshot knows,
        so a version committed meanwhile under a new label is neither hidden nor shown
        by mistake.
        """
        with self._db.snapshot() as conn:
            yield conn, self._visible(viewer)

    def _visible_rows(
        self, viewer: Viewer, where: str, params: tuple[object, ...]
    ) -> list[ReportVersion]:
        with self._viewing(viewer) as (conn, visible):
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM report_versions WHERE {where} "
                "AND label_id IN (SELECT value FROM json_each(?)) ORDER BY version",
                (*params, visible),
            ).fetchall()
        return [self._row(row) for row in rows]

    def current(self, viewer: Viewer, report_id: str) -> ReportVersion | None:
        found = self._visible_rows(viewer, "report_id = ? AND current = 1", (report_id,))
        return found[0] if found else None

    def current_unfiltered(self, report_id: str) -> ReportVersion | None:
        """For the pipeline's own checks (next version number, originator); never served."""
        row = (
            self._db.reader()
            .execute(
                f"SELECT {COLUMNS} FROM report_versions WHERE report_id = ? AND current = 1",
                (report_id,),
            )
            .fetchone()
        )
        return None if row is None else self._row(row)

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
                    return StoredBlob(sha256, bytes(row[0]))
        return None

    def _where(self, where: ReportFilter, alias: str = "") -> tuple[str, list[object]]:
        clauses: list[str] = []
        params: list[object] = []

        def among(column: str, values: Iterable[object]) -> None:
            clauses.append(f"{alias}{column} IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(sorted(values)))

        if where.types is not None:
            among("type", (t.value for t in where.types))
        if where.originators is not None:
            among("originator", where.originators)
        if where.classifications is not None:
            among("classification", (int(c) for c in where.classifications))
        if where.languages is not None:
            among("language", where.languages)
        if where.since is not None:
            clauses.append(f"{alias}reported_ts >= ?")
            params.append(where.since.timestamp())
        if where.until is not None:
            clauses.append(f"{alias}reported_ts < ?")
            params.append(where.until.timestamp())
        return "".join(" AND " + c for c in clauses), params

    def page(self, viewer: Viewer, where: ReportFilter, cursor: str | None, limit: int) -> Page:
        """Current versions, newest first, with the total the viewer may see."""
        before = decode_cursor("list", cursor)
        filters, params = self._where(where)
        base = (
            "FROM report_versions WHERE current = 1 "
            "AND label_id IN (SELECT value FROM json_each(?))" + filters
        )
        with self._viewing(viewer) as (conn, visible):
            base_params = [visible, *params]
            total = conn.execute(f"SELECT count(*) {base}", base_params).fetchone()[0]
            page_sql = f"SELECT {COLUMNS} {base}"
            page_params = list(base_params)
            if before is not None:
                page_sql += " AND seq < ?"
                page_params.append(before)
            rows = conn.execute(
                page_sql + " ORDER BY seq DESC LIMIT ?", [*page_params, limit + 1]
            ).fetchall()
        items = [self._row(row) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(items, total, encode_cursor("list", items[-1].seq) if more else None)

    def search(
        self, viewer: Viewer, query: str, where: ReportFilter, cursor: str | None, limit: int
    ) -> SearchResult:
        """Full-text search over current versions: ranked hits, total and facets, all visible."""
        offset = decode_cursor("search", cursor) or 0
        match = to_fts5(parse(query))
        filters, params = self._where(where, "v.")
        base = (
            "FROM report_fts JOIN report_versions v ON v.seq = report_fts.rowid "
            "WHERE report_fts MATCH ? AND v.label_id IN (SELECT value FROM json_each(?))" + filters
        )
        columns = ", ".join("v." + c.strip() for c in COLUMNS.split(","))
        with self._viewing(viewer) as (conn, visible):
            base_params = [match, visible, *params]
            counts = conn.execute(
                f"SELECT v.type, v.originator, v.classification, v.language, count(*) {base} "
                "GROUP BY 1, 2, 3, 4",
                base_params,
            ).fetchall()
            rows = conn.execute(
                f"SELECT {columns} {base} ORDER BY report_fts.rank LIMIT ? OFFSET ?",
                [*base_params, limit + 1, offset],
            ).fetchall()
        facets: dict[str, dict[str, int]] = {name: {} for name in FACETS}
        total = 0
        for type_, originator, level, language, n in counts:
            total += n
            for name, value in (
                ("type", type_),
                ("member", originator),
                ("classification", Classification(level).marking),
                ("language", language),
            ):
                facets[name][value] = facets[name].get(value, 0) + n
        items = [self._row(row) for row in rows[:limit]]
        more = len(rows) > limit
        next_cursor = encode_cursor("search", offset + limit) if more else None
        return SearchResult(items, total, facets, next_cursor)

    def all_versions(self) -> Iterator[ReportVersion]:
        for row in self._db.reader().execute(f"SELECT {COLUMNS} FROM report_versions ORDER BY seq"):
            yield self._row(row)
