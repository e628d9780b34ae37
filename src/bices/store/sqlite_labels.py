"""The labels table: each distinct label stored once and referred to by id."""

from __future__ import annotations

import sqlite3

from bices.domain.labels import Label
from bices.domain.signing import canonical


def label_key(label: Label) -> str:
    return canonical(label.to_json()).decode()


def label_id(conn: sqlite3.Connection, label: Label) -> int:
    """The id of a label, inserted inside the caller's write transaction if new.

    Not cached here: the transaction may still roll back and the id be reused.
    """
    key = label_key(label)
    row = conn.execute("SELECT id FROM labels WHERE key = ?", (key,)).fetchone()
    if row is not None:
        return int(row[0])
    cursor = conn.execute("INSERT INTO labels (key, body) VALUES (?, ?)", (key, key))
    assert cursor.lastrowid is not None
    return cursor.lastrowid
