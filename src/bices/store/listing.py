"""Listing and the shaping of search answers over current versions, shared by both
backends: the filters as conditions on the narrow `current_reports` table, the newest
visible versions with their total, and a search's matches turned into an answer (ranked,
or past the rank limit the newest, with facets).

The backends differ in how they write a parameter and a list of values (a `Dialect`);
each finds its full-text matches its own way (`sqlite_listing`, `pg_search`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bices.domain.labels import Classification
from bices.store.base import ReportFilter
from bices.store.query import Query

FACETS = ("type", "member", "classification", "language")


class Executes(Protocol):
    """A connection of either backend: both run `execute(sql, params)` alike."""

    def execute(self, sql: str, params: Sequence[Any], /) -> Any: ...


@dataclass(frozen=True, slots=True)
class Dialect:
    """How a backend spells the filters: its parameter marker, and `column IN list`."""

    mark: str
    among: str  # a format of the column, taking the list as one parameter
    pack: Callable[[list[Any]], object]  # the list as that parameter


def filters(where: ReportFilter, dialect: Dialect) -> tuple[str, list[object]]:
    """The filter as conditions on `current_reports c` (each preceded by AND), with params."""
    clauses: list[str] = []
    params: list[object] = []

    def among(column: str, values: list[str] | list[int]) -> None:
        clauses.append(dialect.among.format(f"c.{column}"))
        params.append(dialect.pack(sorted(values)))

    if where.types is not None:
        among("type", [t.value for t in where.types])
    if where.originators is not None:
        among("originator", list(where.originators))
    if where.classifications is not None:
        among("classification", [int(c) for c in where.classifications])
    if where.languages is not None:
        among("language", list(where.languages))
    if where.since is not None:
        clauses.append(f"c.reported_ts >= {dialect.mark}")
        params.append(where.since.timestamp())
    if where.until is not None:
        clauses.append(f"c.reported_ts < {dialect.mark}")
        params.append(where.until.timestamp())
    return "".join(" AND " + c for c in clauses), params


def newest(
    conn: Executes,
    visible: tuple[int, ...],
    where: ReportFilter,
    before: int | None,
    limit: int,
    dialect: Dialect,
) -> tuple[int, list[int]]:
    """The visible total and the seqs of the newest visible versions (before a cursor)."""
    conditions, params = filters(where, dialect)
    base = "FROM current_reports c WHERE " + dialect.among.format("c.label_id") + conditions
    base_params = [dialect.pack(list(visible)), *params]
    total = conn.execute(f"SELECT count(*) {base}", base_params).fetchone()[0]
    after_cursor = "" if before is None else f" AND c.seq < {dialect.mark}"
    cursor_params = [] if before is None else [before]
    rows = conn.execute(
        f"SELECT c.seq {base}{after_cursor} ORDER BY c.seq DESC LIMIT {dialect.mark}",
        [*base_params, *cursor_params, limit],
    ).fetchall()
    return int(total), [row[0] for row in rows]


@dataclass(frozen=True, slots=True)
class Found:
    """A search's answer before its rows are read: the page's seqs, total and facets."""

    total: int
    facets: dict[str, dict[str, int]]
    seqs: list[int]
    exact: bool  # False: more than `rank_limit` visible matches (see `search`)


# A narrow row of a match: seq, type, originator, classification, language.
Narrow = tuple[int, str, str, int, str]


@dataclass(frozen=True, slots=True)
class Asked:
    """A search as asked: the parsed words, the filters, and the page (`limit` hits from
    `offset`) among at most `rank_limit` ranked matches."""

    query: Query
    where: ReportFilter
    offset: int
    limit: int
    rank_limit: int


def ranked(scores: dict[int, float], rows: list[Narrow], asked: Asked) -> Found:
    """An exact answer: every visible match, lowest score first (BM25's order: a backend
    whose scores grow with relevance passes them negated), then newest."""
    order = sorted(rows, key=lambda row: (scores[row[0]], -row[0]))
    seqs = [row[0] for row in order][asked.offset : asked.offset + asked.limit]
    return Found(len(rows), _facets(_counts(rows)), seqs, True)


def partial(rows: list[Narrow], asked: Asked) -> Found:
    """A partial answer past the rank limit: the newest `rank_limit` matches, a lower-bound
    total and their facets."""
    rows = sorted(rows, key=lambda row: -row[0])[: asked.rank_limit]
    seqs = [row[0] for row in rows][asked.offset : asked.offset + asked.limit]
    return Found(len(rows), _facets(_counts(rows)), seqs, False)


def _counts(rows: list[Narrow]) -> dict[tuple[str, str, int, str], int]:
    counts: dict[tuple[str, str, int, str], int] = {}
    for _, type_, originator, level, language in rows:
        key = (type_, originator, level, language)
        counts[key] = counts.get(key, 0) + 1
    return counts


def _facets(counts: dict[tuple[str, str, int, str], int]) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {name: {} for name in FACETS}
    for (type_, originator, level, language), n in counts.items():
        for name, value in (
            ("type", type_),
            ("member", originator),
            ("classification", Classification(level).marking),
            ("language", language),
        ):
            found[name][value] = found[name].get(value, 0) + n
    return found
