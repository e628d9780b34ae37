"""Where search time goes, and what two schema changes would save: timed SQL on a filled node.

Runs on a data folder kept by `python bench/search.py --keep` (its benchmark user's visible
labels are those releasable to EST). For each query it times, with SQLite alone:

- *node*: the two statements `SqliteReports.search` runs today (facet counts over every
  match joined to the wide `report_versions` row, and the page ordered by FTS5 rank);
- *narrow*: the same with the filter and facet columns in a narrow table keyed by seq;
- *label tokens*: the label id also indexed as a token in the FTS5 table, so that FTS5
  intersects the query with the visible labels before anything is ranked or joined.

The extra tables are built in the scratch folder's database (never in a real node).

    python bench/search_plans.py DATA_FOLDER [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import QUERIES, record, wait_for_quiet
from bices.store.query import parse, to_fts5

NARROW = """
CREATE TABLE IF NOT EXISTS bench_facets (
    seq INTEGER PRIMARY KEY, label_id INTEGER NOT NULL, type TEXT NOT NULL,
    originator TEXT NOT NULL, classification INTEGER NOT NULL, language TEXT NOT NULL
);
INSERT INTO bench_facets SELECT seq, label_id, type, originator, classification, language
    FROM report_versions WHERE current = 1;
"""
LABELLED = """
CREATE VIRTUAL TABLE IF NOT EXISTS bench_fts USING fts5(
    title, body, label, content='', tokenize='unicode61 remove_diacritics 2'
);
INSERT INTO bench_fts (rowid, title, body, label)
    SELECT seq, title, body, 'l' || label_id FROM report_versions WHERE current = 1;
