"""Members, communities, accession, users and tokens in SQLite."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from bices.domain.audit import AuditDraft
from bices.domain.errors import Conflict, NotFound
from bices.domain.labels import Classification
from bices.domain.members import Member, MemberKind, MemberStatus, approvals_needed
from bices.domain.reports import iso
from bices.domain.users import Role, Viewer
from bices.policy import Directory
from bices.store.base import Accession, UserRecord
from bices.store.rows import RowLike
from bices.store.sqlite_audit import append_audit
from bices.store.sqlite_db import Database


def _now() -> str:
    return iso(datetime.now(UTC))


def _bump_directory(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'directory_version'")


def read_directory(rows: Callable[[str], Sequence[RowLike]]) -> tuple[int, Directory]:
    """The directory's version and the directory, from `rows(sql)`: the rows of a query
    in the caller's read snapshot (the same SQL on either backend)."""
    version = int(rows("SELECT value FROM meta WHERE key = 'directory_version'")[0]["value"])
    found: dict[str, set[str]] = {
        row["name"]: set() for row in rows("SELECT name FROM communities")
    }
    for row in rows("SELECT community, member FROM community_members"):
        found[row["community"]].add(row["member"])
    statuses = {
        row["code"]: MemberStatus(row["status"]) for row in rows("SELECT code, status FROM members")
    }
    return version, Directory(
        statuses=statuses, communities={name: frozenset(codes) for name, codes in found.items()}
    )


def member_of(row: RowLike) -> Member:
    return Member(
        code=row["code"],
        name=row["name"],
        kind=MemberKind(row["kind"]),
        status=MemberStatus(row["status"]),
        public_key=row["public_key"],
        sponsor=row["sponsor"],
    )


def user_of(row: RowLike) -> UserRecord:
    return UserRecord(
        id=row["id"],
        member=row["member"],
        name=row["name"],
        clearance=Classification(row["clearance"]),
        caveats=frozenset(json.loads(row["caveats"])),
        roles=frozenset(Role(r) for r in json.loads(row["roles"])),
        created_at=datetime.fromisoformat(row["created_at"]),
    )


def accession_of(row: RowLike, votes: Sequence[RowLike]) -> Accession:
    """An application from its row and the rows (member, approve) of its votes."""
    return Accession(
        code=row["code"],
        name=row["name"],
        kind=MemberKind(row["kind"]),
        sponsor=row["sponsor"],
        communities=tuple(json.loads(row["communities"])),
        status=row["status"],
        applied_at=datetime.fromisoformat(row["applied_at"]),
        public_key=row["public_key"],
        approvals=tuple(v["member"] for v in votes if v["approve"]),
        rejections=tuple(v["member"] for v in votes if not v["approve"]),
    )


def tally(votes: Sequence[RowLike], active: set[str], quorum: str) -> tuple[str, dict[str, int]]:
    """The application's status after its votes (only those of members active now count)
    and the figures of the decision, for its audit event."""
    approvals = sum(1 for v in votes if v["approve"] and v["member"] in active)
    rejections = sum(1 for v in votes if not v["approve"] and v["member"] in active)
    needed = approvals_needed(quorum, len(active))
    decision = {"needed": needed, "approvals": approvals, "rejections": rejections}
    if approvals >= needed:
        return "approved", decision
    if len(active) - rejections < needed:
        return "rejected", decision
    return "pending", decision


def pending(accession: Accession | None, code: str) -> Accession:
    """The application a vote is for, which must exist and be undecided."""
    if accession is None:
        raise NotFound(f"no application for {code}")
    if accession.status != "pending":
        raise Conflict(f"the application of {code} is already {accession.status}")
    return accession


def viewer_of_token(row: RowLike | None, now: datetime) -> Viewer | None:
    """The viewer a token row (a user's row with `member_status`, `expires_at` and
    `revoked_at`) stands for, if the token is known, unrevoked and unexpired."""
    if row is None or row["revoked_at"] is not None:
        return None
    if row["expires_at"] is not None and row["expires_at"] <= now.timestamp():
        return None
    user = user_of(row)
    return Viewer(
        user_id=user.id,
        name=user.name,
        member=user.member,
        member_status=MemberStatus(row["member_status"]),
        clearance=user.clearance,
        caveats=user.caveats,
        roles=user.roles,
    )


