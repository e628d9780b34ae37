"""Peer nodes: the national nodes this node shares with, each known by its Ed25519 node key
and the members it serves."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from bices.domain.errors import InvalidInput
from bices.domain.signing import load_public

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


class PeerStatus(StrEnum):
    """`suspended` holds delivery (items wait in the outbox); `active` sends."""

    ACTIVE = "active"
    SUSPENDED = "suspended"


def fingerprint(public_key: str) -> str:
    """The SHA-256 of a node's raw public key in hex: what operators read to each other
    over the telephone before they peer (`bices node info` prints it)."""
    raw = load_public(public_key).public_bytes_raw()
    return hashlib.sha256(raw).hexdigest()


def same_key(given: str, public_key: str) -> bool:
    """Whether `given` (a base64 public key, or its fingerprint with any spaces or colons)
    names `public_key`."""
    text = given.strip()
    if text == public_key:
        return True
    return re.sub(r"[\s:]", "", text).lower() == fingerprint(public_key)


def check_peer_name(name: str) -> str:
    value = name.strip().lower()
    if not NAME_PATTERN.match(value):
        raise InvalidInput(
            f"peer name {name!r} must be 1-63 lower-case letters, digits, '.', '_' or '-'"
        )
    return value


@dataclass(frozen=True, slots=True)
class Peer:
    name: str
    url: str  # base URL of the peer's node, e.g. https://kor.bices.example:8443
    node_key: str  # Ed25519 public key, raw, base64
    members: tuple[str, ...]  # members the peer serves: what it may receive is for them
    status: PeerStatus
    added_at: datetime
    sent_seq: int = 0  # the outbox position delivered up to (this node's store order)
    pulled: str | None = None  # the peer's cursor this node has pulled up to
    failures: int = 0  # deliveries failed since the last success
    last_error: str | None = None
    last_success: datetime | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.node_key)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "node_key": self.node_key,
            "fingerprint": self.fingerprint,
            "members": list(self.members),
            "status": self.status.value,
            "added_at": self.added_at.isoformat(),
            "failures": self.failures,
            "last_error": self.last_error,
            "last_success": None if self.last_success is None else self.last_success.isoformat(),
        }
