"""The `bices` command: thin over the library, acting as the node operator on a data folder."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from bices.coalition import OPERATOR
from bices.domain.audit import verify_chain
from bices.domain.errors import BicesError
from bices.domain.members import MemberKind, MemberStatus
from bices.domain.reports import LabelDraft, Reliability
from bices.node import Node
from bices.pipeline.ingest import Ingester, IngestResult, IngestTerms
from bices.pipeline.sources import DEFAULT_MAX_FILES, DEFAULT_TIMEOUT_S, originals
from bices.settings import Settings
from bices.share.reading import verify_version
from bices.store.base import ReportFilter

log = logging.getLogger("bices")
app = typer.Typer(help="BICES: a coalition intelligence-sharing node.", no_args_is_help=True)
member_app = typer.Typer(help="Members and accession.", no_args_is_help=True)
community_app = typer.Typer(help="Communities used in releasability.", no_args_is_help=True)
user_app = typer.Typer(help="Users and API tokens.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
report_app = typer.Typer(help="Reports.", no_args_is_help=True)
db_app = typer.Typer(help="The node's database.", no_args_is_help=True)
app.add_typer(member_app, name="member")
app.add_typer(community_app, name="community")
app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")
app.add_typer(report_app, name="report")
app.add_typer(db_app, name="db")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@app.callback()
def main_options(
    ctx: typer.Context,
    data: Annotated[
        Path | None, typer.Option("--data", envvar="BICES_DATA", help="data folder of the node")
    ] = None,
) -> None:
    ctx.obj = Settings() if data is None else Settings(data=data)


@contextmanager
def opened(ctx: typer.Context) -> Iterator[Node]:
    """Open the node for one command; domain errors become a message and exit code 2."""
    settings: Settings = ctx.obj
    node = Node.open(settings)
    try:
        yield node
    except BicesError as error:
        err.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    finally:
        node.close()


Communities = Annotated[list[str] | None, typer.Option("--community", help="repeatable")]
Kind = Annotated[MemberKind, typer.Option("--kind")]


# -- members ---------------------------------------------------------------------------


@member_app.command("add")
def member_add(
    ctx: typer.Context,
    code: str,
    name: Annotated[str, typer.Option("--name")],
    community: Communities = None,
    kind: Kind = MemberKind.NATION,
) -> None:
    """Operator bootstrap: add an active member with a new Ed25519 signing key."""
    with opened(ctx) as node:
        member = node.coalition.add_member(code, name, kind, community or [])
        out.print(f"member {member.code} ({member.name}) active; public key {member.public_key}")


@member_app.command("list")
def member_list(ctx: typer.Context) -> None:
    with opened(ctx) as node:
        table = Table("code", "name", "kind", "status", "communities")
        for m in node.store.coalition.list_members():
            communities = ", ".join(node.store.coalition.member_communities(m.code))
            table.add_row(m.code, m.name, m.kind.value, m.status.value, communities)
        out.print(table)


@member_app.command("apply")
def member_apply(
    ctx: typer.Context,
    code: str,
    name: Annotated[str, typer.Option("--name")],
    sponsor: Annotated[str, typer.Option("--sponsor", help="an active member")],
    community: Communities = None,
    kind: Kind = MemberKind.NATION,
    public_key: Annotated[str | None, typer.Option("--public-key")] = None,
) -> None:
    """File an application to join, sponsored by an active member."""
    with opened(ctx) as node:
        accession = node.coalition.apply(code, name, sponsor, kind, community or [], public_key)
        out.print(f"application of {accession.code} filed, sponsored by {accession.sponsor}")


def _vote(ctx: typer.Context, code: str, member: str, approve: bool) -> None:
    with opened(ctx) as node:
        accession = node.coalition.vote(code, approve, member=member)
        out.print(
            f"{accession.code}: {accession.status}; approvals {len(accession.approvals)}, "
            f"rejections {len(accession.rejections)}"
        )


AsMember = Annotated[str, typer.Option("--as-member", help="the voting active member")]


@member_app.command("approve")
def member_approve(ctx: typer.Context, code: str, as_member: AsMember) -> None:
    """Record an active member's approval; at quorum the applicant becomes active."""
    _vote(ctx, code, as_member, True)


