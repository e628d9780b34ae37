"""Ingest and exploitation on PostgreSQL + NATS, beside the embedded default and the limits.

Ingest: `POST /api/v1/reports/batch` (batches of 100 of bench/ingest.py's corpus) to
`bices serve --workers W` on a fresh node, with exploitation off (`BICES_EXPLOIT=false`)
so that ingest alone is measured: on PostgreSQL + NATS (a schema and a bus namespace of
the run's own) and on the embedded default (SQLite, in-process bus), with 1 and 2 server
processes. While the PostgreSQL runs go, pg_locks is sampled to see how often the node's
writer lock is held and waited for. The limit, measured in the same run on the same rows:
raw `INSERT` (executemany, 100 per transaction) and `COPY` into one PostgreSQL table shaped
like the store's `report_versions` plus its search document (tsvector, GIN-indexed).

Exploitation: N reports stored with no worker running, then W `bices worker` processes
started; the time from the first worker ready to `exploit_lag` 0 (as `bices status`
reports it; bounded wait), on PostgreSQL + NATS (the JetStream work queue) and, beside
it, the embedded default's single worker on the same reports.

    python bench/scale_out.py [--part ingest|exploit|all] [--reports 20000]
        [--connections 2,4] [--workers 1,2] [--exploit-reports 2000] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    NATS_URL,
    PG_URL,
    busy_core_seconds,
    exit_on_sigterm,
    process_cpu_seconds,
    record,
    scale_out,
    served,
    service_cpu_seconds,
    settings_from,
    stop,
    wait_for_quiet,
)
from bices.node import Node
from bices.settings import Settings
from bices.store.pg import PostgresStore
from bices.store.pg_db import WRITER_LOCK
from ingest import BATCH, LEVELS, http_ingest, make_reports, setup_node, workers_text

EMBEDDED = "embedded (SQLite, in-process bus)"
SCALE_OUT = "PostgreSQL + NATS"


@contextmanager
def backend(kind: str, database: str, bus: str) -> Iterator[dict[str, str]]:
    """The `BICES_*` settings of a fresh node of this kind (nothing for the embedded one)."""
    if kind == EMBEDDED:
        yield {}
        return
    with scale_out(database, bus) as env:
        yield env


# -- the writer lock ---------------------------------------------------------------------------


class WriterLockSampler:
    """While entered, samples pg_locks every `interval_s`: whether a transaction holds the
    node's writer lock, and how many wait for it."""

    QUERY = (
        "SELECT count(*) FILTER (WHERE granted), count(*) FILTER (WHERE NOT granted) "
        "FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND objid = %s "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND classid::bigint = (hashtext(current_schema())::bigint & 4294967295)"
    )

    def __init__(self, url: str, interval_s: float = 0.01) -> None:
        self.url = url
        self.interval_s = interval_s
        self.samples: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.wait(self.interval_s):
                row = conn.execute(self.QUERY, (WRITER_LOCK,), prepare=True).fetchone()
                assert row is not None
                self.samples.append((int(row[0]), int(row[1])))

    def __enter__(self) -> WriterLockSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def held(self) -> float:
        """Share of samples in which a transaction held the lock."""
        return sum(1 for held, _ in self.samples if held) / max(1, len(self.samples))

    def contended(self) -> float:
        """Share of samples in which a transaction waited for it."""
        return sum(1 for _, waiting in self.samples if waiting) / max(1, len(self.samples))


# -- ingest --------------------------------------------------------------------------------


