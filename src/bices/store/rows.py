"""What both backends' rows offer (`sqlite3.Row`, `bices.store.pg_db.Row`): reading a column
by name. Converters from rows to domain objects are typed with it and shared."""

from __future__ import annotations

from typing import Any, Protocol


class RowLike(Protocol):
    def __getitem__(self, key: str, /) -> Any: ...
    def keys(self) -> Any: ...
