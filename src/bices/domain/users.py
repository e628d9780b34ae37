"""Users of a member, their roles, and the viewer identity that the access rule reads."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bices.domain.errors import InvalidInput
from bices.domain.labels import Classification
from bices.domain.members import MemberStatus


class Role(StrEnum):
    ANALYST = "analyst"
    COLLECTOR = "collector"
    RELEASER = "releaser"
    MEMBER_ADMIN = "member-admin"
    OPERATOR = "operator"

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls(text.strip().lower())
        except ValueError:
            names = ", ".join(role.value for role in cls)
            raise InvalidInput(f"unknown role {text!r}; expected one of {names}") from None


WRITER_ROLES = frozenset({Role.ANALYST, Role.COLLECTOR, Role.RELEASER})


@dataclass(frozen=True, slots=True)
class Viewer:
    """Everything the access rule needs to know about who is looking."""

    user_id: int
    name: str
    member: str
    member_status: MemberStatus
    clearance: Classification
    caveats: frozenset[str]
    roles: frozenset[Role]

    def has(self, role: Role) -> bool:
        return role in self.roles or Role.OPERATOR in self.roles

    @property
    def may_write(self) -> bool:
        return bool(self.roles & WRITER_ROLES) or Role.OPERATOR in self.roles
