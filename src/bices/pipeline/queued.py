"""Exploitation through the bus's work queue (`bices.bus.work`), for scale-out nodes.

Every worker process does two things in turn. It dispatches: reads the `report` events
after the shared dispatch cursor, queues their seqs, and only then moves the cursor
(several workers may race to; the loser's publishes are dropped as duplicates). And it
works: takes a few jobs, exploits their versions outside any transaction, stores the
results (`Exploits.record`, which skips versions already exploited), and acknowledges the
jobs. A worker killed before acknowledging leaves its jobs to be delivered to another.
"""

from __future__ import annotations

import logging

from bices.bus.work import WorkQueue
from bices.pipeline.exploit import Exploiter, Extractor
from bices.store.base import Store

log = logging.getLogger(__name__)

DISPATCH = "exploit-dispatch"
DISPATCH_BATCH = 500


class QueuedExploiter:
    def __init__(
        self,
        store: Store,
        queue: WorkQueue,
        extractor: Extractor | None = None,
        batch: int = 20,
        wait_s: float = 0.1,
    ) -> None:
        self.store = store
        self.queue = queue
        self._exploiter = Exploiter(store, extractor, batch)
        self.batch = batch
        self.wait_s = wait_s

    def dispatch(self) -> int:
        """Queue the versions stored since the dispatch cursor; how many."""
        after, _ = self.store.exploits.pending(DISPATCH, 0)
        events = self.store.outbox.after(after, DISPATCH_BATCH, kinds=["report"])
        if not events:
            return 0
        self.queue.publish([event.seq for event in events])
        self.store.exploits.save(DISPATCH, after, events[-1].seq, [])
        return len(events)

    def run_once(self) -> int:
        """Dispatch, then exploit one batch of jobs; the number of versions stored."""
        self.dispatch()
        jobs = self.queue.fetch(self.batch, self.wait_s)
        if not jobs:
            return 0
        versions = {v.seq: v for v in self.store.reports.by_seq([job.seq for job in jobs])}
        results = []
        for job in jobs:
            version = versions.get(job.seq)
            if version is None:  # not in this store (another node's queue?): nothing to do
                log.warning("job for seq %s names no stored version", job.seq)
                continue
            results.append(self._exploiter.exploit(version))
            self.queue.touch([job])
        try:
            stored = self.store.exploits.record(results)
        except Exception:
            self.queue.release(jobs)
            raise
        self.queue.ack(jobs)
        return stored

    def pending(self) -> int:
        """Versions not dispatched yet, plus jobs queued or in hand."""
        return self.store.exploits.lag(DISPATCH) + self.queue.depth()

    def drain(self, max_batches: int = 1_000_000) -> int:
        """Exploit until nothing is pending (bounded); the number of versions stored."""
        done = 0
        for _ in range(max_batches):
            n = self.run_once()
            if n == 0 and self.pending() == 0:
                break
            done += n
        return done
