"""The canonical form signatures are made over: the bytes of `json.dumps` with sorted keys,
compact and UTF-8, whichever encoder makes them, for any value at all."""

from __future__ import annotations

import json
import math
from enum import IntEnum, StrEnum
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from bices.domain.signing import canonical


def reference(value: Any) -> bytes:
    """What every signature so far was made over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def outcome(make: Any, value: Any) -> tuple[str, Any]:
    try:
        return "bytes", make(value)
    except Exception as error:  # the kind of refusal must match too
        return "refused", type(error)


BOUNDS = [1e-4, math.nextafter(1e-4, 0), 1e16, math.nextafter(1e16, 0), 5e-324, -0.0, 0.0,
          1.7976931348623157e308, 123456789.123, 0.1, 1e-5, 2e20]  # fmt: skip
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | st.sampled_from(BOUNDS)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)


@given(values)
@example({"lat": 1e-05, "lon": 0.00012, "name": "Pulau Natuna"})
@example({"big": 2**70, "small": -(2**64)})
@example({"text": "sans NUL \x00, \x1f, \x7f, \u2028, é, \U0001f600 and a lone \ud800"})
def test_the_same_bytes_as_json(value: Any) -> None:
    assert outcome(canonical, value) == outcome(reference, value)


class Grade(StrEnum):
    B = "B"


class Level(IntEnum):
    TWO = 2


@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.sampled_from([Grade.B, Level.TWO])))
def test_subclasses_of_plain_types_as_json_writes_them(value: dict[str, Any]) -> None:
    assert canonical(value) == reference(value)


def test_keys_that_are_not_strings_and_values_json_refuses() -> None:
    assert canonical({2: "b", 1: "a"}) == b'{"1":"a","2":"b"}'
    assert outcome(canonical, {"when": object()}) == ("refused", TypeError)
    cycle: list[Any] = []
    cycle.append(cycle)
    assert outcome(canonical, cycle) == ("refused", ValueError)  # json: circular reference
