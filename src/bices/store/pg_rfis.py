"""RFIs in PostgreSQL: each change, its history entry, its outbox event and its audit events
in one transaction; every read through the viewer's visible labels.

As on SQLite (see sqlite_rfis.py): an RFI is visible iff the viewer may see its label, its
answers are listed only where the viewer may see the answer report's current version now,
and the history names an answer report only where that answer is listed. A change applies
to the revision it was decided on; writes queue on the node's writer lock, so the check
of the revision and the update see the same row whatever process wrote last.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bices.domain.audit import AuditDraft
from bices.domain.errors import Conflict
from bices.domain.reports import ReportVersion, iso
from bices.domain.rfis import Change, Rfi, RfiFilter, RfiPage, StaleRfi
from bices.domain.users import Viewer
from bices.store import rfi_mirrors as mirrors
from bices.store import rfis as shared
from bices.store.base import ReportWrite
from bices.store.pg_audit import append_audit
from bices.store.pg_db import Connection, PgDatabase, Row
from bices.store.pg_labels import label_id as label_id_of
from bices.store.pg_outbox import append_event
from bices.store.pg_reports import PgReports

# RFI ids are UUIDs compared byte by byte (as SQLite does), whatever the database's
# collation, so that the listing's order and its cursors agree.
SCHEMA = """
CREATE TABLE IF NOT EXISTS rfis (
    id text COLLATE "C" PRIMARY KEY, question text NOT NULL, detail text NOT NULL,
    priority text NOT NULL, priority_rank integer NOT NULL,
    deadline text NOT NULL, deadline_us bigint NOT NULL,
    asker text NOT NULL, asker_id bigint NOT NULL, asker_member text NOT NULL,
    label_id bigint NOT NULL REFERENCES labels(id), state text NOT NULL,
    revision integer NOT NULL, created_at text NOT NULL, closed_reason text
);
-- The order RFIs are worked in: highest priority first, then the nearest deadline.
CREATE INDEX IF NOT EXISTS rfis_order ON rfis (priority_rank DESC, deadline_us, id);
CREATE INDEX IF NOT EXISTS rfis_label ON rfis (label_id);
CREATE TABLE IF NOT EXISTS rfi_addressees (
    rfi_id text COLLATE "C" NOT NULL REFERENCES rfis(id), member text NOT NULL,
    position integer NOT NULL, accepted_at text, accepted_by text,
    PRIMARY KEY (rfi_id, member)
);
CREATE INDEX IF NOT EXISTS rfi_addressees_member ON rfi_addressees (member, rfi_id);
CREATE TABLE IF NOT EXISTS rfi_answers (
    rfi_id text COLLATE "C" NOT NULL REFERENCES rfis(id), report_id text NOT NULL,
    member text NOT NULL, author text NOT NULL, at text NOT NULL, revision integer NOT NULL,
    PRIMARY KEY (rfi_id, report_id)
);
CREATE TABLE IF NOT EXISTS rfi_history (
    rfi_id text COLLATE "C" NOT NULL REFERENCES rfis(id), revision integer NOT NULL,
    action text NOT NULL, at text NOT NULL, actor text NOT NULL, member text NOT NULL,
    state text NOT NULL, detail text NOT NULL, PRIMARY KEY (rfi_id, revision)
);
"""

POSTGRES = shared.Dialect(
    param=lambda name: f"%({name})s",
    in_list=lambda column, name: f"{column} = ANY(%({name})s)",
    as_list=list,
)


WRITERS = mirrors.Backend(label_id_of, append_event, append_audit)


class PgRfis:
    def __init__(self, db: PgDatabase, reports: PgReports) -> None:
        self._db = db
        self._reports = reports

    # -- writes ----------------------------------------------------------------------

    def create(self, rfi: Rfi, audit: Sequence[AuditDraft]) -> None:
        """Store a new RFI with its first history entry, its event and its audit."""
        with self._db.write() as conn:
            label_id = label_id_of(conn, rfi.label)
            conn.execute(
                "INSERT INTO rfis VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                shared.rfi_values(rfi, label_id),
            )
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO rfi_addressees (rfi_id, member, position) VALUES (%s, %s, %s)",
                    [(rfi.id, a.member, i) for i, a in enumerate(rfi.addressees)],
                )
            for change in rfi.history:
                self._record(conn, rfi.id, change, label_id)
            append_audit(conn, audit)

    def change(
        self,
        rfi: Rfi,
        change: Change,
        audit: Sequence[AuditDraft],
        report: ReportWrite | None = None,
    ) -> list[ReportVersion]:
        """Apply a decided change to the RFI as it was read (`rfi.revision`); a change made
        meanwhile by someone else refuses this one (409). With `report`, the answer report
        is stored in the same transaction as its link, so neither is stored without the
        other. Returns the stored report, if any."""
        stored: list[ReportVersion] = []
        with self._db.write() as conn:
            updated = conn.execute(
                "UPDATE rfis SET state = %s, revision = %s, "
                "closed_reason = coalesce(%s, closed_reason) WHERE id = %s AND revision = %s",
                (change.state.value, change.revision, change.detail.get("reason"), rfi.id,
                 rfi.revision),
            ).rowcount  # fmt: skip
            if updated != 1:
                raise StaleRfi(f"RFI {rfi.id} changed meanwhile; read it again and retry")
            if change.action == "accept":
                conn.execute(
                    "UPDATE rfi_addressees SET accepted_at = %s, accepted_by = %s "
                    "WHERE rfi_id = %s AND member = %s",
                    (iso(change.at), change.actor, rfi.id, change.member),
                )
            elif change.action == "answer":
                if report is not None:
                    stored = self._reports.add_in(conn, [report])
                report_id = change.detail["report_id"]
                linked = conn.execute(
                    "INSERT INTO rfi_answers VALUES (%s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT DO NOTHING",
                    (rfi.id, report_id, change.member, change.actor, iso(change.at),
                     change.revision),
                ).rowcount  # fmt: skip
                if not linked:
                    raise Conflict(f"report {report_id} already answers RFI {rfi.id}")
            label_id = label_id_of(conn, rfi.label)
            self._record(conn, rfi.id, change, label_id)
            append_audit(conn, audit)
        return stored

    def _record(self, conn: Connection, rfi_id: str, change: Change, label_id: int) -> None:
        """The history entry and the outbox event of one revision."""
        conn.execute(
            "INSERT INTO rfi_history VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            shared.history_values(rfi_id, change),
        )
        append_event(conn, "rfi", rfi_id, change.revision, label_id)

    # -- reads under the rule ----------------------------------------------------------

    def get(self, viewer: Viewer, rfi_id: str) -> Rfi | None:
        """The RFI if the viewer may see it; None for hidden and missing alike."""
        with self._reports.viewing(viewer) as (conn, visible):
            row = conn.execute(
                "SELECT * FROM rfis r WHERE r.id = %s AND r.label_id = ANY(%s)",
                (rfi_id, list(visible)),
            ).fetchone()
            if row is None:
                return None
            return self._assemble(conn, [row], visible)[0]

    def page(
        self, viewer: Viewer, where: RfiFilter, cursor: str | None, limit: int, now: datetime
    ) -> RfiPage:
        """Visible RFIs, highest priority first, then nearest deadline; `total` counts the
        visible ones that pass the filters."""
        after = shared.decode_cursor(cursor)
        counted, paged, params = shared.page_clauses(POSTGRES, viewer, where, after, now)
        params["limit"] = limit + 1
        with self._reports.viewing(viewer) as (conn, visible):
            params["visible"] = list(visible)
            total = conn.execute(
                f"SELECT count(*) FROM rfis r WHERE {' AND '.join(counted)}", params
            ).fetchone()
            rows = conn.execute(
                f"SELECT * FROM rfis r WHERE {' AND '.join(paged)} "
                f"ORDER BY {shared.ORDER} LIMIT %(limit)s",
                params,
            ).fetchall()
            items = self._assemble(conn, rows[:limit], visible)
        assert total is not None
        more = len(rows) > limit
        return RfiPage(items, int(total[0]), shared.encode_cursor(items[-1]) if more else None)

    def _assemble(
        self, conn: Connection, rows: Sequence[Row], visible: tuple[int, ...]
    ) -> list[Rfi]:
        """Whole RFIs from their rows: addressees, the answers the viewer may see now, and
        the history (an answer's report named only where the answer is listed)."""
        ids = [row["id"] for row in rows]
        addressees = conn.execute(
            "SELECT * FROM rfi_addressees WHERE rfi_id = ANY(%s) ORDER BY rfi_id, position",
            (ids,),
        ).fetchall()
        answers = conn.execute(
            "SELECT a.*, rep.current_seq FROM rfi_answers a "
            "JOIN reports rep ON rep.id = a.report_id "
            "JOIN current_reports c ON c.seq = rep.current_seq AND c.label_id = ANY(%s) "
            "WHERE a.rfi_id = ANY(%s) ORDER BY a.rfi_id, a.revision",
            (list(visible), ids),
        ).fetchall()
        reports = self._reports.rows_by_seq(conn, [a["current_seq"] for a in answers])
        history = conn.execute(
            "SELECT * FROM rfi_history WHERE rfi_id = ANY(%s) ORDER BY rfi_id, revision",
            (ids,),
        ).fetchall()
        return shared.assemble(
            rows, addressees, answers, reports, history, self._reports.labels.get
        )

    # -- federation (system use) --------------------------------------------------------

    def mirror(self, rfi: Rfi, home: str, audit: Sequence[AuditDraft]) -> bool:
        with self._db.write() as conn:
            return mirrors.mirror(conn, POSTGRES, rfi, home, WRITERS, audit)

    def home_of(self, rfi_id: str) -> str | None:
        with self._db.read() as conn:
            return mirrors.home_of(conn, POSTGRES, rfi_id)

    def snapshot(self, rfi_id: str) -> Rfi | None:
        with self._db.snapshot() as conn:
            row = conn.execute("SELECT * FROM rfis r WHERE r.id = %s", (rfi_id,)).fetchone()
            if row is None:
                return None
            every = tuple(r[0] for r in conn.execute("SELECT id FROM labels").fetchall())
            return self._assemble(conn, [row], every)[0]

    # -- the stream's side (system use: the caller has checked the event's label) ------

    def event_payload(self, rfi_id: str, revision: int) -> dict[str, Any] | None:
        """The RFI as it was at `revision`, for the stream event of that revision."""
        with self._db.snapshot() as conn:
            row = conn.execute(
                "SELECT r.*, h.action, h.at AS changed_at, h.state AS state_then FROM rfis r "
                "JOIN rfi_history h ON h.rfi_id = r.id AND h.revision = %s WHERE r.id = %s",
                (revision, rfi_id),
            ).fetchone()
            if row is None:
                return None
            members = [
                m[0]
                for m in conn.execute(
                    "SELECT member FROM rfi_addressees WHERE rfi_id = %s ORDER BY position",
                    (rfi_id,),
                )
            ]
        return shared.event_payload(
            row, members, revision, self._reports.labels.get(row["label_id"])
        )
