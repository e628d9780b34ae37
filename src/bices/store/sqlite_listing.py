"""Listing and full-text search over current versions, restricted to visible label ids.

Filters, totals and facets read the narrow `current_reports` table. Search asks FTS5 for
the user's words within title and body AND (when the visible set is small enough to
spell out) one of the visible label tokens, so the index itself skips what the viewer may
not see; the `label_id IN visible` condition on `current_reports` is applied in every
case and is the one that decides. A search ranks at most `rank_limit` visible matches;
past that it answers newest first and says that its total is a lower bound.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from bices.domain.labels import Classification
from bices.store.base import ReportFilter
from bices.store.query import Query, to_fts5

# Up to this many visible labels are spelled out inside the FTS5 query.
MAX_LABEL_TOKENS = 256
TEXT_COLUMNS = "{title body}"
RANK = "bm25(report_fts, 4.0, 1.0, 0.0)"  # title counts more than body; labels not at all
FACETS = ("type", "member", "classification", "language")


def _where(where: ReportFilter) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []

    def among(column: str, values: list[str] | list[int]) -> None:
        clauses.append(f"c.{column} IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(sorted(values)))

    if where.types is not None:
        among("type", [t.value for t in where.types])
    if where.originators is not None:
        among("originator", list(where.originators))
    if where.classifications is not None:
        among("classification", [int(c) for c in where.classifications])
    if where.languages is not None:
        among("language", list(where.languages))
    if where.since is not None:
        clauses.append("c.reported_ts >= ?")
        params.append(where.since.timestamp())
    if where.until is not None:
        clauses.append("c.reported_ts < ?")
        params.append(where.until.timestamp())
    return "".join(" AND " + c for c in clauses), params


def newest(
    conn: sqlite3.Connection,
    visible: tuple[int, ...],
    where: ReportFilter,
    before: int | None,
    limit: int,
) -> tuple[int, list[int]]:
    """The visible total and the seqs of the newest visible versions (before a cursor)."""
    filters, params = _where(where)
    base = "FROM current_reports c WHERE c.label_id IN (SELECT value FROM json_each(?))" + filters
    base_params = [json.dumps(visible), *params]
    total = conn.execute(f"SELECT count(*) {base}", base_params).fetchone()[0]
    after_cursor = "" if before is None else " AND c.seq < ?"
    cursor_params = [] if before is None else [before]
    rows = conn.execute(
        f"SELECT c.seq {base}{after_cursor} ORDER BY c.seq DESC LIMIT ?",
        [*base_params, *cursor_params, limit],
    ).fetchall()
    return int(total), [row[0] for row in rows]


def match_expression(query: Query, visible: tuple[int, ...]) -> str:
    """The FTS5 expression: the user's words in title/body, and a visible label token."""
    words = to_fts5(query, TEXT_COLUMNS)
    if len(visible) > MAX_LABEL_TOKENS:
        return words
    return f"({words}) AND label_token : ({' OR '.join(f'l{i}' for i in visible)})"


def _matching(
    visible: tuple[int, ...], query: Query, where: ReportFilter
) -> tuple[str, list[object]]:
    filters, params = _where(where)
    sql = (
        "FROM report_fts JOIN current_reports c ON c.seq = report_fts.rowid "
        "WHERE report_fts MATCH ? AND c.label_id IN (SELECT value FROM json_each(?))" + filters
    )
    return sql, [match_expression(query, visible), json.dumps(visible), *params]


@dataclass(frozen=True, slots=True)
class Found:
    total: int
    facets: dict[str, dict[str, int]]
    seqs: list[int]
    exact: bool  # False: more than `rank_limit` visible matches (see `search`)


def search(
    conn: sqlite3.Connection,
    visible: tuple[int, ...],
    query: Query,
    where: ReportFilter,
    offset: int,
    limit: int,
    rank_limit: int,
) -> Found:
    """The newest `rank_limit` + 1 visible matches, read once.

    Up to `rank_limit` matches: the exact total and facets, and the page ranked by BM25 (then
    newest). Beyond it, ranking every match costs time in proportion to the match count, so
    the answer says so (`exact` False): the total is a lower bound, the facets count the
    newest `rank_limit` matches, and the page is the newest first.
    """
    if not visible:
        return Found(0, _facets({}), [], True)
    sql, params = _matching(visible, query, where)
    newest_first = f"{sql} ORDER BY report_fts.rowid DESC LIMIT ?"
    columns = "c.seq, c.type, c.originator, c.classification, c.language"
    bounded = [*params, rank_limit + 1]
    rows: list[sqlite3.Row] = []
    if _more_than(conn, visible, query, rank_limit):
        # Likely too many to rank: read the newest without computing BM25 at all.
        rows = conn.execute(f"SELECT 0.0, {columns} {newest_first}", bounded).fetchall()
    if len(rows) <= rank_limit:  # few enough (or the probe overcounted): rank them all
        rows = conn.execute(f"SELECT {RANK}, {columns} {newest_first}", bounded).fetchall()
    exact = len(rows) <= rank_limit
    rows = rows[:rank_limit]
    counts: dict[tuple[str, str, int, str], int] = {}
    for _, _, type_, originator, level, language in rows:
        key = (type_, originator, level, language)
        counts[key] = counts.get(key, 0) + 1
    if exact:
        # bm25 is lower-is-better; ties go to the newest (rows come newest first).
        order = sorted(range(len(rows)), key=lambda i: (rows[i][0], i))
        seqs = [rows[i][1] for i in order]
    else:
        seqs = [row[1] for row in rows]
    return Found(len(rows), _facets(counts), seqs[offset : offset + limit], exact)


def _more_than(
    conn: sqlite3.Connection, visible: tuple[int, ...], query: Query, rank_limit: int
) -> bool:
    """A cheap probe inside FTS5 alone (no join, no ranking): may there be more than
    `rank_limit` visible matches? It can overcount (filters are not applied), never under."""
    probe = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM report_fts WHERE report_fts MATCH ? LIMIT ?)",
        (match_expression(query, visible), rank_limit + 1),
    ).fetchone()[0]
    return int(probe) > rank_limit


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
