"""The PostgreSQL store keeps the search table's planner statistics fresh by itself (the
test database runs with autovacuum off, as the benchmarks' does), one process at a time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bices.domain.reports import ReportDraft
from bices.node import Node
from bices.store.pg import PostgresStore
from bices.store.pg_db import ANALYZE_LOCK
from bices.store.pg_statistics import STALE, TABLES
from tests.conftest import Coalition, make_node, report_json

PATIENCE_S = 40  # PostgreSQL publishes a table's change counts within about 10 s


@pytest.fixture
def pg_node(tmp_path: Path) -> Iterator[Node]:
    node = make_node(tmp_path / "node", "postgres")
    yield node
    node.close()


def store_of(node: Node) -> PostgresStore:
    assert isinstance(node.store, PostgresStore)
    return node.store


def write(node: Node, count: int) -> None:
    viewer = node.coalition.authenticate(Coalition(node).user("USA"))
    drafts = [
        ReportDraft.model_validate(report_json(title=f"Patrol {n}", body="Patrol boats left."))
        for n in range(count)
    ]
    node.collector.submit(viewer, drafts)


def analysed(store: PostgresStore) -> set[str]:
    """The columns of `current_reports` that the planner has statistics of."""
    with store.db.read() as conn:
        rows = conn.execute(
            "SELECT attname FROM pg_stats WHERE schemaname = current_schema() "
            "AND tablename = 'current_reports'"
        ).fetchall()
    return {str(row[0]) for row in rows}


def stale(store: PostgresStore) -> bool:
    with store.db.read() as conn:
        return bool(conn.execute(STALE, [list(TABLES)]).fetchall())


def test_writes_past_the_threshold_get_the_search_table_analysed(pg_node: Node) -> None:
    store = store_of(pg_node)
    store.statistics.interval_s = 0  # check after every write
    assert analysed(store) == set()
    deadline = time.monotonic() + PATIENCE_S
    while not {"document", "label_id"} <= analysed(store):
        assert time.monotonic() < deadline, "no statistics after the writes"
        write(pg_node, 60)  # each write past the threshold of 50 changed rows
        time.sleep(0.5)
    assert store.statistics.analysed >= 1


def test_one_process_analyses_at_a_time_and_only_what_changed(pg_node: Node) -> None:
    store = store_of(pg_node)
    keeper = store.statistics
    keeper.close()  # no checks after writes: this test calls `refresh` itself
    write(pg_node, 60)
    deadline = time.monotonic() + PATIENCE_S
    while not stale(store):  # wait until PostgreSQL publishes the change counts
        assert time.monotonic() < deadline, "the writes never counted as changes"
        time.sleep(0.5)
    with psycopg.connect(store.db.url, autocommit=True) as other:
        # Another process of the node is analysing: this one leaves it alone.
        other.execute("SELECT pg_advisory_lock(%s, %s)", (store.db.lock_class(), ANALYZE_LOCK))
        assert keeper.refresh() == []
        assert analysed(store) == set() and keeper.analysed == 0
        other.execute("SELECT pg_advisory_unlock(%s, %s)", (store.db.lock_class(), ANALYZE_LOCK))
    assert keeper.refresh() == ["current_reports"]
    assert {"document", "label_id"} <= analysed(store) and keeper.analysed == 1
    # Nothing changed since: nothing to analyse.
    assert keeper.refresh() == []
    assert keeper.analysed == 1
