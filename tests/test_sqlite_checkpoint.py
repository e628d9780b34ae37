"""WAL checkpoints run beside the writers, not inside their commits: a commit leaves its
pages in the write-ahead log, a thread copies them into the database file soon after, and
what was committed is there for the next process even if no checkpoint ever ran."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from bices.store.sqlite_db import Database

SCHEMA = "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);"


def sizes(path: Path) -> tuple[int, int]:
    """The sizes of the database file and of its write-ahead log."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size, wal.stat().st_size if wal.exists() else 0


def write_notes(db: Database, count: int) -> None:
    with db.write() as conn:
        conn.executemany("INSERT INTO notes (text) VALUES (?)", [("x" * 3000,)] * count)


def test_a_commit_does_not_checkpoint_and_the_thread_does(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    db = Database(path, SCHEMA)
    try:
        assert db._writer.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        db._checkpoints.interval_s = 3600.0  # after its first run, the thread waits
        write_notes(db, 2000)  # ~6 MB: far past SQLite's own 1,000-page trigger
        deadline = time.monotonic() + 10
        while db._checkpoints.runs == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert db._checkpoints.runs >= 1
        first = db._checkpoints.runs
        before, _ = sizes(path)
        assert before > 6_000_000  # the first write is in the database file
        write_notes(db, 2000)  # committed while the thread waits out its interval
        after, wal = sizes(path)
        assert after == before and wal > 6_000_000  # the commit itself copied nothing
        assert db._checkpoints.runs == first
        thread = db._checkpoints._thread
        assert thread is not None and thread.is_alive()
    finally:
        db.close()
    assert not thread.is_alive()  # close stops it (after a last checkpoint)
    assert sizes(path)[0] > 12_000_000


def test_close_checkpoints_what_was_written(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    db = Database(path, SCHEMA)
    db._checkpoints.interval_s = 3600.0
    write_notes(db, 500)
    write_notes(db, 500)  # (at least) this one is waiting for the next checkpoint
    db.close()
    assert sizes(path)[0] > 1000 * 3000  # in the database file now
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM notes").fetchone()[0] == 1000
    finally:
        conn.close()


def test_what_was_committed_survives_without_any_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    db = Database(path, SCHEMA)
    db._checkpoints.nudge = lambda: None  # type: ignore[method-assign]  # no checkpoint
    write_notes(db, 700)
    assert sizes(path)[1] > 700 * 3000  # the rows are in the log alone
    # The process "dies" here: nothing is closed. Another one opens the same file.
    other = Database(path, SCHEMA)
    try:
        count = other.reader().execute("SELECT count(*) FROM notes").fetchone()[0]
        assert count == 700
    finally:
        other.close()


def test_the_log_stays_bounded_under_steady_writes(tmp_path: Path) -> None:
    """A checkpoint that runs beside the writers never finds the whole log copied, and the
    log restarts only then: without the pass under the writers' lock the log grew by all
    that was written (430 MB for a 150 MB database)."""
    path = tmp_path / "notes.db"
    db = Database(path, SCHEMA)
    db._checkpoints.interval_s = 0.01
    db._checkpoints.max_frames = 200
    try:
        for _ in range(100):  # 100 writes of 300 KB: 30 MB, back to back
            write_notes(db, 100)
            time.sleep(0.002)
        _, wal = sizes(path)
        assert db._checkpoints.quiet_runs >= 1
        assert wal < 15_000_000, f"the log holds {wal} bytes after 30 MB were written"
    finally:
        db.close()
    assert sizes(path)[0] > 30_000_000
