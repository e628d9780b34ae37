"""A server process freezes its start-up heap and walks the oldest generation seldom, so
the collector's walks stay short and rare."""

from __future__ import annotations

import gc
import subprocess
import sys


def test_settle_loads_lazy_data_and_freezes_the_heap() -> None:
    code = (
        "import gc, pycountry; from bices.runtime import settle; "
        "n = settle(); "
        "assert n > 10_000, n; "
        "assert gc.get_freeze_count() == n; "
        "assert gc.get_threshold()[2] == 100, gc.get_threshold(); "
        "print(n)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 10_000
    assert gc.get_freeze_count() == 0  # never in the test process itself
    assert gc.get_threshold()[2] == 10
