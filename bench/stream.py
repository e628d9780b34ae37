"""Live-stream latency: POST /api/v1/reports returning → the event arriving at each entitled
SSE subscriber, with many subscribers of mixed members, clearances and caveats.

Starts a real node (`bices --data DIR serve`, with its exploitation worker) on a fresh data
folder (the embedded default), or with `--backend postgres` on a fresh schema of a
PostgreSQL database (dropped afterwards), opens N SSE subscriptions from several client
processes (plain asyncio sockets: an HTTP/1.1 chunked reader, so that the client costs little),
posts reports at a fixed rate with varied labels, and then checks every delivery against
`bices.policy.may_see`: a delivery the rule forbids, or an entitled subscriber that did not
receive a report, is counted and printed. Latency is measured on one clock (the machine's
wall clock, shared by all processes). Loopback only; every loop is bounded.

    python bench/stream.py --subscribers 1000 --rate 20 --seconds 30
    python bench/stream.py --workers 2 --bus nats [--backend postgres [--database-url URL]]

With `--bus nats` the node has a bus namespace of its own (its streams deleted afterwards),
and the raw NATS round trip of the same payload is measured in the same run as the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    PG_URL,
    bus_namespace,
    exit_on_sigterm,
    percentile,
    pg_schema,
    process_cpu_seconds,
    record,
    served,
    service_cpu_seconds,
    settings_from,
    wait_for_quiet,
)

from bices.domain.labels import Label
from bices.domain.members import MemberKind
from bices.node import Node
from bices.policy import may_see
from bices.settings import Settings

MEMBERS = {"USA": "NATO", "GBR": "NATO", "EST": "NATO", "POL": "NATO", "TUR": "NATO",
           "KOR": "IP4", "JPN": "IP4", "AUS": "IP4", "NZL": "IP4"}  # fmt: skip
LEVELS = ["NATO UNCLASSIFIED", "NATO RESTRICTED", "NATO CONFIDENTIAL", "NATO SECRET",
          "COSMIC TOP SECRET"]  # fmt: skip
CAVEATS = ["ATOMAL", "CRYPTO"]
NATS_URL = "nats://127.0.0.1:4222"
RELEASABILITY = [["NATO"], ["NATO", "KOR"], ["USA", "GBR"], ["IP4", "USA"], ["NATO", "IP4"],
                 ["USA", "EST", "POL"], ["KOR", "USA"], ["JPN", "AUS", "USA"]]  # fmt: skip


def setup(
    data: Path, env: dict[str, str], users: int, seed: int
) -> tuple[list[dict[str, Any]], str]:
    """Members, `users` subscribing users of mixed standing, and the posting analyst."""
    rng = random.Random(seed)
    node = Node.open(Settings(**settings_from(data, env)))  # type: ignore[arg-type]
    try:
        for code, community in MEMBERS.items():
            node.coalition.add_member(code, f"Member {code}", MemberKind.NATION, [community])
        people = []
        for i in range(users):
            member = rng.choice(list(MEMBERS))
            level = rng.choice(LEVELS)
            caveats = sorted(rng.sample(CAVEATS, rng.choice([0, 0, 1, 2])))
            _, token = node.coalition.add_user(member, f"sub{i}", level, caveats, ["analyst"])
            people.append({"member": member, "level": level, "caveats": caveats, "token": token})
        _, poster = node.coalition.add_user("USA", "poster", "COSMIC TOP SECRET", CAVEATS,
                                            ["analyst"])  # fmt: skip
        return people, poster
    finally:
        node.close()


# -- the subscribers (client processes) ------------------------------------------------------


async def _subscribe(host: str, port: int, token: str, arrivals: list[tuple[str, float]],
                     opened: asyncio.Event, stop: asyncio.Event) -> None:  # fmt: skip
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET /api/v1/stream HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"stream refused: {status!r}")
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    opened.set()
    buffer = b""
    try:
        while not stop.is_set():
            size_line = await reader.readline()
            if not size_line:
                return
            size = int(size_line.strip() or b"0", 16)
            chunk = await reader.readexactly(size + 2)
            now = time.time()
            buffer += chunk[:-2]
            while b"\n\n" in buffer:
                frame, buffer = buffer.split(b"\n\n", 1)
                at = frame.find(b'data: {"id":"')
                if at >= 0 and b"event: report" in frame:
                    start = at + len(b'data: {"id":"')
                    arrivals.append((frame[start : frame.index(b'"', start)].decode(), now))
    finally:
        writer.close()


def client_process(index: int, host: str, port: int, tokens: list[str], seconds: float,
                   ready: Any, results: Any) -> None:  # fmt: skip
    async def run() -> list[list[tuple[str, float]]]:
        stop = asyncio.Event()
        arrivals: list[list[tuple[str, float]]] = [[] for _ in tokens]
        opened = [asyncio.Event() for _ in tokens]
        tasks = []
        for i, token in enumerate(tokens):
            tasks.append(asyncio.create_task(_subscribe(host, port, token, arrivals[i],
                                                        opened[i], stop)))  # fmt: skip
            if i % 50 == 49:
                await asyncio.sleep(0.05)  # do not flood the accept queue
        for event in opened:
            await asyncio.wait_for(event.wait(), 60)
        ready.put(len(tokens))
        await asyncio.sleep(seconds)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return arrivals

    results.put((index, asyncio.run(run())))


# -- the poster and the check -----------------------------------------------------------------


def post_reports(
    base: str, token: str, rate: float, seconds: float, seed: int
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    posted = []
    interval = 1.0 / rate
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        start = time.monotonic()
        for n in range(int(rate * seconds)):
            due = start + n * interval
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            label = {"classification": rng.choice(LEVELS),
                     "releasable_to": rng.choice(RELEASABILITY),
                     "caveats": sorted(rng.sample(CAVEATS, rng.choice([0, 0, 0, 1])))}  # fmt: skip
            body = {"type": "INTREP", "title": f"Stream bench report {n}",
                    "body": "Vessel movements observed near the coast; no launch activity.",
                    "language": "en", "label": label,
                    "source": {"name": "bench", "reliability": "B", "credibility": 2}}  # fmt: skip
            response = client.post("/api/v1/reports", json=body)
            returned = time.time()
            response.raise_for_status()
            posted.append({"id": response.json()["id"], "label": label, "returned": returned})
    return posted


ROUND_TRIP_BYTES = 700  # about a report event's data


async def nats_round_trip(count: int = 500) -> tuple[float, float]:
    """p50 and p99 (ms) of one JetStream publish, acknowledged, to its ordered consumer."""
    import nats
    from nats.js.api import DeliverPolicy, StreamConfig

    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    name = f"BENCH_{random.getrandbits(40):x}".upper()
    await js.add_stream(StreamConfig(name=name, subjects=[f"bench.{name.lower()}"]))
    arrived: asyncio.Queue[float] = asyncio.Queue()

    async def on_message(message: Any) -> None:
        arrived.put_nowait(time.perf_counter())

    await js.subscribe(f"bench.{name.lower()}", cb=on_message, ordered_consumer=True,
                       deliver_policy=DeliverPolicy.NEW)  # fmt: skip
    payload = b"x" * ROUND_TRIP_BYTES
    times = []
    try:
        for _ in range(count):
            sent = time.perf_counter()
            await js.publish(f"bench.{name.lower()}", payload)
            times.append((await asyncio.wait_for(arrived.get(), 5) - sent) * 1000)
    finally:
        await js.delete_stream(name)
        await nc.close()
    return percentile(times, 50), percentile(times, 99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--users", type=int, default=200, help="distinct subscribing users")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--rate", type=float, default=20.0, help="reports per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--bus", choices=["memory", "nats"], default="memory",
                        help="nats: BICES_BUS_URL=nats://127.0.0.1:4222")  # fmt: skip
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite",
                        help="postgres: a fresh schema of --database-url")  # fmt: skip
    parser.add_argument("--database-url", default=PG_URL)
    parser.add_argument("--no-exploit", action="store_true",
                        help="serve with BICES_EXPLOIT=false (no exploitation worker)")  # fmt: skip
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    exit_on_sigterm()

    with (
        tempfile.TemporaryDirectory(prefix="bices-stream-") as folder,
        contextlib.ExitStack() as made,
    ):
        data = Path(folder) / "node"
        env: dict[str, str] = {}
        if args.backend == "postgres":
            env["BICES_DATABASE_URL"] = made.enter_context(pg_schema(args.database_url))
        if args.bus == "nats":
            env["BICES_BUS_URL"] = NATS_URL
            env["BICES_BUS_NAMESPACE"] = made.enter_context(bus_namespace(NATS_URL))
        people, poster = setup(data, env, args.users, args.seed)
        subscribers = [people[i % len(people)] for i in range(args.subscribers)]
        exploit = not args.no_exploit
        with served(data, workers=args.workers, exploit=exploit, env=env) as (base, pid):
            host, port = base.removeprefix("http://").split(":")
            ctx = mp.get_context("spawn")
            ready, results = ctx.Queue(), ctx.Queue()
            share = [subscribers[i :: args.clients] for i in range(args.clients)]
            listen_s = args.seconds + 15
            clients = [
                ctx.Process(target=client_process, args=(n, host, int(port),
                            [s["token"] for s in part], listen_s, ready, results))
                for n, part in enumerate(share)
            ]  # fmt: skip
            for proc in clients:
                proc.start()
            connected = sum(ready.get(timeout=120) for _ in clients)
            print(f"{connected} subscribers connected; posting {args.rate:g} reports/s "
                  f"for {args.seconds:g} s")  # fmt: skip
            busy = wait_for_quiet()
            cpu0, t0 = process_cpu_seconds(pid), time.monotonic()
            services0 = service_cpu_seconds()
            posted = post_reports(base, poster, args.rate, args.seconds, args.seed)
            post_elapsed = time.monotonic() - t0
            server_cores = (process_cpu_seconds(pid) - cpu0) / post_elapsed
            service_cores = (service_cpu_seconds() - services0) / post_elapsed
            # The clients listen on for a while after the last post, then report.
            gathered = [results.get(timeout=listen_s + 120) for _ in clients]
            for proc in clients:
                proc.join(timeout=30)
        node = Node.open(Settings(**settings_from(data, env)))  # type: ignore[arg-type]
        directory = node.store.coalition.directory()
        node.close()

    arrivals: list[list[tuple[str, float]]] = []
    for _, part in sorted(gathered, key=lambda found: found[0]):
        arrivals.extend(part)
    # gathered[i] lists the subscribers of share[i] in order; line them up with their users.
    ordered = [s for part in share for s in part]
    from bices.domain.labels import Classification
    from bices.domain.members import MemberStatus
    from bices.domain.users import Role, Viewer

    latencies: list[float] = []
    forbidden = missed = duplicates = 0
    by_id = {p["id"]: p for p in posted}
    labels = {p["id"]: Label.build(p["label"]["classification"], p["label"]["releasable_to"],
                                   "USA", p["label"]["caveats"]) for p in posted}  # fmt: skip
    for person, got in zip(ordered, arrivals, strict=True):
        viewer = Viewer(0, "x", person["member"], MemberStatus.ACTIVE,
                        Classification.parse(person["level"]), frozenset(person["caveats"]),
                        frozenset({Role.ANALYST}))  # fmt: skip
        seen: set[str] = set()
        for report_id, at in got:
            if report_id in seen:
                duplicates += 1
                continue
            seen.add(report_id)
            if report_id not in by_id:
                continue
            if not may_see(viewer, labels[report_id], directory):
                forbidden += 1
                continue
            latencies.append((at - by_id[report_id]["returned"]) * 1000)
        missed += sum(
            1 for rid in by_id if rid not in seen and may_see(viewer, labels[rid], directory)
        )

    deliveries = len(latencies)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    worst = max(latencies) if latencies else 0.0
    summary = (f"{args.subscribers} subscribers ({args.users} users), {len(posted)} reports at "
               f"{args.rate:g}/s: {deliveries:,} deliveries; latency p50 {p50:.1f} ms, p99 "
               f"{p99:.1f} ms, max {worst:.1f} ms; forbidden {forbidden}, missed {missed}, "
               f"duplicates {duplicates}; server {server_cores:.2f} cores busy")  # fmt: skip
    print(summary)
    limit = ""
    if args.bus == "nats":
        raw50, raw99 = asyncio.run(nats_round_trip())
        limit = (f"Limit, in the same run: a raw NATS JetStream publish (with its ack) to an "
                 f"ordered consumer in one process, {raw50:.2f} ms p50, {raw99:.2f} ms p99 "
                 f"(500 messages of {ROUND_TRIP_BYTES} bytes, one at a time).")  # fmt: skip
        print(limit)
    if args.no_record:
        return
    target = "met" if p99 <= 100 and forbidden == 0 and missed == 0 else "MISSED"
    if args.workers > 1 or args.bus != "memory" or args.backend != "sqlite":
        bus_text = (f"`BICES_BUS_URL={NATS_URL}`, a namespace of its own" if args.bus == "nats"
                    else "in-process; each process polls the outbox every 250 ms")  # fmt: skip
        store_text = ("a fresh schema of PostgreSQL 15 on the same machine"
                      if args.backend == "postgres" else "one SQLite folder")  # fmt: skip
        worker_text = ("no exploitation worker (`BICES_EXPLOIT=false`)" if args.no_exploit
                       else "with their exploitation worker")  # fmt: skip
        title = "Live stream latency across server processes"
        if args.backend == "postgres":
            title += " on PostgreSQL + NATS" if args.bus == "nats" else " on PostgreSQL"
        if args.no_exploit:
            title += ", no exploitation"
        record(
            f"{title} (bench/stream.py)",
            f"""
