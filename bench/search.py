"""Search latency (p50/p95) at 100,000 and 1,000,000 reports for a user who may see 10%.

Fills one node through the library (`store.reports.add`, batches of 10,000: the node's own
schema, search index and events) — a data folder of the embedded default, or with
`--backend postgres` a fresh schema of a PostgreSQL database (dropped afterwards) — and
measures at each size first the in-process store call, then `GET /api/v1/search` over
loopback against `bices --data DIR serve` (which adds HTTP, JSON and the audit of the
search and its hits), then grows the corpus to the next size. Queries of different
selectivity: a rare term, a mid-frequency term, a two-term AND, a phrase, and a frequent
term. Targets: p95 <= 50 ms at 1,000,000 on SQLite
(issue 2), <= 100 ms on PostgreSQL (issue 5). Each size is measured as written, then after
the operator's `bices db optimize` (FTS5 merge; PostgreSQL `VACUUM (ANALYZE)`).

    python bench/search.py [--sizes 100000,1000000] [--requests 60] [--body-bytes 2400]
    python bench/search.py --backend postgres [--database-url URL] [--sizes ...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    PG_URL,
    QUERIES,
    Corpus,
    exit_on_sigterm,
    percentile,
    pg_schema,
    record,
    schema_bytes,
    served,
    settings_from,
    wait_for_quiet,
)
from bices.domain.labels import Classification, Label
from bices.domain.members import MemberKind
from bices.domain.reports import Location, ReportType, ReportVersion, Source
from bices.node import Node
from bices.settings import Settings
from bices.store.base import ReportFilter, ReportWrite, Store
from bices.store.pg import PostgresStore
from bices.store.sqlite import SqliteStore

TARGET_MS = {"sqlite": 50.0, "postgres": 100.0}
LOAD_BATCH = 10_000
ORIGINATORS = ["USA", "GBR", "KOR"]
# Each report is releasable to exactly one of these; the benchmark user's member is EST.
TARGETS = ["EST", "POL", "FRA", "DEU", "ITA", "CAN", "NOR", "JPN", "AUS", "NZL"]
USER_MEMBER = "EST"
LEVELS = [Classification.NATO_CONFIDENTIAL, Classification.NATO_SECRET]
SIGNATURE = "A" * 88  # placeholder: search never verifies signatures


def open_node(data: Path, env: dict[str, str]) -> Node:
    return Node.open(Settings(**settings_from(data, env)))  # type: ignore[arg-type]


def setup(data: Path, env: dict[str, str]) -> str:
    """Members and the benchmark user (EST, NATO SECRET); returns the user's token."""
    node = open_node(data, env)
    try:
        for code in ORIGINATORS + TARGETS:
            community = ["IP4"] if code in {"KOR", "JPN", "AUS", "NZL"} else ["NATO"]
            node.coalition.add_member(code, f"Member {code}", MemberKind.NATION, community)
        return node.coalition.add_user(USER_MEMBER, "est.bench", "NATO SECRET", [], ["analyst"])[1]
    finally:
        node.close()


