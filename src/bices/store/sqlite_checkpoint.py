"""WAL checkpoints off the write path.

SQLite's automatic checkpoint runs inside the COMMIT that takes the write-ahead log past
1,000 pages: that commit copies the log into the database file and waits for its fsync
while it still holds the write lock, so every writer of every process waits with it
(posting over TAXII, about every third envelope of 100 reports paid for it). The writer has
the automatic checkpoint off, and a thread of the `Database` runs a PASSIVE checkpoint
(which takes no lock that a writer or reader waits for) after writes, at most once per
`interval_s`.

A checkpoint that runs while writers go on never catches up with them, and SQLite starts
the log over only once all of it is in the file: under steady writes the log grew without
end (430 MB for a 150 MB database after 20,000 reports). So when the log holds more than
`max_frames` pages, the thread copies what is left under the writers' lock (`quiet`): a
short wait, since the unlocked pass has copied the rest, after which the next write starts
the log over.

A checkpoint is only housekeeping: a commit is in the log before it returns, and a process
that dies leaves the log for the next one to check point, so nothing acknowledged depends
on it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

log = logging.getLogger(__name__)


class Checkpointer:
    """Runs `PRAGMA wal_checkpoint(PASSIVE)` on a connection of its own, in a thread started
    by the first `nudge`, after writes, at most once per `interval_s`; `quiet` holds off
    every writer (of every process) while the log's last pages are copied."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        quiet: Callable[[], AbstractContextManager[object]],
        interval_s: float,
        max_frames: int = 1000,
    ) -> None:
        self._connect = connect
        self._quiet = quiet
        self.interval_s = interval_s
        self.max_frames = max_frames
        self._due = threading.Event()
        self._stopping = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.runs = 0  # checkpoints made (for tests and diagnostics)
        self.quiet_runs = 0  # of them, those that held the writers off

    def nudge(self) -> None:
        """A write committed: make a checkpoint soon."""
        if self._thread is None:
            with self._start_lock:
                if self._thread is None and not self._stopping.is_set():
                    self._thread = threading.Thread(
                        target=self._run, name="sqlite-checkpoint", daemon=True
                    )
                    self._thread.start()
        self._due.set()

    def close(self) -> None:
        """Stop the thread after a last checkpoint of what was written."""
        with self._start_lock:
            self._stopping.set()
            thread = self._thread
        self._due.set()
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        conn = self._connect()
        try:
            while not self._stopping.is_set():
                self._due.wait()
                self._due.clear()
                self._checkpoint(conn)
                self._stopping.wait(self.interval_s)
            self._checkpoint(conn)  # what was written since the last one
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.runs += 1
            if frames > self.max_frames:  # writers outran it: copy the rest with none about
                with self._quiet():
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self.quiet_runs += 1
        except sqlite3.Error:  # the next write nudges again
            log.warning("WAL checkpoint failed", exc_info=True)