`bices serve --workers {args.workers}` ({args.workers} server processes on one port and
{store_text}, {worker_text}), bus: {args.bus}
({bus_text}).
{args.subscribers} SSE subscribers ({args.users} users of {len(MEMBERS)} members) spread
evenly over the processes (each connection goes to the one holding the fewest open), from
{args.clients} client processes; one analyst posts
at {args.rate:g}/s for {args.seconds:g} s through the same port, so the deliveries to
subscribers on the other processes (about half with two) cross from the process that
stored the report. Latency from `POST` returning to the event arriving; every delivery
checked against the rule. Other processes busy before posting: {busy:.2f} cores.

| subscribers | reports | deliveries | p50 | p99 | max | forbidden | missed | duplicates \
| server cores | PostgreSQL+NATS cores |
|---|---|---|---|---|---|---|---|---|---|---|
| {args.subscribers} | {len(posted)} | {deliveries:,} | {p50:.1f} ms | {p99:.1f} ms \
| {worst:.1f} ms | {forbidden} | {missed} | {duplicates} | {server_cores:.2f} \
| {service_cores:.2f} |

{limit}
""",
        )
        return
    record(
        "Live stream latency (bench/stream.py)",
        f"""
`bices serve` (one process, SQLite, with its exploitation worker) on a fresh data folder.
{args.subscribers} SSE subscribers ({args.users} users of {len(MEMBERS)} members, mixed
clearances and caveats) connected from {args.clients} client processes on the same
machine; one analyst posts reports with varied labels at {args.rate:g}/s for
{args.seconds:g} s. Latency: from `POST /api/v1/reports` returning to the event arriving,
on the machine's clock. Every delivery is checked against `bices.policy.may_see`.

| subscribers | reports | deliveries | p50 | p99 | max | forbidden | missed | duplicates \
| server cores |
|---|---|---|---|---|---|---|---|---|---|
| {args.subscribers} | {len(posted)} | {deliveries:,} | {p50:.1f} ms | {p99:.1f} ms \
| {worst:.1f} ms | {forbidden} | {missed} | {duplicates} | {server_cores:.2f} |

Target p99 ≤ 100 ms with no forbidden delivery: **{target}**.
""",
    )


if __name__ == "__main__":
    main()
