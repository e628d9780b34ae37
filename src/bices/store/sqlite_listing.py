"""Full-text search with FTS5 over current versions, restricted to visible label ids.

Filters, totals and facets read the narrow `current_reports` table (`bices.store.listing`,
shared with PostgreSQL). Search asks FTS5 for the user's words within title and body AND
(when the visible set is small enough to spell out) one of the visible label tokens, so
the index itself skips what the viewer may not see; the `label_id IN visible` condition
on `current_reports` is applied in every case and is the one that decides. A search ranks
at most `rank_limit` visible matches; past that it answers newest first and says that its
total is a lower bound.
"""

from __future__ import annotations

import json
import sqlite3

from bices.store.base import ReportFilter
from bices.store.listing import Asked, Dialect, Found, Narrow, filters, partial, ranked
from bices.store.query import Query, to_fts5

# Up to this many visible labels are spelled out inside the FTS5 query.
MAX_LABEL_TOKENS = 256
# Queries whose words match at most this many reports (whatever their labels) are ranked on
# the words alone and filtered afterwards; larger ones intersect with label tokens first.
WORDS_ONLY_MAX = 2000
# Queries matching at most `rank_limit` × this many reports in all are scored in the same
# pass that finds the visible ones (likely under the rank limit); larger ones are first
# found without scores, since BM25 would then be spent on a partial answer.
LIKELY_VISIBLE_SHARE = 8
TEXT_COLUMNS = "{title body}"
RANK = "bm25(report_fts, 4.0, 1.0, 0.0)"  # title counts more than body; labels not at all
SQLITE = Dialect("?", "{} IN (SELECT value FROM json_each(?))", json.dumps)


def match_expression(query: Query, visible: tuple[int, ...]) -> str:
    """The FTS5 expression: the user's words in title/body, and a visible label token."""
    words = to_fts5(query, TEXT_COLUMNS)
    if len(visible) > MAX_LABEL_TOKENS:
        return words
    return f"({words}) AND label_token : ({' OR '.join(f'l{i}' for i in visible)})"


def _matching(
    visible: tuple[int, ...], query: Query, where: ReportFilter
) -> tuple[str, list[object]]:
    conditions, params = filters(where, SQLITE)
    sql = (
        "FROM report_fts JOIN current_reports c ON c.seq = report_fts.rowid "
        "WHERE report_fts MATCH ? AND c.label_id IN (SELECT value FROM json_each(?))" + conditions
    )
    return sql, [match_expression(query, visible), json.dumps(visible), *params]


COLUMNS = "c.seq, c.type, c.originator, c.classification, c.language"


def search(conn: sqlite3.Connection, visible: tuple[int, ...], asked: Asked) -> Found:
    """Visible matches: up to `rank_limit` of them ranked, else the newest, read once.

    Up to `rank_limit` matches: the exact total and facets, and the page ranked by BM25 (then
    newest). Beyond it, ranking every match costs time in proportion to the match count, so
    the answer says so (`exact` False): the total is a lower bound, the facets count the
    newest `rank_limit` matches, and the page is the newest first.

    FTS5 is asked for rowids (and scores) alone; the filters, the facet columns and the
    deciding `label_id IN visible` test are read from `current_reports` by seq afterwards,
    which costs ~1 µs a row against ~6 µs for joining inside the FTS5 query.
    """
    if not visible:
        return ranked({}, [], asked)
    query, where, rank_limit = asked.query, asked.where, asked.rank_limit
    words = to_fts5(query, TEXT_COLUMNS)
    # Counted on the loose form (phrases as ANDed words, no exclusions): an upper bound on
    # the matches, read without position lists, that only chooses the plan below.
    loose = to_fts5(query, TEXT_COLUMNS, loose=True)
    in_all = _count_up_to(conn, loose, rank_limit * LIKELY_VISIBLE_SHARE)
    if in_all <= min(WORDS_ONLY_MAX, rank_limit):
        # Few matches in all: rank them on the words alone (scoring label tokens too costs
        # ~2 µs a row and a pass over each label token's doclist) and let the narrow table
        # drop what the viewer may not see.
        scores = _scores(conn, words)
        return ranked(scores, _narrow(conn, list(scores), visible, where), asked)
    expression = match_expression(query, visible)
    newest_first = "FROM report_fts WHERE report_fts MATCH ? ORDER BY rowid DESC LIMIT ?"
    if in_all <= rank_limit * LIKELY_VISIBLE_SHARE:
        # Probably few enough visible matches to rank: score them in the same pass.
        scoring = conn.execute(f"SELECT rowid, {RANK} {newest_first}", (expression, rank_limit + 1))
        scores = dict(scoring.fetchall())
        newest = sorted(scores, reverse=True)
    else:
        scores = {}
        found = conn.execute(f"SELECT rowid {newest_first}", (expression, rank_limit + 1))
        newest = [row[0] for row in found]
    rows = _narrow(conn, newest, visible, where)
    if len(newest) <= rank_limit:  # every visible match is in hand: rank them
        return ranked(scores or _scores(conn, expression), rows, asked)
    if len(rows) <= rank_limit:
        # Filters (or the deciding label test) dropped some of the newest matches, so
        # older ones may count: read newest first through the join until past the limit.
        sql, params = _matching(visible, query, where)
        joined = f"{sql} ORDER BY report_fts.rowid DESC LIMIT ?"
        bounded = [*params, rank_limit + 1]
        rows = conn.execute(f"SELECT {COLUMNS} {joined}", bounded).fetchall()
        if len(rows) <= rank_limit:  # few enough pass the filters: rank just those
            scored = conn.execute(f"SELECT c.seq, {RANK} {joined}", bounded).fetchall()
            return ranked(dict(scored), rows, asked)
    return partial(rows, asked)


def _scores(conn: sqlite3.Connection, expression: str) -> dict[int, float]:
    """BM25 of every match of the expression, by rowid, inside FTS5 alone."""
    sql = f"SELECT rowid, {RANK} FROM report_fts WHERE report_fts MATCH ?"
    return {seq: score for seq, score in conn.execute(sql, (expression,))}


def _count_up_to(conn: sqlite3.Connection, expression: str, n: int) -> int:
    """How many rows the expression matches, counted inside FTS5 and stopping past n."""
    count = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM report_fts WHERE report_fts MATCH ? LIMIT ?)",
        (expression, n + 1),
    ).fetchone()[0]
    return int(count)


def _narrow(
    conn: sqlite3.Connection, seqs: list[int], visible: tuple[int, ...], where: ReportFilter
) -> list[Narrow]:
    """The narrow rows of these seqs that are current, visible and pass the filters."""
    conditions, params = filters(where, SQLITE)
    return conn.execute(
        f"SELECT {COLUMNS} FROM current_reports c WHERE c.seq IN (SELECT value FROM json_each(?)) "
        "AND c.label_id IN (SELECT value FROM json_each(?))" + conditions,
        [json.dumps(seqs), json.dumps(visible), *params],
    ).fetchall()
