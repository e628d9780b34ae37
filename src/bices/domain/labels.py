"""Confidentiality labels after ADatP-4774: classification, releasability, caveats, originator."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from bices.domain.errors import InvalidInput


class Classification(IntEnum):
    """Classification levels, low to high; the integer order is the dominance order."""

    PUBLIC = 0
    NATO_UNCLASSIFIED = 1
    NATO_RESTRICTED = 2
    NATO_CONFIDENTIAL = 3
    NATO_SECRET = 4
    COSMIC_TOP_SECRET = 5

    @property
    def marking(self) -> str:
        """The level as it is written on a document, e.g. ``NATO SECRET``."""
        return self.name.replace("_", " ")

    @classmethod
    def parse(cls, text: str) -> Classification:
        """Read a marking such as ``NATO SECRET`` (case and separators are forgiven)."""
        key = re.sub(r"[\s_-]+", "_", text.strip().upper())
        try:
            return cls[key]
        except KeyError:
            levels = ", ".join(level.marking for level in cls)
            raise InvalidInput(
                f"unknown classification {text!r}; expected one of {levels}"
            ) from None


CODE_PATTERN = re.compile(r"^[A-Z][A-Z0-9-]{1,15}$")
CAVEAT_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9 /-]{0,47}$")


def normalise_code(code: str, what: str = "member code") -> str:
    """Upper-case a member or community code and check its shape."""
    value = code.strip().upper()
    if not CODE_PATTERN.match(value):
        raise InvalidInput(f"invalid {what} {code!r}: expected 2-16 letters, digits or '-'")
    return value


def normalise_caveat(caveat: str) -> str:
    """Upper-case a caveat and check its shape."""
    value = " ".join(caveat.strip().upper().split())
    if not CAVEAT_PATTERN.match(value):
        raise InvalidInput(
            f"invalid caveat {caveat!r}: expected 1-48 letters, digits, ' ', '/' or '-'"
        )
    return value


@dataclass(frozen=True, slots=True)
class Label:
    """The label bound to every item; releasability and caveats are kept sorted and unique."""

    classification: Classification
    releasable_to: frozenset[str]
    originator: str
    caveats: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def build(
        cls,
        classification: str | Classification,
        releasable_to: list[str] | frozenset[str] | tuple[str, ...],
        originator: str,
        caveats: list[str] | frozenset[str] | tuple[str, ...] = (),
    ) -> Label:
        """Make a label from user input, normalising and checking every part."""
        level = (
            classification
            if isinstance(classification, Classification)
            else Classification.parse(classification)
        )
        rel = frozenset(normalise_code(code, "releasable-to code") for code in releasable_to)
        if not rel:
            raise InvalidInput(
                "label.releasable_to is empty: name at least one member or community"
            )
        return cls(
            classification=level,
            releasable_to=rel,
            originator=normalise_code(originator),
            caveats=frozenset(normalise_caveat(c) for c in caveats),
        )

    def render(self) -> str:
        """The banner text, e.g. ``NATO SECRET // ATOMAL // REL TO NATO, KOR``."""
        parts = [self.classification.marking]
        parts.extend(sorted(self.caveats))
        parts.append("REL TO " + ", ".join(_rel_order(self.releasable_to)))
        return " // ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """The JSON form used by the API and in signed payloads."""
        return {
            "classification": self.classification.marking,
            "releasable_to": _rel_order(self.releasable_to),
            "caveats": sorted(self.caveats),
            "originator": self.originator,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Label:
        """Inverse of :meth:`to_json`."""
        return cls.build(
            data["classification"],
            data["releasable_to"],
            data["originator"],
            data.get("caveats", ()),
        )


def _rel_order(codes: frozenset[str]) -> list[str]:
    """Communities first (longer or well-known names), then members, each alphabetically.

    The order matches how banners are usually written: ``REL TO NATO, KOR``.
    """
    well_known = [code for code in ("NATO", "IP4") if code in codes]
    rest = sorted(codes - set(well_known))
    return well_known + rest
