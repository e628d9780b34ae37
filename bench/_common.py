"""Shared pieces of the benchmarks: the machine, a realistic corpus, a node under `bices serve`,
and the section of BENCHMARKS.md each benchmark rewrites with its latest figures."""

from __future__ import annotations

import contextlib
import os
import platform
import random
import re
import shlex
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"
# The scale-out services the benchmarks use (loopback only); each run takes a schema and a
# bus namespace of its own and removes them afterwards.
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
NATS_URL = "nats://127.0.0.1:4222"


# -- the machine and the record --------------------------------------------------------------


def machine() -> str:
    """CPU model, cores and RAM, read from /proc, plus the software that matters here."""
    model = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return (
        f"{model}, {os.cpu_count()} cores, {mem_kb / 1024 / 1024:.1f} GiB RAM; "
        f"Linux {platform.release()}; Python {platform.python_version()}; "
        f"SQLite {sqlite3.sqlite_version}"
    )


def code_version() -> str:
    """The commit measured, and whether src/ had uncommitted changes at the time."""
    head = (
        subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        or "unknown"
    )
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "src"], capture_output=True, text=True
    ).stdout.strip()
    return head + (" with uncommitted changes in src/" if dirty else "")


def command_line() -> str:
    return "python " + " ".join(
        shlex.quote(a) for a in [os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]]
    )


