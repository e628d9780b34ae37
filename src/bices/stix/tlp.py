"""TLP markings: the five TLP 2.0 levels, how other platforms write them, and the policy
that turns them into BICES labels for the member that posts them.

Recognised: the TLP 2.0 marking definitions of the OASIS extension
(``extension-definition--60a3c5c5-…``), the STIX 2.1 predefined TLP 1.0 ones (WHITE reads
as CLEAR), OpenCTI's TLP:AMBER+STRICT, and any marking definition whose content says TLP
(``definition_type`` ``tlp`` with ``{"tlp": level}`` or a ``TLP:LEVEL`` string, the TLP
2.0 extension property, or OpenCTI's ``x_opencti_definition_type`` ``TLP``). A marking
that claims a level other than its standard id's is refused rather than believed.

Default policy (`TlpPolicy.default`), always adding the posting member to releasability:

==================  ===================  ==============================
TLP                 classification       releasable to
==================  ===================  ==============================
CLEAR (WHITE)       PUBLIC               NATO, IP4
GREEN               NATO UNCLASSIFIED    NATO, IP4
AMBER               NATO UNCLASSIFIED    the posting member only
AMBER+STRICT        NATO UNCLASSIFIED    the posting member only
RED                 refused              (named people only: the node cannot enforce it)
==================  ===================  ==============================

TLP says who may be told, not how much harm disclosure would do, so no level maps above
NATO UNCLASSIFIED. AMBER's "and its clients" has no counterpart between members, so AMBER
and AMBER+STRICT both stay with the member that received them. An operator may map RED and
any statement or custom marking (by its id) with `TlpPolicy.from_json`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bices.domain.errors import InvalidInput
from bices.domain.labels import Classification, normalise_caveat, normalise_code
from bices.stix._common import SPEC_VERSION, extensions_of

TLP2_EXTENSION_ID = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2_CREATED = "2022-10-01T00:00:00.000Z"


class TlpLevel(StrEnum):
    CLEAR = "clear"
    GREEN = "green"
    AMBER = "amber"
    AMBER_STRICT = "amber+strict"
    RED = "red"

    @property
    def marking_name(self) -> str:
        return f"TLP:{self.value.upper()}"


TLP2_IDS: dict[TlpLevel, str] = {
    TlpLevel.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    TlpLevel.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    TlpLevel.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    TlpLevel.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    TlpLevel.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
# STIX 2.1 section 7.2.1.4 (TLP 1.0) and OpenCTI's own AMBER+STRICT.
_OTHER_IDS: dict[str, TlpLevel] = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": TlpLevel.CLEAR,
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": TlpLevel.GREEN,
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": TlpLevel.AMBER,
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": TlpLevel.RED,
    "marking-definition--826578e1-40ad-459f-bc73-ede076f81f37": TlpLevel.AMBER_STRICT,
}
KNOWN_IDS: dict[str, TlpLevel] = {**{v: k for k, v in TLP2_IDS.items()}, **_OTHER_IDS}


def tlp_marking(level: TlpLevel) -> dict[str, Any]:
    """The TLP 2.0 marking definition of a level, as the OASIS extension publishes it."""
    return {
        "type": "marking-definition",
        "spec_version": SPEC_VERSION,
        "id": TLP2_IDS[level],
        "created": TLP2_CREATED,
        "name": level.marking_name,
        "extensions": {
            TLP2_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": level.value}
        },
    }


def _level(text: object) -> TlpLevel | None:
    if not isinstance(text, str):
        return None
    value = text.strip().lower().removeprefix("tlp:").strip()
    if value == "white":
        return TlpLevel.CLEAR
    try:
        return TlpLevel(value)
    except ValueError:
        return None


def claimed_level(marking: Mapping[str, Any]) -> TlpLevel | None:
    """The TLP level a marking definition's content states, if it states one."""
    extension = extensions_of(marking).get(TLP2_EXTENSION_ID)
    if isinstance(extension, Mapping) and "tlp_2_0" in extension:
        return _level(extension["tlp_2_0"])
    kind = marking.get("definition_type")
    if isinstance(kind, str) and kind.lower() == "tlp":
        definition = marking.get("definition")
        if isinstance(definition, Mapping):
            return _level(definition.get("tlp"))
        return _level(definition)
    # OpenCTI writes TLP:AMBER+STRICT as a statement with its TLP in custom properties.
    octi_kind = marking.get("x_opencti_definition_type")
    if isinstance(octi_kind, str) and octi_kind.lower() == "tlp":
        return _level(marking.get("x_opencti_definition"))
    return None


