"""Federation over HTTP: the node-to-node endpoints (signed both ways) under
`/federation/v1`, and the operator's peer administration under `/api/v1/peers`."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from bices.api.auth import CurrentViewer, NodeDep
from bices.api.schemas import PeerIn, PeerOut
from bices.domain.peers import Peer, PeerStatus
from bices.federation.wire import MAX_ITEMS, SIGNATURE
from bices.node import Node

router = APIRouter(tags=["federation"])


def _signed(node: Node, request: Request, payload: dict[str, Any]) -> Response:
    body = json.dumps(payload).encode()
    headers = node.federation.key.response_headers(200, body, request.headers[SIGNATURE])
    return Response(body, 200, headers, media_type="application/json")


def _target(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


@router.get("/federation/v1/node")
def describe_node(node: NodeDep) -> dict[str, Any]:
    """This node's name, node key (with its fingerprint, to check out of band) and the
    members it serves with their public keys, signed by the node key."""
    return node.federation.describe()


BATCH_SCHEMA = {
    "type": "object",
    "required": ["items"],
    "properties": {
        "batch": {"type": "string", "description": "the sender's id of the batch"},
        "items": {
            "type": "array",
            "maxItems": MAX_ITEMS,
            "items": {"type": "object", "description": "a report version, as signed by its "
                      "originator, with `author`, `stored_at`, `signature` and `blobs`"},
        },
    },
}  # fmt: skip
SIGNED_BY_A_PEER = [
    {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
    for name in ("bices-node", "bices-to", "bices-date", "bices-signature")
]


@router.post(
    "/federation/v1/inbox",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": BATCH_SCHEMA}},
        },
        "parameters": SIGNED_BY_A_PEER,
    },
)
async def receive_batch(request: Request, node: NodeDep) -> Response:
    """A peer's signed batch of items: each is checked again and stored or refused."""
    body = await request.body()
    peer = await run_in_threadpool(
        node.federation.authenticate, "POST", _target(request), request.headers, body
    )
    outcome = await run_in_threadpool(node.federation.receive, peer, body)
    return _signed(node, request, outcome.to_json())


@router.get("/federation/v1/changes", openapi_extra={"parameters": SIGNED_BY_A_PEER})
async def changes(
    request: Request,
    node: NodeDep,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ITEMS)] = 100,
) -> Response:
    """The pull endpoint: items due to the calling peer after a cursor, for catching up."""
    peer = await run_in_threadpool(
        node.federation.authenticate, "GET", _target(request), request.headers, b""
    )
    page = await run_in_threadpool(node.federation.changes, peer, after, limit)
    return _signed(node, request, page)


@router.post(
    "/federation/v1/rfi-actions",
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["rfi_id", "action", "actor", "member"],
            "properties": {"rfi_id": {"type": "string"}, "action": {"type": "string"},
                           "actor": {"type": "string"}, "member": {"type": "string"},
                           "reason": {"type": "string"}, "report": {"type": "object"}},
        }}}},
        "parameters": SIGNED_BY_A_PEER,
    },
)  # fmt: skip
async def rfi_action(request: Request, node: NodeDep) -> Response:
    """A peer's user acts on an RFI asked here (accept, answer, close): decided here, by
    the same rules as for this node's users; the answer is the RFI's new revision."""
    body = await request.body()
    peer = await run_in_threadpool(
        node.federation.authenticate, "POST", _target(request), request.headers, body
    )
    item = await run_in_threadpool(node.federation.rfi_actions.apply, peer, body)
    return _signed(node, request, item)


def _out(peer: Peer) -> dict[str, Any]:
    return peer.to_json()


@router.get("/api/v1/peers", response_model=list[PeerOut])
def list_peers(viewer: CurrentViewer, node: NodeDep) -> list[dict[str, Any]]:
    """Peer nodes and how delivery to each stands (operators)."""
    return [_out(p) for p in node.federation.peers(viewer)]


@router.post("/api/v1/peers", status_code=201, response_model=PeerOut)
def add_peer(body: PeerIn, viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
    """Register a peer node after its key was checked with its operator (operators)."""
    peer = node.federation.add_peer(
        body.url, body.key, body.members, body.name, body.since_now, viewer
    )
    return _out(peer)


@router.get("/api/v1/peers/{name}", response_model=PeerOut)
def get_peer(name: str, viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
    return _out(node.federation.peer(name, viewer))


@router.post("/api/v1/peers/{name}/suspend", response_model=PeerOut)
def suspend_peer(name: str, viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
    """Hold delivery to the peer; what is due to it waits in the outbox."""
    return _out(node.federation.set_status(name, PeerStatus.SUSPENDED, viewer))


@router.post("/api/v1/peers/{name}/reinstate", response_model=PeerOut)
def reinstate_peer(name: str, viewer: CurrentViewer, node: NodeDep) -> dict[str, Any]:
    return _out(node.federation.set_status(name, PeerStatus.ACTIVE, viewer))


@router.delete("/api/v1/peers/{name}", status_code=204)
def remove_peer(name: str, viewer: CurrentViewer, node: NodeDep) -> Response:
    node.federation.remove(name, viewer)
    return Response(status_code=204)
