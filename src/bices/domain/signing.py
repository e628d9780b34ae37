"""Ed25519 signatures over a canonical JSON serialisation (ADatP-4778 style binding)."""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bices.domain.errors import InvalidInput


def canonical(payload: Any) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8: the same bytes on every node."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def new_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def load_private(raw: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def load_public(b64: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(b64, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise InvalidInput(f"public_key {b64!r} is not a base64 raw Ed25519 public key") from None


def sign(key: Ed25519PrivateKey, payload: Any) -> str:
    return base64.b64encode(key.sign(canonical(payload))).decode()


def verifies(public: Ed25519PublicKey, payload: Any, signature: str) -> bool:
    try:
        public.verify(base64.b64decode(signature, validate=True), canonical(payload))
    except (InvalidSignature, ValueError):
        return False
    return True
