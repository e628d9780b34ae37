"""Live streams: Server-Sent Events at `/api/v1/stream`, WebSocket at `/api/v1/ws`.

Both carry the same events (`report`, `rfi`, `alert`), each with the outbox seq as its
id; a client resumes with `Last-Event-ID` (SSE) or `cursor` (WebSocket) and receives what
it missed, once, in order. A send that the client does not take within `SEND_TIMEOUT_S`
ends the connection: the client resumes from the last id it received.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, WebSocket, WebSocketDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from bices.api.auth import CurrentViewer, NodeDep
from bices.api.errors import STATUS
from bices.domain.errors import BicesError, InvalidInput, NotFound
from bices.domain.users import Viewer
from bices.node import Node
from bices.share.stream import Sent, StreamClosed, StreamHub, Subscriber, parse_kinds

router = APIRouter(prefix="/api/v1", tags=["stream"])

SEND_TIMEOUT_S = 10.0
RETRY_MS = 2000


def hub_of(request: Request | WebSocket) -> StreamHub:
    hub: StreamHub = request.app.state.hub
    return hub


def _cursor(hub: StreamHub, text: str | None, what: str) -> int | None:
    """The seq of an event id this node gave out; anything else is refused, with no
    number in the message (the ids are sealed so that none can be read from them)."""
    if text is None or not text.strip():
        return None
    seq = hub.open(text.strip())
    if seq is None:
        raise InvalidInput(f"{what} {text.strip()[:40]!r} is not an event id of this node")
    return seq


async def first_of(*work: Coroutine[Any, Any, None]) -> int | None:
    """Run side by side until one ends; cancel the rest. The index of the one that ended
    without an error (None if it raised)."""
    tasks = [asyncio.create_task(w) for w in work]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    ended = next(i for i, task in enumerate(tasks) if task in done)
    return None if tasks[ended].exception() is not None else ended


async def open_subscriber(
    node: Node,
    hub: StreamHub,
    viewer: Viewer,
    token: str,
    cursor: int | None,
    events: list[str],
    matched: bool,
    requirements: list[int],
) -> Subscriber:
    """A subscriber from the request's options, each checked: 4xx before the stream."""
    kinds = parse_kinds(events)
    if cursor is not None:  # an id from a restored backup may lie ahead: start at the head
        cursor = min(cursor, await asyncio.to_thread(node.store.outbox.head))
    chosen = None
    if requirements:
        own = {r.id for r in await asyncio.to_thread(node.store.requirements.of_user,
                                                      viewer.user_id)}  # fmt: skip
        missing = sorted(set(requirements) - own)
        if missing:
            raise NotFound(f"requirement {missing[0]} not found")
        chosen = frozenset(requirements)
    start = hub.head if cursor is None else cursor
    subscriber = Subscriber(hub, viewer, token, start, kinds, matched, chosen)
    subscriber.catching_up = start < hub.floor
    return subscriber


def _token(request: Request | WebSocket) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class EventStream(Response):
    """An SSE body that gives up on a client that stops reading (bounded by the timeout)."""

    media_type = "text/event-stream"

    def __init__(self, subscriber: Subscriber) -> None:
        super().__init__(headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        # A stream has no length: drop the `content-length: 0` of the empty body.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.subscriber = subscriber

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})

        async def chunk(body: bytes) -> None:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await send({"type": "http.response.body", "body": body, "more_body": True})

        async def pump() -> None:
            await chunk(f"retry: {RETRY_MS}\n: stream open\n\n".encode())
            try:
                async for sent in self.subscriber.events():
                    if sent is None:
                        await chunk(b": keep-alive\n\n")
                        continue
                    await chunk(sent.frame())
                    self.subscriber.delivered(sent)
            except StreamClosed as closed:
                await chunk(Sent(None, closed.event, closed.data).frame())

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        if await first_of(pump(), disconnected()) == 0:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(SEND_TIMEOUT_S):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
        # Otherwise the client left or stopped reading: returning without completing the
        # response makes the server drop the connection.


@router.get(
    "/stream",
    response_class=Response,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "`id:` (the event id), `event:` (`report`, `rfi`, `alert`; "
            "`closed` or `overflow` last) and `data:` (JSON)",
        }
    },
)
async def stream(
    request: Request,
    viewer: CurrentViewer,
    node: NodeDep,
    last_event_id: Annotated[str | None, Header(description="resume after this id")] = None,
    after: Annotated[
        str | None, Query(max_length=64, description="resume after this id (as Last-Event-ID)")
    ] = None,
    events: Annotated[list[str], Query(description="report, rfi, alert (default all)")] = [],  # noqa: B006
    matched: Annotated[bool, Query(description="only reports that match a requirement")] = False,
    requirement: Annotated[list[int], Query(description="use only these requirements")] = [],  # noqa: B006
) -> EventStream:
    """Server-Sent Events of everything the caller may see as it is stored: reports (with
    the ids of the caller's requirements they match), RFIs, the caller's alerts."""
    hub = hub_of(request)
    cursor = _cursor(hub, after, "after") if after is not None else \
        _cursor(hub, last_event_id, "Last-Event-ID")  # fmt: skip
    token = _token(request)
    assert token is not None  # the viewer was authenticated from it
    subscriber = await open_subscriber(node, hub, viewer, token, cursor, events, matched,
                                       requirement)  # fmt: skip
    return EventStream(subscriber)


