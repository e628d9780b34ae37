"""`bices node …` and `bices peer …`: this node's identity for peering, and the peer nodes
it shares with, as the node operator."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from bices.cli import app, opened, out
from bices.domain.peers import PeerStatus

node_app = typer.Typer(help="This node's identity.", no_args_is_help=True)
peer_app = typer.Typer(help="Peer nodes (federation).", no_args_is_help=True)
app.add_typer(node_app, name="node")
app.add_typer(peer_app, name="peer")

AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]


@node_app.command("info")
def node_info(ctx: typer.Context, as_json: AsJson = False) -> None:
    """The node key and its fingerprint (read it to a peer's operator before peering) and
    the members this node serves."""
    with opened(ctx) as node:
        info = node.federation.describe()
    if as_json:
        print(json.dumps(info))
        return
    out.print(f"name         {info['name']}")
    out.print(f"node key     {info['public_key']}")
    out.print(f"fingerprint  {info['fingerprint']}")
    out.print(f"serves       {', '.join(m['code'] for m in info['members']) or '(no member)'}")


@peer_app.command("add")
def peer_add(
    ctx: typer.Context,
    url: str,
    member: Annotated[
        list[str], typer.Option("--member", help="a member the peer serves; repeatable")
    ],
    key: Annotated[
        str,
        typer.Option(
            "--key", help="the peer's node key or fingerprint, as its operator read it to you"
        ),
    ],
    name: Annotated[str | None, typer.Option("--name", help="default: the peer's own")] = None,
    since_now: Annotated[
        bool, typer.Option("--since-now", help="send only what is stored from now on")
    ] = False,
) -> None:
    """Register the peer node at URL, serving --member, after checking its key."""
    with opened(ctx) as node:
        peer = node.federation.add_peer(url, key, member, name, since_now)
    out.print(
        f"peer {peer.name} at {escape(peer.url)} added, serving {', '.join(peer.members)}; "
        f"fingerprint {peer.fingerprint}"
    )


@peer_app.command("list")
def peer_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    with opened(ctx) as node:
        peers = node.federation.peers()
        head = node.store.outbox.head()
    if as_json:
        print(json.dumps([{**p.to_json(), "behind": head - p.sent_seq} for p in peers]))
        return
    table = Table("name", "url", "members", "status", "behind", "failures", "last error")
    for p in peers:
        table.add_row(
            p.name,
            escape(p.url),
            ", ".join(p.members),
            p.status.value,
            str(head - p.sent_seq),
            str(p.failures),
            escape(p.last_error or ""),
        )
    out.print(table)


def _set(ctx: typer.Context, name: str, status: PeerStatus) -> None:
    with opened(ctx) as node:
        peer = node.federation.set_status(name, status)
    out.print(f"peer {peer.name} {peer.status.value}")


@peer_app.command("suspend")
def peer_suspend(ctx: typer.Context, name: str) -> None:
    """Hold delivery to the peer (what is due to it waits in the outbox)."""
    _set(ctx, name, PeerStatus.SUSPENDED)


@peer_app.command("reinstate")
def peer_reinstate(ctx: typer.Context, name: str) -> None:
    _set(ctx, name, PeerStatus.ACTIVE)


@peer_app.command("remove")
def peer_remove(ctx: typer.Context, name: str) -> None:
    with opened(ctx) as node:
        node.federation.remove(name)
    out.print(f"peer {name} removed")


@peer_app.command("pull")
def peer_pull(ctx: typer.Context, name: str) -> None:
    """Catch up from the peer through its pull endpoint (after a long outage)."""
    with opened(ctx) as node:
        outcome = node.federation.pull(name)
    out.print(
        f"pulled from {name}: {len(outcome.accepted)} stored, "
        f"{len(outcome.duplicates)} already held, {len(outcome.rejected)} refused"
    )
    for item in outcome.rejected:
        out.print(f"  refused {item['id']} v{item['version']}: {escape(str(item['reason']))}")