def record(title: str, body: str) -> None:
    """Replace (or append) the `## title` section of BENCHMARKS.md with this run's figures."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"## {title}\n\n"
        f"- Date: {stamp}\n"
        f"- Machine: {machine()}\n"
        f"- Code: {code_version()}\n"
        f"- Command: `{command_line()}`\n\n"
        f"{body.strip()}\n"
    )
    text = (
        BENCHMARKS.read_text()
        if BENCHMARKS.exists()
        else (
            "# Benchmarks\n\nWritten by the scripts in `bench/`; each section is the latest run of "
            "one script, with the peer or limit it is compared against measured in the same run.\n"
        )
    )
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    BENCHMARKS.write_text(text)
    print(f"recorded in {BENCHMARKS}")


def busy_core_seconds() -> float:
    """CPU time used by every process on the machine so far (from /proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def process_cpu_seconds(pid: int) -> float:
    """CPU time of a process and of its living descendants (server worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                children.setdefault(int(_stat_fields(int(entry))[1]), []).append(int(entry))
            except (FileNotFoundError, ProcessLookupError):
                continue
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = _stat_fields(current)
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        todo.extend(children.get(current, []))
    return total


def wait_for_quiet(max_wait: float = 300.0, threshold: float = 0.15) -> float:
    """Wait (bounded) until other processes use under `threshold` cores; return the last reading.

    The machine may be shared with test runs; a benchmark says what it competed with.
    """
    deadline = time.monotonic() + max_wait
    while True:
        before = busy_core_seconds()
        time.sleep(2.0)
        busy = (busy_core_seconds() - before) / 2.0
        if busy < threshold or time.monotonic() > deadline:
            print(f"machine busy before the run: {busy:.2f} cores")
            return busy
        print(f"waiting for a quiet machine ({busy:.2f} cores busy)", flush=True)


def exit_on_sigterm() -> None:
    """End on SIGTERM (e.g. `timeout`) as on Ctrl-C, so that `finally` blocks remove the
    schemas, streams and folders a run made."""
    import signal

    def leave(*_: object) -> None:
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, leave)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


# -- a realistic corpus -----------------------------------------------------------------------

PLACES = [
    "Pyongyang",
    "Kaesong",
    "Seoul",
    "Busan",
    "Incheon",
    "Jakarta",
    "Surabaya",
    "Tallinn",
    "Narva",
    "Riga",
    "Vilnius",
    "Suwalki",
    "Rzeszow",
    "Gdansk",
    "Yokosuka",
    "Okinawa",
    "Darwin",
    "Natuna",
    "Batam",
    "Makassar",
    "Gangneung",
    "Pohang",
    "Ulsan",
    "Kunsan",
]
UNITS = [
    "a naval task group",
    "two frigates",
    "a reconnaissance aircraft",
    "an air defence battery",
    "a mechanised battalion",
    "coastal patrol vessels",
    "a logistics convoy",
    "maritime patrol aircraft",
    "a signals detachment",
    "an engineer company",
]
EN = [
    "At {h}:{m} local time {unit} was observed moving north of {place}.",
    "The source, who has reported reliably in the past, described increased activity near {place}.",
    "Imagery from {d} July shows {n} vehicles parked at the northern edge of the site.",
    "Open-source reporting from {place} indicates that {unit} left port early in the morning.",
    "Local fishermen reported unusual radio traffic on several frequencies during the night.",
    "The activity is assessed to be consistent with a routine training cycle, confidence moderate.",
    "No change was noted at the {place} railway yard compared with the previous week.",
    "Weather conditions limited collection for roughly {n} hours on the second day.",
    "Coordination with partner liaison officers in {place} continues through the exercise period.",
    "Further reporting is requested on the movement of {unit} towards {place}.",
    "Analysts note that the timing coincides with the announced exercise window.",
    "A second source corroborated the sighting but could not confirm the number of vessels.",
    "Customs records show {n} containers declared as agricultural equipment at {place}.",
    "The convoy was escorted by {unit} and stopped twice before reaching {place}.",
]
ID = [
    "Pada pukul {h}:{m} waktu setempat {unit} terlihat bergerak ke utara {place}.",
    "Sumber yang selama ini dapat dipercaya melaporkan peningkatan kegiatan di dekat {place}.",
    "Citra satelit tanggal {d} Juli menunjukkan {n} kendaraan di sisi utara lokasi tersebut.",
    "Laporan sumber terbuka dari {place} menyebutkan bahwa {unit} meninggalkan pelabuhan pagi ini.",
    "Nelayan setempat melaporkan lalu lintas radio yang tidak biasa pada malam hari.",
    "Kegiatan tersebut dinilai sesuai dengan siklus latihan rutin, tingkat keyakinan sedang.",
    "Tidak ada perubahan di stasiun kereta {place} dibandingkan dengan minggu sebelumnya.",
    "Cuaca buruk membatasi pengumpulan data selama sekitar {n} jam pada hari kedua.",
    "Koordinasi dengan perwira penghubung mitra di {place} terus berlanjut selama latihan.",
    "Diminta laporan lebih lanjut mengenai pergerakan {unit} menuju {place}.",
    "Para analis mencatat bahwa waktunya bertepatan dengan jadwal latihan yang diumumkan.",
    "Sumber kedua membenarkan pengamatan itu tetapi tidak dapat memastikan jumlah kapal.",
    "Catatan bea cukai menunjukkan {n} kontainer berisi peralatan pertanian di {place}.",
]
TITLES_EN = [
    "Activity near {place}",
    "Movement of {unit} reported at {place}",
    "Port activity at {place}",
    "Radio traffic increase around {place}",
]
TITLES_ID = [
    "Kegiatan di sekitar {place}",
    "Pergerakan {unit} dilaporkan di {place}",
    "Aktivitas pelabuhan di {place}",
    "Peningkatan lalu lintas radio di {place}",
]

# Marker words that the sentence pool never contains, planted at known rates so that search
# queries have a known selectivity. (word or phrase, fraction of reports that carry it)
MARKERS = [
    ("Sinpo shipyard", 0.0005),  # rare
    ("submarine", 0.05),  # mid-frequency
    ("Wonsan", 0.03),  # two-term AND: Wonsan AND artillery
    ("artillery", 0.05),
    ("ballistic missile", 0.02),  # the phrase
    ("ballistic", 0.02),  # the words apart, so that the phrase is more selective than its words
    ("missile", 0.08),
]
# Each query type: (name, q, expected fraction of all reports matching before the label filter)
QUERIES = [
    ("rare term", "Sinpo", 0.0005),
    ("mid-frequency term", "submarine", 0.05),
    ("two-term AND", "Wonsan artillery", 0.03 * 0.05),
    ("phrase", '"ballistic missile"', 0.02),
    ("frequent term", "source", 0.6),  # in nearly every English report
]


def _fill(rng: random.Random, template: str) -> str:
    return template.format(
        h=f"{rng.randrange(24):02d}",
        m=f"{rng.randrange(60):02d}",
        d=rng.randrange(1, 31),
        n=rng.randrange(2, 60),
        place=rng.choice(PLACES),
        unit=rng.choice(UNITS),
    )


class Corpus:
    """Deterministic report titles and bodies of about `body_bytes`, in English or Indonesian."""

    def __init__(self, seed: int = 7, body_bytes: int = 2400) -> None:
        self.rng = random.Random(seed)
        self.body_bytes = body_bytes
        # Pre-filled sentences make generating a million bodies cheap.
        self.sentences = {
            "en": [_fill(self.rng, t) for t in EN for _ in range(60)],
            "id": [_fill(self.rng, t) for t in ID for _ in range(60)],
        }

    def report(self) -> tuple[str, str, str]:
        """(language, title, body)"""
        rng = self.rng
        language = "en" if rng.random() < 0.6 else "id"
        title = _fill(rng, rng.choice(TITLES_EN if language == "en" else TITLES_ID))
        pool = self.sentences[language]
        parts: list[str] = []
        size = 0
        while size < self.body_bytes:
            sentence = rng.choice(pool)
            parts.append(sentence)
            size += len(sentence) + 1
        for marker, rate in MARKERS:
            if rng.random() < rate:
                parts.insert(rng.randrange(len(parts)), f"Reporting mentions {marker}.")
        return language, title, " ".join(parts)


# -- a node under `bices serve` ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """End a server process: politely, then for good if it does not go within `timeout`."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def served(
    data: Path,
    timeout: float = 60.0,
    workers: int = 1,
    exploit: bool = True,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[str, int]]:
    """Run `bices --data DATA serve` on a free loopback port; yield its base URL and pid.

    With `exploit` the server starts its exploitation worker process, as deployed; `env`
    adds settings (e.g. `BICES_BUS_URL`)."""
    port = free_port()
    data.mkdir(parents=True, exist_ok=True)  # on PostgreSQL, only the log is kept there
    log = open(data / "serve.log", "w")  # noqa: SIM115 - closed below
    command = f"bices --data {data} serve --host 127.0.0.1 --port {port} --workers {workers}"
    proc = subprocess.Popen(
        command.split(),
        env={**os.environ, "BICES_EXPLOIT": "true" if exploit else "false", **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"bices serve exited with {proc.returncode}; see {log.name}")
            try:
                up = httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                up = False
            started = (data / "serve.log").read_text().count("Application startup complete")
            if up and started >= workers:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"bices serve did not answer within {timeout} s")
            time.sleep(0.1)
        print(f"bices serve pid {proc.pid} on {base}")
        yield base, proc.pid
    finally:
        stop(proc)
        log.close()


