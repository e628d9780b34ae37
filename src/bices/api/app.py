"""The app factory: one FastAPI app per node, no module-level state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import bices
from bices.api import errors, members, reports, users
from bices.api.limits import BodyLimit
from bices.node import Node
from bices.settings import Settings


def create_app(node: Node, owns_node: bool = False) -> FastAPI:
    """The API of `node`; with `owns_node`, the app closes the node when it shuts down."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owns_node:
                node.close()

    app = FastAPI(
        lifespan=lifespan,
        title="BICES",
        version=bices.__version__,
        description="Coalition intelligence sharing: every answer obeys the access rule.",
        openapi_url="/openapi.json",
    )
    app.state.node = node
    errors.install(app)
    for module in (reports, members, users):
        app.include_router(module.router)

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(BodyLimit, max_bytes=node.settings.max_body_bytes)

    return app


def app_from_environment() -> FastAPI:
    """For `bices serve --workers N`: each worker process opens its own node from the
    ``BICES_*`` environment that the CLI set before starting them."""
    return create_app(Node.open(Settings()), owns_node=True)
