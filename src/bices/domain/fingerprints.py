"""Fingerprints for correlation: exact and near-duplicate detection (MinHash with LSH bands).

A version's words (lower case, Unicode word characters) give an exact hash and a MinHash
signature over 4-word shingles. The signature is cut into `BANDS` bands of `ROWS` values;
two texts whose Jaccard similarity is s share at least one band with probability
1 - (1 - s^ROWS)^BANDS, about 0.96 at s = 0.8 and 0.02 at s = 0.4, so the store looks up
candidates by band and keeps those whose estimated similarity reaches `NEAR_DUPLICATE`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np
from datasketch import MinHash

PERMUTATIONS = 64
BANDS, ROWS = 16, 4
SHINGLE = 4
NEAR_DUPLICATE = 0.8
SEED = 7  # fixed: signatures stored by one process are compared in another

WORD = re.compile(r"\w+")
# Generating the permutations is most of the cost of a MinHash; they depend only on the seed.
_TEMPLATE = MinHash(num_perm=PERMUTATIONS, seed=SEED)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    exact: str  # sha256 of the normalised words
    signature: bytes  # PERMUTATIONS little-endian uint32
    bands: tuple[int, ...]  # one bucket per band

    def similarity(self, other_signature: bytes) -> float:
        """Estimated Jaccard similarity of the two shingle sets."""
        mine = np.frombuffer(self.signature, dtype="<u4")
        theirs = np.frombuffer(other_signature, dtype="<u4")
        return float(np.count_nonzero(mine == theirs)) / PERMUTATIONS


def fingerprint(title: str, body: str) -> Fingerprint:
    words = WORD.findall(f"{title}\n{body}".lower())
    exact = hashlib.sha256(" ".join(words).encode()).hexdigest()
    shingles = {" ".join(words[i : i + SHINGLE]) for i in range(max(1, len(words) - SHINGLE + 1))}
    minhash = MinHash(num_perm=PERMUTATIONS, seed=SEED, permutations=_TEMPLATE.permutations,
                      scheme=_TEMPLATE.scheme)  # fmt: skip
    minhash.update_batch([s.encode() for s in shingles])
    values = minhash.hashvalues.astype("<u4")
    bands = tuple(
        int.from_bytes(hashlib.blake2b(values[b * ROWS : (b + 1) * ROWS].tobytes(),
                                       digest_size=7).digest(), "little")
        for b in range(BANDS)
    )  # fmt: skip
    return Fingerprint(exact, values.tobytes(), bands)
