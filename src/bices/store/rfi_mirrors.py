"""RFIs asked on a peer node and mirrored here, in either SQL backend.

A mirrored RFI is stored in the same tables as one asked here, replaced whole by each
newer revision its home node sends, and marked with that home (`rfi_homes`): changes to
it are made at its home, never here (`bices.federation.rfis`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bices.domain.audit import AuditDraft
from bices.domain.errors import Conflict
from bices.domain.labels import Label
from bices.domain.reports import iso
from bices.domain.rfis import Rfi
from bices.store import rfis as shared

SCHEMA = """
-- RFIs mirrored from peer nodes, and the peer each was asked on.
CREATE TABLE IF NOT EXISTS rfi_homes (rfi_id TEXT PRIMARY KEY, peer TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Backend:
    """A backend's writers that a mirrored revision uses."""

    label_id: Callable[[Any, Label], int]
    append_event: Callable[..., int]
    append_audit: Callable[[Any, Sequence[AuditDraft]], None]


def _insert(conn: Any, d: shared.Dialect, table: str, values: tuple[Any, ...]) -> None:
    names = [f"v{i}" for i in range(len(values))]
    marks = ", ".join(d.param(name) for name in names)
    conn.execute(f"INSERT INTO {table} VALUES ({marks})", dict(zip(names, values, strict=True)))


def home_of(conn: Any, d: shared.Dialect, rfi_id: str) -> str | None:
    row = conn.execute(
        f"SELECT peer FROM rfi_homes WHERE rfi_id = {d.param('id')}", {"id": rfi_id}
    ).fetchone()
    return None if row is None else str(row[0])


def held_revision(conn: Any, d: shared.Dialect, rfi_id: str) -> int | None:
    row = conn.execute(
        f"SELECT revision FROM rfis WHERE id = {d.param('id')}", {"id": rfi_id}
    ).fetchone()
    return None if row is None else int(row[0])


def mirror(
    conn: Any,
    d: shared.Dialect,
    rfi: Rfi,
    home: str,
    backend: Backend,
    audit: Sequence[AuditDraft],
) -> bool:
    """`Rfis.mirror` inside the caller's write transaction, with the backend's own label
    ids, outbox and audit chain."""
    held = held_revision(conn, d, rfi.id)
    if held is not None:
        if home_of(conn, d, rfi.id) != home:
            raise Conflict(f"RFI {rfi.id} was not asked on node {home}")
        if held >= rfi.revision:
            return False
    label_id = backend.label_id(conn, rfi.label)
    mirror_in(conn, d, rfi, label_id, home)
    backend.append_event(conn, "rfi", rfi.id, rfi.revision, label_id)
    backend.append_audit(conn, audit)
    return True


def mirror_in(conn: Any, d: shared.Dialect, rfi: Rfi, label_id: int, home: str) -> None:
    """Replace the RFI's rows with this revision of it (inside the caller's transaction)."""
    for table, column in (("rfi_history", "rfi_id"), ("rfi_answers", "rfi_id"),
                          ("rfi_addressees", "rfi_id"), ("rfis", "id"),
                          ("rfi_homes", "rfi_id")):  # fmt: skip
        conn.execute(f"DELETE FROM {table} WHERE {column} = {d.param('id')}", {"id": rfi.id})
    row = shared.rfi_values(rfi, label_id)
    _insert(conn, d, "rfis", (*row[:-1], rfi.closed_reason))
    for position, a in enumerate(rfi.addressees):
        accepted_at = None if a.accepted_at is None else iso(a.accepted_at)
        _insert(conn, d, "rfi_addressees", (rfi.id, a.member, position, accepted_at, a.accepted_by))
    for answer in rfi.answers:
        _insert(conn, d, "rfi_answers", (rfi.id, answer.report_id, answer.member, answer.author,
                                         iso(answer.at), answer.revision))  # fmt: skip
    for change in rfi.history:
        _insert(conn, d, "rfi_history", shared.history_values(rfi.id, change))
    _insert(conn, d, "rfi_homes", (rfi.id, home))
