"""The `bices` command: thin over the library, acting as the node operator on a data folder."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from bices.coalition import OPERATOR
from bices.domain.audit import verify_chain
from bices.domain.errors import BicesError
from bices.domain.members import MemberKind, MemberStatus
from bices.logs import configure
from bices.node import Node
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
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", envvar="BICES_DATABASE_URL",
                     help="postgresql://… : PostgreSQL instead of the embedded store"),
    ] = None,
    bus_url: Annotated[
        str | None,
        typer.Option("--bus-url", envvar="BICES_BUS_URL",
                     help="nats://… : NATS JetStream instead of the in-process bus"),
    ] = None,
    bus_namespace: Annotated[
        str | None,
        typer.Option("--bus-namespace", envvar="BICES_BUS_NAMESPACE",
                     help="streams of this node's own on a shared NATS server"),
    ] = None,
) -> None:  # fmt: skip
    given = {"data": data, "database_url": database_url, "bus_url": bus_url,
             "bus_namespace": bus_namespace}  # fmt: skip
    chosen: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
    try:
        ctx.obj = Settings(**chosen)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        err.print(f"[red]error:[/red] settings: {problems}")
        raise typer.Exit(2) from None
    configure(ctx.obj.log_format)


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
    public_key: Annotated[
        str | None,
        typer.Option("--public-key", help="a member served by a peer node: its Ed25519 "
                     "public key (base64); this node keeps no signing key for it"),
    ] = None,
) -> None:  # fmt: skip
    """Operator bootstrap: add an active member with a new Ed25519 signing key (or, with
    --public-key, a member that a peer node serves)."""
    with opened(ctx) as node:
        member = node.coalition.add_member(code, name, kind, community or [], None, public_key)
        served = "served by a peer" if public_key else "served here"
        out.print(
            f"member {member.code} ({member.name}) active, {served}; public key {member.public_key}"
        )


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


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply the PostgreSQL store's pending schema migrations (the embedded store upgrades
    itself when opened)."""
    settings: Settings = ctx.obj
    if not settings.database_url:
        out.print("the embedded store (SQLite) upgrades itself when opened: nothing to do")
        return
    from bices.store.pg_db import PgDatabase
    from bices.store.pg_schema import LATEST, upgrade

    db = PgDatabase(settings.database_url)
    try:
        done = upgrade(db)
    finally:
        db.close()
    for migration in done:
        out.print(f"applied migration {migration.version}: {migration.name}")
    out.print(f"schema at version {LATEST}")


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


def _store_name(settings: Settings) -> str:
    if not settings.database_url:
        return f"sqlite:{settings.data / 'bices.db'}"
    from bices.store.pg_db import without_password

    return without_password(settings.database_url)


@app.command("status")
def status(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The node at a glance: backends, contents, the exploitation queue, open streams."""

    with opened(ctx) as node:
        settings: Settings = ctx.obj
        figures = node.store.operations.figures()
        streams, processes = node.store.operations.subscribers()
        found: dict[str, object] = {
            "store": _store_name(settings),
            "bus": settings.bus_url or "in-process",
            **figures,
            "exploit_lag": node.exploit_backlog(),
            **({} if (queued := node.work_queue_depth()) is None else {"work_queue": queued}),
            "stream_subscribers": streams,
            "server_processes": processes,
            "peers": {
                peer.name: {"status": peer.status.value, "behind": events,
                            "failures": peer.failures, "last_error": peer.last_error}
                for peer, events in node.federation.behind()
            },
        }  # fmt: skip
    if as_json:
        print(json.dumps(found))
        return
    table = Table(show_header=False, box=None)
    peers = found.pop("peers")
    for name, value in found.items():
        table.add_row(
            name.replace("_", " "), f"{value:,}" if isinstance(value, int) else str(value)
        )
    assert isinstance(peers, dict)
    for name, peer in peers.items():
        error = f", last error: {peer['last_error']}" if peer["last_error"] else ""
        table.add_row(f"peer {name}", f"{peer['status']}, {peer['behind']:,} events behind, "
                      f"{peer['failures']} failures{error}")  # fmt: skip
    out.print(table)


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


# The commands of the long-running processes and of collection live in modules of their
# own; importing them registers them on `app`.
from bices import (  # noqa: E402, F401
    cli_collecting,
    cli_peers,
    cli_requirements,
    cli_rfis,
    cli_serving,
    cli_stix,
)


def main() -> None:
    app()
