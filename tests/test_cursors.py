"""Sealed cursors: what goes in comes out under the same tag, and nothing else opens."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bices.domain.cursors import MAX_A, MAX_B, Sealer

KEY = os.urandom(32)


@given(a=st.integers(0, MAX_A), b=st.integers(0, MAX_B))
def test_round_trip_under_its_tag_only(a: int, b: int) -> None:
    sealer = Sealer(KEY)
    text = sealer.seal(b"e", a, b)
    assert len(text) == 22 and not text.isdigit()
    assert sealer.open(b"e", text) == (a, b)
    assert sealer.open(b"t", text) is None
    assert Sealer(os.urandom(32)).open(b"e", text) is None  # another node's key


@given(text=st.text(max_size=40))
def test_made_up_text_does_not_open(text: str) -> None:
    assert Sealer(KEY).open(b"e", text) is None


def test_neighbours_look_unrelated_and_are_stable() -> None:
    sealer = Sealer(KEY)
    first, second = sealer.seal(b"e", 41), sealer.seal(b"e", 42)
    assert first != second and sealer.seal(b"e", 41) == first
    assert sum(x != y for x, y in zip(first, second, strict=True)) > 8


@pytest.mark.parametrize(("a", "b"), [(-1, 0), (MAX_A + 1, 0), (0, MAX_B + 1)])
def test_out_of_range(a: int, b: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        Sealer(KEY).seal(b"e", a, b)
