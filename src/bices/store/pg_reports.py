"""Report versions, attachments, listing and full-text search in PostgreSQL, filtered by
the rule.

The tables are SQLite's (`sqlite_db.SCHEMA`), so rows are written and read back through
the same code (`bices.store.reports`); the search index is a tsvector column of the narrow
`current_reports` table instead of FTS5 (see `pg_search`). The schema needs the `unaccent`
extension, a trusted one: a database owner may create it without being a superuser.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

from bices.domain.cursors import Sealer
from bices.domain.reports import ReportVersion
from bices.domain.users import Viewer
from bices.store import pg_search
from bices.store.base import ReportWrite
from bices.store.listing import Asked, Found
from bices.store.pg_audit import append_audit
from bices.store.pg_db import Connection, PgDatabase
from bices.store.pg_labels import label_id as label_id_of
from bices.store.pg_labels import labels_after
from bices.store.pg_outbox import next_seq
from bices.store.reports import (
    COLUMNS,
    ReportReads,
    check_versions,
    next_added_at,
    number,
    version_rows,
)
from bices.store.visibility import DirectoryState, LabelIndex

SCHEMA = """
-- An extension is database-wide: created once, by whichever node migrates first.
SELECT pg_advisory_xact_lock(hashtextextended('bices extensions', 0));
CREATE EXTENSION IF NOT EXISTS unaccent;
-- Words as PostgreSQL's `simple` configuration reads them, accents removed first; hyphenated
-- words are indexed as their parts only, as FTS5 does (but a number after a hyphen keeps
-- it, as a sign: "Hwasong-18" is indexed as hwasong, -18).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_ts_config
                   WHERE cfgname = 'bices' AND cfgnamespace = current_schema()::regnamespace)
    THEN
        CREATE TEXT SEARCH CONFIGURATION bices (COPY = pg_catalog.simple);
        ALTER TEXT SEARCH CONFIGURATION bices DROP MAPPING FOR asciihword, hword, numhword;
        EXECUTE format(
            'ALTER TEXT SEARCH CONFIGURATION bices ALTER MAPPING FOR word, hword_part, '
            'numword, hword_numpart WITH %I.unaccent, pg_catalog.simple',
            (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
             WHERE e.extname = 'unaccent'));
    END IF;
