"""The coalition's directory as a service: members, accession, communities, users, tokens.

The operator's CLI acts as the node operator; API callers act as a `Viewer` whose roles
are checked here, so the CLI and the API share one implementation.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bices.domain.audit import AuditDraft
from bices.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from bices.domain.labels import Classification, normalise_caveat, normalise_code
from bices.domain.members import (
    Member,
    MemberKind,
    MemberStatus,
    check_member_code,
)
from bices.domain.signing import load_public, new_key, private_bytes, public_b64
from bices.domain.users import Role, Viewer
from bices.store.base import Accession, Store, UserRecord

OPERATOR = "operator"  # the actor name of the node operator at the CLI
TOKEN_PREFIX = "bices_"


def hash_token(token: str) -> str:
    """Tokens carry 256 random bits, so a plain SHA-256 is a safe stored form."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _actor(viewer: Viewer | None) -> tuple[str, str | None]:
    return (OPERATOR, None) if viewer is None else (viewer.name, viewer.member)


def _audit(viewer: Viewer | None, action: str, target: str, **detail: object) -> AuditDraft:
    actor, member = _actor(viewer)
    return AuditDraft(actor=actor, member=member, action=action, target=target, detail=detail)


class CoalitionService:
    def __init__(self, store: Store, quorum: str) -> None:
        self.store = store
        self.quorum = quorum

    # -- authentication --------------------------------------------------------------

    def authenticate(self, token: str) -> Viewer:
        viewer = self.store.coalition.viewer_for_token(hash_token(token), datetime.now(UTC))
        if viewer is None:
            raise Unauthenticated("token is unknown, expired or revoked")
        if viewer.member_status is not MemberStatus.ACTIVE:
            raise Forbidden(f"member {viewer.member} is {viewer.member_status.value}")
        return viewer

    def viewer_of(self, name: str) -> Viewer:
        """The viewer of a named user, for the operator's CLI acting on that user's behalf."""
        user = self.user(name)
        member = self._member(user.member)
        return Viewer(user.id, user.name, user.member, member.status, user.clearance,
                      user.caveats, user.roles)  # fmt: skip

    # -- members ---------------------------------------------------------------------

    def add_member(
        self,
        code: str,
        name: str,
        kind: MemberKind = MemberKind.NATION,
        communities: Sequence[str] = (),
        viewer: Viewer | None = None,
        public_key: str | None = None,
    ) -> Member:
        """Operator bootstrap: an active member with a fresh signing key held by this node,
        or, given the member's `public_key`, a member served by a peer node (this node then
        only verifies its signatures)."""
        self._require_operator(viewer)
        code = check_member_code(code, kind)
        if not name.strip():
            raise InvalidInput("member name is blank")
        names = [normalise_code(c, "community") for c in communities]
        audit = _audit(viewer, "member.add", code, communities=names, served=public_key is None)
        if public_key is not None:
            load_public(public_key)  # refuses what is not an Ed25519 public key
            member = Member(code, name.strip(), kind, MemberStatus.ACTIVE, public_key)
            self.store.coalition.add_member(member, names, audit)
            return member
        key = new_key()
        member = Member(code, name.strip(), kind, MemberStatus.ACTIVE, public_b64(key))
        self.store.coalition.add_member(member, names, audit, private_bytes(key))
        return member

    def set_status(self, code: str, status: MemberStatus, viewer: Viewer | None = None) -> Member:
        """Suspend, reinstate or withdraw a member; it takes effect on the next request."""
        code = normalise_code(code)
        member = self._member(code)
        if viewer is not None:
            own_withdrawal = (
                status is MemberStatus.WITHDRAWN
                and viewer.member == code
                and viewer.has(Role.MEMBER_ADMIN)
            )
            if not own_withdrawal and not viewer.has(Role.OPERATOR):
                raise Forbidden(f"only an operator may set a member {status.value}")
        allowed = {
            MemberStatus.SUSPENDED: {MemberStatus.ACTIVE},
            MemberStatus.ACTIVE: {MemberStatus.SUSPENDED},
            MemberStatus.WITHDRAWN: {MemberStatus.ACTIVE, MemberStatus.SUSPENDED},
        }
        if member.status not in allowed.get(status, set()):
            raise Conflict(
                f"member {code} is {member.status.value}; it cannot become {status.value}"
            )
        self.store.coalition.set_member_status(
            code,
            status,
            _audit(viewer, f"member.{status.value}", code, previous=member.status.value),
        )
        return self._member(code)

    def define_community(
        self, name: str, members: Sequence[str], viewer: Viewer | None = None
    ) -> list[str]:
        self._require_operator(viewer)
        name = normalise_code(name, "community name")
        codes = sorted({normalise_code(code) for code in members})
        known = self.store.coalition.directory().statuses
        unknown = [code for code in codes if code not in known]
        if unknown:
            raise InvalidInput(f"community {name} names unknown members: {', '.join(unknown)}")
        self.store.coalition.set_community(
            name, codes, _audit(viewer, "community.define", name, members=codes)
        )
        return codes

    def _member(self, code: str) -> Member:
        member = self.store.coalition.get_member(code)
        if member is None:
            raise NotFound(f"unknown member {code!r}")
        return member

    def _require_operator(self, viewer: Viewer | None) -> None:
        if viewer is not None and not viewer.has(Role.OPERATOR):
            raise Forbidden("this action needs the operator role")

    # -- accession -------------------------------------------------------------------

    def apply(
        self,
        code: str,
        name: str,
        sponsor: str,
        kind: MemberKind = MemberKind.NATION,
        communities: Sequence[str] = (),
        public_key: str | None = None,
        viewer: Viewer | None = None,
    ) -> Accession:
        """An application to join, sponsored by an active member (its administrator applies)."""
        code = check_member_code(code, kind)
        sponsor = normalise_code(sponsor)
        if viewer is not None:
            if not viewer.has(Role.MEMBER_ADMIN):
                raise Forbidden("applying for a new member needs the member-admin role")
            if not viewer.has(Role.OPERATOR) and viewer.member != sponsor:
                raise Forbidden(f"a {viewer.member} administrator cannot sponsor for {sponsor}")
        if self._member(sponsor).status is not MemberStatus.ACTIVE:
            raise Conflict(f"sponsor {sponsor} is not an active member")
        if public_key is not None:
            load_public(public_key)
        directory = self.store.coalition.directory()
        names = [normalise_code(c, "community") for c in communities]
        unknown = [c for c in names if c not in directory.communities]
        if unknown:
            raise InvalidInput(f"unknown communities: {', '.join(unknown)}")
        if not name.strip():
            raise InvalidInput("applicant name is blank")
        accession = Accession(
            code, name.strip(), kind, sponsor, tuple(names), "pending", datetime.now(UTC),
            public_key,
        )  # fmt: skip
        detail = {"sponsor": sponsor, "communities": names, "public_key": public_key}
        self.store.coalition.apply(accession, _audit(viewer, "accession.apply", code, **detail))
        return accession

    def vote(
        self, code: str, approve: bool, member: str | None = None, viewer: Viewer | None = None
    ) -> Accession:
        """An active member's administrator approves or rejects; the quorum decides."""
        code = normalise_code(code)
        if viewer is not None:
            if not viewer.has(Role.MEMBER_ADMIN):
                raise Forbidden("voting on an accession needs the member-admin role")
            member = viewer.member
        if member is None:
            raise InvalidInput("the voting member is missing (use --as-member CODE)")
        member = normalise_code(member)
        if self._member(member).status is not MemberStatus.ACTIVE:
            raise Forbidden(f"member {member} is not active and cannot vote")
        verb = "approve" if approve else "reject"
        key = new_key()
        return self.store.coalition.vote(
            code,
            member,
            approve,
            _audit(viewer, f"accession.{verb}", code, member=member),
            self.quorum,
            (public_b64(key), private_bytes(key)),
        )

    # -- users and tokens ------------------------------------------------------------

    def add_user(
        self,
        member: str,
        name: str,
        clearance: str,
        caveats: Sequence[str] = (),
        roles: Sequence[str] = ("analyst",),
        viewer: Viewer | None = None,
    ) -> tuple[UserRecord, str]:
        """A user of a member and a first API token (returned once, stored hashed)."""
        member = normalise_code(member)
        if viewer is not None and not (
            viewer.has(Role.OPERATOR) or (viewer.has(Role.MEMBER_ADMIN) and viewer.member == member)
        ):
            raise Forbidden(f"only an operator or a {member} member-admin may add {member} users")
        if self._member(member).status is not MemberStatus.ACTIVE:
            raise Conflict(f"member {member} is not active")
        if not name.strip() or len(name) > 100 or ":" in name:
            raise InvalidInput(f"invalid user name {name!r}: 1-100 characters, no ':'")
        level = Classification.parse(clearance)
        role_set = frozenset(Role.parse(r) for r in roles)
        if viewer is not None and Role.OPERATOR in role_set and not viewer.has(Role.OPERATOR):
            raise Forbidden("only an operator may grant the operator role")
        token = new_token()
        user = self.store.coalition.add_user(
            member,
            name.strip(),
            level,
            frozenset(normalise_caveat(c) for c in caveats),
            role_set,
            _audit(viewer, "user.add", name.strip(), member=member, clearance=level.marking),
            hash_token(token),
        )
        return user, token

    def users(self, viewer: Viewer | None = None) -> list[UserRecord]:
        """Operators (and the CLI) see every user; member-admins their own member's."""
        if viewer is None or viewer.has(Role.OPERATOR):
            return self.store.coalition.list_users()
        if viewer.has(Role.MEMBER_ADMIN):
            return self.store.coalition.list_users(viewer.member)
        raise Forbidden("listing users needs the member-admin or operator role")

    def issue_token(
        self, user: UserRecord, ttl: timedelta | None = None, viewer: Viewer | None = None
    ) -> str:
        """Another token for a user, shown once; issuing it is audited."""
        self._may_manage(viewer, user, "issue a token for")
        token = new_token()
        expires = None if ttl is None else datetime.now(UTC) + ttl
        audit = _audit(viewer, "token.issue", user.name,
                       expires=None if expires is None else expires.isoformat())  # fmt: skip
        self.store.coalition.add_token(user.id, hash_token(token), expires, audit)
        return token

    def _may_manage(self, viewer: Viewer | None, user: UserRecord, what: str) -> None:
        """The user itself, an operator, or its member's admin (not over an operator)."""
        if viewer is None or viewer.user_id == user.id or viewer.has(Role.OPERATOR):
            return
        if (
            viewer.has(Role.MEMBER_ADMIN)
            and viewer.member == user.member
            and Role.OPERATOR not in user.roles
        ):
            return
        raise Forbidden(f"{viewer.name} may not {what} {user.name}")

    def user(self, name: str, viewer: Viewer | None = None) -> UserRecord:
        user = self.store.coalition.get_user(name)
        if user is None or (
            viewer is not None and not viewer.has(Role.OPERATOR) and viewer.member != user.member
        ):
            raise NotFound(f"unknown user {name!r}")
        return user

    def revoke(self, name: str, viewer: Viewer | None = None) -> int:
        """Revoke every token of a user: the user itself, its member-admin or an operator."""
        user = self.user(name, viewer)
        self._may_manage(viewer, user, "revoke the tokens of")
        return self.store.coalition.revoke_tokens(user.id, _audit(viewer, "token.revoke", name))
