"""The search language, parsed once and rendered by each backend.

Words and "quoted phrases" are ANDed; `OR` between two terms makes either enough;
`-word` excludes; `word*` matches a prefix. Nothing the user types reaches the engine's
own query syntax unquoted, so no input can make a query fail with a syntax error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bices.domain.cursors import Sealer
from bices.domain.errors import InvalidInput

TOKEN = re.compile(r'-?"[^"]*"\*?|\S+')
WORD = re.compile(r"[\w]+(?:['’.-][\w]+)*", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Term:
    text: str  # a word or a phrase, already reduced to word characters and spaces
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class Query:
    """Must match every group (a group is an OR of terms) and none of the excluded terms."""

    groups: tuple[tuple[Term, ...], ...]
    excluded: tuple[Term, ...]


def _term(raw: str) -> Term | None:
    prefix = raw.endswith("*")
    words = WORD.findall(raw.strip('"*'))
    if not words:
        return None
    return Term(" ".join(words), prefix=prefix)


def parse(q: str) -> Query:
    if len(q) > 1000:
        raise InvalidInput("q is longer than 1000 characters")
    groups: list[list[Term]] = []
    excluded: list[Term] = []
    join_next = False
    for raw in TOKEN.findall(q):
        if raw == "OR":
            join_next = bool(groups)
            continue
        negative = raw.startswith("-") and len(raw) > 1
        term = _term(raw[1:] if negative else raw)
        if term is None:
            continue
        if negative:
            excluded.append(term)
        elif join_next:
            groups[-1].append(term)
        else:
            groups.append([term])
        join_next = False
    if not groups:
        raise InvalidInput(f"q {q!r} has no word to search for")
    return Query(tuple(tuple(g) for g in groups), tuple(excluded))


def to_fts5(query: Query, columns: str | None = None, loose: bool = False) -> str:
    """Render for SQLite FTS5: every term double-quoted, optionally within some columns.

    `loose` renders an expression that matches at least what the query matches but costs
    less to count: phrases become their words ANDed (no position lists read) and
    exclusions are left out. The store counts it to choose a plan, never to answer.
    """
    within = "" if columns is None else f"{columns} : "

    def quoted(text: str) -> str:
        return '"' + text.replace('"', '""') + '"'

    def term(t: Term) -> str:
        words = t.text.split(" ")
        if loose and len(words) > 1:
            body = "(" + " AND ".join(quoted(w) for w in words[:-1])
            return within + body + f" AND {quoted(words[-1])}{'*' if t.prefix else ''})"
        return within + quoted(t.text) + ("*" if t.prefix else "")

    positive = " AND ".join(
        "(" + " OR ".join(term(t) for t in group) + ")" for group in query.groups
    )
    if loose:
        return positive
    return positive + "".join(" NOT " + term(t) for t in query.excluded)


# Tags of the listing cursors among the node's sealed cursors (`bices.domain.cursors`).
LIST_CURSOR = b"l"  # a listing: the seq the page ended at (sealed, so no gap can be counted)
SEARCH_CURSOR = b"s"  # search: an offset into the ranked hits


def encode_cursor(sealer: Sealer, tag: bytes, value: int) -> str:
    """A listing's cursor, sealed: opaque to the client, and impossible to make up."""
    return sealer.seal(tag, value)


def decode_cursor(sealer: Sealer, tag: bytes, cursor: str | None) -> int | None:
    """Read a cursor made by `encode_cursor` for the same kind of listing."""
    if cursor is None:
        return None
    opened = sealer.open(tag, cursor)
    if opened is None:
        raise InvalidInput(f"cursor {cursor[:100]!r} is not a cursor of this listing")
    return opened[0]
