"""TAXII reads by what was added when: `added_after` is about this node, so a version that
arrives late from a peer is still news to a client polling here; and what a read costs the
store grows with what it serves, not with the collection, counted in SQLite
virtual-machine steps (tens of them; deterministic, unlike a clock)."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bices.domain.labels import Label
from bices.domain.users import Viewer
from bices.node import Node
from bices.settings import Settings
from bices.store.base import ReportWrite
from bices.taxii.filters import OBJECT, OBJECTS, stix_time
from bices.taxii.pages import Page, Served
from bices.taxii.root import TaxiiRoot
from tests.conftest import make_node
from tests.taxii_samples import envelope, stix_report

LABEL = Label.build("NATO SECRET", ["NATO"], "USA")
Read = Callable[[TaxiiRoot, Viewer, str], Callable[[], Page]]


def filled(path: Path, reports: int) -> tuple[Node, TaxiiRoot, str]:
    """A node whose USA analyst posted `reports` reports, then one more ("Wanted") on its
    own; the node, its TAXII root and the STIX id that last report is served under."""
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


def steps_of(node: Node, read: Callable[[], Page]) -> tuple[int, Page]:
    """The VM steps (in tens) of a read on the calling thread, and what it gave."""
    conn = node.store.db.reader()  # the calling thread's: the one the read uses
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    conn.set_progress_handler(count, 10)
    try:
        page = read()
    finally:
        conn.set_progress_handler(None, 10)
    return steps, page


def fetch_by_id(root: TaxiiRoot, viewer: Viewer, stix_id: str) -> Callable[[], Page]:
    return lambda: root.object_page(viewer, "ingest", stix_id, root.query([], OBJECT))


def poll(root: TaxiiRoot, viewer: Viewer, stix_id: str) -> Callable[[], Page]:
    """A poll for what was added after everything but the last report."""
    whole = pages_of(root, viewer, [])
    wanted = whole[-1].version.seq
    before_last = [item for item in whole if item.version.seq != wanted][-1].date_added
    query = root.query([("added_after", before_last)], OBJECTS)
    return lambda: root.objects_page(viewer, "ingest", query)


def steps_of_read(path: Path, reports: int, read: Read) -> int:
    """The steps of one read for the last report posted, in a collection of `reports`."""
    node, root, stix_id = filled(path, reports)
    try:
        steps, page = steps_of(node, read(root, node.coalition.viewer_of("usa.analyst"), stix_id))
        assert {item.obj.id for item in page.items if item.obj.type == "report"} == {stix_id}
        return steps
    finally:
        node.close()


@pytest.mark.parametrize("read", [fetch_by_id, poll], ids=["fetch by id", "poll"])
def test_a_read_does_not_walk_the_whole_collection(tmp_path: Path, read: Read) -> None:
    small = steps_of_read(tmp_path / "small", 20, read)
    large = steps_of_read(tmp_path / "large", 600, read)
    # 30 times the reports: a read that walked the collection would take ~30 times the steps
    assert large < 2 * small, (small, large)


def pages_of(root: TaxiiRoot, viewer: Viewer, params: list[tuple[str, str]]) -> list[Served]:
    """Every object a client reading page by page gets."""
    items: list[Served] = []
    query = [("limit", "50"), *params]
    for _ in range(1000):  # bounded
        page = root.objects_page(viewer, "ingest", root.query(query, OBJECTS))
        items += page.items
        following = root.next_of(page)
        if following is None:
            return items
        query = [("limit", "50"), *params, ("next", following)]
    raise AssertionError("pages never ended")


def test_a_version_received_late_from_a_peer_is_news_to_a_poll(tmp_path: Path) -> None:
    """A version from a peer keeps the time its origin stored it (its STIX `modified`), but
    its `date_added` is when it arrived here: a client polling with the last date it was
    given gets it, whatever that origin's time."""
    node, root, _ = filled(tmp_path / "node", 30)
    try:
        viewer = node.coalition.viewer_of("usa.analyst")
        seen = pages_of(root, viewer, [])
        last = seen[-1].date_added
        assert pages_of(root, viewer, [("added_after", last)]) == []
        template = seen[0].version
        late = replace(
            template,
            id=str(uuid.uuid4()),
            stored_at=template.stored_at - timedelta(days=3),
            seq=0,
            label_id=0,
        )
        node.store.reports.add([ReportWrite(late, received=True)])
        news = pages_of(root, viewer, [("added_after", last)])
        reports = [item for item in news if item.obj.type == "report"]
        assert [item.version.id for item in reports] == [late.id]
        assert reports[0].date_added > last
        served = json.loads(reports[0].obj.text)
        assert served["modified"] == stix_time(late.stored_at)  # the origin's version
        # every later read dates versions in store order
        dates = [item.date_added for item in pages_of(root, viewer, [])]
        assert dates == sorted(dates)
    finally:
        node.close()