"""


def build(conn: sqlite3.Connection) -> None:
    for name, script in (("bench_facets", NARROW), ("bench_fts", LABELLED)):
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone():
            continue
        t0 = time.perf_counter()
        conn.executescript(script)
        print(f"built {name} in {time.perf_counter() - t0:.0f} s", flush=True)


def median_ms(conn: sqlite3.Connection, sql: str, params: tuple[object, ...], n: int) -> float:
    conn.execute(sql, params).fetchall()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.execute(sql, params).fetchall()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def cache_resets(db: Path, visible: str, repeat: int) -> dict[str, float]:
    """The node's two statements for the mid-frequency query, alone and with a small commit
    on another connection before each run (as the audit of every search does), without and
    with memory-mapped reads."""
    name, q, _ = QUERIES[1]
    match = to_fts5(parse(q))
    node = (
        "FROM report_fts JOIN report_versions v ON v.seq = report_fts.rowid "
        "WHERE report_fts MATCH ? AND v.label_id IN (SELECT value FROM json_each(?))"
    )
    statements = [
        "SELECT v.type, v.originator, v.classification, v.language, count(*) "
        + node
        + " GROUP BY 1, 2, 3, 4",
        f"SELECT v.* {node} ORDER BY report_fts.rank LIMIT 21",
    ]
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("CREATE TABLE IF NOT EXISTS bench_writes (at REAL)")
    out = {}
    for mmap in (0, 16 * 2**30):
        reader = sqlite3.connect(db, isolation_level=None)
        reader.execute("PRAGMA cache_size=-65536")
        reader.execute(f"PRAGMA mmap_size={mmap}")
        for interleave in (False, True):
            times = []
            for i in range(repeat + 1):
                if interleave:
                    writer.execute("INSERT INTO bench_writes VALUES (?)", (time.time(),))
                t0 = time.perf_counter()
                reader.execute("BEGIN")
                for sql in statements:
                    reader.execute(sql, (match, visible)).fetchall()
                reader.execute("COMMIT")
                if i:
                    times.append((time.perf_counter() - t0) * 1000)
            key = f"mmap_size={mmap}, {'a write before each' if interleave else 'no writes'}"
            out[key] = statistics.median(times)
            print(f"{name} {q!r}, {key}: {out[key]:.1f} ms", flush=True)
        reader.close()
    writer.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    conn = sqlite3.connect(args.data / "bices.db", isolation_level=None)
    conn.execute("PRAGMA cache_size=-65536")
    reports = conn.execute("SELECT count(*) FROM reports").fetchone()[0]
    visible_ids = [
        row[0]
        for row in conn.execute("SELECT id, body FROM labels")
        if json.loads(row[1])["releasable_to"] == ["EST"]
    ]
    visible = json.dumps(sorted(visible_ids))
    label_match = "label : (" + " OR ".join(f"l{i}" for i in sorted(visible_ids)) + ")"
    build(conn)
    wait_for_quiet()

    node = (
        "FROM report_fts JOIN report_versions v ON v.seq = report_fts.rowid "
        "WHERE report_fts MATCH ? AND v.label_id IN (SELECT value FROM json_each(?))"
    )
    narrow = (
        "FROM report_fts JOIN bench_facets f ON f.seq = report_fts.rowid "
        "WHERE report_fts MATCH ? AND f.label_id IN (SELECT value FROM json_each(?))"
    )
    facets = "SELECT {a}.type, {a}.originator, {a}.classification, {a}.language, count(*) "
    rows = []
    for name, q, _ in QUERIES:
        match = to_fts5(parse(q))
        n = max(1, args.repeat // 2) if name == "frequent term" else args.repeat
        matches = conn.execute(
            "SELECT count(*) FROM report_fts WHERE report_fts MATCH ?", (match,)
        ).fetchone()[0]
        fts_count = median_ms(
            conn, "SELECT count(*) FROM report_fts WHERE report_fts MATCH ?", (match,), n
        )
        group = " GROUP BY 1, 2, 3, 4"
        node_f = median_ms(conn, facets.format(a="v") + node + group, (match, visible), n)
        node_p = median_ms(
            conn, f"SELECT v.* {node} ORDER BY report_fts.rank LIMIT 21", (match, visible), n
        )
        narrow_f = median_ms(conn, facets.format(a="f") + narrow + group, (match, visible), n)
        narrow_p = median_ms(
            conn, f"SELECT f.seq {narrow} ORDER BY report_fts.rank LIMIT 21", (match, visible), n
        )
        labelled = f"({match}) AND {label_match}"
        lab_f = median_ms(
            conn,
            facets.format(a="f") + "FROM bench_fts JOIN bench_facets f ON f.seq = bench_fts.rowid "
            "WHERE bench_fts MATCH ?" + group,
            (labelled,),
            n,
        )
        lab_p = median_ms(
            conn,
            "SELECT rowid FROM bench_fts WHERE bench_fts MATCH ? ORDER BY rank LIMIT 21",
            (labelled,),
            n,
        )
        row = (name, q, matches, fts_count, node_f, node_p, narrow_f, narrow_p, lab_f, lab_p)
        rows.append(row)
        print(
            f"{name:<18} matches {matches:>7,} | FTS count {fts_count:6.1f} | node facets "
            f"{node_f:7.1f} page {node_p:7.1f} | narrow facets {narrow_f:6.1f} page "
            f"{narrow_p:7.1f} | label tokens facets {lab_f:6.1f} page {lab_p:6.1f} (ms)",
            flush=True,
        )
    conn.close()
    resets = cache_resets(args.data / "bices.db", visible, args.repeat)
    if args.no_record:
        return
    lines = [
        f"SQL alone (no Python around it) on the {reports:,}-report folder of "
        "`bench/search.py --keep`, median of "
        f"{args.repeat} runs; ms. *node* = the two statements `SqliteReports.search` runs; "
        "*narrow* = filter/facet columns in a narrow table keyed by seq; *label tokens* = the "
        "label id also indexed in FTS5 (`label : (l1 OR l4 …)` ANDed to the query) plus the "
        "narrow table for facets.",
        "",
        "| query | matches (all labels) | FTS5 count alone | node: facets / page "
        "| narrow: facets / page | label tokens: facets / page |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, q, matches, fts_count, nf, np_, wf, wp, lf, lp in rows:
        lines.append(
            f"| {name} `{q}` | {matches:,} | {fts_count:.1f} | {nf:.1f} / {np_:.1f} | "
            f"{wf:.1f} / {wp:.1f} | {lf:.1f} / {lp:.1f} |"
        )
    lines += ["", "The node's two statements for the mid-frequency query, median ms:", ""]
    lines += [f"- {key}: {ms:.1f}" for key, ms in resets.items()]
    record("Search query plans (bench/search_plans.py)", "\n".join(lines))


if __name__ == "__main__":
    main()
