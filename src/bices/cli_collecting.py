"""`bices ingest` and `bices extract`: collecting text, and exploiting a file on its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from bices.cli import app, err, opened, out
from bices.coalition import OPERATOR
from bices.domain.reports import LabelDraft, Reliability
from bices.pipeline.ingest import Ingester, IngestResult, IngestTerms
from bices.pipeline.sources import DEFAULT_MAX_FILES, DEFAULT_TIMEOUT_S, originals


@app.command("ingest")
def ingest(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="PATH|URL", help="a file, a folder, a URL")],
    user: Annotated[str, typer.Option("--user", help="store the reports as this user")],
    classification: Annotated[str, typer.Option("--classification", help='e.g. "PUBLIC"')],
    rel: Annotated[list[str], typer.Option("--rel", help="releasable to (repeatable)")],
    caveat: Annotated[list[str] | None, typer.Option("--caveat", help="repeatable")] = None,
    reliability: Annotated[
        Reliability, typer.Option("--reliability", help="Admiralty A-F; F: cannot be judged")
    ] = Reliability.F,
    credibility: Annotated[
        int, typer.Option("--credibility", min=1, max=6, help="Admiralty 1-6; 6: cannot be judged")
    ] = 6,
    max_files: Annotated[int, typer.Option("--max-files", min=1)] = DEFAULT_MAX_FILES,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="seconds for the whole fetch of a URL")
    ] = DEFAULT_TIMEOUT_S,
    allow_private: Annotated[
        bool,
        typer.Option(
            "--allow-private",
            help="fetch URLs (and follow redirects) to loopback, private, link-local or "
            "reserved addresses too; by default only public addresses are fetched",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Collect text, HTML pages, RSS/Atom feeds or a folder of them as OSINT reports.

    Exit code 0: all stored; 1: some inputs refused, the others stored; 2: nothing stored.
    """
    try:
        label = LabelDraft(classification=classification, releasable_to=rel, caveats=caveat or [])
    except ValidationError as error:
        err.print(f"[red]error:[/red] label: {error.errors()[0]['msg']}")
        raise typer.Exit(2) from None
    terms = IngestTerms(label, reliability, credibility)
    with opened(ctx) as node:
        viewer = node.coalition.viewer_of(user)
        ingester = Ingester(node.collector, node.settings.max_body_bytes)
        node.collector.check_label(viewer, label)  # before anything is read or fetched
        total, inputs = originals(target, ingester.max_bytes, max_files, timeout, allow_private)
        columns = (TextColumn("ingesting"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.description}"))  # fmt: skip
        with Progress(*columns, console=err, transient=True, disable=total < 2) as bar:
            task = bar.add_task("", total=total)

            def advance(location: str) -> None:
                bar.update(task, advance=1, description=Path(location).name[-40:])

            result = ingester.ingest(viewer, inputs, terms, acting=OPERATOR, progress=advance)
    _ingest_summary(result, total, as_json)


def _ingest_summary(result: IngestResult, total: int, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    elif total == 1 and result.refused and not result.stored:
        [refusal] = result.refused
        err.print(f"[red]error:[/red] {escape(refusal.location)}: {escape(refusal.reason)}")
    else:
        inputs = len({s.original for s in result.stored})
        out.print(f"stored {len(result.stored)} report(s) from {inputs} of {total} input(s)")
        for stored in result.stored:
            out.print(f"  {stored.id}  [{stored.language}]  {stored.title}", markup=False)
        if result.refused:
            err.print(f"refused {len(result.refused)} input(s):")
        for refusal in result.refused:
            err.print(f"  {refusal.location}: {refusal.reason}", markup=False)
    if result.refused:
        raise typer.Exit(1 if result.stored else 2)


# -- running ---------------------------------------------------------------------------


@app.command("extract")
def extract_command(
    path: Annotated[Path, typer.Argument(help="a text, HTML or feed file")],
    as_json: Annotated[bool, typer.Option("--json", help="print the JSON object")] = False,
    published: Annotated[
        str | None, typer.Option("--published", help="publication date YYYY-MM-DD")
    ] = None,
    language: Annotated[str | None, typer.Option("--language", help="skip detection")] = None,
) -> None:
    """Extract entities, events, dates, quantities and topics from a file (no node needed)."""
    from datetime import date

    from bices.domain.errors import BicesError
    from bices.exploit import extract
    from bices.pipeline.formats import decode, documents, kind_of
    from bices.pipeline.sources import read_file

    try:
        day = None if published is None else date.fromisoformat(published)
    except ValueError:
        err.print(f"[red]error:[/red] --published {published!r} is not a date YYYY-MM-DD")
        raise typer.Exit(2) from None
    try:
        original = read_file(path, 32 * 1024 * 1024)
        found = documents(original)  # refuses empty, binary and undecodable files
        text = decode(original)
    except BicesError as error:
        err.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    if kind_of(original, text) == "text":  # the whole file, so offsets index into it
        titles = [path.name]
        results = [extract(text, language=language, published=day).to_json()]
    else:  # a page or a feed: each article's text as its extractor found it
        titles = [doc.title for doc in found]
        results = [
            extract(doc.text, title=doc.title, language=language or doc.language_hint,
                    published=day or (doc.published.date() if doc.published else None)).to_json()
            for doc in found
        ]  # fmt: skip
    if as_json:
        print(json.dumps(results[0] if len(results) == 1 else results, ensure_ascii=False))
        return
    for title, result in zip(titles, results, strict=True):
        out.print(f"[bold]{title}[/bold]  language {result['language']}, "
                  f"date {result['date']}")  # fmt: skip
        for e in result["entities"]:
            out.print(f"  {e['type']:<9} {e['canonical']}  [dim]({e['text']})[/dim]")
        for ev in result["events"]:
            out.print(f"  event {ev['type']} {ev['date'] or ''} {', '.join(ev['participants'])}")
        for t in result["topics"]:
            out.print(f"  topic {t['name']}  [dim]({t['reason']})[/dim]")
