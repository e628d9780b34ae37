"""A TAXII envelope's reports and its status resource are stored together or not at all."""

from __future__ import annotations

import json
import sqlite3

import psycopg
import pytest

from bices.node import Node
from bices.store.pg import PostgresStore
from bices.store.sqlite import SqliteStore
from bices.taxii.root import TaxiiRoot
from tests.conftest import Coalition
from tests.taxii_samples import envelope, label, stix_report


def test_no_reports_without_their_status(node: Node, coalition: Coalition, backend: str) -> None:
    store = node.store
    assert isinstance(store, SqliteStore | PostgresStore)
    missing = sqlite3.OperationalError if backend == "sqlite" else psycopg.errors.UndefinedTable
    viewer = node.coalition.authenticate(coalition.user("USA"))
    root = TaxiiRoot(store, node.collector, node.settings.max_body_bytes)
    objects = envelope(stix_report(label()), stix_report(label()))
    body = json.dumps(objects).encode()
    posted = store.outbox.head()
    # Break the status table: the status cannot be written, so the reports must not stay.
    with store.db.write() as conn:
        conn.execute("ALTER TABLE taxii_status RENAME TO taxii_status_gone")
    with pytest.raises(missing):
        root.add(viewer, "ingest", body)
    assert store.outbox.head() == posted
    with store.db.write() as conn:
        conn.execute("ALTER TABLE taxii_status_gone RENAME TO taxii_status")
    status = root.add(viewer, "ingest", body)
    assert status["status"] == "complete"
    assert status["success_count"] == len(objects["objects"])
    assert len(node.store.outbox.after(posted, 10, ["report"])) == 2
