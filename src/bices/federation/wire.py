"""What crosses between nodes: requests and answers signed with the nodes' Ed25519 keys,
and report versions as items that carry their originator's signature.

A request is signed over its method, target, date, body digest, and both nodes'
fingerprints, so it cannot be replayed to another node or altered; the answer is signed over
its status, date, body digest and the request's signature, so the sender knows who answered
what. Both ways, a node is known by its key, never by its address.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field

from bices.domain.labels import Label
from bices.domain.peers import fingerprint
from bices.domain.reports import (
    Attachment,
    Location,
    ReportType,
    ReportVersion,
    Source,
    iso,
)
from bices.domain.signing import canonical, load_public, public_b64

NODE = "bices-node"  # the sender's fingerprint
TO = "bices-to"  # the receiver's fingerprint
DATE = "bices-date"  # unix seconds
SIGNATURE = "bices-signature"
MAX_SKEW_S = 300  # how far a request's date may be from the receiver's clock
MAX_ITEMS = 500  # items in one batch or page


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _message(*parts: str) -> bytes:
    return "\n".join(parts).encode()


class NodeKey:
    """This node's signing key and the names others know it by."""

    def __init__(self, raw: bytes) -> None:
        self.private = Ed25519PrivateKey.from_private_bytes(raw)
        self.public = public_b64(self.private)
        self.fingerprint = fingerprint(self.public)

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private.sign(message)).decode()

    def request_headers(self, method: str, target: str, body: bytes, to: str) -> dict[str, str]:
        """Headers that sign a request to the node with fingerprint `to`."""
        date = str(int(time.time()))
        message = _message(method.upper(), target, date, _digest(body), self.fingerprint, to)
        return {NODE: self.fingerprint, TO: to, DATE: date, SIGNATURE: self.sign(message)}

    def response_headers(self, status: int, body: bytes, request_signature: str) -> dict[str, str]:
        date = str(int(time.time()))
        message = _message("response", str(status), date, _digest(body), request_signature)
        return {NODE: self.fingerprint, DATE: date, SIGNATURE: self.sign(message)}


def signature_verifies(public_key: str, message: bytes, signature: str) -> bool:
    try:
        load_public(public_key).verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def request_problem(
    public_key: str,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    me: str,
    now: float | None = None,
) -> str | None:
    """Why a request does not verify as signed by `public_key` and addressed to this node
    (fingerprint `me`), or None if it does."""
    date, signature = headers.get(DATE, ""), headers.get(SIGNATURE, "")
    if headers.get(TO) != me:
        return "the request is addressed to another node"
    try:
        skew = abs((time.time() if now is None else now) - int(date))
    except ValueError:
        return f"header {DATE} is not unix seconds"
    if skew > MAX_SKEW_S:
        return f"the request's date is {skew:.0f} s from this node's clock (limit {MAX_SKEW_S})"
    message = _message(method.upper(), target, date, _digest(body), headers.get(NODE, ""), me)
    if not signature_verifies(public_key, message, signature):
        return "the request's signature does not verify against the peer's node key"
    return None


def response_verifies(
    public_key: str, status: int, headers: Mapping[str, str], body: bytes, request_signature: str
) -> bool:
    message = _message(
        "response", str(status), headers.get(DATE, ""), _digest(body), request_signature
    )
    return signature_verifies(public_key, message, headers.get(SIGNATURE, ""))


# -- items ---------------------------------------------------------------------------


class LabelWire(BaseModel):
    model_config = ConfigDict(extra="forbid")
    classification: str
    releasable_to: list[str] = Field(max_length=64)
    caveats: list[str] = Field(max_length=16)
    originator: str


class AttachmentWire(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    name: str = Field(max_length=255)
    media_type: str = Field(max_length=127)
    size: int = Field(ge=0)


class TearlineWire(BaseModel):
    """The report a tearline was made from (sent only where that report may go too)."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
    version: int = Field(ge=1)


class ItemWire(BaseModel):
    """A report version as it crosses: its signed content, its signature, and the bytes of
    its attachments (base64, by sha256)."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
    version: int = Field(ge=1)
    type: ReportType
    title: str = Field(min_length=1, max_length=500)
    body: str = Field(max_length=1_000_000)
    language: str = Field(min_length=2, max_length=3)
    label: LabelWire
    source: Source
    reported_at: str
    observed_at: str | None
    locations: list[Location] = Field(max_length=100)
    attachments: list[AttachmentWire] = Field(max_length=20)
    author: str = Field(max_length=200)
    stored_at: str
    signature: str = Field(max_length=2048)  # a batch signature carries its audit path
    blobs: dict[str, str] = Field(default_factory=dict)
    tearline_of: TearlineWire | None = None


def item_of(version: ReportVersion, blobs: Mapping[str, bytes]) -> dict[str, Any]:
    """The wire form of a stored version and its attachments' bytes."""
    item = version.signed_content()
    item.update(
        author=version.author,
        stored_at=iso(version.stored_at),
        signature=version.signature,
        blobs={sha: base64.b64encode(data).decode() for sha, data in blobs.items()},
    )
    return item


def signed_part(item: Mapping[str, Any]) -> dict[str, Any]:
    """What of an item its originator signed."""
    unsigned = {"author", "stored_at", "signature", "blobs", "tearline_of"}
    return {key: value for key, value in item.items() if key not in unsigned}


def version_of(wire: ItemWire) -> tuple[ReportVersion, dict[str, bytes]]:
    """The version an item carries and its attachments' bytes (ValueError if malformed)."""
    label = Label.from_json(wire.label.model_dump())
    version = ReportVersion(
        id=wire.id,
        version=wire.version,
        type=wire.type,
        title=wire.title,
        body=wire.body,
        language=wire.language,
        label=label,
        source=wire.source,
        reported_at=datetime.fromisoformat(wire.reported_at),
        observed_at=None if wire.observed_at is None else datetime.fromisoformat(wire.observed_at),
        locations=tuple(wire.locations),
        attachments=tuple(
            Attachment(a.sha256, a.name, a.media_type, a.size) for a in wire.attachments
        ),
        author=wire.author,
        stored_at=datetime.fromisoformat(wire.stored_at),
        signature=wire.signature,
    )
    blobs: dict[str, bytes] = {}
    for attachment in version.attachments:
        encoded = wire.blobs.get(attachment.sha256)
        if encoded is None:
            raise ValueError(f"attachment {attachment.name!r} has no bytes")
        data = base64.b64decode(encoded, validate=True)
        if hashlib.sha256(data).hexdigest() != attachment.sha256 or len(data) != attachment.size:
            raise ValueError(f"attachment {attachment.name!r} does not match its digest and size")
        blobs[attachment.sha256] = data
    return version, blobs


def same_content(version: ReportVersion, item: Mapping[str, Any]) -> bool:
    """Whether what will be stored is byte for byte what the originator signed."""
    return canonical(version.signed_content()) == canonical(signed_part(item))
