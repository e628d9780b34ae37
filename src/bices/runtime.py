"""Settling a long-running process: load what loads lazily, then freeze the heap.

CPython's cyclic garbage collector walks every tracked object in its oldest generation
now and then; with pycountry's tables, the schemas and (in the worker) the knowledge base
loaded, that walk took ~20 ms and landed on every ~17th search at a million reports,
doubling its latency. `gc.freeze()` moves everything alive at start-up out of the
collector's sight, so the walks cover only what requests allocate.

What requests allocate can still be a lot: each open stream holds ~200 tracked objects
(its coroutines, tasks, futures and their cells), so with 1,000 subscribers a walk of the
oldest generation took 80–124 ms. At the default thresholds it came every ~4 s and stalled
every stream it met: in `bench/stream.py` (1,000 subscribers, 20 reports/s), 9 of 600
reports reached part of their subscribers ~120 ms late, and p99 was 78–151 ms in 9 runs,
above 100 ms in 8. A settled process walks the oldest generation 10 times less often (after
100 collections of the middle one, not 10): p99 57, 60 and 62 ms. Young garbage is
collected as before; cycles that outlive two collections wait longer for theirs (CPython
also waits until a quarter more objects than the last walk found have reached the oldest
generation, and still does).
"""

from __future__ import annotations

import gc

import pycountry

OLDEST_EVERY = 100  # collections of the middle generation between walks of the oldest


def settle() -> int:
    """Load lazily loaded data a server will need, freeze, and walk the oldest generation
    `OLDEST_EVERY` times less often; the objects frozen."""
    pycountry.countries.get(alpha_3="USA")
    pycountry.languages.get(alpha_2="en")
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, OLDEST_EVERY)
    return gc.get_freeze_count()
