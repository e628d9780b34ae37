"""Full-text search over current versions in PostgreSQL, restricted to visible label ids
(the listing is `bices.store.listing`, shared with SQLite).

Each current version carries a tsvector of its title (weight A), body (weight B) and label
(the lexeme '#<id>') in `current_reports.document`, GIN-indexed, built with the `bices`
text search configuration: PostgreSQL's `simple` parser and dictionary after `unaccent`,
so words of any language match exactly, case and accents aside (no stemming, as SQLite's
`unicode61 remove_diacritics` tokenizer: one configuration serves Indonesian and English
alike). The index is asked for the user's words AND (when few enough) one of the visible
labels, as SQLite asks FTS5 for label tokens; the `label_id = ANY(visible)` test in the same
statement is the one that decides, so totals and facets count only what the viewer may see.
As on SQLite, a search ranks at most `rank_limit` visible matches; past that it answers
newest first and says that its total is a lower bound.
"""

from __future__ import annotations

import json

from bices.store import listing
from bices.store.listing import Asked, Dialect, Found, Narrow
from bices.store.pg_db import Connection, Row
from bices.store.pg_recency import RECENCY_BITS
from bices.store.query import Query, Term

POSTGRES = Dialect("%s", "{} = ANY(%s)", list)

# ts_rank's weights of D, C, B and A: a word in the title (A) counts four times one in the
# body (B), as in SQLite's BM25; normalisation 1 divides by 1 + log(length).
RANK = "ts_rank('{0, 0, 0.25, 1}', d.document, %s::tsquery, 1)"
NARROW = "c.seq, c.type, c.originator, c.classification, c.language"
# A search with more visible matches than the node ranks is answered with the newest of
# them: the newest 2, then 8, recency lexemes' matches (`bices.store.pg_recency`: 65,536
# seqs a lexeme) are asked for first, so that only their rows are read (a frequent word at
# 1M reports: 12,000 heap pages otherwise, most of the search's time).
NEWEST_SPANS = (2, 8)
# Up to this many visible labels are spelled out in the tsquery (as SQLite's label tokens).
MAX_LABEL_LEXEMES = 256
# Plain index and sequential scans off for one statement (SET LOCAL, then back to default).
BITMAPS_ONLY = "SET LOCAL enable_indexscan = off; SET LOCAL enable_seqscan = off"
DEFAULT_SCANS = "RESET enable_indexscan; RESET enable_seqscan"


def render(conn: Connection, query: Query) -> str | None:
    """The query as tsquery text, or None if it can match nothing (a term it must match
    has no word the index keeps).

    Each term is turned into lexemes by PostgreSQL itself (`phraseto_tsquery`, which reads
    no operators), and its output, quoted by PostgreSQL, is only parenthesised and joined
    here: nothing the user typed is read as tsquery syntax.
    """
    terms = [*(t for group in query.groups for t in group), *query.excluded]
    columns = ", ".join("phraseto_tsquery('bices', %s)::text" for _ in terms)
    row = conn.execute(f"SELECT {columns}", [t.text for t in terms]).fetchone()
    assert row is not None
    rendered = iter(row)

    def term(t: Term) -> str | None:
        text: str = next(rendered)
        if not text:
            return None
        if t.prefix and text.endswith("'"):  # the phrase's last lexeme, as a prefix
            text += ":*"
        return f"({text})"

    groups: list[str] = []
    for group in query.groups:
        either = [found for found in map(term, group) if found is not None]
        if not either:
            return None
        groups.append("(" + " | ".join(either) + ")")
    excluded = [f"!{found}" for found in map(term, query.excluded) if found is not None]
    return " & ".join(groups + excluded)


def label_lexemes(conn: Connection, visible: tuple[int, ...]) -> str | None:
    """The visible labels as a tsquery of their lexemes, when they are few enough to spell
    out and a minority of the node's labels (else asking the index for them costs more
    than it saves)."""
    if len(visible) > MAX_LABEL_LEXEMES:
        return None
    row = conn.execute("SELECT count(*) FROM labels").fetchone()
    assert row is not None
    if 2 * len(visible) > row[0]:
        return None
    return " | ".join(f"'#{label_id}'" for label_id in visible)