class Loader:
    """Appends reports to the store with the 60 labels spread evenly (1 in 10 visible)."""

    def __init__(self, store: Store, body_bytes: int) -> None:
        self.store = store
        self.corpus = Corpus(seed=23, body_bytes=body_bytes)
        self.labels = [
            Label(level, frozenset({target}), originator)
            for originator in ORIGINATORS
            for target in TARGETS
            for level in LEVELS
        ]
        self.sources = [
            Source(name=name, reliability=r, credibility=c)  # type: ignore[arg-type]
            for name in ("Coastal radar", "HUMINT source 41", "Open press", "SIGINT")
            for r in "ABCDEF"
            for c in range(1, 7)
        ]
        self.locations = (Location(lat=38.3, lon=127.2, name="Cheorwon"),)
        self.types = list(ReportType)
        self.count = 0
        self.start = datetime(2022, 1, 1, tzinfo=UTC)

    def grow_to(self, size: int) -> None:
        """Add reports up to `size`, each batch built while the one before is written (the
        store's drivers release the interpreter lock while the database works)."""
        t0 = time.perf_counter()
        first = self.count
        with ThreadPoolExecutor(1) as writer:
            pending: Future[Any] | None = None
            while self.count < size:
                writes = self.batch(min(LOAD_BATCH, size - self.count))
                if pending is not None:
                    pending.result()
                pending = writer.submit(self.store.reports.add, writes)
                if self.count % 100_000 == 0 or self.count == size:
                    rate = (self.count - first) / (time.perf_counter() - t0)
                    print(f"  built {self.count:,} reports ({rate:,.0f}/s)", flush=True)
            if pending is not None:
                pending.result()
        rate = (self.count - first) / (time.perf_counter() - t0)
        print(f"  loaded {self.count:,} reports ({rate:,.0f}/s)", flush=True)

    def batch(self, count: int) -> list[ReportWrite]:
        rng = self.corpus.rng
        writes = []
        for _ in range(count):
            language, title, body = self.corpus.report()
            at = self.start + timedelta(seconds=60 * self.count)
            self.count += 1
            version = ReportVersion(
                id=f"{rng.getrandbits(128):032x}",
                version=1,
                type=rng.choice(self.types),
                title=title,
                body=body,
                language=language,
                label=rng.choice(self.labels),
                source=rng.choice(self.sources),
                reported_at=at,
                observed_at=None,
                locations=self.locations,
                attachments=(),
                author="loader",
                stored_at=at,
                signature=SIGNATURE,
            )
            writes.append(ReportWrite(version))
        return writes


Timings = dict[str, dict[str, Any]]
FREQUENT_REQUESTS = 20  # the frequent term takes seconds per request at 1,000,000


def timed(call: Callable[[str], int], requests: int) -> Timings:
    """p50/p95 per query type; every query warmed up first, then timed one type at a time."""
    for _, q, _ in QUERIES:
        for _ in range(3):
            call(q)
    out = {}
    for name, q, _ in QUERIES:
        times = []
        total = 0
        for _ in range(min(requests, FREQUENT_REQUESTS) if name == "frequent term" else requests):
            t0 = time.perf_counter()
            total = call(q)
            times.append((time.perf_counter() - t0) * 1000)
        out[name] = {"p50": percentile(times, 50), "p95": percentile(times, 95), "total": total}
    return out


def measure_in_process(data: Path, env: dict[str, str], requests: int) -> tuple[Timings, Timings]:
    """The store's query alone, then the reader (the store's query plus its audit events)."""
    node = open_node(data, env)
    try:
        viewer = node.coalition.viewer_of("est.bench")
        everything = ReportFilter()
        wait_for_quiet()
        store = timed(
            lambda q: node.store.reports.search(viewer, q, everything, None, 20).total, requests
        )
        reader = timed(
            lambda q: node.reader.search(viewer, q, everything, None, 20).total, requests
        )
    finally:
        node.close()
    return store, reader


def measure_http(data: Path, env: dict[str, str], token: str, requests: int) -> Timings:
    headers = {"Authorization": f"Bearer {token}"}
    # The loader stored a million reports at once; a deployed node's worker would have
    # exploited them as they came. Here it would spend hours catching up in the middle of
    # the measurement, so it is off: this is the node at rest.
    with (
        served(data, exploit=False, env=env) as (base, _pid),
        httpx.Client(base_url=base, headers=headers) as http,
    ):

        def call(q: str) -> int:
            response = http.get("/api/v1/search", params={"q": q}, timeout=60)
            response.raise_for_status()
            answer = response.json()
            total: int = answer["total"]
            # A negative count marks a partial answer (more matches than the node ranks).
            return total if answer["total_exact"] else -total

        wait_for_quiet()
        return timed(call, requests)


Result = tuple[int, float, str, Timings, Timings, Timings]


def size_of(data: Path, env: dict[str, str]) -> int:
    """Bytes of the node's database: its SQLite files, or its PostgreSQL schema."""
    if env:
        return schema_bytes(env["BICES_DATABASE_URL"])
    return sum(p.stat().st_size for p in data.glob("bices.db*"))


