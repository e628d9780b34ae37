"""Strip the web boilerplate that article extraction leaves behind, line by line.

Menus, "Loading...", cookie notices, "Baca juga:" links, "Pilihan Editor" lists, share
buttons, photo credits, link spam and copyright footers carry no intelligence but would
feed entity extraction with noise. The patterns live in ``bices/data/boilerplate.json``
(English and Indonesian); the rules that need counting (runs of headline-like lines,
lines made of links) are here. The original document is kept elsewhere, untouched.

Only HTML pages and feed entries are web pages: a plain-text document (a field report, a
SALUTE or SPOTREP) loses no more than the few lines the table marks ``plain``, because its
short lines and ``X: ...`` fields are its content, not a site's menus and bylines.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

URL = re.compile(r"(https?://|www\.)\S+", re.IGNORECASE)
SENTENCE_END = tuple('.!?…:;"”’»)')
BULLET = re.compile(r"^([-–•*·▪►]|\d{1,2}[.)])\s")
INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
HEADLINE_MAX_WORDS = 16  # longer lines read as prose, not as a list of headlines
UNHEADED_RUN = 3  # this many headline-like lines in a row are a list of other articles


@dataclass(frozen=True, slots=True)
class Pattern:
    why: str
    regex: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class Patterns:
    line: tuple[Pattern, ...]
    plain: tuple[Pattern, ...]  # the line patterns that also apply to plain text
    contains: tuple[Pattern, ...]
    list_heading: tuple[Pattern, ...]
    inline: tuple[Pattern, ...]
    max_line_chars: int  # longer lines are prose: no menu, byline or heading is this long


@dataclass(frozen=True, slots=True)
class Cleaned:
    """The text kept, and each dropped line with the reason, for tests and for curiosity."""

    text: str
    dropped: tuple[tuple[str, str], ...]


@lru_cache(maxsize=1)
def patterns() -> Patterns:
    """The packaged pattern table, compiled once."""
    raw = resources.files("bices.data").joinpath("boilerplate.json").read_text("utf-8")
    table = json.loads(raw)

    def compiled(key: str, flags: int) -> tuple[Pattern, ...]:
        return tuple(Pattern(e["why"], re.compile(e["pattern"], flags)) for e in table[key])

    line = compiled("line", re.IGNORECASE)
    plain = tuple(p for p, e in zip(line, table["line"], strict=True) if e.get("plain"))
    return Patterns(
        line=line,
        plain=plain,
        contains=compiled("contains", re.IGNORECASE),
        list_heading=compiled("list_heading", re.IGNORECASE),
        inline=compiled("inline", 0),
        max_line_chars=int(table["max_line_chars"]),
    )


def normalise(text: str) -> str:
    """Unicode NFC, one kind of line break, no invisible characters, no trailing spaces."""
    text = unicodedata.normalize("NFC", text).translate(INVISIBLE)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    return "\n".join(" ".join(line.split()) for line in text.split("\n"))


def clean(text: str, web: bool = True) -> Cleaned:
    """Drop boilerplate lines and spans; keep the article's sentences and paragraphs.
    With `web` false (plain text), drop only the lines the table marks ``plain``."""
    table = patterns()
    lines = normalise(text).split("\n")
    if not web:
        return _clean_plain(lines, table)
    kept: list[str] = []
    dropped: list[tuple[str, str]] = []
    in_list = False  # inside a list of other articles that a heading introduced
    previous = ""
    for line in lines:
        if not line:
            kept.append("")
            continue
        for pattern in table.inline:
            line = pattern.regex.sub("", line).strip()
        if not line:
            continue
        if in_list and _headline_like(line, bullets=True):
            dropped.append((line, "list under a heading"))
            continue
        in_list = False
        reason = _boilerplate(line, table)
        if reason is None and _matching(line, table.list_heading, table.max_line_chars):
            in_list = True
            reason = "list heading"
        if reason is None and line == previous:
            reason = "repeated line"
        if reason is not None:
            dropped.append((line, reason))
            continue
        kept.append(line)
        previous = line
    kept = _drop_headline_runs(kept, dropped)
    return Cleaned(_paragraphs(kept), tuple(dropped))


def clean_text(text: str, web: bool = True) -> str:
    return clean(text, web).text


def _clean_plain(lines: list[str], table: Patterns) -> Cleaned:
    """Every line of a plain-text document but the exact boilerplate marked ``plain``."""
    kept: list[str] = []
    dropped: list[tuple[str, str]] = []
    for line in lines:
        why = _matching(line, table.plain, table.max_line_chars) if line else None
        if why is None:
            kept.append(line)
        else:
            dropped.append((line, why))
    return Cleaned(_paragraphs(kept), tuple(dropped))


def _matching(line: str, rules: tuple[Pattern, ...], max_chars: int) -> str | None:
    """Why the first rule matching the whole line is there, or None; a line longer than
    `max_chars` matches none (and long lines never reach the regular expressions)."""
    if len(line) > max_chars:
        return None
    for pattern in rules:
        if pattern.regex.fullmatch(line):
            return pattern.why
    return None


def _boilerplate(line: str, table: Patterns) -> str | None:
    """Why a line is boilerplate, or None."""
    why = _matching(line, table.line, table.max_line_chars)
    if why is not None:
        return why
    if len(line) <= table.max_line_chars:
        for pattern in table.contains:
            if pattern.regex.search(line):
                return pattern.why
    links = URL.findall(line)
    if links and (len(links) >= 3 or len(URL.sub(" ", line).split()) < 4):
        return "line of links"
    return None


def _headline_like(line: str, bullets: bool) -> bool:
    """A short line that does not end like a sentence: a headline, a menu item, a label."""
    if not bullets and BULLET.match(line):
        return False
    words = line.split()
    if len(words) > HEADLINE_MAX_WORDS:
        return False
    return not line.endswith(SENTENCE_END) or len(words) < 8


def _drop_headline_runs(lines: list[str], dropped: list[tuple[str, str]]) -> list[str]:
    """Drop runs of UNHEADED_RUN or more headline-like lines (blank lines do not break a
    run): unrelated headlines a page lists around its article. A title and a subheading or
    two stay, and so do bulleted lists, which articles use for their own content."""
    kept: list[str] = []
    run: list[str] = []

    def flush() -> None:
        words = [line for line in run if line]
        if len(words) >= UNHEADED_RUN:
            dropped.extend((line, "run of headlines") for line in words)
            if kept and kept[-1]:
                kept.append("")
        else:
            kept.extend(run)
        run.clear()

    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else ""
        wrapped = following[:1].islower()  # prose broken across lines goes on in lower case
        if not line:
            if run:
                run.append(line)
            else:
                kept.append(line)
        elif (
            _headline_like(line, bullets=False) and not line.endswith(SENTENCE_END) and not wrapped
        ):
            run.append(line)
        else:
            flush()
            kept.append(line)
    flush()
    return kept


def _paragraphs(lines: list[str]) -> str:
    """Join lines, at most one blank line between paragraphs, none at either end."""
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
