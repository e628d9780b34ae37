"""One PostgreSQL database (or one schema of it): a pool of connections, serialised writes.

Writes run in transactions that first take the node's writer lock (a transaction-scoped
advisory lock), so every process that writes — API servers, workers, the operator's CLI —
commits one after another, as on the embedded default. The store relies on that order:
seqs handed out under the lock commit in the same order, so a reader that follows
`seq > cursor` never skips a row, and the audit chain never forks. Reads take pooled
connections in autocommit, or a REPEATABLE READ snapshot where several queries must agree.

A URL may name a schema (`postgresql://…/db?options=-csearch_path%3Dname`): the tests give
each node its own; the lock keys include the schema, so nodes in one database do not
queue behind each other.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.rows import RowMaker
from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)

# Advisory lock objects within the node's lock class (the class is the schema's hash).
WRITER_LOCK = 1  # every write transaction
CHAIN_LOCK = 2  # the audit chain's head (taken by writes and by audited reads)
MIGRATION_LOCK = 3  # schema upgrades
ANALYZE_LOCK = 4  # planner statistics refreshed by the node (`pg_statistics`)


class Row(tuple[Any, ...]):
    """A row readable by position and by column name, like `sqlite3.Row`, so that the code
    that turns rows into domain objects is shared by both backends."""

    _index: dict[str, int]

    def __new__(cls, values: Sequence[Any], index: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(self._index[key])
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        return list(self._index)


def row_factory(cursor: psycopg.Cursor[Any]) -> RowMaker[Row]:
    names = [] if cursor.description is None else [c.name for c in cursor.description]
    index = {name: i for i, name in enumerate(names)}

    def make(values: Sequence[Any]) -> Row:
        return Row(values, index)

    return make


Connection = psycopg.Connection[Row]


def without_password(url: str) -> str:
    """The URL as it may be shown to an operator: any password replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class PgDatabase:
    """Pooled connections to one PostgreSQL database (schema)."""

    def __init__(self, url: str, max_connections: int = 16) -> None:
        self.url = url
        try:  # one connection first, for an error that says why (the pool's only times out)
            psycopg.connect(url, connect_timeout=5).close()
        except psycopg.Error as error:
            reason = " ".join(line.strip() for line in str(error).splitlines()) or repr(error)
            raise SystemExit(
                f"cannot use PostgreSQL at {without_password(url)}: {reason}"
            ) from None
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            kwargs={"row_factory": row_factory, "autocommit": True},
            open=False,
            name="bices",
        )
        self._pool.open(wait=True, timeout=10)
        # Called after each committed write (outside the transaction).
        self.after_commit: list[Callable[[], None]] = []
        self._lock_class: int | None = None
        self._lock_class_lock = threading.Lock()

    def lock_class(self) -> int:
        """The advisory lock class of this node: a hash of its schema."""
        with self._lock_class_lock:
            if self._lock_class is None:
                with self.read() as conn:
                    row = conn.execute("SELECT hashtext(current_schema())").fetchone()
                assert row is not None
                self._lock_class = int(row[0])
            return self._lock_class

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection in autocommit: each statement sees the latest committed state."""
        with self._pool.connection() as conn:
            yield conn

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read-only transaction: every query inside sees the same committed state."""
        with self._pool.connection() as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction holding the writer lock; commits on leaving, or rolls back
        on an exception."""
        lock_class = self.lock_class()
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (lock_class, WRITER_LOCK))
            yield conn
        for hook in self.after_commit:
            try:
                hook()
            except Exception:  # the write is committed; what follows it can be redone
                log.exception("after a committed write")

    def lock(self, conn: Connection, obj: int) -> None:
        """Take one of the node's advisory locks until `conn`'s transaction ends."""
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (self.lock_class(), obj))

    def close(self) -> None:
        self._pool.close()