def ingest_runs(
    kind: str, args: argparse.Namespace, bodies: list[bytes], scratch: Path
) -> dict[tuple[int, int], dict[str, float]]:
    """One fresh node per (server processes, connections); exploitation off."""
    results = {}
    count = len(bodies) * BATCH
    for w, n in [(w, n) for w in args.workers for n in args.connections]:
        with backend(kind, args.database_url, args.bus_url) as env:
            data = scratch / f"ingest-{uuid.uuid4().hex[:8]}"
            token = setup_node(data, env)
            sampler = WriterLockSampler(env["BICES_DATABASE_URL"]) if env else None
            r = http_ingest(data, token, bodies, n, count, w, exploit=False, env=env,
                            watch=sampler)  # fmt: skip
            if sampler is not None:
                r["lock_held"], r["lock_contended"] = sampler.held(), sampler.contended()
                r["lock_ms_per_batch"] = r["lock_held"] * r["elapsed"] / (len(bodies) - 1) * 1e3
        results[w, n] = r
        lock = (f"; writer lock held {r['lock_held']:.0%} of the time, waited for "
                f"{r['lock_contended']:.0%}, ~{r['lock_ms_per_batch']:.0f} ms per batch"
                if "lock_held" in r else "")  # fmt: skip
        print(
            f"{kind}, {workers_text(w)}, {n} connections: {r['rate']:,.0f} reports/s "
            f"(server {r['server_cpu_per_report_us']:.0f} us CPU/report, "
            f"{r['server_cores']:.2f} cores; PostgreSQL+NATS {r['service_cores']:.2f} cores; "
            f"client {r['client_cores']:.2f}; batch p50 {r['batch_p50_ms']:.0f} ms{lock})",
            flush=True,
        )
    return results


RAW_TABLE = """
CREATE TABLE raw_versions (
    seq bigint PRIMARY KEY, report_id text NOT NULL, version integer NOT NULL,
    current integer NOT NULL, type text NOT NULL, title text NOT NULL, body text NOT NULL,
    language text NOT NULL, label_id bigint NOT NULL, classification integer NOT NULL,
    originator text NOT NULL, source_name text NOT NULL, reliability text NOT NULL,
    credibility integer NOT NULL, reported_at text NOT NULL,
    reported_ts double precision NOT NULL, observed_at text, locations text NOT NULL,
    attachments text NOT NULL, author text NOT NULL, stored_at text NOT NULL,
    signature text NOT NULL,
    document tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('bices', title), 'A') || setweight(to_tsvector('bices', body), 'B')
        || array_to_tsvector(ARRAY['#' || label_id::text])
    ) STORED,
    UNIQUE (report_id, version)
);
CREATE INDEX raw_versions_label ON raw_versions (label_id, seq);
CREATE INDEX raw_versions_document ON raw_versions USING gin (document);
"""
RAW_COLUMNS = (
    "seq, report_id, version, current, type, title, body, language, label_id, classification, "
    "originator, source_name, reliability, credibility, reported_at, reported_ts, observed_at, "
    "locations, attachments, author, stored_at, signature"
)


