"""Copies of the frozen, slotted dataclasses of the domain with some fields changed."""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


def copied(obj: T, **changes: Any) -> T:
    """`dataclasses.replace` without running `__init__` again: half its cost, for the
    classes that have no `__post_init__` to run (a report version is copied twice on its
    way into the store, signed then numbered)."""
    cls = type(obj)
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} checks itself in __post_init__: use replace")
    new = object.__new__(cls)
    for name in cls.__slots__:  # type: ignore[attr-defined]
        value = changes.pop(name) if name in changes else getattr(obj, name)
        object.__setattr__(new, name, value)
    if changes:
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(changes))}")
    return new