@member_app.command("reject")
def member_reject(ctx: typer.Context, code: str, as_member: AsMember) -> None:
    _vote(ctx, code, as_member, False)


def _set_status(ctx: typer.Context, code: str, status: MemberStatus) -> None:
    with opened(ctx) as node:
        member = node.coalition.set_status(code, status)
        out.print(f"member {member.code} is now {member.status.value}")


@member_app.command("suspend")
def member_suspend(ctx: typer.Context, code: str) -> None:
    """Suspend a member: its users see nothing from the next request on."""
    _set_status(ctx, code, MemberStatus.SUSPENDED)


@member_app.command("reinstate")
def member_reinstate(ctx: typer.Context, code: str) -> None:
    _set_status(ctx, code, MemberStatus.ACTIVE)


@member_app.command("withdraw")
def member_withdraw(ctx: typer.Context, code: str) -> None:
    _set_status(ctx, code, MemberStatus.WITHDRAWN)


# -- communities -----------------------------------------------------------------------


@community_app.command("define")
def community_define(ctx: typer.Context, name: str, members: list[str]) -> None:
    """Define (or redefine) a community of members."""
    with opened(ctx) as node:
        codes = node.coalition.define_community(name, members)
        out.print(f"community {name.upper()}: {', '.join(codes)}")


@community_app.command("list")
def community_list(ctx: typer.Context) -> None:
    with opened(ctx) as node:
        for name, members in sorted(node.store.coalition.directory().communities.items()):
            out.print(f"{name}: {', '.join(sorted(members))}")


# -- users -----------------------------------------------------------------------------


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    member: Annotated[str, typer.Option("--member")],
    name: Annotated[str, typer.Option("--name")],
    clearance: Annotated[str, typer.Option("--clearance", help='e.g. "NATO SECRET"')],
    caveat: Annotated[list[str] | None, typer.Option("--caveat", help="repeatable")] = None,
    role: Annotated[list[str] | None, typer.Option("--role", help="repeatable")] = None,
) -> None:
    """Create a user; its API token is the last line printed."""
    with opened(ctx) as node:
        user, token = node.coalition.add_user(
            member, name, clearance, caveat or [], role or ["analyst"]
        )
        roles = ", ".join(sorted(r.value for r in user.roles))
        print(f"user {user.name} of {user.member}, {user.clearance.marking}, roles {roles}")
        print(token)


@user_app.command("list")
def user_list(ctx: typer.Context) -> None:
    with opened(ctx) as node:
        table = Table("name", "member", "clearance", "caveats", "roles")
        for u in node.store.coalition.list_users():
            table.add_row(
                u.name, u.member, u.clearance.marking, ", ".join(sorted(u.caveats)),
                ", ".join(sorted(r.value for r in u.roles)),
            )  # fmt: skip
        out.print(table)


@user_app.command("token")
def user_token(
    ctx: typer.Context,
    name: str,
    expires_in_days: Annotated[
        int | None, typer.Option("--expires-in-days", min=1, help="default: no expiry")
    ] = None,
) -> None:
    """Issue another token for a user (printed once)."""
    ttl = None if expires_in_days is None else timedelta(days=expires_in_days)
    with opened(ctx) as node:
        print(node.coalition.issue_token(node.coalition.user(name), ttl))


@user_app.command("revoke")
def user_revoke(ctx: typer.Context, name: str) -> None:
    """Revoke every token of a user."""
    with opened(ctx) as node:
        count = node.coalition.revoke(name)
        out.print(f"revoked {count} token(s) of {name}")


# -- audit and verification ------------------------------------------------------------