@router.websocket("/ws")
async def websocket_stream(websocket: WebSocket) -> None:
    """The same events as JSON messages `{"id", "event", "data"}`. Authenticate with
    `Authorization: Bearer` on the handshake, or send `{"token": ...}` first; options
    (`cursor`, `events`, `matched`, `requirements`) as query parameters or in that message."""
    node: Node = websocket.app.state.node
    await websocket.accept()
    try:
        query = websocket.query_params
        options = WsOptions(
            cursor=query.get("cursor"),
            events=query.getlist("events"),
            matched=_flag(query.get("matched", "false")),
            requirements=[_int(r) for r in query.getlist("requirement")],
        )
        token = _token(websocket)
        if token is None:
            async with asyncio.timeout(10):
                message = await websocket.receive()
            if message.get("type") == "websocket.disconnect":
                return
            token, options = _first_message(message.get("text"), options)
        viewer = await asyncio.to_thread(node.coalition.authenticate, token)
        hub = hub_of(websocket)
        subscriber = await open_subscriber(
            node, hub, viewer, token, _cursor(hub, options.cursor, "cursor"), options.events,
            options.matched, options.requirements,
        )  # fmt: skip
    except (BicesError, TimeoutError, ValueError) as error:
        detail = "no token sent within 10 s" if isinstance(error, TimeoutError) else str(error)
        code = STATUS.get(type(error), 400) if isinstance(error, BicesError) else 400
        with contextlib.suppress(Exception):
            await websocket.send_json({"event": "error", "data": {"detail": detail}})
            await websocket.close(code=4000 + code)
        return
    except WebSocketDisconnect:
        return

    async def pump() -> None:
        try:
            async for sent in subscriber.events():
                message = {"event": "keep-alive"} if sent is None else \
                    {"id": sent.event_id, "event": sent.event, "data": sent.data}  # fmt: skip
                async with asyncio.timeout(SEND_TIMEOUT_S):
                    await websocket.send_json(message)
                if sent is not None:
                    subscriber.delivered(sent)
        except StreamClosed as closed:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await websocket.send_json({"event": closed.event, "data": closed.data})
            await websocket.close(code=1008 if closed.event == "closed" else 1013)

    async def listen() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.receive_text()  # the client has nothing more to say

    try:
        await first_of(pump(), listen())
    finally:
        with contextlib.suppress(Exception):
            await websocket.close()


@dataclass(frozen=True, slots=True)
class WsOptions:
    cursor: str | None
    events: list[str]
    matched: bool
    requirements: list[int]


def _first_message(text: str | None, options: WsOptions) -> tuple[str, WsOptions]:
    """`{"token": ..., "cursor"?, "events"?, "matched"?, "requirements"?}`, checked."""
    try:
        first = json.loads(text) if text is not None else None
    except json.JSONDecodeError:
        first = None
    if not isinstance(first, dict) or not isinstance(first.get("token"), str):
        raise InvalidInput('send {"token": "..."} first as text, or authenticate the handshake')
    unknown = sorted(set(first) - {"token", "cursor", "events", "matched", "requirements"})
    if unknown:
        raise InvalidInput(f"unknown field(s) in the first message: {', '.join(unknown)}")
    cursor = first.get("cursor", options.cursor)
    events = first.get("events", options.events)
    matched = first.get("matched", options.matched)
    requirements = first.get("requirements", options.requirements)
    if cursor is not None and not isinstance(cursor, str):
        raise InvalidInput("cursor: an event id (text)")
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise InvalidInput('events: a list of kinds, e.g. ["report", "rfi"]')
    if not isinstance(matched, bool):
        raise InvalidInput("matched: true or false")
    if not isinstance(requirements, list) or not all(
        isinstance(r, int) and not isinstance(r, bool) for r in requirements
    ):
        raise InvalidInput("requirements: a list of requirement ids")
    return first["token"], WsOptions(cursor, events, matched, requirements)


def _flag(text: str) -> bool:
    if text.lower() in {"true", "1", "yes"}:
        return True
    if text.lower() in {"false", "0", "no"}:
        return False
    raise InvalidInput(f"matched: {text[:20]!r} is not true or false")


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"requirement {value!r} is not a requirement id") from None
