"""Identifiers and timestamps shared by the STIX mapping.

Every id the mapping makes is a UUIDv5 under one BICES namespace, so the same input always
yields the same objects (a TAXII server can de-duplicate, a peer can recognise a re-post).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bices.domain.errors import InvalidInput
from bices.domain.signing import canonical

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
    return canonical(value).decode()


def uuid5(namespace: uuid.UUID, name: str) -> str:
    """`str(uuid.uuid5(namespace, name))`, in a third of the time: the stdlib builds a
    `UUID` (an int, checked and formatted) just to print it, twice for each posted report."""
    digest = bytearray(hashlib.sha1(namespace.bytes + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def stix_id(kind: str, *parts: str) -> str:
    """A deterministic id of a BICES-made object, from what identifies it."""
    return f"{kind}--{uuid5(NAMESPACE, '/'.join((kind, *parts)))}"


def report_stix_id(report_id: str) -> str:
    """The ``report`` id of a report: its own UUID where STIX accepts it (RFC 4122,
    versions 1-5), else one derived from it (a client may choose any 128-bit id)."""
    if _RFC4122.match(report_id):
        return f"report--{report_id}"
    return stix_id("report", report_id)


def foreign_report_id(member: str, stix_object_id: str) -> str:
    """The BICES report id of a report another platform made, as `member` imports it.

    Derived from the importing member and the object's STIX id, never the STIX id itself:
    the same member importing it again gets the same id (and is told it already has it),
    while another member importing the same object gets a report of its own, and so learns
    nothing of a report it may not see. The STIX id stays in the report's source attachment.
    """
    return uuid5(NAMESPACE, f"foreign-report/{member}/{stix_object_id.lower()}")


def sco_id(kind: str, contributing: dict[str, Any]) -> str:
    """A cyber-observable id as STIX 2.1 derives it from the id-contributing properties."""
    return f"{kind}--{uuid5(SCO_NAMESPACE, canonical_json(contributing))}"


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
        return moment.astimezone(UTC)
    except ValueError as error:
        raise InvalidInput(f"{where}: {value!r} is not a valid time: {error}") from None
    except OverflowError:
        raise InvalidInput(
            f"{where}: {value!r} is out of the range of times (years 1-9999 in UTC)"
        ) from None


def json_kind(value: object) -> str:
    """What a JSON value is, for a message: `a list`, `a number`, …"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def where_of(obj: Mapping[str, Any]) -> str:
    object_id = obj.get("id")
    return object_id if isinstance(object_id, str) else "an object"


def text_of(obj: Mapping[str, Any], field: str) -> str | None:
    """A string property (None when absent); anything else is refused, naming the field."""
    value = obj.get(field)
    if value is None or isinstance(value, str):
        return value
    raise InvalidInput(f"{where_of(obj)}: {field} must be a string, not {json_kind(value)}")


def strings_of(obj: Mapping[str, Any], field: str, what: str = "strings") -> list[str]:
    """A list-of-strings property ([] when absent); anything else is refused."""
    value = obj.get(field)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput(
            f"{where_of(obj)}: {field} must be a list of {what}, not {json_kind(value)}"
        )
    for item in value:
        if not isinstance(item, str):
            raise InvalidInput(
                f"{where_of(obj)}: {field} must be a list of {what}; it holds {json_kind(item)}"
            )
    return value


def extensions_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """An object's `extensions` ({} when absent): an object of extensions by id."""
    value = obj.get("extensions")
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(
            f"{where_of(obj)}: extensions must be an object of extensions by id, "
            f"not {json_kind(value)}"
        )
    return value


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
