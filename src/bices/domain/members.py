"""Members, communities and the accession of a new member."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

import pycountry

from bices.domain.errors import InvalidInput
from bices.domain.labels import normalise_code

# The 32 NATO nations (Sweden joined on 7 March 2024) and the Indo-Pacific four.
NATO_NATIONS: tuple[str, ...] = (
    "ALB", "BEL", "BGR", "CAN", "HRV", "CZE", "DNK", "EST", "FIN", "FRA", "DEU",
    "GRC", "HUN", "ISL", "ITA", "LVA", "LTU", "LUX", "MNE", "NLD", "MKD", "NOR",
    "POL", "PRT", "ROU", "SVK", "SVN", "ESP", "SWE", "TUR", "GBR", "USA",
)  # fmt: skip
IP4_NATIONS: tuple[str, ...] = ("AUS", "JPN", "KOR", "NZL")
BUILTIN_COMMUNITIES: dict[str, tuple[str, ...]] = {"NATO": NATO_NATIONS, "IP4": IP4_NATIONS}


class MemberStatus(StrEnum):
    """Where a member stands; only ``active`` members see anything."""

    APPLICANT = "applicant"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    WITHDRAWN = "withdrawn"


class MemberKind(StrEnum):
    NATION = "nation"
    ORGANISATION = "organisation"


@dataclass(frozen=True, slots=True)
class Member:
    code: str
    name: str
    kind: MemberKind
    status: MemberStatus
    public_key: str | None  # Ed25519, raw 32 bytes, base64
    sponsor: str | None = None


def check_member_code(code: str, kind: MemberKind) -> str:
    """A nation must use its ISO 3166 alpha-3 code; an organisation any short code."""
    value = normalise_code(code)
    if kind is MemberKind.NATION and pycountry.countries.get(alpha_3=value) is None:
        raise InvalidInput(
            f"unknown ISO 3166 alpha-3 code {code!r}; use kind 'organisation' for an organisation"
        )
    return value


def country_name(code: str) -> str | None:
    """The ISO short name of a nation, or None for an organisation code."""
    country = pycountry.countries.get(alpha_3=code)
    return None if country is None else str(country.name)


QUORUM_PATTERN = re.compile(r"^(all|majority|\d+|\d+/\d+)$")


def check_quorum(rule: str) -> str:
    """Validate an accession quorum rule: ``majority``, ``all``, a count ``N`` or a fraction."""
    value = rule.strip().lower()
    if not QUORUM_PATTERN.match(value) or (value.isdigit() and int(value) == 0):
        raise InvalidInput(
            f"invalid accession quorum {rule!r}: "
            "use 'majority', 'all', a count or a fraction like 2/3"
        )
    if "/" in value:
        numerator, denominator = (int(part) for part in value.split("/"))
        if denominator == 0 or not 0 < numerator <= denominator:
            raise InvalidInput(
                f"invalid accession quorum {rule!r}: the fraction must lie in (0, 1]"
            )
    return value


def approvals_needed(rule: str, voters: int) -> int:
    """How many approving members an application needs when ``voters`` members may vote."""
    if voters <= 0:
        return 1
    value = check_quorum(rule)
    if value == "all":
        return voters
    if value == "majority":
        return voters // 2 + 1
    if "/" in value:
        share = Fraction(value)
        needed = -(-share.numerator * voters // share.denominator)  # ceiling
        return max(1, needed)
    return min(int(value), voters)
