"""Bearer-token authentication: every request resolves to a `Viewer`, checked fresh."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bices.domain.errors import Unauthenticated
from bices.domain.users import Viewer
from bices.node import Node

bearer = HTTPBearer(auto_error=False, description="An API token printed by `bices user add`.")


def node_of(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def current_viewer(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Viewer:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("missing 'Authorization: Bearer TOKEN' header")
    viewer = node_of(request).coalition.authenticate(credentials.credentials)
    request.state.viewer = viewer  # lets the error handlers name who was refused
    return viewer


async def _node(request: Request) -> Node:
    """`node_of` as a dependency: async, so FastAPI does not hand it to a worker thread."""
    return node_of(request)


CurrentViewer = Annotated[Viewer, Depends(current_viewer)]
NodeDep = Annotated[Node, Depends(_node)]
