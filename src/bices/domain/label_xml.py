"""Labels as ADatP-4774 XML (`urn:nato:stanag:4774:confidentialitymetadatalabel:1:0`).

Releasability is a PERMISSIVE category `Releasable To`; caveats a RESTRICTIVE category
`Additional Sensitivity`; the originator an `OriginatorID` URI `urn:bices:member:CODE`.
Input is parsed with defusedxml, so entity expansion and external references are refused.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from bices.domain.errors import InvalidInput
from bices.domain.labels import Label
from bices.domain.reports import iso

NS = "urn:nato:stanag:4774:confidentialitymetadatalabel:1:0"
POLICY = "NATO"
RELEASABLE_TO = "Releasable To"
ADDITIONAL_SENSITIVITY = "Additional Sensitivity"
ORIGINATOR_PREFIX = "urn:bices:member:"


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


def to_xml(label: Label, created: datetime | None = None) -> str:
    """An originator confidentiality label for the given label."""
    ET.register_namespace("slab", NS)
    root = ET.Element(_q("originatorConfidentialityLabel"))
    info = ET.SubElement(root, _q("ConfidentialityInformation"))
    ET.SubElement(info, _q("PolicyIdentifier")).text = POLICY
    ET.SubElement(info, _q("Classification")).text = label.classification.marking
    for kind, tag, values in (
        ("RESTRICTIVE", ADDITIONAL_SENSITIVITY, sorted(label.caveats)),
        ("PERMISSIVE", RELEASABLE_TO, label.to_json()["releasable_to"]),
    ):
        if values:
            category = ET.SubElement(info, _q("Category"), Type=kind, TagName=tag)
            for value in values:
                ET.SubElement(category, _q("GenericValue")).text = value
    originator = ET.SubElement(root, _q("OriginatorID"), IDType="uniformResourceIdentifier")
    originator.text = ORIGINATOR_PREFIX + label.originator
    ET.SubElement(root, _q("CreationDateTime")).text = iso(created or datetime.now(UTC))
    return ET.tostring(root, encoding="unicode")


def from_xml(text: str | bytes) -> Label:
    """Read a 4774 label; anything BICES cannot enforce is refused, with the reason."""
    try:
        root = fromstring(text)
    except (ET.ParseError, DefusedXmlException) as error:
        raise InvalidInput(f"label XML is not well-formed or not allowed: {error}") from None
    if root.tag not in {_q("originatorConfidentialityLabel"), _q("ConfidentialityLabel")}:
        raise InvalidInput(f"label XML root {root.tag!r} is not a 4774 confidentiality label")
    info = root.find(_q("ConfidentialityInformation"))
    if info is None:
        raise InvalidInput("label XML has no ConfidentialityInformation")
    policy = (info.findtext(_q("PolicyIdentifier")) or "").strip()
    if policy != POLICY:
        raise InvalidInput(f"label XML policy {policy!r} is not {POLICY!r}")
    releasable: list[str] = []
    caveats: list[str] = []
    for category in info.findall(_q("Category")):
        kind, tag = category.get("Type"), (category.get("TagName") or "").strip().lower()
        values = [(v.text or "").strip() for v in category.findall(_q("GenericValue"))]
        if kind == "PERMISSIVE" and tag == RELEASABLE_TO.lower():
            releasable.extend(values)
        elif kind == "RESTRICTIVE":
            caveats.extend(values)
        elif kind != "INFORMATIVE":
            raise InvalidInput(
                f"label XML category {category.get('TagName')!r} ({kind}) is unknown"
            )
    originator = (root.findtext(_q("OriginatorID")) or "").strip()
    if not originator.startswith(ORIGINATOR_PREFIX):
        raise InvalidInput(f"label XML OriginatorID {originator!r} is not {ORIGINATOR_PREFIX}CODE")
    classification = info.findtext(_q("Classification")) or ""
    return Label.build(classification, releasable, originator[len(ORIGINATOR_PREFIX) :], caveats)