END $$;
CREATE TABLE IF NOT EXISTS reports (
    id text PRIMARY KEY, current_version integer NOT NULL, current_seq bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS report_versions (
    seq bigint PRIMARY KEY, report_id text NOT NULL, version integer NOT NULL,
    current integer NOT NULL, type text NOT NULL, title text NOT NULL, body text NOT NULL,
    language text NOT NULL, label_id bigint NOT NULL REFERENCES labels(id),
    classification integer NOT NULL, originator text NOT NULL,
    source_name text NOT NULL, reliability text NOT NULL, credibility integer NOT NULL,
    reported_at text NOT NULL, reported_ts double precision NOT NULL, observed_at text,
    locations text NOT NULL, attachments text NOT NULL, author text NOT NULL,
    stored_at text NOT NULL, signature text NOT NULL,
    UNIQUE (report_id, version)
);
-- The current version of each report, narrow: listing, filters, totals, facets and search
-- read this instead of the wide rows; full rows are fetched only for the page served.
CREATE TABLE IF NOT EXISTS current_reports (
    seq bigint PRIMARY KEY, label_id bigint NOT NULL, type text NOT NULL,
    originator text NOT NULL, classification integer NOT NULL, language text NOT NULL,
    reported_ts double precision NOT NULL, document tsvector NOT NULL
);
CREATE INDEX IF NOT EXISTS current_reports_label ON current_reports (label_id, seq);
CREATE INDEX IF NOT EXISTS current_reports_document ON current_reports USING gin (document);
-- The document of each current version is built as its row enters the current set, from
-- the title (weight A) and body (B) of its `report_versions` row, and its label as the
-- lexeme '#<label id>' (no word of a report or a query can be that: '#' separates words),
-- so that a search can ask the index for visible labels too. A tsvector holds at most
-- 1 MB, which a long body of many distinct words can pass (a body may have a million
-- characters): then only as much of the body as fits is indexed.
CREATE OR REPLACE FUNCTION bices_current_document() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    title text;
    body text;
    label tsvector := array_to_tsvector(ARRAY['#' || NEW.label_id]);
BEGIN
    SELECT v.title, v.body INTO title, body FROM report_versions v WHERE v.seq = NEW.seq;
    IF octet_length(body) < 250000 THEN  -- far below the limit: no subtransaction
        NEW.document := setweight(to_tsvector('bices', title), 'A')
            || setweight(to_tsvector('bices', body), 'B') || label;
        RETURN NEW;
    END IF;
    LOOP
        BEGIN
            NEW.document := setweight(to_tsvector('bices', title), 'A')
                || setweight(to_tsvector('bices', body), 'B') || label;
            RETURN NEW;
        EXCEPTION WHEN program_limit_exceeded THEN
            body := left(body, length(body) / 2);
        END;
    END LOOP;
END $$;
DROP TRIGGER IF EXISTS current_reports_document ON current_reports;
CREATE TRIGGER current_reports_document BEFORE INSERT ON current_reports
    FOR EACH ROW EXECUTE FUNCTION bices_current_document();
CREATE TABLE IF NOT EXISTS blobs (
    sha256 text PRIMARY KEY, size bigint NOT NULL, data bytea NOT NULL
);
"""


def _supersede(conn: Connection, versions: list[ReportVersion], new_ids: set[str]) -> None:
    """Take the current versions these new ones replace out of the current set (and so out
    of the search index), and point their reports at the new ones."""
    newer = [v for v in versions if v.id not in new_ids]
    if not newer:
        return
    ids = [v.id for v in newer]
    old = "SELECT current_seq FROM reports WHERE id = ANY(%s)"
    conn.execute(f"UPDATE report_versions SET current = 0 WHERE seq IN ({old})", (ids,))
    conn.execute(f"DELETE FROM current_reports WHERE seq IN ({old})", (ids,))
    conn.execute(
        "UPDATE reports r SET current_version = n.version, current_seq = n.seq "
        "FROM unnest(%s::text[], %s::integer[], %s::bigint[]) AS n (id, version, seq) "
        "WHERE r.id = n.id",
        (ids, [v.version for v in newer], [v.seq for v in newer]),
    )


class PgReports(ReportReads[Connection]):
    dialect = pg_search.POSTGRES

    def __init__(
        self, db: PgDatabase, directory_state: DirectoryState, rank_limit: int, sealer: Sealer
    ) -> None:
        self._db = db
        self._sealer = sealer  # seals the cursors of listings and searches
        self.rank_limit = rank_limit
        self._directory_state = directory_state
        self.labels = LabelIndex(lambda after: labels_after(db, after))

    # -- writes ----------------------------------------------------------------------

    def add(self, writes: Sequence[ReportWrite]) -> list[ReportVersion]:
        """Store versions atomically: all of them, their blobs, events and audit, or nothing.

        Sequence numbers are assigned here, under the node's writer lock, so they commit in
        order and every table is filled with one `executemany`.
        """
        with self._db.write() as conn:
            return self.add_in(conn, writes)

    def add_in(self, conn: Connection, writes: Sequence[ReportWrite]) -> list[ReportVersion]:
        """`add` inside the caller's write transaction (an RFI answer stores its new report
        with the link to the RFI, so that neither is stored without the other)."""
        ids = sorted({w.version.id for w in writes})
        current = conn.execute(
            "SELECT id, current_version FROM reports WHERE id = ANY(%s)", (ids,)
        ).fetchall()
        new_ids = check_versions(writes, {row[0]: row[1] for row in current})
        ready = number(writes, next_seq(conn), lambda label: label_id_of(conn, label))
        _supersede(conn, ready.versions, new_ids)
        added = next_added_at(conn)
        with conn.cursor() as cur:
            for into, rows in version_rows(ready.versions, new_ids, added):  # COPY: fewest trips
                with cur.copy(f"COPY {into} FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            cur.executemany(
                "INSERT INTO blobs VALUES (%s, %s, %s) ON CONFLICT (sha256) DO NOTHING",
                ready.blobs,
            )
            cur.executemany(
                "INSERT INTO tearlines VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                ready.links,
            )
        append_audit(conn, ready.audits)
        return ready.versions

    # -- reads -----------------------------------------------------------------------

    @contextmanager
    def viewing(self, viewer: Viewer) -> Iterator[tuple[Connection, tuple[int, ...]]]:
        """A read snapshot and, computed inside it, the viewer's visible label ids.

        The snapshot is taken before the labels are loaded, so every row it shows carries
        a label the index knows: a version committed meanwhile under a new label is
        neither hidden nor shown by mistake.
        """
        with self._db.snapshot() as conn:
            conn.execute("SELECT 1")  # REPEATABLE READ takes its snapshot at the first query
            directory, version = self._directory_state()
            yield conn, self.labels.visible(viewer, directory, version)

    def reading(self) -> AbstractContextManager[Connection]:
        """A pooled connection in autocommit."""
        return self._db.read()

    def matches(self, conn: Connection, visible: tuple[int, ...], asked: Asked) -> Found:
        return pg_search.search(conn, visible, asked)


__all__ = ["COLUMNS", "SCHEMA", "PgReports"]