class SqliteCoalition:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._cached: tuple[int, Directory] | None = None

    # -- directory -------------------------------------------------------------------

    def directory_state(self) -> tuple[Directory, int]:
        """The directory and its version; re-read only when another write changed it."""
        conn = self._db.reader()
        version = conn.execute("SELECT value FROM meta WHERE key = 'directory_version'").fetchone()[
            0
        ]
        cached = self._cached
        if cached is not None and cached[0] == version:
            return cached[1], version
        with self._db.snapshot() as snap:
            version, directory = read_directory(lambda sql: snap.execute(sql).fetchall())
        with self._lock:
            self._cached = (version, directory)
        return directory, version

    def directory(self) -> Directory:
        return self.directory_state()[0]

    # -- members and communities -----------------------------------------------------

    def add_member(
        self,
        member: Member,
        communities: Sequence[str],
        audit: AuditDraft,
        private_key: bytes | None = None,
    ) -> None:
        with self._db.write() as conn:
            if conn.execute("SELECT 1 FROM members WHERE code = ?", (member.code,)).fetchone():
                raise Conflict(f"member {member.code} already exists")
            if conn.execute("SELECT 1 FROM communities WHERE name = ?", (member.code,)).fetchone():
                raise Conflict(f"member code {member.code} is already the name of a community")
            conn.execute(
                "INSERT INTO members VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    member.code,
                    member.name,
                    member.kind.value,
                    member.status.value,
                    member.public_key,
                    member.sponsor,
                    _now(),
                ),
            )
            for name in communities:
                if not conn.execute("SELECT 1 FROM communities WHERE name = ?", (name,)).fetchone():
                    raise NotFound(f"unknown community {name!r}")
                conn.execute(
                    "INSERT OR IGNORE INTO community_members VALUES (?, ?)", (name, member.code)
                )
            if private_key is not None:
                conn.execute("INSERT INTO signing_keys VALUES (?, ?)", (member.code, private_key))
            _bump_directory(conn)
            append_audit(conn, [audit])

    def get_member(self, code: str) -> Member | None:
        row = self._db.reader().execute("SELECT * FROM members WHERE code = ?", (code,)).fetchone()
        return None if row is None else member_of(row)

    def list_members(self) -> list[Member]:
        rows = self._db.reader().execute("SELECT * FROM members ORDER BY code").fetchall()
        return [member_of(row) for row in rows]

    def member_communities(self, code: str) -> list[str]:
        rows = self._db.reader().execute(
            "SELECT community FROM community_members WHERE member = ? ORDER BY community", (code,)
        )
        return [row[0] for row in rows]

    def set_member_status(self, code: str, status: MemberStatus, audit: AuditDraft) -> None:
        with self._db.write() as conn:
            updated = conn.execute(
                "UPDATE members SET status = ? WHERE code = ?", (status.value, code)
            ).rowcount
            if not updated:
                raise NotFound(f"unknown member {code!r}")
            _bump_directory(conn)
            append_audit(conn, [audit])

    def set_community(self, name: str, members: Sequence[str], audit: AuditDraft) -> None:
        with self._db.write() as conn:
            if conn.execute("SELECT 1 FROM members WHERE code = ?", (name,)).fetchone():
                raise Conflict(f"community name {name} is already a member code")
            conn.execute("INSERT OR IGNORE INTO communities VALUES (?, 0)", (name,))
            conn.execute("DELETE FROM community_members WHERE community = ?", (name,))
            conn.executemany(
                "INSERT INTO community_members VALUES (?, ?)", [(name, code) for code in members]
            )
            _bump_directory(conn)
            append_audit(conn, [audit])

    # -- accession -------------------------------------------------------------------

    def apply(self, accession: Accession, audit: AuditDraft) -> None:
        with self._db.write() as conn:
            if conn.execute("SELECT 1 FROM members WHERE code = ?", (accession.code,)).fetchone():
                raise Conflict(f"{accession.code} is already a member")
            if conn.execute(
                "SELECT 1 FROM accessions WHERE code = ? AND status = 'pending'", (accession.code,)
            ).fetchone():
                raise Conflict(f"{accession.code} already has a pending application")
            conn.execute("DELETE FROM accession_votes WHERE code = ?", (accession.code,))
            conn.execute(
                "INSERT OR REPLACE INTO accessions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    accession.code,
                    accession.name,
                    accession.kind.value,
                    accession.sponsor,
                    json.dumps(list(accession.communities)),
                    "pending",
                    iso(accession.applied_at),
                    accession.public_key,
                ),
            )
            append_audit(conn, [audit])

    def _accession(self, conn: sqlite3.Connection, code: str) -> Accession | None:
        row = conn.execute("SELECT * FROM accessions WHERE code = ?", (code,)).fetchone()
        if row is None:
            return None
        votes = conn.execute(
            "SELECT member, approve FROM accession_votes WHERE code = ? ORDER BY member", (code,)
        ).fetchall()
        return accession_of(row, votes)

    def get_accession(self, code: str) -> Accession | None:
        return self._accession(self._db.reader(), code)

    def list_accessions(self) -> list[Accession]:
        conn = self._db.reader()
        codes = [row[0] for row in conn.execute("SELECT code FROM accessions ORDER BY applied_at")]
        return [a for code in codes if (a := self._accession(conn, code)) is not None]

    def vote(
        self,
        code: str,
        member: str,
        approve: bool,
        audit: AuditDraft,
        quorum: str,
        new_key: tuple[str, bytes],
    ) -> Accession:
        """Record a vote and, in the same transaction, decide the application at quorum.

        Only approvals and rejections of members active now count; `new_key` (public,
        private) becomes the new member's key unless it applied with its own public key.
        """
        with self._db.write() as conn:
            accession = pending(self._accession(conn, code), code)
            conn.execute(
                "INSERT OR REPLACE INTO accession_votes VALUES (?, ?, ?, ?)",
                (code, member, int(approve), _now()),
            )
            append_audit(conn, [audit])
            active = {
                row[0] for row in conn.execute("SELECT code FROM members WHERE status = 'active'")
            }
            votes = conn.execute(
                "SELECT member, approve FROM accession_votes WHERE code = ?", (code,)
            ).fetchall()
            status, decision = tally(votes, active, quorum)
            if status == "approved":
                self._admit(conn, accession, new_key)
            if status != "pending":
                conn.execute("UPDATE accessions SET status = ? WHERE code = ?", (status, code))
                append_audit(conn, [replace(audit, action=f"accession.{status}", detail=decision)])
            decided = self._accession(conn, code)
        assert decided is not None
        return decided

    def _admit(
        self, conn: sqlite3.Connection, accession: Accession, new_key: tuple[str, bytes]
    ) -> None:
        code = accession.code
        if conn.execute("SELECT 1 FROM members WHERE code = ?", (code,)).fetchone():
            raise Conflict(f"{code} became a member while its application was pending")
        if conn.execute("SELECT 1 FROM communities WHERE name = ?", (code,)).fetchone():
            raise Conflict(f"{code} is the name of a community")
        public_key, private_key = (
            new_key if accession.public_key is None else (accession.public_key, None)
        )
        conn.execute(
            "INSERT INTO members VALUES (?, ?, ?, 'active', ?, ?, ?)",
            (code, accession.name, accession.kind.value, public_key, accession.sponsor, _now()),
        )
        if private_key is not None:
            conn.execute("INSERT INTO signing_keys VALUES (?, ?)", (code, private_key))
        conn.executemany(
            "INSERT OR IGNORE INTO community_members VALUES (?, ?)",
            [(name, code) for name in accession.communities],
        )
        _bump_directory(conn)

    # -- signing keys ----------------------------------------------------------------

    def signing_key(self, member: str) -> bytes | None:
        row = (
            self._db.reader()
            .execute("SELECT private_key FROM signing_keys WHERE member = ?", (member,))
            .fetchone()
        )
        return None if row is None else bytes(row[0])

    # -- users and tokens ------------------------------------------------------------

    def add_user(
        self,
        member: str,
        name: str,
        clearance: Classification,
        caveats: frozenset[str],
        roles: frozenset[Role],
        audit: AuditDraft,
        token_hash: str,
    ) -> UserRecord:
        """The user and its first token, in one transaction."""
        with self._db.write() as conn:
            if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise Conflict(f"user name {name!r} is taken")
            cursor = conn.execute(
                "INSERT INTO users (member, name, clearance, caveats, roles, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    member,
                    name,
                    int(clearance),
                    json.dumps(sorted(caveats)),
                    json.dumps(sorted(r.value for r in roles)),
                    _now(),
                ),
            )
            conn.execute(
                "INSERT INTO tokens (hash, user_id, created_at) VALUES (?, ?, ?)",
                (token_hash, cursor.lastrowid, _now()),
            )
            append_audit(conn, [audit])
            row = conn.execute("SELECT * FROM users WHERE id = ?", (cursor.lastrowid,)).fetchone()
        return user_of(row)

    def get_user(self, name: str) -> UserRecord | None:
        row = self._db.reader().execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        return None if row is None else user_of(row)

    def list_users(self, member: str | None = None) -> list[UserRecord]:
        conn = self._db.reader()
        if member is None:
            rows = conn.execute("SELECT * FROM users ORDER BY id").fetchall()
        else:
            rows = conn.execute(
                "SELECT * FROM users WHERE member = ? ORDER BY id", (member,)
            ).fetchall()
        return [user_of(row) for row in rows]

    def add_token(
        self, user_id: int, token_hash: str, expires_at: datetime | None, audit: AuditDraft
    ) -> int:
        with self._db.write() as conn:
            append_audit(conn, [audit])
            cursor = conn.execute(
                "INSERT INTO tokens (hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                (
                    token_hash,
                    user_id,
                    _now(),
                    None if expires_at is None else expires_at.timestamp(),
                ),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def revoke_tokens(self, user_id: int, audit: AuditDraft, token_id: int | None = None) -> int:
        with self._db.write() as conn:
            sql = "UPDATE tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL"
            params: list[object] = [_now(), user_id]
            if token_id is not None:
                sql += " AND id = ?"
                params.append(token_id)
            count = conn.execute(sql, params).rowcount
            if count:  # open streams re-check their tokens when the directory changes
                _bump_directory(conn)
            append_audit(conn, [audit])
        return count

    def viewer_for_token(self, token_hash: str, now: datetime) -> Viewer | None:
        row = (
            self._db.reader()
            .execute(
                "SELECT u.*, m.status AS member_status, t.expires_at, t.revoked_at FROM tokens t "
                "JOIN users u ON u.id = t.user_id JOIN members m ON m.code = u.member "
                "WHERE t.hash = ?",
                (token_hash,),
            )
            .fetchone()
        )
        return viewer_of_token(row, now)
