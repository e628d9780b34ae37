"""The app factory: one FastAPI app per node, no module-level state."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from fastapi import Depends, FastAPI

import bices
from bices.api import (
    entities,
    errors,
    federation,
    ingest,
    members,
    operations,
    reports,
    requirements,
    rfis,
    stream,
    taxii,
    users,
)
from bices.api.limits import BodyLimit, NoNul, refuse_nul
from bices.console import install as install_console
from bices.federation.forward import Forwarder
from bices.node import Node
from bices.pipeline.exploit import ExploitWorker
from bices.runtime import settle
from bices.settings import Settings
from bices.share.stream import StreamHub

# The routers of the API, in the order FastAPI tries them. Each miss costs (FastAPI 0.165,
# callgrind) ~18k instructions: the last of ~80 routes paid 1.4M before its own work. So
# the most asked come first. No two routers' paths overlap (tests/test_routing.py), so the
# order does not change which route answers.
ROUTED = (operations, taxii, reports, stream, entities, rfis, requirements, members, users,
          ingest, federation)  # fmt: skip


class Wakes(Protocol):
    def wake(self) -> None: ...


async def _wake_on_reports(node: Node, worker: Wakes) -> None:
    """Wake a worker whenever reports are stored; resubscribe if a burst overflowed."""
    while True:
        subscription = node.bus.subscribe()
        try:
            async for _ in subscription:
                worker.wake()
        finally:
            subscription.close()
        worker.wake()
        await asyncio.sleep(0.1)


def create_app(
    node: Node,
    owns_node: bool = False,
    exploit_thread: bool | None = None,
    settle_process: bool = False,
) -> FastAPI:
    """The API of `node`; with `owns_node`, the app closes the node when it shuts down.

    `exploit_thread` (default: the node's `exploit` setting) runs the exploitation worker
    in a thread of this process, as embedded users and tests of the app want; `bices serve`
    runs it as a process of its own instead (`bices worker`). `settle_process` freezes the
    heap at start-up (`bices.runtime.settle`): for a server process, not for tests.
    """
    run_worker = node.settings.exploit if exploit_thread is None else exploit_thread

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = waker = None
        if run_worker:
            worker = ExploitWorker(node.exploitation())
            worker.start()
            waker = asyncio.create_task(_wake_on_reports(node, worker))
        app.state.exploit_worker = worker
        hub = app.state.hub = StreamHub(node.store, node.bus)
        await hub.start()
        forwarder = forward_waker = None
        if node.settings.federate:
            forwarder = Forwarder(
                node.store, node.federation.key, poll_s=node.settings.federation_poll_s,
                max_backoff_s=node.settings.federation_max_backoff_s,
            )  # fmt: skip
            forwarder.start()
            forward_waker = asyncio.create_task(_wake_on_reports(node, forwarder))
        if settle_process:
            settle()
        try:
            yield
        finally:
            await hub.stop()
            if forward_waker is not None:
                forward_waker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await forward_waker
            if forwarder is not None:
                await asyncio.to_thread(forwarder.stop)
            if waker is not None:
                waker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waker
            if worker is not None:
                await asyncio.to_thread(worker.stop)  # waits for a save in progress
            if owns_node:
                node.close()

    app = FastAPI(
        lifespan=lifespan,
        dependencies=[Depends(refuse_nul)],
        title="BICES",
        version=bices.__version__,
        description="Coalition intelligence sharing: every answer obeys the access rule.",
        openapi_url="/openapi.json",
    )
    app.state.node = node
    errors.install(app)
    for module in ROUTED:
        app.include_router(module.router)
    operations.install(app, node)
    install_console(app)
    app.add_middleware(NoNul)
    app.add_middleware(BodyLimit, max_bytes=node.settings.max_body_bytes)

    return app


def app_from_environment() -> FastAPI:
    """For `bices serve --workers N`: each worker process opens its own node from the
    ``BICES_*`` environment that the CLI set before starting them."""
    return create_app(
        Node.open(Settings()), owns_node=True, exploit_thread=False, settle_process=True
    )
