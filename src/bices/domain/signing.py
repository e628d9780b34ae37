"""Ed25519 signatures over a canonical JSON serialisation (ADatP-4778 style binding)."""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bices.domain.errors import InvalidInput


def canonical(payload: Any) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8: the same bytes on every node.

    The bytes are those of `json.dumps(payload, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)`, which every signature made so far is over; orjson makes them in
    a tenth of the time. The two write some floats differently (json 1e-05, orjson
    0.00001), so orjson only gets a payload of plain JSON values with no such float in
    it; json makes the rest, and refuses what it always refused."""
    if _plain(payload):
        try:
            return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # orjson.JSONEncodeError: a key not a string, an int over 64 bits
            pass
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


_MAX_PLAIN_VALUES = 100_000  # a bigger payload (or a cycle) goes to json, which copes


def _plain(payload: Any) -> bool:
    """Whether orjson writes `payload` as json does: dicts, lists, tuples, strings, ints,
    booleans and None (exactly those types, not subclasses), and floats json writes without
    an exponent (0, and 1e-4 <= |x| < 1e16; json writes others as 1e-05 or 1e+16)."""
    stack = [payload]
    seen = 0
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            continue
        seen += 1
        if seen > _MAX_PLAIN_VALUES:
            return False
        if kind is dict:
            stack.extend(value.values())
        elif kind is list or kind is tuple:
            stack.extend(value)
        elif kind is float:
            size = abs(value)
            if size and not 1e-4 <= size < 1e16:  # NaN and infinities fail this too
                return False
        else:
            return False
    return True


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
