"""TAXII 2.1: the same load against our node and the OASIS reference server `medallion`.

In one run, for each number n of client connections (default 1, 2, then 4): post 2,000
`report` objects in envelopes of 100 (each envelope also carries the identity the reports
cite and the label's marking definition) over n connections, read the collection back page
by page with `taxii2-client` (`as_pages`, 100 per request), and fetch 200 reports by id over
one. Ours is `bices serve --workers min(n, cores)` (exploitation off, so every version keeps
the objects it was stored with) on a fresh data folder, posting as a USA analyst to the
`ingest` collection; medallion runs its memory backend in a process of its own (one
process: that backend cannot be shared) with a user/password config, fresh for each n. Both
on loopback, the clients in this process. `serve --workers` hands each connection to the
worker process holding the fewest open, so n connections split evenly between them. The
posting is repeated in `--rounds` rounds (each on a fresh node and a fresh medallion, the two
servers taking turns, so that a burst of load from elsewhere on a shared machine falls on
both); a server's POST rate is the median of its rounds, and the reading back and fetching
are measured in the first round. Target (issue 4): ours >= 2x medallion's POST rate and
>= 20x its GET rate, each server at its best n.

    python bench/taxii.py [--reports 2000] [--fetch 200] [--connections 1,2,4] [--rounds 3]
                          [--no-record]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Corpus, free_port, record, served, stop, wait_for_quiet
from bices.domain.labels import Label
from bices.domain.members import MemberKind
from bices.domain.signing import sign_batch
from bices.node import Node
from bices.settings import Settings
from bices.stix import label_marking

warnings.simplefilter("ignore")  # taxii2-client's dependencies warn about their own APIs
from taxii2client.v21 import ApiRoot, Collection, as_pages  # noqa: E402

ENVELOPE = 100
PAGE = 100
USER, PASSWORD = "bench", "bench-secret"
MEDALLION_ROOT = "bench"
MEDALLION_COLLECTION = "2f8d6a0e-0d2b-4f4e-9d4c-8b6a3c1e5f70"
CORES = os.cpu_count() or 1  # our server processes: one per connection, up to one per core


def envelopes(count: int, seed: int = 11) -> list[dict[str, Any]]:
    """`count` report objects in envelopes of `ENVELOPE`, under one BICES label."""
    corpus = Corpus(seed=seed, body_bytes=1200)
    rng = random.Random(seed)
    label = Label.build("NATO SECRET", ["NATO", "KOR"], "USA")
    marking = label_marking(label)
    source = {
        "type": "identity",
        "spec_version": "2.1",
        "id": f"identity--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
        "created": "2024-07-10T09:00:00.000Z",
        "modified": "2024-07-10T09:00:00.000Z",
        "name": "Coastal radar",
        "identity_class": "system",
    }
    out = []
    for start in range(0, count, ENVELOPE):
        reports = []
        for _ in range(min(ENVELOPE, count - start)):
            language, title, body = corpus.report()
            reports.append(
                {
                    "type": "report",
                    "spec_version": "2.1",
                    "id": f"report--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
                    "created": "2024-07-10T09:00:00.000Z",
                    "modified": "2024-07-10T09:00:00.000Z",
                    "name": title,
                    "description": body,
                    "lang": language,
                    "published": "2024-07-10T09:00:00.000Z",
                    "report_types": ["threat-report"],
                    "object_refs": [source["id"]],
                    "created_by_ref": source["id"],
                    "object_marking_refs": [marking["id"]],
                }
            )
        # No extension-definition object: medallion 3.0 fails every later read (500) once it
        # holds one, reading its `version` property ("1.0") as a timestamp.
        out.append({"objects": [*reports, source, marking]})
    return out


# -- the two servers --------------------------------------------------------------------------


def setup_node(data: Path) -> str:
    node = Node.open(Settings(data=data))
    try:
        for code, community in (("USA", "NATO"), ("GBR", "NATO"), ("KOR", "IP4")):
            node.coalition.add_member(code, f"Member {code}", MemberKind.NATION, [community])
        _, token = node.coalition.add_user("USA", USER, "NATO SECRET", (), ("analyst",))
    finally:
        node.close()
    return token


@contextmanager
def medallion(folder: Path) -> Iterator[tuple[str, int]]:
    """medallion with its memory backend on a free loopback port; its base URL and pid."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = {
        "/discovery": {
            "title": "medallion (bench)",
            "default": f"{base}/{MEDALLION_ROOT}/",
            "api_roots": [f"{base}/{MEDALLION_ROOT}/"],
        },
        MEDALLION_ROOT: {
            "information": {
                "title": "bench",
                "versions": ["application/taxii+json;version=2.1"],
                "max_content_length": 104857600,
            },
            "status": [],
            "collections": [
                {
                    "id": MEDALLION_COLLECTION,
                    "title": "bench",
                    "can_read": True,
                    "can_write": True,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": [],
                    "manifest": [],
                }
            ],
        },
    }
    (folder / "medallion-data.json").write_text(json.dumps(data))
    config = {
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": str(folder / "medallion-data.json"),
        },
        "users": {USER: PASSWORD},
        "taxii": {"max_page_size": 1000},
    }
    (folder / "medallion.json").write_text(json.dumps(config))
    log = open(folder / "medallion.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        ["medallion", "--host", "127.0.0.1", "--port", str(port), str(folder / "medallion.json")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"medallion exited with {proc.returncode}; see {log.name}")
            try:
                answered = httpx.get(
                    f"{base}/taxii2/",
                    auth=(USER, PASSWORD),
                    headers={"Accept": "application/taxii+json;version=2.1"},
                    timeout=1,
                )
                if answered.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("medallion did not answer within 30 s")
            time.sleep(0.1)
        print(f"medallion pid {proc.pid} on {base}")
        yield base, proc.pid
    finally:
        stop(proc)
        log.close()


# -- the load ---------------------------------------------------------------------------------


@dataclass
class Result:
    post_s: float
    reports: int
    read_s: float
    read_objects: int
    read_reports: int
    pages: int
    fetch_s: float
    fetched: int
    rounds: list[float] = field(default_factory=list)  # seconds posting took in each round

    @property
    def post_rate(self) -> float:
        """Reports posted per second: the median of the rounds."""
        return self.reports / statistics.median(self.rounds or [self.post_s])

    @property
    def round_rates(self) -> list[float]:
        return [self.reports / s for s in self.rounds or [self.post_s]]

    @property
    def read_rate(self) -> float:
        """Reports read back per second (the whole collection, page by page)."""
        return self.read_reports / self.read_s

    @property
    def fetch_rate(self) -> float:
        return self.fetched / self.fetch_s


def post_all(collections: list[Collection], batches: list[dict[str, Any]]) -> float:
    """Post the envelopes, each connection (one `Collection` each) taking every n-th one in
    turn; the seconds until the last is stored."""

    def post(collection: Collection, mine: list[dict[str, Any]]) -> None:
        for batch in mine:
            status = collection.add_objects(batch, wait_for_completion=True, poll_interval=0.05)
            # medallion counts an object it already holds (the shared identity and markings
            # of every envelope after the first) as a failure; a report must never fail.
            failed = [f["id"] for f in status.failures if f["id"].startswith("report--")]
            if status.status != "complete" or failed:
                raise RuntimeError(f"envelope not stored: {failed[:3]}")

    n = len(collections)
    started = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        done = [pool.submit(post, c, batches[i::n]) for i, c in enumerate(collections)]
        for future in done:
            future.result()
    return time.perf_counter() - started


def load(collections: list[Collection], batches: list[dict[str, Any]], fetch: int | None) -> Result:
    """Post over every connection, then (unless `fetch` is None: posting alone, each
    envelope's status checked) read back and fetch `fetch` reports over the first alone."""
    reports = sum(1 for b in batches for o in b["objects"] if o["type"] == "report")
    post_s = post_all(collections, batches)
    if fetch is None:
        return Result(post_s, reports, 0.0, 0, 0, 0, 0.0, 0)
    collection = collections[0]

    started = time.perf_counter()
    objects: list[dict[str, Any]] = []
    pages = 0
    for page in as_pages(collection.get_objects, per_request=PAGE):
        objects += page.get("objects", [])
        pages += 1
        if pages > 10 * reports:  # bounded: a server that never ends its pages
            raise RuntimeError("too many pages")
    read_s = time.perf_counter() - started
    read_reports = [o["id"] for o in objects if o["type"] == "report"]
    if len(set(read_reports)) != reports:
        raise RuntimeError(f"read back {len(set(read_reports))} reports of {reports}")

    wanted = random.Random(5).sample(read_reports, min(fetch, len(read_reports)))
    started = time.perf_counter()
    for report_id in wanted:
        found = collection.get_object(report_id)
        if [o["id"] for o in found.get("objects", [])][:1] != [report_id]:
            raise RuntimeError(f"{report_id} not fetched")
    fetch_s = time.perf_counter() - started
    return Result(post_s, reports, read_s, len(objects), reports, pages, fetch_s, len(wanted))


def collection_of(root_url: str, password: str, alias: str | None) -> Collection:
    root = ApiRoot(root_url, user=USER, password=password)
    for collection in root.collections:
        if alias is None or getattr(collection, "alias", None) == alias:
            return collection
    raise RuntimeError(f"no collection {alias} at {root_url}")


@dataclass(frozen=True)
class Limit:
    sign: float  # reports/s
    insert: float

    @property
    def serial(self) -> float:
        return 1 / (1 / self.sign + 1 / self.insert)


def post_limit(batches: list[dict[str, Any]], folder: Path) -> Limit:
    """What signing and storing the posted reports cost with nothing else around them."""
    from ingest import raw_sqlite  # bench/ingest.py: the same raw insert as its limit

    reports = [
        {"type": "INTREP", "title": o["name"], "body": o.get("description", ""),
         "language": "en", "label": {"classification": "NATO SECRET",
         "releasable_to": ["NATO", "KOR"], "caveats": []},
         "source": {"name": "bench", "reliability": "B", "credibility": 2},
         "reported_at": o["published"], "locations": []}
        for batch in batches for o in batch["objects"] if o["type"] == "report"
    ]  # fmt: skip
    key = Ed25519PrivateKey.generate()
    started = time.perf_counter()
    for at in range(0, len(reports), ENVELOPE):  # as the node signs: once an envelope
        sign_batch(key, reports[at : at + ENVELOPE])
    sign = len(reports) / (time.perf_counter() - started)
    return Limit(sign, raw_sqlite(folder, reports))


def post_ours(data: Path, n: int, batches: list[dict[str, Any]], fetch: int | None) -> Result:
    token = setup_node(data)
    with served(data, workers=min(n, CORES), exploit=False) as (base, _):
        url = f"{base}/taxii2/bices/"
        return load([collection_of(url, token, "ingest") for _ in range(n)], batches, fetch)


def post_medallion(
    folder: Path, n: int, batches: list[dict[str, Any]], fetch: int | None
) -> Result:
    with medallion(folder) as (base, _):
        url = f"{base}/{MEDALLION_ROOT}/"
        return load([collection_of(url, PASSWORD, None) for _ in range(n)],
                    json.loads(json.dumps(batches)), fetch)  # fmt: skip


def combined(rounds: list[Result]) -> Result:
    """The first round's reads, with the posting times of every round."""
    first = rounds[0]
    return Result(first.post_s, first.reports, first.read_s, first.read_objects,
                  first.read_reports, first.pages, first.fetch_s, first.fetched,
                  [r.post_s for r in rounds])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--fetch", type=int, default=200)
    parser.add_argument("--connections", default="1,2,4",
                        help="comma-separated client connection counts to post over")  # fmt: skip
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="posting rounds per server and connection count (median kept)",
    )
    parser.add_argument("--no-record", action="store_true", help="do not write BENCHMARKS.md")
    parser.add_argument("--keep", action="store_true", help="keep the data folder and logs")
    args = parser.parse_args()
    batches = envelopes(args.reports)
    counts = [int(c) for c in args.connections.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="bices-taxii-bench-"))
    runs: list[tuple[int, Result, Result]] = []
    try:
        busy = wait_for_quiet()
        for n in counts:
            ours_rounds: list[Result] = []
            theirs_rounds: list[Result] = []
            for r in range(args.rounds):
                fetch = args.fetch if r == 0 else None  # read back in the first round only
                ours_rounds.append(post_ours(folder / f"node-{n}-{r}", n, batches, fetch))
                theirs_rounds.append(post_medallion(folder / f"medallion-{n}-{r}", n, batches,
                                                    fetch))  # fmt: skip
            runs.append((n, combined(ours_rounds), combined(theirs_rounds)))
        limit = post_limit(batches, folder)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    text = summary(args, runs, limit, busy)
    print(text)
    if not args.no_record:
        record("TAXII 2.1 against medallion (bench/taxii.py)", text)