@audit_app.command("verify")
def audit_verify(ctx: typer.Context) -> None:
    """Walk the hash chain; name the first changed, removed or reordered event."""
    with opened(ctx) as node:
        count, broken = verify_chain(node.store.audit.all_events())
    if broken is not None:
        err.print(f"[red]audit chain broken at event {broken.seq}:[/red] {broken.reason}")
        err.print(f"{count} event(s) before it verified")
        raise typer.Exit(1)
    out.print(f"audit chain intact: {count} event(s)")


@db_app.command("optimize")
def db_optimize(ctx: typer.Context) -> None:
    """Merge the search index and refresh statistics (writers wait; run when quiet)."""
    with opened(ctx) as node:
        out.print(node.store.optimize())


@report_app.command("verify")
def report_verify(ctx: typer.Context) -> None:
    """Check every stored version's signature against its originator's registered key."""
    bad = 0
    total = 0
    with opened(ctx) as node:
        for version in node.store.reports.all_versions():
            total += 1
            check = verify_version(node.store, version)
            if not check.valid:
                bad += 1
                err.print(f"[red]{check.report_id} v{check.version}:[/red] {check.reason}")
    out.print(f"{total - bad} of {total} version(s) verify")
    if bad:
        raise typer.Exit(1)


@app.command("search")
def search(
    ctx: typer.Context,
    q: str,
    user: Annotated[str, typer.Option("--user", help="search as this user, under the rule")],
    limit: Annotated[int, typer.Option("--limit")] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Full-text search as a user sees it."""
    with opened(ctx) as node:
        viewer = node.coalition.viewer_of(user)
        result = node.reader.search(viewer, q, ReportFilter(), None, limit, acting=OPERATOR)
        if as_json:
            items = [v.to_json() for v in result.items]
            print(json.dumps({"total": result.total, "facets": result.facets, "items": items}))
            return
        out.print(f"{result.total} hit(s)")
        for v in result.items:
            out.print(f"[bold]{v.title}[/bold]  {v.label.render()}  {v.id}")


# -- collection ------------------------------------------------------------------------


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


Host = Annotated[str, typer.Option("--host")]
Port = Annotated[int, typer.Option("--port")]


Workers = Annotated[
    int,
    typer.Option(
        "--workers",
        min=1,
        max=64,
        help="server processes sharing the port and the data folder (one core each)",
    ),
]


def _environment(settings: Settings) -> dict[str, str]:
    """The settings as ``BICES_*`` variables, for processes that open the node themselves."""
    found = {
        f"BICES_{k.upper()}": str(v) for k, v in settings.model_dump().items() if v is not None
    }
    return {**os.environ, **found}


@contextmanager
def _exploitation(settings: Settings) -> Iterator[None]:
    """`bices worker` beside the server, at a lower CPU priority, for as long as it serves.

    A process of its own, so extraction never holds the server's interpreter lock: under
    load, collection keeps its speed and exploitation catches up when the node is quieter.
    """
    if not settings.exploit:
        yield
        return
    import signal
    import subprocess
    import sys

    def die_with_parent() -> None:  # Linux: the kernel stops the worker if serve dies
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    worker = subprocess.Popen(
        [sys.executable, "-m", "bices", "worker"],
        env=_environment(settings),
        preexec_fn=die_with_parent if sys.platform == "linux" else None,
    )
    try:
        yield
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _serve(node: Node, host: str, port: int) -> None:
    import uvicorn

    from bices.api import create_app

    with _exploitation(node.settings):
        app = create_app(node, exploit_thread=False, settle_process=True)
        uvicorn.run(app, host=host, port=port, log_level="info")


def _serve_workers(settings: Settings, host: str, port: int, workers: int) -> None:
    """Several processes on one port; each opens the node itself from ``BICES_*``."""
    import uvicorn

    os.environ.update(_environment(settings))
    with _exploitation(settings):
        uvicorn.run(
            "bices.api.app:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
        )


@app.command("worker")
def worker(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="exploit what is pending, then exit")
    ] = False,
    poll: Annotated[float, typer.Option("--poll", min=0.05, max=60)] = 0.5,
    nice: Annotated[int, typer.Option("--nice", min=0, max=19)] = 10,
) -> None:
    """Exploit stored reports as they arrive: entities, events, correlations, alerts.

    `bices serve` starts one; more on the same machine share the work, each version
    exploited once (SQLite's locks hold on one machine only: not on a network folder).
    """
    import signal
    import time

    from bices.pipeline.exploit import CONSUMER, Exploiter, Pacer

    if nice:
        os.nice(nice)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with opened(ctx) as node:
        exploiter = Exploiter(node.store, batch=20)  # short write transactions
        if once:
            out.print(f"exploited {exploiter.drain()} report version(s)")
            return
        from bices.exploit import extract
        from bices.runtime import settle

        extract("NATO met in Seoul on 1 July 2024.")  # loads the knowledge base
        settle()
        err.print(f"bices worker: exploiting {node.settings.data} ("
                  f"{node.store.exploits.lag(CONSUMER)} pending)")  # fmt: skip
        backoff = poll
        pacer = Pacer(node.store.exploits.newest)
        while not stopping:
            if pacer.defer():  # collection is busy: let it have the cores and the lock
                time.sleep(poll)
                continue
            try:
                done = exploiter.run_once()
                backoff = poll
            except Exception:  # e.g. the database busy or full: log, wait, try again
                log.exception("bices worker: exploitation failed; retrying in %.1f s", backoff)
                done, backoff = 0, min(backoff * 2, 30.0)
            if done == 0:
                time.sleep(backoff)


@app.command("serve")
def serve(
    ctx: typer.Context, host: Host = "127.0.0.1", port: Port = 8470, workers: Workers = 1
) -> None:
    """Serve the REST API of the node in the data folder."""
    with opened(ctx) as node:  # also creates or checks the schema before any worker starts
        if workers == 1:
            _serve(node, host, port)
            return
    _serve_workers(ctx.obj, host, port, workers)


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


@app.command("demo")
def demo(
    ctx: typer.Context,
    host: Host = "127.0.0.1",
    port: Port = 8470,
    seed_only: Annotated[bool, typer.Option("--seed-only", help="set up, print, exit")] = False,
) -> None:
    """Start a node with a sample coalition, users and reports on a fresh data folder."""
    from bices.demo import seed

    settings: Settings = ctx.obj
    source = ctx.parent.get_parameter_source("data") if ctx.parent else None
    explicit = source is not None and source.name in {"COMMANDLINE", "ENVIRONMENT"}
    data = settings.data if explicit else Path(tempfile.mkdtemp(prefix="bices-demo-"))
    if (data / "bices.db").exists():
        err.print(f"[red]error:[/red] {data} already holds a node; demo needs a fresh folder")
        raise typer.Exit(2)
    ctx.obj = settings.model_copy(update={"data": data})
    with opened(ctx) as node:
        users = seed(node)
        base = f"http://{host}:{port}"
        out.print(f"[bold]BICES demo node[/bold] on {data}")
        out.print("users (name, member, clearance, API token):")
        for u in users:
            print(f"  {u.name:<14} {u.member:<4} {u.clearance:<18} {u.token}")
        first = users[1]
        out.print(f"API: {base}/api/v1   OpenAPI: {base}/openapi.json   docs: {base}/docs")
        out.print(
            f'try: curl -H "Authorization: Bearer {first.token}" "{base}/api/v1/search?q=NATO"'
        )
        out.print(
            f'     curl -H "Authorization: Bearer {first.token}" "{base}/api/v1/entities?q=Korea"'
            "   (entities appear as the worker exploits the reports)"
        )
        if not seed_only:
            _serve(node, host, port)


def main() -> None:
    app()
