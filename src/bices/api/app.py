"""The app factory: one FastAPI app per node, no module-level state."""

from __future__ import annotations

from fastapi import FastAPI

import bices
from bices.api import errors, members, reports, users
from bices.api.limits import BodyLimit
from bices.node import Node


def create_app(node: Node) -> FastAPI:
    app = FastAPI(
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
