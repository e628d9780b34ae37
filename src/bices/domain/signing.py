"""Ed25519 signatures over a canonical JSON serialisation (ADatP-4778 style binding)."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bices.domain.errors import InvalidInput
from bices.domain.merkle import HASH_SIZE, leaf_hash, root_and_paths, root_from_path


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


BATCH = "batch1"  # the prefix of a signature over a batch: never the start of plain base64
_TREE_HEAD = b"BICES batch signature v1\x00"  # what the key signs: this, size, root
_MAX_BATCH_SIZE = 1 << 32


def sign_batch(key: Ed25519PrivateKey, payloads: Sequence[Any]) -> list[str]:
    """A signature for each payload, made with one Ed25519 signature for all of them.

    The key signs the root of a Merkle tree (`bices.domain.merkle`) whose leaves are the
    payloads' canonical forms; each payload's signature is
    `batch1:<index>:<size>:<signature of the tree head>:<audit path>` (signature and path
    base64, the path the sibling hashes from the leaf upwards), which `verifies` checks
    alone, without the other payloads. A tree head is `_TREE_HEAD`, the size as 8 bytes big
    endian, and the root. One payload gets a plain signature."""
    if len(payloads) == 1:
        return [sign(key, payloads[0])]
    leaves = [leaf_hash(canonical(payload)) for payload in payloads]
    root, paths = root_and_paths(leaves)
    size = len(leaves)
    head = base64.b64encode(key.sign(_tree_head(size, root))).decode()
    return [
        f"{BATCH}:{index}:{size}:{head}:{base64.b64encode(b''.join(path)).decode()}"
        for index, path in enumerate(paths)
    ]


def _tree_head(size: int, root: bytes) -> bytes:
    return _TREE_HEAD + size.to_bytes(8, "big") + root


def verifies(public: Ed25519PublicKey, payload: Any, signature: str) -> bool:
    """Whether `signature` (plain or a batch's, see `sign_batch`) is the key's over
    `payload`."""
    if signature.startswith(BATCH + ":"):
        return _batch_verifies(public, canonical(payload), signature)
    try:
        public.verify(base64.b64decode(signature, validate=True), canonical(payload))
    except (InvalidSignature, ValueError):
        return False
    return True


def _batch_verifies(public: Ed25519PublicKey, message: bytes, signature: str) -> bool:
    parts = signature.split(":")
    if len(parts) != 5 or not all(_decimal(part) for part in parts[1:3]):
        return False
    index, size = int(parts[1]), int(parts[2])
    if size > _MAX_BATCH_SIZE:
        return False
    head, joined = _strict_b64(parts[3]), _strict_b64(parts[4])
    if head is None or joined is None or len(joined) % HASH_SIZE:
        return False
    path = [joined[at : at + HASH_SIZE] for at in range(0, len(joined), HASH_SIZE)]
    root = root_from_path(leaf_hash(message), index, size, path)
    if root is None:
        return False
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _head_verifies(raw, _tree_head(size, root), head)


def _decimal(text: str) -> bool:
    """A number written one way only (digits, no leading zero), of at most 10 digits: a
    batch signature has one text, and a size is at most 2**32."""
    return (
        0 < len(text) <= 10
        and text.isascii()
        and text.isdigit()
        and (text == "0" or not text.startswith("0"))
    )


def _strict_b64(text: str) -> bytes | None:
    """The bytes of standard padded base64 written the one way `b64encode` writes them
    (decoding alone ignores the unused bits before `=`, which would let a signature be
    rewritten and still verify); None for anything else."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        return None
    return raw if base64.b64encode(raw).decode() == text else None


@lru_cache(maxsize=4096)
def _head_verifies(public: bytes, head: bytes, signature: bytes) -> bool:
    """Whether a tree head's signature verifies; remembered, as every version of a batch
    (received from a peer, or checked by `bices report verify`) checks the same head."""
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, head)
    except (InvalidSignature, ValueError):
        return False
    return True