def test_a_data_folder_from_before_added_at_is_dated_in_store_order(tmp_path: Path) -> None:
    """Upgrading a folder whose versions have no `added_at`: each gets the greatest
    `stored_at` up to it in store order, so dates never go back as seqs go on, and a poll
    from any of them gives what followed."""
    node, root, _ = filled(tmp_path / "node", 30)
    try:
        template = pages_of(root, node.coalition.viewer_of("usa.analyst"), [])[0].version
        late = replace(template, id=str(uuid.uuid4()), seq=0, label_id=0,
                       stored_at=template.stored_at - timedelta(days=3))  # fmt: skip
        node.store.reports.add([ReportWrite(late, received=True)])
    finally:
        node.close()
    with sqlite3.connect(tmp_path / "node" / "bices.db") as conn:  # as an earlier release left it
        conn.execute("DROP INDEX report_versions_added")
        conn.execute("ALTER TABLE report_versions DROP COLUMN added_at")
        stored = [
            row[0] for row in conn.execute("SELECT stored_at FROM report_versions ORDER BY seq")
        ]
    conn.close()
    assert stored != sorted(stored)  # the late version's origin time is out of store order
    node = Node.open(Settings(data=tmp_path / "node"))
    try:
        root = TaxiiRoot(node.store, node.collector, 10**8)
        viewer = node.coalition.viewer_of("usa.analyst")
        seen = pages_of(root, viewer, [])
        dates = [item.date_added for item in seen]
        assert dates == sorted(dates) and len(set(dates)) > 1
        by_version = {item.version.seq: item for item in seen}
        for item in by_version.values():
            assert item.date_added >= stix_time(item.version.stored_at)
        after = seen[len(seen) // 2].date_added
        news = pages_of(root, viewer, [("added_after", after)])
        expected = [i.obj.id for i in seen if i.date_added > after and not i.obj.is_reference]
        assert [i.obj.id for i in news if not i.obj.is_reference] == expected
        assert expected and all(i.date_added > after for i in news)
    finally:
        node.close()


def test_a_write_after_the_clock_went_back_is_still_news(tmp_path: Path) -> None:
    """Each write is dated after every earlier one, even when the clock has gone back since
    (here: the last write dated a day ahead): a poll from the last date given gets it."""
    node, root, _ = filled(tmp_path / "node", 10)
    try:
        ahead = stix_time(datetime.now(UTC) + timedelta(days=1))
        with node.store.db.write() as conn:
            conn.execute("UPDATE report_versions SET added_at = ? WHERE seq = "
                         "(SELECT max(seq) FROM report_versions)", (ahead,))  # fmt: skip
        viewer = node.coalition.viewer_of("usa.analyst")
        assert pages_of(root, viewer, [])[-1].date_added == ahead
        status = root.add(
            viewer, "ingest", json.dumps(envelope(stix_report(LABEL, "Next"))).encode()
        )
        assert status["success_count"] > 0
        news = pages_of(root, viewer, [("added_after", ahead)])
        assert [json.loads(i.obj.text)["name"] for i in news if i.obj.type == "report"] == ["Next"]
        assert all(i.date_added > ahead for i in news)
    finally:
        node.close()
