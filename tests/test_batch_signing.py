"""Batch signatures: one Ed25519 signature over a Merkle tree of a batch's canonical forms,
each report's signature checkable alone, and nothing else passing for it."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bices.domain.merkle import leaf_hash, root_and_paths, root_from_path
from bices.domain.reports import ReportDraft
from bices.domain.signing import new_key, sign_batch, verifies
from bices.share.reading import verify_version
from tests.conftest import Coalition, make_node, report_json

KEY = new_key()
PUBLIC = KEY.public_key()


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1, word for word: the Merkle Tree Hash of a list of leaf inputs."""
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=70))
def test_the_tree_is_rfc_9162s_and_every_path_leads_to_its_root(leaves: list[bytes]) -> None:
    root, paths = root_and_paths([leaf_hash(leaf) for leaf in leaves])
    assert root == mth(leaves)
    for index, (leaf, path) in enumerate(zip(leaves, paths, strict=True)):
        assert root_from_path(leaf_hash(leaf), index, len(leaves), path) == root
        # Under any other index or size (than an equivalent one), it leads elsewhere.
        for other in {index - 1, index + 1}:
            led = root_from_path(leaf_hash(leaf), other, len(leaves), path)
            assert led != root or leaves[other % len(leaves)] == leaf


def payloads(n: int) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "body": f"Kapal patroli ke-{i} terlihat di Selat Malaka"}
            for i in range(n)]  # fmt: skip


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 100, 101])
def test_each_signature_verifies_alone_and_for_its_own_payload_only(n: int) -> None:
    batch = payloads(n)
    signatures = sign_batch(KEY, batch)
    assert len(signatures) == n
    assert all(verifies(PUBLIC, p, s) for p, s in zip(batch, signatures, strict=True))
    assert signatures[0].startswith("batch1:") == (n > 1)  # one report: a plain signature
    if n > 1:
        assert not verifies(PUBLIC, batch[1], signatures[0])
        assert not verifies(PUBLIC, {**batch[0], "body": "changed"}, signatures[0])
        assert not verifies(new_key().public_key(), batch[0], signatures[0])


@settings(max_examples=300)
@given(st.data())
def test_no_change_to_a_batch_signature_verifies(data: st.DataObject) -> None:
    batch = payloads(data.draw(st.integers(2, 40)))
    index = data.draw(st.integers(0, len(batch) - 1))
    signature = sign_batch(KEY, batch)[index]
    at = data.draw(st.integers(0, len(signature) - 1))
    char = data.draw(st.characters(codec="ascii"))
    changed = signature[:at] + char + signature[at + 1 :]
    inserted = signature[:at] + char + signature[at:]
    if changed != signature:
        assert not verifies(PUBLIC, batch[index], changed)
    assert not verifies(PUBLIC, batch[index], inserted)


def test_malformed_batch_signatures_are_refused_not_raised() -> None:
    batch = payloads(5)
    _, index, size, head, path = sign_batch(KEY, batch)[2].split(":")
    for fields in (
        [index, size, head],  # too few parts
        ["02", size, head, path],  # a leading zero: one text per signature
        [index, "-5", head, path],
        [index, "4", head, path],  # another size
        ["5", size, head, path],  # an index beyond the tree
        [index, size, head, path[:-4]],  # a path cut short
        [index, size, head, path + "AAAA"],
        [index, size, "!!", path],
        [index, str(2**70), head, path],
        ["1" * 5000, size, head, path],  # too long for int() to read: refused, not raised
    ):
        assert not verifies(PUBLIC, batch[2], ":".join(["batch1", *fields]))


def test_a_signature_has_one_text() -> None:
    # base64 decoding ignores the bits below the last whole byte: the head (64 bytes) ends
    # in a character holding 2 of its bits and 4 spare ones, so 15 other characters there
    # decode to the same bytes.
    batch = payloads(5)
    signature = sign_batch(KEY, batch)[2]
    _, index, size, head, path = signature.split(":")
    assert head.endswith("==")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    same_bytes = [
        head[:-3] + c + "=="
        for c in alphabet
        if c != head[-3] and base64.b64decode(head[:-3] + c + "==") == base64.b64decode(head)
    ]
    assert len(same_bytes) == 15
    for other in same_bytes:
        assert not verifies(PUBLIC, batch[2], f"batch1:{index}:{size}:{other}:{path}")
    assert verifies(PUBLIC, batch[2], signature)


@pytest.mark.parametrize("batch_signing", [True, False])
def test_batch_signing_can_be_turned_off_for_older_peers(
    tmp_path: Path, batch_signing: bool
) -> None:
    node = make_node(tmp_path, batch_signing=batch_signing)
    try:
        viewer = node.coalition.authenticate(Coalition(node).user("USA"))
        drafts = [ReportDraft.model_validate(report_json(title=f"Laporan {i}")) for i in range(3)]
        stored = node.collector.submit(viewer, drafts)
        batched = [v.signature.startswith("batch1:") for v in stored]
        assert batched == [batch_signing] * 3
        assert all(verify_version(node.store, v).valid for v in stored)
    finally:
        node.close()