def summary(
    args: argparse.Namespace, runs: list[tuple[int, Result, Result]], limit: Limit, busy: float
) -> str:
    """The recorded text: one table row per step and connection count, the verdicts judged
    on each server's best POST and GET rates of the run."""

    def conns(n: int) -> str:
        return f"{n} connection{'s' if n > 1 else ''}"

    lines = [
        f"{args.reports:,} `report` objects posted in envelopes of {ENVELOPE} (each with the "
        "identity the reports cite and the label's marking definition; no extension-definition "
        "object, which medallion 3.0 cannot serve back), the collection read back page by "
        "page with `taxii2-client` `as_pages` "
        f"({PAGE} per request), then {args.fetch} reports fetched by id "
        "(`GET objects/{id}/`). The envelopes are posted over 1 or n client connections "
        "(`taxii2-client`, one thread each, taking every n-th envelope); reading back and "
        "fetching use one connection. The clients run in the benchmark process, on the same "
        f"{CORES} cores, over loopback. Ours: `bices serve --workers min(n, {CORES})` (server "
        "processes on one port and one SQLite file, each connection handed to the one holding "
        "the fewest open; `BICES_EXPLOIT=false`) on a fresh data folder, posting to "
        "`ingest` as a USA analyst: every report is mapped from STIX, labelled, signed "
        "(one Ed25519 signature an envelope, over a Merkle tree of its reports' canonical "
        "forms; each report's signature checks alone) and stored with its audit event; "
        "every read goes through the access rule and is audited. medallion 3.0: memory "
        "backend, its own process (Flask's threaded server; the memory backend cannot be "
        "shared by several processes), Basic auth, "
        f"fresh for each round. Posting is repeated in {args.rounds} round"
        f"{'s' if args.rounds > 1 else ''} per connection count, each on a fresh node and a "
        "fresh medallion, the two taking turns; a POST rate below is the median of its "
        "rounds, and the reads are measured after the first round. Other processes on the "
        f"machine before the run: {busy:.2f} cores.",
        "",
        "| step | ours | medallion | ratio |",
        "|---|---:|---:|---:|",
    ]
    for n, ours, theirs in runs:
        steps = [
            (f"POST envelopes, {conns(n)} (reports/s)", ours.post_rate, theirs.post_rate),
            (f"GET pages, whole collection (reports/s), after posting over {conns(n)}",
             ours.read_rate, theirs.read_rate),
            (f"GET object by id (requests/s), after posting over {conns(n)}",
             ours.fetch_rate, theirs.fetch_rate),
        ]  # fmt: skip
        for name, mine, peer in steps:
            lines.append(f"| {name} | {mine:,.0f} | {peer:,.1f} | {mine / peer:,.1f}× |")
    lines.append("")
    for n, ours, theirs in runs:
        lines.append(
            f"- {conns(n)}: posting rate in each round ours "
            f"{', '.join(f'{r:,.0f}' for r in ours.round_rates)}/s, medallion "
            f"{', '.join(f'{r:,.0f}' for r in theirs.round_rates)}/s; read back: ours "
            f"{ours.read_objects:,} objects in "
            f"{ours.pages} pages ({ours.read_s:.2f} s; each version also serves its source "
            f"identity, and the collection's markings, extension definitions and identities "
            f"once), medallion {theirs.read_objects:,} objects in {theirs.pages} pages "
            f"({theirs.read_s:.2f} s); {args.fetch} fetches by id took ours "
            f"{ours.fetch_s:.2f} s, medallion {theirs.fetch_s:.2f} s."
        )
    best = {
        "post": (max(r[1].post_rate for r in runs), max(r[2].post_rate for r in runs)),
        "read": (max(r[1].read_rate for r in runs), max(r[2].read_rate for r in runs)),
    }
    single = next((r for r in runs if r[0] == 1), None)
    lines += [
        "",
        f"The limit for a node that signs what it stores, measured in this run on the same "
        f"reports: signing them as the node does (canonical form, Merkle leaf, one Ed25519 "
        f"signature an envelope) alone {limit.sign:,.0f}/s, a "
        f"plain SQLite insert of each row and its FTS5 entry (100 per transaction) alone "
        f"{limit.insert:,.0f}/s, so both in one process at most {limit.serial:,.0f}/s "
        f"({limit.serial / best['post'][1]:.1f}× medallion's best in-memory append)."
        + (
            f" With one connection and one process, Python per report (mapping STIX to a "
            f"draft, validating it, the label check, the canonical form, the audit chain, the "
            f"source objects kept as an attachment, HTTP) takes "
            f"{1e6 / single[1].post_rate - 1e6 / limit.serial:,.0f} µs of each report's "
            f"{1e6 / single[1].post_rate:,.0f} µs."
            if single is not None
            else ""
        ),
        "",
    ]
    verdicts = []
    for step, target in (("post", 2.0), ("read", 20.0)):
        mine, peer = best[step]
        met = mine / peer >= target
        verdicts.append(met)
        lines.append(
            f"- {step.upper()}: ours {mine:,.0f}/s against medallion's {peer:,.1f}/s, each "
            f"server's best of the connection counts: {mine / peer:.1f}× (target ≥ "
            f"{target:g}×: **{'met' if met else 'MISSED'}**)."
        )
    lines += [
        "",
        f"Targets (ours ≥ 2× medallion's POST rate, ≥ 20× its GET rate): "
        f"**{'met' if all(verdicts) else 'MISSED'}**.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
