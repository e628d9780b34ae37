"""Opaque cursors: positions in the store's sequence, sealed under a node secret.

A stream's event ids, a TAXII `next` and a listing's cursor all stand for a place in the
one sequence every stored item takes a number from. Given out plainly, the gap between
two numbers a user receives would count the items that user may not see. Sealed, each is
one AES block (a tag, the numbers, zero padding) under a key only the node holds: the
same place always gives the same text, and nothing can be read from it or made up (a
text that does not open to the right tag and padding is refused).
"""

from __future__ import annotations

import base64
import binascii
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# tag (1 byte), a (8 bytes, unsigned), b (4 bytes, unsigned), zero padding (3 bytes)
_LAYOUT = struct.Struct(">cQI3x")
MAX_A = 2**63 - 1  # fits SQLite's INTEGER
MAX_B = 2**32 - 1


class Sealer:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a cursor key is 32 bytes")
        self._cipher = Cipher(algorithms.AES(key), modes.ECB())  # one block: a permutation

    def seal(self, tag: bytes, a: int, b: int = 0) -> str:
        if not (0 <= a <= MAX_A and 0 <= b <= MAX_B):
            raise ValueError(f"cursor numbers out of range: {a}, {b}")
        encryptor = self._cipher.encryptor()
        block = encryptor.update(_LAYOUT.pack(tag, a, b)) + encryptor.finalize()
        return base64.urlsafe_b64encode(block).decode().rstrip("=")

    def open(self, tag: bytes, text: str) -> tuple[int, int] | None:
        """The numbers sealed in `text` under `tag`, or None if it is not such a cursor."""
        if len(text) != 22:
            return None
        try:
            block = base64.urlsafe_b64decode(text + "==")
        except (binascii.Error, ValueError):
            return None
        if len(block) != 16:
            return None
        decryptor = self._cipher.decryptor()
        plain = decryptor.update(block) + decryptor.finalize()
        if plain[-3:] != b"\0\0\0":
            return None
        found, a, b = _LAYOUT.unpack(plain)
        if found != tag or a > MAX_A:
            return None
        return a, b