# -- the scale-out services (PostgreSQL, NATS) ------------------------------------------------


@contextmanager
def pg_schema(base_url: str = PG_URL, keep: bool = False) -> Iterator[str]:
    """A new, empty schema of the database for one node; yields the node's URL for it and
    drops the schema afterwards (unless `keep`). The store's extensions live in `public`, as
    in the tests."""
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base_url, autocommit=True, connect_timeout=5) as conn:
        for extension in ("unaccent", "pg_trgm"):
            conn.execute(f"CREATE EXTENSION IF NOT EXISTS {extension} SCHEMA public")
        conn.execute(f"CREATE SCHEMA {schema}")
    joiner = "&" if "?" in base_url else "?"
    url = f"{base_url}{joiner}options=-csearch_path%3D{schema}%2Cpublic"
    try:
        yield url
    finally:
        if keep:
            print(f"schema kept: {url}")
        else:
            with psycopg.connect(base_url, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def schema_bytes(url: str) -> int:
    """Bytes on disk of the tables (with their indexes and TOAST) of the URL's schema."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'm')"
        ).fetchone()
    return int(row[0]) if row else 0


@contextmanager
def bus_namespace(url: str = NATS_URL) -> Iterator[str]:
    """A namespace of the NATS server for one node; its streams are deleted afterwards."""
    from nats.js.errors import NotFoundError

    from bices.bus.nats import NatsBus, names

    namespace = f"BENCH{uuid.uuid4().hex[:12].upper()}"
    try:
        yield namespace
    finally:
        stream, subjects = names(namespace)
        bus = NatsBus(url, stream, subjects)
        try:
            for name in (stream, f"{stream}_WORK"):
                with contextlib.suppress(NotFoundError):
                    bus.call(bus.jetstream.delete_stream(name), timeout=5)
        finally:
            bus.close()


@contextmanager
def scale_out(database: str = PG_URL, bus: str = NATS_URL) -> Iterator[dict[str, str]]:
    """A fresh node on PostgreSQL and NATS: yields its `BICES_*` settings, then removes its
    schema and streams."""
    with pg_schema(database) as url, bus_namespace(bus) as namespace:
        yield {"BICES_DATABASE_URL": url, "BICES_BUS_URL": bus, "BICES_BUS_NAMESPACE": namespace}


def settings_from(data: Path, env: dict[str, str]) -> dict[str, str | Path]:
    """Keyword arguments of `bices.settings.Settings` for a data folder and `BICES_*` settings."""
    return {"data": data, **{k.removeprefix("BICES_").lower(): v for k, v in env.items()}}


def service_pids() -> list[int]:
    """The PostgreSQL postmaster and the NATS server running on this machine."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as comm:
                name = comm.read().strip()
            parent = int(_stat_fields(int(entry))[1])
            with open(f"/proc/{parent}/comm") as comm:
                parent_name = comm.read().strip()
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        if name == "nats-server" or (name == "postgres" and parent_name != "postgres"):
            found.append(int(entry))
    return found


def service_cpu_seconds() -> float:
    """CPU time so far of PostgreSQL (all its backends) and the NATS server."""
    return sum(process_cpu_seconds(pid) for pid in service_pids())
