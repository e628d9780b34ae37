"""Merkle trees of byte strings, as Certificate Transparency makes them (RFC 9162 §2.1).

A leaf's hash is SHA-256(0x00 || leaf) and an inner node's SHA-256(0x01 || left || right),
so that no leaf can pass for an inner node. A tree of n > 1 leaves splits at the largest
power of two below n. An inclusion proof (the audit path) lists, from the leaf upwards, the
hash of each sibling subtree; with the leaf's index and the tree's size it leads back to
the root, and nothing else does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_and_paths(leaves: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root of the tree over `leaves` (their hashes, from `leaf_hash`) and each one's
    audit path."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    paths: list[list[bytes]] = [[] for _ in leaves]
    return _subtree(leaves, 0, len(leaves), paths), paths


def _subtree(hashes: Sequence[bytes], start: int, end: int, paths: list[list[bytes]]) -> bytes:
    if end - start == 1:
        return hashes[start]
    split = start + _largest_power_of_two_below(end - start)
    left = _subtree(hashes, start, split, paths)
    right = _subtree(hashes, split, end, paths)
    for index in range(start, split):
        paths[index].append(right)
    for index in range(split, end):
        paths[index].append(left)
    return _node(left, right)


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root that `path` leads to from the leaf hash `leaf` at `index` of a tree of
    `size` leaves (RFC 9162 §2.1.3.2), or None if the path cannot belong to such a tree."""
    if not 0 <= index < size:
        return None
    fn, sn, hashed = index, size - 1, leaf
    for sibling in path:
        if sn == 0 or len(sibling) != HASH_SIZE:
            return None
        if fn & 1 or fn == sn:
            hashed = _node(sibling, hashed)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            hashed = _node(hashed, sibling)
        fn >>= 1
        sn >>= 1
    return hashed if sn == 0 else None
