"""Peer nodes and where delivery to each stands, in either SQL backend.

The `events` outbox is the durable store-and-forward queue: every stored version's event
is written in the transaction that stores it, and each peer keeps its own position in it
(`sent_seq`), moved only when the peer has acknowledged a batch. A lease (`lease_owner`,
`lease_until`) lets one process of a scale-out node deliver to a peer at a time; the move
of the position is a compare-and-set, so even two senders never skip an item.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from bices.domain.audit import AuditDraft
from bices.domain.errors import Conflict
from bices.domain.peers import Peer, PeerStatus
from bices.store.taxii_queries import Dialect, Executes

SCHEMA = """
-- Peer nodes, their node keys, the members they serve and the delivery position of each.
CREATE TABLE IF NOT EXISTS peers (
    name TEXT PRIMARY KEY, url TEXT NOT NULL, node_key TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL UNIQUE, members TEXT NOT NULL, status TEXT NOT NULL,
    added_at TEXT NOT NULL, sent_seq BIGINT NOT NULL DEFAULT 0, pulled TEXT,
    lease_owner TEXT, lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0, last_error TEXT, last_success TEXT
);
"""

COLUMNS = (
    "name, url, node_key, members, status, added_at, sent_seq, pulled, failures, last_error, "
    "last_success"
)

Connect = Callable[[], AbstractContextManager[Any]]
AppendAudit = Callable[[Any, Sequence[AuditDraft]], None]


def peer_of_row(row: Any) -> Peer:
    return Peer(
        name=row[0],
        url=row[1],
        node_key=row[2],
        members=tuple(json.loads(row[3])),
        status=PeerStatus(row[4]),
        added_at=datetime.fromisoformat(row[5]),
        sent_seq=int(row[6]),
        pulled=row[7],
        failures=int(row[8]),
        last_error=row[9],
        last_success=None if row[10] is None else datetime.fromisoformat(row[10]),
    )


class SqlPeers:
    """Implements `bices.store.base.Peers` over a backend's connections."""

    def __init__(
        self, write: Connect, read: Connect, dialect: Dialect, append_audit: AppendAudit
    ) -> None:
        self._write = write
        self._read = read
        self._d = dialect
        self._append_audit = append_audit

    def _p(self, name: str) -> str:
        return self._d.param(name)

    def add(self, peer: Peer, audit: AuditDraft) -> None:
        with self._write() as conn:
            taken = conn.execute(
                f"SELECT name FROM peers WHERE name = {self._p('name')} "
                f"OR fingerprint = {self._p('fingerprint')}",
                {"name": peer.name, "fingerprint": peer.fingerprint},
            ).fetchone()
            if taken is not None:
                raise Conflict(
                    f"peer {taken[0]} already exists with this name or node key; remove it first"
                )
            values = {
                "name": peer.name, "url": peer.url, "node_key": peer.node_key,
                "fingerprint": peer.fingerprint, "members": json.dumps(list(peer.members)),
                "status": peer.status.value, "added_at": peer.added_at.isoformat(),
                "sent_seq": peer.sent_seq,
            }  # fmt: skip
            names = ", ".join(values)
            marks = ", ".join(self._p(name) for name in values)
            conn.execute(f"INSERT INTO peers ({names}) VALUES ({marks})", values)
            self._append_audit(conn, [audit])

    def get(self, name: str) -> Peer | None:
        return self._one(f"name = {self._p('v')}", name)

    def by_fingerprint(self, fingerprint: str) -> Peer | None:
        return self._one(f"fingerprint = {self._p('v')}", fingerprint)

    def _one(self, where: str, value: str) -> Peer | None:
        with self._read() as conn:
            row = conn.execute(f"SELECT {COLUMNS} FROM peers WHERE {where}", {"v": value})
            found = row.fetchone()
        return None if found is None else peer_of_row(found)

    def all(self) -> list[Peer]:
        with self._read() as conn:
            rows = conn.execute(f"SELECT {COLUMNS} FROM peers ORDER BY name", {}).fetchall()
        return [peer_of_row(row) for row in rows]

    def set_status(self, name: str, status: PeerStatus, audit: AuditDraft) -> bool:
        return self._change(
            f"UPDATE peers SET status = {self._p('status')} WHERE name = {self._p('name')}",
            {"status": status.value, "name": name},
            audit,
        )

    def remove(self, name: str, audit: AuditDraft) -> bool:
        return self._change(
            f"DELETE FROM peers WHERE name = {self._p('name')}", {"name": name}, audit
        )

    def _change(self, sql: str, params: dict[str, Any], audit: AuditDraft) -> bool:
        with self._write() as conn:
            changed = _rowcount(conn.execute(sql, params)) == 1
            if changed:
                self._append_audit(conn, [audit])
        return changed

    def claim(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take or renew the lease to deliver to a peer; False if another process holds it."""
        now = time.time()
        with self._write() as conn:
            cursor = conn.execute(
                f"UPDATE peers SET lease_owner = {self._p('owner')}, "
                f"lease_until = {self._p('until')} WHERE name = {self._p('name')} "
                f"AND (lease_owner IS NULL OR lease_owner = {self._p('owner')} "
                f"OR lease_until < {self._p('now')})",
                {"owner": owner, "until": now + ttl_s, "name": name, "now": now},
            )
            return _rowcount(cursor) == 1

    def release(self, name: str, owner: str) -> None:
        with self._write() as conn:
            conn.execute(
                f"UPDATE peers SET lease_owner = NULL, lease_until = 0 "
                f"WHERE name = {self._p('name')} AND lease_owner = {self._p('owner')}",
                {"name": name, "owner": owner},
            )

    def delivered(self, name: str, after: int, upto: int, audit: Sequence[AuditDraft]) -> bool:
        """Move the peer's position from `after` to `upto` with the audit of the delivery,
        in one transaction; False (nothing changed) if it is no longer at `after`."""
        with self._write() as conn:
            cursor = conn.execute(
                f"UPDATE peers SET sent_seq = {self._p('upto')}, failures = 0, "
                f"last_error = NULL, last_success = {self._p('at')} "
                f"WHERE name = {self._p('name')} AND sent_seq = {self._p('after')}",
                {"upto": upto, "at": datetime.now(UTC).isoformat(), "name": name,
                 "after": after},
            )  # fmt: skip
            moved = _rowcount(cursor) == 1
            if moved and audit:
                self._append_audit(conn, audit)
        return moved

    def failed(self, name: str, error: str) -> None:
        with self._write() as conn:
            conn.execute(
                f"UPDATE peers SET failures = failures + 1, last_error = {self._p('error')} "
                f"WHERE name = {self._p('name')}",
                {"error": error[:500], "name": name},
            )

    def set_pulled(self, name: str, cursor: str) -> None:
        with self._write() as conn:
            conn.execute(
                f"UPDATE peers SET pulled = {self._p('cursor')} WHERE name = {self._p('name')}",
                {"cursor": cursor, "name": name},
            )

    def served(self) -> list[str]:
        """The members this node serves: those whose signing keys it holds."""
        with self._read() as conn:
            rows = conn.execute("SELECT member FROM signing_keys ORDER BY member", {})
            return [row[0] for row in rows.fetchall()]


def _rowcount(cursor: Any) -> int:
    return int(cursor.rowcount)


__all__ = ["SCHEMA", "Executes", "SqlPeers"]
