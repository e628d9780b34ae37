"""BICES labels as STIX 2.1 marking definitions, and the two BICES extension definitions.

A label is a ``marking-definition`` with a property extension (STIX 2.1 section 7.3)
carrying the ADatP-4774 fields: policy, classification, releasable_to (the PERMISSIVE
``Releasable To`` category), caveats (RESTRICTIVE ``Additional Sensitivity``) and
originator. Its id is a UUIDv5 of the label's canonical JSON, so one label is always one
object. The report extension carries what a ``report`` cannot say natively (version,
report type, Admiralty grading, exact times and places, attachments, signature).

Beside the label, an exported object carries the TLP 2.0 marking that follows from it:
TLP:CLEAR for a PUBLIC label without caveats (open source, no limit on disclosure), and
TLP:RED for every other label, so that a platform that cannot read the extension shares
it no further than the people it was given to. On import the BICES label always wins
over the TLP marking beside it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from bices.domain.errors import InvalidInput
from bices.domain.label_xml import POLICY
from bices.domain.labels import Classification, Label
from bices.stix._common import (
    BICES_IDENTITY_ID,
    EPOCH,
    NAMESPACE,
    SPEC_VERSION,
    canonical_json,
    extensions_of,
    json_kind,
)
from bices.stix.tlp import TlpLevel

EXTENSION_ID = "extension-definition--6f780977-7880-4e0d-9be9-528f9cc26f13"
REPORT_EXTENSION_ID = "extension-definition--ff487c00-e4d2-4863-9c68-d29d4941f0d2"

_LABEL_SCHEMA = (
    "Property extension of marking-definition: the BICES confidentiality label after "
    "ADatP-4774. Properties: policy (string, 'NATO'); classification (string: PUBLIC, NATO "
    "UNCLASSIFIED, NATO RESTRICTED, NATO CONFIDENTIAL, NATO SECRET, COSMIC TOP SECRET); "
    "releasable_to (list of member or community codes, the PERMISSIVE 'Releasable To' "
    "category: a viewer's member must be one of them or the originator); caveats (list of "
    "strings, RESTRICTIVE 'Additional Sensitivity': a viewer must hold every one); "
    "originator (member code)."
)
_REPORT_SCHEMA = (
    "Property extension of report: the BICES report fields. Properties: report_id (UUID), "
    "version (integer from 1), report_type (INTREP, INTSUM, SPOTREP, OSINT, TRACK, ISR, "
    "RFI-RESPONSE), language (ISO 639 code), originator (member code), source (object: name, "
    "reliability A-F, credibility 1-6, grading such as 'B2': the Admiralty grading), "
    "reported_at and observed_at (timestamps), locations (list of objects: lat, lon, "
    "optional name), attachments (list of objects: sha256, name, media_type, size; the "
    "content is an artifact object with that SHA-256), signature (the originator's Ed25519 "
    "signature over the canonical report content and label: base64, or, for a report signed "
    "with others of its batch, 'batch1:' index, size, the signature of the batch's Merkle "
    "tree head and the report's audit path, as the BICES README describes)."
)
_REPORT_SCHEMA_MODIFIED = "2026-11-26T00:00:00.000Z"  # the batch1 form of the signature


def _definition(
    ext_id: str,
    name: str,
    description: str,
    schema: str,
    modified: str = EPOCH,
    version: str = "1.0",
) -> dict[str, Any]:
    return {
        "type": "extension-definition",
        "spec_version": SPEC_VERSION,
        "id": ext_id,
        "created_by_ref": BICES_IDENTITY_ID,
        "created": EPOCH,
        "modified": modified,
        "name": name,
        "description": description,
        "schema": schema,
        "version": version,
        "extension_types": ["property-extension"],
    }


def extension_definition() -> dict[str, Any]:
    """The extension definition of the BICES confidentiality label."""
    return _definition(
        EXTENSION_ID,
        "BICES confidentiality label",
        "An ADatP-4774 confidentiality label (classification, releasability, caveats, "
        "originator) on a marking definition; BICES enforces it on every read.",
        _LABEL_SCHEMA,
    )


def report_extension_definition() -> dict[str, Any]:
    """The extension definition of the BICES report fields (grading, version, signature)."""
    return _definition(
        REPORT_EXTENSION_ID,
        "BICES report",
        "The fields of a BICES report that STIX has no property for, kept so that a report "
        "exported from one node arrives on another exactly as signed.",
        _REPORT_SCHEMA,
        modified=_REPORT_SCHEMA_MODIFIED,
        version="1.1",
    )


def label_marking(label: Label) -> dict[str, Any]:
    """The marking definition of one label; the same label always gives the same object."""
    fields = label.to_json()
    # STIX forbids empty lists; a label without caveats has none to list.
    carried = {key: value for key, value in fields.items() if value != []}
    return {
        "type": "marking-definition",
        "spec_version": SPEC_VERSION,
        "id": f"marking-definition--{uuid.uuid5(NAMESPACE, canonical_json(fields))}",
        "created_by_ref": BICES_IDENTITY_ID,
        "created": EPOCH,
        "name": label.render(),
        "extensions": {
            EXTENSION_ID: {"extension_type": "property-extension", "policy": POLICY, **carried}
        },
    }


def tlp_for(label: Label) -> TlpLevel:
    """The TLP level an exported object carries beside its label (see the module text)."""
    if label.classification is Classification.PUBLIC and not label.caveats:
        return TlpLevel.CLEAR
    return TlpLevel.RED


def is_label_marking(marking: Mapping[str, Any]) -> bool:
    return EXTENSION_ID in extensions_of(marking)


def label_from_marking(marking: Mapping[str, Any]) -> Label:
    """The label a BICES marking definition carries; its id must be the label's own."""
    marking_id = marking.get("id")
    data = extensions_of(marking)[EXTENSION_ID]
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{marking_id}: the BICES label extension is not an object")
    if data.get("policy", POLICY) != POLICY:
        raise InvalidInput(f"{marking_id}: label policy {data.get('policy')!r} is not {POLICY!r}")
    try:
        for field in ("classification", "originator"):
            if not isinstance(data[field], str):
                raise InvalidInput(f"{field} must be a string, not {json_kind(data[field])}")
        releasable, caveats = data["releasable_to"], data.get("caveats", [])
        for field, value in (("releasable_to", releasable), ("caveats", caveats)):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InvalidInput(f"{field} must be a list of strings")
        label = Label.build(data["classification"], releasable, data["originator"], caveats)
    except KeyError as missing:
        raise InvalidInput(f"{marking_id}: the BICES label has no {missing.args[0]}") from None
    except InvalidInput as error:
        raise InvalidInput(f"{marking_id}: {error}") from None
    if label_marking(label)["id"] != marking_id:
        raise InvalidInput(
            f"{marking_id}: its id is not the id of the label it carries ({label.render()})"
        )
    return label
