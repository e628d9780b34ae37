"""In one process, batches are prepared and stored one at a time (`Collector.serially`):
REST batches and TAXII envelopes posted at once take turns, from reading to stored."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bices.domain.reports import ReportDraft
from bices.node import Node
from bices.taxii.root import TaxiiRoot
from tests.conftest import Coalition, report_json
from tests.taxii_samples import envelope, label, stix_report


class Overlap:
    """Counts how many of the watched calls run at once, at most."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.inside = 0
        self.most = 0

    def watch(self, target: object, name: str) -> None:
        original: Callable[..., Any] = getattr(target, name)

        def watched(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.inside += 1
                self.most = max(self.most, self.inside)
            try:
                time.sleep(0.05)  # long enough for the other thread to arrive
                return original(*args, **kwargs)
            finally:
                with self._lock:
                    self.inside -= 1

        setattr(target, name, watched)


def test_rest_batches_take_turns(node: Node, coalition: Coalition) -> None:
    viewer = node.coalition.authenticate(coalition.user("USA"))
    overlap = Overlap()
    overlap.watch(node.collector, "prepare")
    overlap.watch(node.store.reports, "add")

    def submit(job: int) -> int:
        drafts = [ReportDraft.model_validate(report_json(title=f"{job}-{i}")) for i in range(5)]
        return len(node.collector.submit(viewer, drafts))

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(submit, range(8))) == [5] * 8
    assert overlap.most == 1


def test_taxii_envelopes_take_turns(node: Node, coalition: Coalition) -> None:
    posts = 4
    viewer = node.coalition.authenticate(coalition.user("USA"))
    root = TaxiiRoot(node.store, node.collector, node.settings.max_body_bytes)
    overlap = Overlap()
    overlap.watch(node.collector, "prepare")
    overlap.watch(node.store.taxii, "store_with_status")
    bodies = [
        json.dumps(envelope(stix_report(label()), stix_report(label()))).encode()
        for _ in range(posts)
    ]
    with ThreadPoolExecutor(posts) as pool:
        statuses = list(pool.map(lambda body: root.add(viewer, "ingest", body), bodies))
    assert [s["status"] for s in statuses] == ["complete"] * posts
    assert overlap.most == 1
