"""What a request costs before its own work: which route answers does not depend on the
order routers are included in (the most asked go first, since FastAPI tries routes in
turn), and a request crosses to a worker thread only where it does blocking work."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from bices.api.app import ROUTED, create_app
from tests.conftest import auth, make_node


def sample_path(template: str) -> str:
    """A concrete path for a route template: each parameter filled with a plain value."""
    return re.sub(r"\{([^}:]+)(:path)?\}", lambda m: "a-1/b" if m.group(2) else "a-1", template)


def test_no_path_is_claimed_by_two_routers() -> None:
    routes = [(m.__name__, r) for m in ROUTED for r in m.router.routes if isinstance(r, APIRoute)]
    assert len(routes) > 50  # every router's routes are here
    for module, route in routes:
        path = sample_path(route.path)
        claimed = sorted({other for other, r in routes if r.path_regex.match(path)})
        assert claimed == [module], f"{path} ({route.path}) matches routes of {claimed}"


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions handed to worker threads while the test runs."""
    handed: list[str] = []
    real = anyio.to_thread.run_sync

    async def counting(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        inner = getattr(func, "func", func)  # starlette hands over a functools.partial
        handed.append(getattr(inner, "__name__", repr(inner)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    return handed


def test_requests_cross_to_a_worker_thread_only_for_blocking_work(
    tmp_path: Path, hops: list[str]
) -> None:
    node = make_node(tmp_path / "node")
    try:
        _, token = node.coalition.add_user("USA", "usa.analyst", "NATO SECRET", (), ("analyst",))
        with TestClient(create_app(node, exploit_thread=False)) as client:
            hops.clear()
            assert client.get("/healthz").status_code == 200
            assert hops == []  # nothing to wait for

            hops.clear()
            response = client.get("/taxii2/bices/collections/", headers=auth(token))
            assert response.status_code == 200, response.text
            assert hops == ["authorised"]  # the token lookup and the answer, in one hop

            # REST routes: the token lookup and the endpoint go to threads (FastAPI also
            # validates a sync endpoint's answer in one), the checks that wait for nothing
            # stay on the event loop.
            hops.clear()
            response = client.get("/api/v1/reports", headers=auth(token))
            assert response.status_code == 200, response.text
            assert "current_viewer" in hops
            assert not {"refuse_nul", "_node", "report_filter"} & set(hops), hops
    finally:
        node.close()
