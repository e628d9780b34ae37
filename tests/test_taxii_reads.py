"""What a TAXII read costs the store grows with what it serves, not with the collection:
counted in SQLite virtual-machine steps (tens of them) (deterministic, unlike a clock)."""

from __future__ import annotations

import json
from pathlib import Path

from bices.domain.labels import Label
from bices.node import Node
from bices.taxii.filters import OBJECT
from bices.taxii.root import TaxiiRoot
from tests.conftest import make_node
from tests.taxii_samples import envelope, stix_report

LABEL = Label.build("NATO SECRET", ["NATO"], "USA")


def filled(path: Path, reports: int) -> tuple[Node, TaxiiRoot, str]:
    """A node whose USA analyst posted `reports` reports; its TAXII root and the STIX id
    of the first report as served."""
    node = make_node(path)
    _, token = node.coalition.add_user("USA", "usa.analyst", "NATO SECRET", (), ("analyst",))
    viewer = node.coalition.authenticate(token)
    root = TaxiiRoot(node.store, node.collector, 10**8)
    for start in range(0, reports, 100):
        batch = [stix_report(LABEL, f"Report {i}") for i in range(start, min(reports, start + 100))]
        root.add(viewer, "ingest", json.dumps(envelope(*batch)).encode())
    status = root.add(viewer, "ingest", json.dumps(envelope(stix_report(LABEL, "Wanted"))).encode())
    (stored,) = [s for s in status["successes"] if s["id"].startswith("report--")]
    report_id = stored["message"].split()[3]  # "stored as report {id} version 1"
    return node, root, f"report--{report_id}"


def steps_of_fetch(path: Path, reports: int) -> int:
    node, root, stix_id = filled(path, reports)
    try:
        viewer = node.coalition.viewer_of("usa.analyst")
        conn = node.store.db.reader()  # the calling thread's: the one the read uses
        steps = 0

        def count() -> int:
            nonlocal steps
            steps += 1
            return 0  # go on

        conn.set_progress_handler(count, 10)
        try:
            page = root.object_page(viewer, "ingest", stix_id, root.query([], OBJECT))
        finally:
            conn.set_progress_handler(None, 10)
        assert [item.obj.id for item in page.items][:1] == [stix_id]
        return steps
    finally:
        node.close()


def test_a_fetch_by_id_does_not_read_the_whole_collection(tmp_path: Path) -> None:
    small = steps_of_fetch(tmp_path / "small", 20)
    large = steps_of_fetch(tmp_path / "large", 600)
    # 30 times the reports: a read that walked the collection would take ~30 times the steps
    assert large < 2 * small, (small, large)
