"""Operations: `/healthz` for load balancers, `/metrics` (Prometheus text) for operators.

`/metrics` counts the node's contents whatever their labels, so it answers operators only
(`Authorization: Bearer` with an operator's token: Prometheus sends it with
`authorization: {credentials: …}`). Figures of this server process (its requests, its
streams) sit beside the node-wide ones read from the store at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bices.api.auth import CurrentViewer, NodeDep
from bices.domain.errors import Forbidden
from bices.domain.users import Role
from bices.node import Node
from bices.share.stream import StreamHub

router = APIRouter(tags=["operations"])
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Alive and serving (no authentication: for load balancers)."""
    return {"status": "ok"}


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE: {"schema": {"type": "string"}}},
            "description": "Prometheus text exposition format",
        }
    },
)
async def metrics(request: Request, viewer: CurrentViewer, node: NodeDep) -> Response:
    """Node-wide and per-process figures, for operators."""
    if not viewer.has(Role.OPERATOR):
        raise Forbidden("/metrics counts every item of the node: it needs the operator role")
    registry: CollectorRegistry = request.app.state.metrics
    text = await run_in_threadpool(generate_latest, registry)
    return Response(text, media_type=CONTENT_TYPE)


class NodeFigures(Collector):
    """Read at each scrape: what the store holds, the exploitation queue, the streams."""

    def __init__(self, node: Node, app: FastAPI) -> None:
        self.node = node
        self.app = app

    def collect(self) -> Iterator[Metric]:
        store = self.node.store
        figures = store.operations.figures()
        for name, value in sorted(figures.items()):
            yield GaugeMetricFamily(f"bices_{name}", f"node-wide count: {name}", value=value)
        yield GaugeMetricFamily(
            "bices_exploit_lag_versions", "stored versions the exploitation worker has not "
            "reached yet", value=self.node.exploit_backlog())  # fmt: skip
        streams, processes = store.operations.subscribers()
        yield GaugeMetricFamily("bices_node_stream_subscribers",
                                "open streams on every server process heard from lately",
                                value=streams)  # fmt: skip
        yield GaugeMetricFamily("bices_node_server_processes",
                                "server processes heard from lately", value=processes)  # fmt: skip
        behind = GaugeMetricFamily(
            "bices_peer_behind_events",
            "outbox events that delivery to the peer has not passed yet",
            labels=["peer"],
        )
        failures = GaugeMetricFamily(
            "bices_peer_failures",
            "deliveries to the peer failed since its last success",
            labels=["peer"],
        )
        active = GaugeMetricFamily(
            "bices_peer_active", "1 if delivery to the peer is on", labels=["peer"]
        )
        for peer, events in self.node.federation.behind():
            behind.add_metric([peer.name], events)
            failures.add_metric([peer.name], peer.failures)
            active.add_metric([peer.name], 1 if peer.status.value == "active" else 0)
        yield from (behind, failures, active)
        hub: StreamHub | None = getattr(self.app.state, "hub", None)
        if hub is not None:
            yield GaugeMetricFamily("bices_stream_subscribers", "open streams on this process",
                                    value=hub.subscribers)  # fmt: skip
            yield CounterMetricFamily("bices_stream_events_sent",
                                      "events this process's streams handed out",
                                      value=hub.events_sent)  # fmt: skip


class RequestMetrics:
    """Counts and times each request of this process by method, route and status."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter("bices_http_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=registry)  # fmt: skip
        self.seconds = Histogram("bices_http_request_seconds", "time to the response head",
                                 ["method", "route"], registry=registry,
                                 buckets=BUCKETS)  # fmt: skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                route = getattr(scope.get("route"), "path", "unmatched")
                self.seconds.labels(scope["method"], route).observe(
                    time.perf_counter() - started)  # fmt: skip
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.requests.labels(scope["method"], route, str(status)).inc()


def install(app: FastAPI, node: Node) -> None:
    """The metrics registry of this app, its collectors, and the request middleware."""
    registry = CollectorRegistry()
    registry.register(NodeFigures(node, app))
    app.state.metrics = registry
    app.add_middleware(RequestMetrics, registry=registry)
