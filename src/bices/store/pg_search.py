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

from bices.store import listing
from bices.store.listing import Asked, Dialect, Found
from bices.store.pg_db import Connection
from bices.store.query import Query, Term

POSTGRES = Dialect("%s", "{} = ANY(%s)", list)

# ts_rank's weights of D, C, B and A: a word in the title (A) counts four times one in the
# body (B), as in SQLite's BM25; normalisation 1 divides by 1 + log(length).
RANK = "ts_rank('{0, 0, 0.25, 1}', d.document, %s::tsquery, 1)"
NARROW = "c.seq, c.type, c.originator, c.classification, c.language"
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
    conn.execute(BITMAPS_ONLY)
    rows = conn.execute(
        f"WITH hits AS MATERIALIZED (SELECT {NARROW} FROM current_reports c "
        # `+ 0`: the rule's test (the one that decides) is kept from using the label index.
        "WHERE c.document @@ %s::tsquery AND c.label_id + 0 = ANY(%s)"
        f"{conditions} ORDER BY c.seq DESC LIMIT %s) "
        "SELECT c.*, CASE WHEN (SELECT count(*) FROM hits) <= %s THEN "
        f"(SELECT {RANK} FROM current_reports d WHERE d.seq = c.seq) END FROM hits c",
        [matching, list(visible), *params, rank_limit + 1, rank_limit, words],
        prepare=False,  # planned for these words each time
    ).fetchall()
    conn.execute(DEFAULT_SCANS)
    matches = [(row[0], row[1], row[2], row[3], row[4]) for row in rows]
    if len(matches) > rank_limit:
        return listing.partial(matches, asked)
    # Best first: `ranked` puts the lowest score first (BM25's order).
    return listing.ranked({row[0]: -row[5] for row in rows}, matches, asked)