def measure(
    data: Path, env: dict[str, str], token: str, size: int, requests: int, state: str
) -> Result:
    db_bytes = size_of(data, env)
    local, reader = measure_in_process(data, env, requests)
    remote = measure_http(data, env, token, requests)
    for name, q, rate in QUERIES:
        lo, rd, re_ = local[name], reader[name], remote[name]
        print(
            f"  {name:<18} {q!r:<21} hits {hits(re_['total']):>8}"
            f" (~{rate * size / 10:,.0f})"
            f" | p50/p95 ms: store {lo['p50']:.1f}/{lo['p95']:.1f}"
            f"  +audit {rd['p50']:.1f}/{rd['p95']:.1f}"
            f"  HTTP {re_['p50']:.1f}/{re_['p95']:.1f}",
            flush=True,
        )
    return size, db_bytes, state, local, reader, remote


def optimized(data: Path, env: dict[str, str]) -> str:
    """Run the operator's `bices db optimize` and return what it printed."""
    done = subprocess.run(
        ["bices", "--data", str(data), "db", "optimize"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    print(done.stdout.strip())
    return done.stdout.strip()


def open_store(data: Path, env: dict[str, str]) -> Store:
    if env:
        return PostgresStore(env["BICES_DATABASE_URL"])
    return SqliteStore(data / "bices.db")


def fill_and_measure(
    data: Path, env: dict[str, str], sizes: list[int], args: argparse.Namespace
) -> None:
    """Grow the node to each size, measure it as written and after optimizing, and report
    (so that a run stopped at a larger size keeps the figures of the smaller ones)."""
    results: list[Result] = []
    merges: list[str] = []
    loads: list[float] = []
    token = setup(data, env)
    loader = Loader(open_store(data, env), args.body_bytes)
    loader.store.close()
    for size in sizes:
        loader.store = store = open_store(data, env)
        t0 = time.perf_counter()
        loader.grow_to(size)
        loads.append(time.perf_counter() - t0)
        state = "as written"
        if isinstance(store, SqliteStore):
            state = f"as written ({store.db.fts_segments()} segments)"
        store.close()
        print(f"{size:,} reports; load {loads[-1]:.0f} s; {state}")
        results.append(measure(data, env, token, size, args.requests, state))
        merges.append(f"{size:,}: {optimized(data, env)}")
        after = "after `bices db optimize`"
        results.append(measure(data, env, token, size, args.requests, after))
        report(args, results, merges, loads, sizes[: len(loads)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated, ascending")
    parser.add_argument("--requests", type=int, default=60, help="timed requests per query type")
    parser.add_argument("--body-bytes", type=int, default=2400, help="approximate body size")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite",
                        help="postgres: a fresh schema of --database-url")  # fmt: skip
    parser.add_argument("--database-url", default=PG_URL)
    parser.add_argument("--keep", action="store_true",
                        help="keep the data folder (and the PostgreSQL schema)")  # fmt: skip
    parser.add_argument("--no-record", action="store_true", help="do not write BENCHMARKS.md")
    args = parser.parse_args()
    exit_on_sigterm()
    sizes = [int(s) for s in args.sizes.split(",")]

    data = Path(tempfile.mkdtemp(prefix="bices-bench-search-"))
    print(subprocess.run(["df", "-h", str(data)], capture_output=True, text=True).stdout.strip())
    try:
        with contextlib.ExitStack() as made:
            env: dict[str, str] = {}
            if args.backend == "postgres":
                env["BICES_DATABASE_URL"] = made.enter_context(
                    pg_schema(args.database_url, keep=args.keep)
                )
            fill_and_measure(data, env, sizes, args)
    finally:
        if args.keep:
            print(f"data kept in {data}")
        else:
            shutil.rmtree(data, ignore_errors=True)


def report(
    args: argparse.Namespace,
    results: list[Result],
    merges: list[str],
    loads: list[float],
    sizes: list[int],
) -> None:
    """Print the verdict at the largest size measured so far and record the figures."""
    target = TARGET_MS[args.backend]
    largest = sizes[-1]
    verdicts = []
    for size, _, state, _, _, remote in results:
        if size != largest:
            continue
        worst = max(remote[name]["p95"] for name, _, _ in QUERIES)
        verdict = "met" if worst <= target else "MISSED"
        verdicts.append(f"{state}: **{verdict}** (worst p95 {worst:.1f} ms)")
        print(f"target HTTP p95 <= {target:.0f} ms at {largest:,}, {state}: {verdict} "
              f"(worst p95 {worst:.1f} ms)")  # fmt: skip
    if args.no_record:
        return
    lines = [describe(args, merges, loads, sizes), "", *table(results)]
    lines += ["", f"Target HTTP p95 ≤ {target:.0f} ms at {largest:,}: " + "; ".join(verdicts) + "."]
    title = "Search latency on PostgreSQL" if args.backend == "postgres" else "Search latency"
    record(f"{title} (bench/search.py)", "\n".join(lines))


def describe(
    args: argparse.Namespace, merges: list[str], loads: list[float], sizes: list[int]
) -> str:
    """The paragraph above the table: what was loaded, how, and what was measured."""
    loaded = "; ".join(f"to {size:,} in {s:,.0f} s" for size, s in zip(sizes, loads, strict=True))
    if args.backend == "postgres":
        where = (
            "A fresh schema of PostgreSQL 15 on the same machine (configuration as packaged: "
            "shared_buffers 128 MB, work_mem 4 MB) filled through the library "
            f"(`PostgresStore.reports.add`, batches of {LOAD_BATCH:,}, each built while the one "
            "before is written; the node's schema: the search document built by its trigger, "
            f"GIN-indexed; events; placeholder signatures, no audit rows for the load; loaded "
            f"{loaded})"
        )
        optimize = "`bices db optimize` (`VACUUM (ANALYZE)`)"
    else:
        where = (
            "One data folder filled through the library (`SqliteStore.reports.add`, batches of "
            f"{LOAD_BATCH:,}; node schema with FTS5 and events; placeholder signatures, no "
            f"audit rows for the load; loaded {loaded})"
        )
        optimize = "`bices db optimize` (FTS5 segments merged into one)"
    return (
        f"{where}, bodies of about {args.body_bytes:,} bytes, English and Indonesian. 60 labels "
        "(3 originators × 10 single-member releasabilities × 2 levels); the user (EST, NATO "
        "SECRET) may see 10%. Sequential requests on one loopback connection to `bices serve`, "
        f"{args.requests} timed per query ({FREQUENT_REQUESTS} for the frequent term) after 3 "
        "warm-up each; warm caches. *Store* is `store.reports.search` in the benchmark process; "
        "*+audit* is `node.reader.search` (the store's query plus the audit events of the "
        "search and its hits); *HTTP* adds the API and JSON. 20 hits per page; `total` and "
        "facets are computed on every request. A count marked ≥ is a partial answer: more "
        "visible matches than the node ranks (`BICES_SEARCH_RANK_LIMIT`, 4,000), so the hits "
        "come newest first and the total is a lower bound. Each size is measured as written, "
        f"then again after the operator's {optimize}: " + "; ".join(merges) + "."
    )


def table(results: list[Result]) -> list[str]:
    lines = [
        "| reports | DB size | state | query | visible hits | store p50 / p95 ms "
        "| +audit p50 / p95 ms | HTTP p50 / p95 ms |",
        "|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    for size, db_bytes, state, local, reader, remote in results:
        for name, q, _ in QUERIES:
            lo, rd, re_ = local[name], reader[name], remote[name]
            lines.append(
                f"| {size:,} | {db_bytes / 2**30:.2f} GiB | {state} | {name} `{q}` "
                f"| {hits(re_['total'])} | {lo['p50']:.1f} / {lo['p95']:.1f} "
                f"| {rd['p50']:.1f} / {rd['p95']:.1f} | {re_['p50']:.1f} / {re_['p95']:.1f} |"
            )
    return lines


def hits(total: int) -> str:
    """A visible-hit count as answered over HTTP; negative marks a partial answer."""
    return f"{total:,}" if total >= 0 else f"≥{-total:,}"


if __name__ == "__main__":
    main()