def search(conn: Connection, visible: tuple[int, ...], asked: Asked) -> Found:
    """Visible matches: up to `rank_limit` of them ranked, else the newest, read once.

    The matches are found in the GIN index alone (the words, and the visible labels when
    `label_lexemes` spells them out), then the newest `rank_limit + 1` visible ones are
    read from the narrow rows. The planner is kept from the other ways: reading rows by
    seq or by label and testing each one's document costs a TOAST fetch a row, which it
    does not count, and can be a hundred times slower. Only when there are no more than
    `rank_limit` matches (the answer is then exact) are they scored, so a query that
    matches half the node costs no ranking of what would not be served.
    """
    words = render(conn, asked.query) if visible else None
    if words is None:
        return listing.ranked({}, [], asked)
    labels = label_lexemes(conn, visible)
    matching = words if labels is None else f"({words}) & ({labels})"
    rank_limit = asked.rank_limit
    conditions, params = listing.filters(asked.where, POSTGRES)
    head = conn.execute("SELECT coalesce(max(seq), 0) FROM current_reports").fetchone()
    assert head is not None
    newest = int(head[0]) >> RECENCY_BITS
    conn.execute(BITMAPS_ONLY)
    try:
        # The newest matches first, found by recency lexemes in the index alone: if there
        # are more than the node ranks, they are the answer (the newest of all matches).
        # Windows exist only past the first lexemes' seqs; only then is estimating worth it.
        frequent = any(span <= newest for span in NEWEST_SPANS) and (
            _estimate(conn, words, visible) > 2 * (rank_limit + 1)
        )
        for span in NEWEST_SPANS if frequent else ():
            if span > newest:
                break
            recent = " | ".join(f"'@{n}'" for n in range(newest - span + 1, newest + 1))
            rows = _hits(conn, f"({matching}) & ({recent})", visible, conditions, params,
                         rank_limit, words, score=False)  # fmt: skip
            if len(rows) > rank_limit:
                return listing.partial([_narrow(row) for row in rows], asked)
        rows = _hits(conn, matching, visible, conditions, params, rank_limit, words, score=True)
    finally:
        conn.execute(DEFAULT_SCANS)
    matches = [_narrow(row) for row in rows]
    if len(matches) > rank_limit:
        return listing.partial(matches, asked)
    # Best first: `ranked` puts the lowest score first (BM25's order).
    return listing.ranked({row[0]: -row[5] for row in rows}, matches, asked)


def _estimate(conn: Connection, words: str, visible: tuple[int, ...]) -> float:
    """The planner's estimate of the visible matches: the rows its statistics of frequent
    lexemes expect to match the words, times the share of rows under visible labels (from
    the statistics of `label_id`, where they list the labels). Only a query expected to
    match far more than the node ranks tries the newest windows first: for a rarer one
    they would be work done twice."""
    row = conn.execute(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM current_reports WHERE document @@ %s::tsquery",
        [words],
        prepare=False,
    ).fetchone()
    assert row is not None
    plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
    matching = float(plan[0]["Plan"]["Plan Rows"])
    stats = conn.execute(
        "SELECT most_common_vals::text::bigint[], most_common_freqs FROM pg_stats "
        "WHERE schemaname = current_schema() AND tablename = 'current_reports' "
        "AND attname = 'label_id'"
    ).fetchone()
    if stats is None or stats[0] is None:
        return matching
    shown = set(visible)
    return matching * float(sum(f for v, f in zip(stats[0], stats[1], strict=True) if v in shown))


def _narrow(row: Row) -> Narrow:
    return (row[0], row[1], row[2], row[3], row[4])


def _hits(
    conn: Connection,
    matching: str,
    visible: tuple[int, ...],
    conditions: str,
    params: list[object],
    rank_limit: int,
    words: str,
    score: bool,
) -> list[Row]:
    """The newest `rank_limit + 1` visible matches (narrow rows), scored (the sixth
    column) if `score` and there are no more than `rank_limit` of them."""
    return conn.execute(
        f"WITH hits AS MATERIALIZED (SELECT {NARROW} FROM current_reports c "
        # `+ 0`: the rule's test (the one that decides) is kept from using the label index.
        "WHERE c.document @@ %s::tsquery AND c.label_id + 0 = ANY(%s)"
        f"{conditions} ORDER BY c.seq DESC LIMIT %s) "
        "SELECT c.*, CASE WHEN (SELECT count(*) FROM hits) <= %s THEN "
        f"(SELECT {RANK} FROM current_reports d WHERE d.seq = c.seq) END FROM hits c",
        [matching, list(visible), *params, rank_limit + 1, rank_limit if score else -1, words],
        prepare=False,  # planned for these words each time
    ).fetchall()