def tlp_level(marking_id: str, marking: Mapping[str, Any] | None) -> TlpLevel | None:
    """The TLP level of a marking (by standard id or by content); None if it is not TLP."""
    known = KNOWN_IDS.get(marking_id)
    claimed = None if marking is None else claimed_level(marking)
    if known is not None and claimed is not None and claimed is not known:
        raise InvalidInput(
            f"{marking_id} says {claimed.marking_name}, but that id is the standard "
            f"{known.marking_name} marking"
        )
    return known or claimed


@dataclass(frozen=True, slots=True)
class TlpRule:
    """What a marking becomes; the posting member is always added to `releasable_to`."""

    classification: Classification
    releasable_to: frozenset[str] = frozenset()
    caveats: frozenset[str] = frozenset()

    @classmethod
    def build(
        cls, classification: str, releasable_to: Iterable[str] = (), caveats: Iterable[str] = ()
    ) -> TlpRule:
        return cls(
            Classification.parse(classification),
            frozenset(normalise_code(c, "releasable-to code") for c in releasable_to),
            frozenset(normalise_caveat(c) for c in caveats),
        )


@dataclass(frozen=True, slots=True)
class TlpPolicy:
    """How TLP levels and other markings map to BICES labels for a posting member.

    `levels` maps a TLP level to a rule, or to None to refuse it; `markings` maps the id of
    any other marking definition (a statement, a platform's own marking) to a rule.
    """

    levels: Mapping[TlpLevel, TlpRule | None]
    markings: Mapping[str, TlpRule] = field(default_factory=dict)

    @classmethod
    def default(cls) -> TlpPolicy:
        coalition = frozenset({"NATO", "IP4"})
        own = TlpRule(Classification.NATO_UNCLASSIFIED)
        return cls(
            {
                TlpLevel.CLEAR: TlpRule(Classification.PUBLIC, coalition),
                TlpLevel.GREEN: TlpRule(Classification.NATO_UNCLASSIFIED, coalition),
                TlpLevel.AMBER: own,
                TlpLevel.AMBER_STRICT: own,
                TlpLevel.RED: None,
            }
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TlpPolicy:
        """A policy from settings: ``{"levels": {"red": {"classification": …,
        "releasable_to": […], "caveats": […]} | null, …}, "markings": {id: rule}}``.
        Levels not named keep their default."""
        levels: dict[TlpLevel, TlpRule | None] = dict(cls.default().levels)
        for name, rule in (data.get("levels") or {}).items():
            level = _level(name)
            if level is None:
                raise InvalidInput(f"TLP policy: unknown TLP level {name!r}")
            levels[level] = None if rule is None else _rule(rule, f"levels.{name}")
        markings = {
            marking_id: _rule(rule, f"markings.{marking_id}")
            for marking_id, rule in (data.get("markings") or {}).items()
        }
        return cls(levels, markings)

    def rule(self, marking_id: str, level: TlpLevel | None, describe: str) -> TlpRule:
        """The rule for one marking, or InvalidInput saying why it cannot be mapped."""
        if marking_id in self.markings:
            return self.markings[marking_id]
        if level is None:
            raise InvalidInput(f"marking {describe} has no mapping to a BICES label")
        rule = self.levels.get(level)
        if rule is None:
            raise InvalidInput(
                f"marking {level.marking_name} ({marking_id}) is refused by the TLP policy"
                + (": it limits sharing to named people" if level is TlpLevel.RED else "")
            )
        return rule


def _rule(data: object, where: str) -> TlpRule:
    if not isinstance(data, Mapping) or "classification" not in data:
        raise InvalidInput(f"TLP policy {where}: expected an object with a classification")
    return TlpRule.build(
        str(data["classification"]), data.get("releasable_to", ()), data.get("caveats", ())
    )
