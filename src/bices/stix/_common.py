"""Identifiers and timestamps shared by the STIX mapping.

Every id the mapping makes is a UUIDv5 under one BICES namespace, so the same input always
yields the same objects (a TAXII server can de-duplicate, a peer can recognise a re-post).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bices.domain.errors import InvalidInput

# Fixed for good: changing it would change every id BICES has ever exported.
NAMESPACE = uuid.UUID("0690b7aa-f0a6-448e-81ae-24d9912015aa")
# The STIX 2.1 namespace for deterministic cyber-observable ids (spec section 2.9).
SCO_NAMESPACE = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")
# When the mapping's own objects (extension definitions, the BICES identity) came to be.
EPOCH = "2024-07-01T00:00:00.000Z"
BICES_IDENTITY_ID = "identity--316a1da7-2000-424a-862d-d02c54481dcc"
SPEC_VERSION = "2.1"

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
STIX_ID = re.compile(rf"^([a-z0-9][a-z0-9-]*[a-z0-9])--({_UUID})$")
_RFC4122 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$"
)


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 kept: the text an id is derived from."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def stix_id(kind: str, *parts: str) -> str:
    """A deterministic id of a BICES-made object, from what identifies it."""
    return f"{kind}--{uuid.uuid5(NAMESPACE, '/'.join((kind, *parts)))}"


def report_stix_id(report_id: str) -> str:
    """The ``report`` id of a report: its own UUID where STIX accepts it (RFC 4122,
    versions 1-5), else one derived from it (a client may choose any 128-bit id)."""
    if _RFC4122.match(report_id):
        return f"report--{report_id}"
    return stix_id("report", report_id)


def sco_id(kind: str, contributing: dict[str, Any]) -> str:
    """A cyber-observable id as STIX 2.1 derives it from the id-contributing properties."""
    return f"{kind}--{uuid.uuid5(SCO_NAMESPACE, canonical_json(contributing))}"


def timestamp(moment: datetime) -> str:
    """A STIX timestamp: UTC, ``Z``, always milliseconds, microseconds when there are any."""
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond % 1000:
        return f"{text}.{utc.microsecond:06d}Z"
    return f"{text}.{utc.microsecond // 1000:03d}Z"


def parse_timestamp(value: object, where: str) -> datetime:
    """Read a STIX timestamp; digits beyond microseconds are dropped."""
    match = _TIMESTAMP.match(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidInput(f"{where}: {value!r} is not a STIX timestamp (YYYY-MM-DDTHH:MM:SSZ)")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime.fromisoformat(
            f"{year}-{month}-{day}T{hour}:{minute}:{second}.{micro:06d}"
            + ("+00:00" if zone == "Z" else zone)
        )
    except ValueError as error:
        raise InvalidInput(f"{where}: {value!r} is not a valid time: {error}") from None
    return moment.astimezone(UTC)


def bices_identity() -> dict[str, Any]:
    """The identity that creates BICES's extension and marking definitions."""
    return {
        "type": "identity",
        "spec_version": SPEC_VERSION,
        "id": BICES_IDENTITY_ID,
        "created": EPOCH,
        "modified": EPOCH,
        "name": "BICES",
        "description": "Battlefield Information Collection and Exploitation System: the "
        "software that defines the BICES STIX extensions.",
        "identity_class": "system",
    }


def unique_by_id(objects: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Objects in order, each id once (the first kept)."""
    seen: set[str] = set()
    out = []
    for obj in objects:
        if obj["id"] not in seen:
            seen.add(obj["id"])
            out.append(obj)
    return out
