"""Concurrent writers and readers against a real server: no spurious 404 and no leak when
versions under brand-new labels are committed while others read."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import Coalition, RunningServer, auth, report_json

OTHERS = ("GBR", "EST", "POL", "KOR", "JPN", "AUS")
LEVELS = ("NATO RESTRICTED", "NATO CONFIDENTIAL", "NATO SECRET")


def fresh_labels() -> list[dict[str, object]]:
    """Distinct labels, each releasable to the USA writer (so each PUT mints a new label)."""
    subsets = [combo for size in range(1, 4) for combo in itertools.combinations(OTHERS, size)]
    return [
        {"classification": level, "releasable_to": ["USA", *subset], "caveats": []}
        for subset in subsets
        for level in LEVELS
    ]


def test_concurrent_updates_under_new_labels_never_answer_404(
    server: RunningServer, coalition: Coalition
) -> None:
    writer = coalition.user("USA", clearance="NATO SECRET")
    reader = coalition.user("USA", clearance="NATO SECRET")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        created = client.post("/api/v1/reports", json=report_json(), headers=auth(writer))
        report_id = created.json()["id"]
        labels = fresh_labels()[:120]

        def update(label: dict[str, object]) -> int:
            body = report_json(label=label, title="revised")
            return client.put(
                f"/api/v1/reports/{report_id}", json=body, headers=auth(writer)
            ).status_code

        def read(_: int) -> int:
            return client.get(f"/api/v1/reports/{report_id}", headers=auth(reader)).status_code

        with ThreadPoolExecutor(8) as pool:
            writes = pool.map(update, labels)
            reads = pool.map(read, range(120))
            write_statuses, read_statuses = list(writes), list(reads)
    assert set(write_statuses) <= {200, 409}, write_statuses
    assert 200 in write_statuses
    assert set(read_statuses) == {200}, read_statuses