def raw_rows(reports: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The reports as rows of the store's `report_versions` (placeholder signatures)."""
    labels: dict[str, int] = {}
    rows = []
    for seq, r in enumerate(reports, 1):
        label = json.dumps(r["label"], sort_keys=True)
        level = LEVELS.index(r["label"]["classification"])
        source = r["source"]
        rows.append(
            (seq, str(uuid.uuid4()), 1, 1, r["type"], r["title"], r["body"], r["language"],
             labels.setdefault(label, len(labels) + 1), level, "USA", source["name"],
             source["reliability"], source["credibility"], r["reported_at"], 1.7e9 + seq,
             None, json.dumps(r["locations"]), "[]", "usa.bench", r["reported_at"], "A" * 88)
        )  # fmt: skip
    return rows


def raw_postgres(database: str, reports: list[dict[str, Any]]) -> dict[str, float]:
    """Rows/s of plain INSERT and COPY into `RAW_TABLE`, one connection, a fresh table each."""
    rows = raw_rows(reports)
    insert = f"INSERT INTO raw_versions ({RAW_COLUMNS}) VALUES ({', '.join(['%s'] * 22)})"
    copy = f"COPY raw_versions ({RAW_COLUMNS}) FROM STDIN"
    rates = {}
    with scale_out(database, NATS_URL) as env:
        url = env["BICES_DATABASE_URL"]
        PostgresStore(url).close()  # the store's schema: its text search configuration
        with psycopg.connect(url) as conn:
            for name in ("insert", "copy", "copy_once"):
                with conn.transaction():
                    conn.execute("DROP TABLE IF EXISTS raw_versions")
                    conn.execute(RAW_TABLE)
                conn.execute("CHECKPOINT")
                conn.commit()
                step = len(rows) if name == "copy_once" else BATCH
                t0 = time.perf_counter()
                for start in range(0, len(rows), step):
                    with conn.transaction(), conn.cursor() as cur:
                        if name == "insert":
                            cur.executemany(insert, rows[start : start + step])
                            continue
                        with cur.copy(copy) as out:
                            for row in rows[start : start + step]:
                                out.write_row(row)
                rates[name] = len(rows) / (time.perf_counter() - t0)
                print(f"raw PostgreSQL {name}: {rates[name]:,.0f} rows/s", flush=True)
    return rates


# -- exploitation ----------------------------------------------------------------------------


def preload(data: Path, token: str, bodies: list[bytes], env: dict[str, str]) -> None:
    """Store the batches through HTTP with no exploitation worker running."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with (
        served(data, exploit=False, env=env) as (base, _),
        httpx.Client(base_url=base, headers=headers, timeout=120) as http,
    ):
        for body in bodies:
            http.post("/api/v1/reports/batch", content=body).raise_for_status()


def exploited(data: Path, env: dict[str, str]) -> int:
    """Stored extraction results (one per exploited version)."""
    sql = "SELECT count(*) FROM extractions"
    if env:
        with psycopg.connect(env["BICES_DATABASE_URL"]) as conn:
            row = conn.execute(sql).fetchone()
    else:
        with sqlite3.connect(data / "bices.db") as conn:
            row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def status_lag(data: Path, env: dict[str, str]) -> int:
    """`exploit_lag` as `bices status --json` prints it."""
    done = subprocess.run(["bices", "--data", str(data), "status", "--json"],
                          capture_output=True, text=True, check=True, env=_env(env))  # fmt: skip
    return int(json.loads(done.stdout)["exploit_lag"])


def _env(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **extra}


def exploit_run(
    kind: str, args: argparse.Namespace, bodies: list[bytes], workers: int, scratch: Path
) -> dict[str, float]:
    """Preload, then start `workers` `bices worker` processes and wait for lag 0 (bounded)."""
    count = len(bodies) * BATCH
    with backend(kind, args.database_url, args.bus_url) as env:
        data = scratch / f"exploit-{uuid.uuid4().hex[:8]}"
        preload(data, setup_node(data, env), bodies, env)
        node = Node.open(Settings(**settings_from(data, env)))  # type: ignore[arg-type]
        procs: list[subprocess.Popen[bytes]] = []
        try:
            if (lag := node.exploit_backlog()) != count:
                raise SystemExit(f"{kind}: {lag} versions pending before the workers, not {count}")
            wait_for_quiet()
            busy0, services0 = busy_core_seconds(), service_cpu_seconds()
            logs = [data / f"worker-{i}.log" for i in range(workers)]
            command = ["bices", "--data", str(data), "worker"]
            for log in logs:
                with open(log, "w") as out:
                    procs.append(subprocess.Popen(command, stdout=out, stderr=out, env=_env(env)))
            r = follow(node, procs, logs, count, sampler_of(env))
            r["services_cores"] = (service_cpu_seconds() - services0) / r["wall"]
            r["busy_cores"] = (busy_core_seconds() - busy0) / r["wall"]
        finally:
            for proc in procs:
                stop(proc, timeout=30)
            node.close()
        r["exploited"] = exploited(data, env)
        r["status_lag"] = status_lag(data, env)
    print(
        f"{kind}, {workers} worker(s): {r['rate']:,.0f} reports/s exploited "
        f"({count} in {r['elapsed']:.1f} s after the first worker was ready, {r['wall']:.1f} s "
        f"from start; workers {r['cpu_ms_per_report']:.1f} ms CPU/report; "
        f"PostgreSQL+NATS {r['services_cores']:.2f} cores; machine {r['busy_cores']:.2f} cores; "
        f"{r['exploited']} results, status exploit_lag {r['status_lag']})",
        flush=True,
    )
    return r


def sampler_of(env: dict[str, str]) -> WriterLockSampler | None:
    return WriterLockSampler(env["BICES_DATABASE_URL"], 0.02) if env else None


def follow(
    node: Node,
    procs: list[subprocess.Popen[bytes]],
    logs: list[Path],
    count: int,
    sampler: WriterLockSampler | None,
) -> dict[str, float]:
    """Poll the lag until 0; the first worker's ready time and the workers' CPU."""
    t0 = time.monotonic()
    deadline = t0 + 120 + count / 20  # at least 20 reports/s, or the run fails
    ready_at: float | None = None
    cpu_at_ready = 0.0
    with sampler or nullcontext():
        while (lag := node.exploit_backlog()) > 0:
            now = time.monotonic()
            if ready_at is None and any("bices worker:" in log.read_text() for log in logs):
                ready_at = now
                cpu_at_ready = sum(process_cpu_seconds(p.pid) for p in procs)
            if now > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit(f"exploitation stopped at lag {lag}; see {logs[0]}")
            time.sleep(0.1)
        end = time.monotonic()
    cpu = sum(process_cpu_seconds(p.pid) for p in procs)
    ready_at = ready_at or t0
    out = {
        "wall": end - t0,
        "elapsed": end - ready_at,
        "rate": count / (end - ready_at),
        "cpu_ms_per_report": (cpu - cpu_at_ready) / count * 1e3,
    }
    if sampler is not None:
        out["lock_held"] = sampler.held()
    return out


# -- the record ------------------------------------------------------------------------------


def ingest_table(
    results: dict[str, dict[tuple[int, int], dict[str, float]]], raw: dict[str, float]
) -> list[str]:
    lines = [
        "| path | reports/s | server CPU per report | cores: server / PostgreSQL+NATS "
        "| batch p50 | writer lock held / waited for |",
        "|---|---:|---:|---|---:|---|",
    ]
    for kind, runs in results.items():
        for (w, n), r in runs.items():
            lock = (f"{r['lock_held']:.0%} / {r['lock_contended']:.0%} "
                    f"(~{r['lock_ms_per_batch']:.0f} ms per batch)"
                    if "lock_held" in r else "—")  # fmt: skip
            lines.append(
                f"| {kind}, {workers_text(w)}, {n} connections | {r['rate']:,.0f} "
                f"| {r['server_cpu_per_report_us']:.0f} µs | {r['server_cores']:.2f} / "
                f"{r['service_cores']:.2f} | {r['batch_p50_ms']:.0f} ms | {lock} |"
            )
    lines += [
        f"| limit: raw PostgreSQL `INSERT` (executemany), {BATCH} per transaction "
        f"| {raw['insert']:,.0f} | | 1 connection | | |",
        f"| limit: raw PostgreSQL `COPY`, {BATCH} per transaction | {raw['copy']:,.0f} "
        "| | 1 connection | | |",
        f"| limit: raw PostgreSQL `COPY`, all rows in one transaction | {raw['copy_once']:,.0f} "
        "| | 1 connection | | |",
    ]
    return lines


def record_ingest(
    results: dict[str, dict[tuple[int, int], dict[str, float]]],
    raw: dict[str, float],
    count: int,
) -> None:
    intro = (
        f"{count:,} reports per run in batches of {BATCH} (bench/ingest.py's corpus: mean "
        "title+body ~2,500 bytes, 48 label variants, English and Indonesian) posted to "
        "`POST /api/v1/reports/batch` of `bices serve --workers W` on a fresh node, loopback, "
        "httpx clients in the benchmark process on the same 2 cores. **Exploitation off** "
        "(`BICES_EXPLOIT=false`, no worker) so that only ingest is measured. Signing, "
        "validation and the audit chain happen server side. PostgreSQL 15 on the same "
        "machine, its configuration as packaged (shared_buffers 128 MB, synchronous_commit "
        "on); NATS JetStream on the same machine; each PostgreSQL run on a schema and bus "
        "namespace of its own. *Writer lock*: share of 10 ms samples of `pg_locks` in which "
        "a transaction held the node's advisory writer lock, and in which another waited "
        "for it; per batch, the held share × elapsed ÷ batches. The limits write the same "
        "rows (placeholder signatures) into one table shaped like the store's "
        "`report_versions` plus the search document of `current_reports` (a generated "
        "tsvector of title A, body B and the label lexeme, in the store's `bices` text search "
        "configuration, GIN-indexed) and its `(label_id, seq)` index, from one Python "
        "connection: the database's own cost of one version, without the store's other rows "
        "(`reports`, `current_reports`, `events`, audit) or its trigger."
    )
    record("Ingest on PostgreSQL + NATS (bench/scale_out.py)",
           "\n".join([intro, "", *ingest_table(results, raw)]))  # fmt: skip


def record_exploit(results: dict[tuple[str, int], dict[str, float]], count: int) -> None:
    lines = [
        f"{count:,} reports of bench/ingest.py's corpus stored through HTTP with no worker "
        "running (`BICES_EXPLOIT=false`), then W `bices worker` processes (nice 10, as "
        "`serve` starts them) started on the same 2-core machine. Time from the first "
        "worker's ready line (its knowledge base loaded) to `exploit_lag` 0, polled every "
        "0.1 s through `Node.exploit_backlog` (the figure `bices status --json` prints, "
        "checked with it at the end). On PostgreSQL + NATS the workers share the JetStream "
        "work queue; on the embedded default the one worker follows the outbox.",
        "",
        "| backend | workers | reports/s | seconds (from start) | worker CPU per report "
        "| cores: PostgreSQL+NATS / machine | writer lock held | results | final lag |",
        "|---|---:|---:|---|---:|---|---:|---:|---:|",
    ]
    for (kind, w), r in results.items():
        lock = f"{r['lock_held']:.0%}" if "lock_held" in r else "—"
        lines.append(
            f"| {kind} | {w} | {r['rate']:,.0f} | {r['elapsed']:.1f} ({r['wall']:.1f}) "
            f"| {r['cpu_ms_per_report']:.1f} ms | {r['services_cores']:.2f} / "
            f"{r['busy_cores']:.2f} | {lock} | {r['exploited']:,} | {r['status_lag']} |"
        )
    record("Exploitation on PostgreSQL + NATS (bench/scale_out.py)", "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["ingest", "exploit", "all"], default="all")
    parser.add_argument("--reports", type=int, default=20_000, help="per ingest run (bounded)")
    parser.add_argument("--connections", default="2,4", help="comma-separated client counts")
    parser.add_argument("--workers", default="1,2", help="server processes, then worker processes")
    parser.add_argument("--exploit-reports", type=int, default=2_000)
    parser.add_argument("--database-url", default=PG_URL)
    parser.add_argument("--bus-url", default=NATS_URL)
    parser.add_argument("--no-record", action="store_true", help="do not write BENCHMARKS.md")
    args = parser.parse_args()
    exit_on_sigterm()
    args.connections = [int(c) for c in args.connections.split(",")]
    args.workers = [int(w) for w in args.workers.split(",")]
    count = (args.reports // BATCH) * BATCH
    reports = make_reports(max(count, args.exploit_reports), seed=11)
    bodies = [
        json.dumps({"reports": reports[i : i + BATCH]}).encode()
        for i in range(0, len(reports) - BATCH + 1, BATCH)
    ]
    scratch = Path(tempfile.mkdtemp(prefix="bices-bench-scale-"))
    try:
        if args.part in ("ingest", "all"):
            posted = bodies[: count // BATCH]
            ingest = {kind: ingest_runs(kind, args, posted, scratch)
                      for kind in (SCALE_OUT, EMBEDDED)}  # fmt: skip
            wait_for_quiet()
            raw = raw_postgres(args.database_url, reports[:count])
            if not args.no_record:
                record_ingest(ingest, raw, count)
        if args.part in ("exploit", "all"):
            n = (args.exploit_reports // BATCH) * BATCH
            preloaded = bodies[: n // BATCH]
            runs = [(SCALE_OUT, w) for w in args.workers] + [(EMBEDDED, 1)]
            exploits = {(k, w): exploit_run(k, args, preloaded, w, scratch) for k, w in runs}
            if not args.no_record:
                record_exploit(exploits, n)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
