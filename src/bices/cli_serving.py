"""`bices serve`, `bices worker` and `bices demo`: the node's long-running processes."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from bices.cli import app, err, opened, out
from bices.logs import uvicorn_config
from bices.node import Node
from bices.settings import Settings

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


# Open streams never end by themselves: on shutdown they get this long, then are cut.
STREAMS_GRACE_S = 3


def _log_config(settings: Settings) -> dict[str, Any]:
    """uvicorn's `log_config`, where the node's log format asks for one of our own."""
    config = uvicorn_config(settings.log_format)
    return {} if config is None else {"log_config": config}


def _serve(node: Node, host: str, port: int) -> None:
    import uvicorn

    from bices.api import create_app

    with _exploitation(node.settings):
        app = create_app(node, exploit_thread=False, settle_process=True)
        uvicorn.run(app, host=host, port=port, log_level="info",
                    timeout_graceful_shutdown=STREAMS_GRACE_S,
                    **_log_config(node.settings))  # fmt: skip


def _serve_workers(settings: Settings, host: str, port: int, workers: int) -> None:
    """Several processes on one port and one data folder; each opens the node itself from
    ``BICES_*``, and this one hands each connection to the least busy of them."""
    from bices.serving.dispatch import Dispatcher, StartupFailed, worker_command

    dispatcher = Dispatcher(
        host, port, workers, worker_command(STREAMS_GRACE_S), env=_environment(settings),
        grace_s=STREAMS_GRACE_S,
    )  # fmt: skip
    try:
        dispatcher.bind()
    except OSError as error:
        err.print(f"[red]error:[/red] cannot listen on {host}:{port}: {error.strerror}")
        raise typer.Exit(1) from None
    err.print(f"bices serve: {workers} workers on http://{host}:{dispatcher.port}")
    with _exploitation(settings):
        try:
            dispatcher.run()
        except StartupFailed as failure:
            err.print(f"[red]error:[/red] {failure}")
            raise typer.Exit(1) from None


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

    from bices.pipeline.exploit import ExploitWorker, Pacer

    if nice:
        os.nice(nice)
    with opened(ctx) as node:
        exploiter = node.exploitation(batch=20)  # short write transactions
        if once:
            out.print(f"exploited {exploiter.drain()} report version(s)")
            return
        from bices.exploit import extract
        from bices.runtime import settle

        extract("NATO met in Seoul on 1 July 2024.")  # loads the knowledge base
        settle()
        err.print(f"bices worker: exploiting {node.settings.data} ("
                  f"{exploiter.pending()} pending)")  # fmt: skip
        loop = ExploitWorker(
            exploiter, poll_s=poll, pacer=Pacer(node.store.exploits.newest), max_backoff_s=30.0
        )
        signal.signal(signal.SIGTERM, lambda *_: loop.stop_soon())
        signal.signal(signal.SIGINT, lambda *_: loop.stop_soon())
        loop.run()


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
        out.print(f"[bold]analyst console:[/bold] open {base}/console/ in a browser and sign "
                  "in with one of the tokens above")  # fmt: skip
        out.print(f"API: {base}/api/v1   OpenAPI: {base}/openapi.json   docs: {base}/docs")
        out.print(
            f'try: curl -H "Authorization: Bearer {first.token}" "{base}/api/v1/search?q=NATO"'
        )
        out.print(
            f'     curl -H "Authorization: Bearer {first.token}" "{base}/api/v1/entities?q=Korea"'
            "   (entities appear as the worker exploits the reports)"
        )
        out.print(f'     curl -N -H "Authorization: Bearer {first.token}" "{base}/api/v1/stream"'
                  "   (the live stream)")  # fmt: skip
        out.print(f"TAXII 2.1: {base}/taxii2/ (HTTP Basic: {first.name} and the token)")
        if not seed_only:
            _serve(node, host, port)
