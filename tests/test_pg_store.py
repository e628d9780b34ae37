"""What only the PostgreSQL store has to prove: several processes (each with its own pool
of connections) write one node at once, and still the audit chain never forks, the outbox
is read in seq order without a gap, and each process sees the others' changes; and tokens
are kept only as hashes (the shared suite checks that in SQLite's files)."""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bices.domain.audit import AuditDraft, verify_chain
from bices.domain.labels import Classification, Label
from bices.domain.members import Member, MemberKind, MemberStatus
from bices.domain.requirements import RequirementDraft
from bices.domain.users import Role
from bices.store.pg import PostgresStore
from bices.store.pg_outbox import append_event
from tests.conftest import make_node, new_pg_url

WRITERS = 4
ROUNDS = 15


@pytest.fixture
def pg_url() -> str:
    """A new, empty schema of the test database (dropped at the end of the session)."""
    return new_pg_url()


@pytest.fixture
def store(pg_url: str) -> Iterator[PostgresStore]:
    store = PostgresStore(pg_url)
    operator = AuditDraft("operator", None, "member.add")
    for code in ("USA", "KOR"):
        community = "NATO" if code == "USA" else "IP4"
        member = Member(code, f"Member {code}", MemberKind.NATION, MemberStatus.ACTIVE, "key")
        store.coalition.add_member(member, [community], operator)
    store.coalition.add_user(
        "USA", "usa.writer", Classification.NATO_SECRET, frozenset(), frozenset({Role.ANALYST}),
        AuditDraft("operator", None, "user.add"), "first-token",
    )  # fmt: skip
    yield store
    store.close()


def _write_round(store: PostgresStore, who: str, i: int) -> int:
    """One round of what a busy node does: writes with their audit events, and audited
    reads (which append through the chain's lock alone); the events it appended."""
    user = store.coalition.get_user("usa.writer")
    assert user is not None
    draft = AuditDraft("usa.writer", "USA", "token.add", f"{who}-{i}")
    store.coalition.add_token(user.id, f"{who}-{i}", None, draft)
    requirement = RequirementDraft(name=f"{who} {i}", keywords=[f"w{i}"])
    store.requirements.add(user.id, requirement, AuditDraft("usa.writer", "USA", "req.add"))
    # A label never stored before (created under the writer lock), then a known one.
    fresh = Label.build("NATO SECRET", ["NATO"], "USA", [f"C{who}{i}".upper()[:12]])
    known = Label.build("NATO SECRET", ["NATO"], "USA")
    store.audit.append([AuditDraft("usa.writer", "USA", "report.read", "r", label=fresh)])
    store.audit.append([AuditDraft("usa.writer", "USA", "report.read", "r", label=known)] * 2)
    return 5


def _count(store: PostgresStore) -> int:
    with store.db.read() as conn:
        row = conn.execute("SELECT count(*) FROM audit").fetchone()
    assert row is not None
    return int(row[0])


def _assert_chain(store: PostgresStore, expected: int) -> None:
    count, broken = verify_chain(store.audit.all_events())
    assert broken is None, broken
    assert count == expected


def test_audit_chain_does_not_fork_under_threads(store: PostgresStore) -> None:
    before = _count(store)
    with ThreadPoolExecutor(WRITERS) as pool:
        rounds = [pool.submit(_write_round, store, f"t{w}", i)
                  for w in range(WRITERS) for i in range(ROUNDS)]  # fmt: skip
        appended = sum(future.result() for future in rounds)
    _assert_chain(store, before + appended)


def _process_writer(url: str, who: str, start: threading.Barrier) -> None:
    """A second server process: its own store (own pool) on the same schema."""
    store = PostgresStore(url)
    try:
        start.wait(30)
        for i in range(ROUNDS):
            _write_round(store, who, i)
    finally:
        store.close()


def test_audit_chain_does_not_fork_across_processes(store: PostgresStore, pg_url: str) -> None:
    before = _count(store)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(3)
    processes = [
        context.Process(target=_process_writer, args=(pg_url, f"p{n}", start)) for n in range(2)
    ]
    for process in processes:
        process.start()
    start.wait(60)
    appended = sum(_write_round(store, "main", i) for i in range(ROUNDS))  # and this one
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    _assert_chain(store, before + appended * 3)


def _append_events(url: str, who: str, count: int, start: threading.Barrier) -> None:
    """Outbox events, each in a write transaction that lingers a little after taking its
    seq (so that a later seq would commit first if seqs were not handed out in order)."""
    store = PostgresStore(url, migrate=False)
    rng = random.Random(who)
    try:
        start.wait(30)
        for i in range(count):
            with store.db.write() as conn:
                append_event(conn, "rfi", f"{who}-{i}", 1, 1)
                time.sleep(rng.random() * 0.003)
    finally:
        store.close()


def test_outbox_reader_never_skips_a_row_under_concurrent_writers(
    store: PostgresStore, pg_url: str
) -> None:
    per_writer = 40
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2 + WRITERS)
    other = context.Process(target=_append_events, args=(pg_url, "proc", per_writer, start))
    other.start()
    threads = [
        threading.Thread(target=_append_events, args=(pg_url, f"t{n}", per_writer, start))
        for n in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    start.wait(60)
    seen: list[int] = []
    cursor = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        writing = other.is_alive() or any(thread.is_alive() for thread in threads)
        events = store.outbox.after(cursor, 7)
        seen.extend(event.seq for event in events)
        if events:
            cursor = events[-1].seq
        elif not writing:
            break
    other.join(30)
    assert other.exitcode == 0
    with store.db.read() as conn:
        stored = [int(row[0]) for row in conn.execute("SELECT seq FROM events ORDER BY seq")]
    assert len(stored) == per_writer * (WRITERS + 1)
    assert seen == stored  # every row, once, in order: none committed behind the cursor
    assert store.outbox.head() == stored[-1]


def test_changes_of_one_process_are_seen_by_another(store: PostgresStore, pg_url: str) -> None:
    other = PostgresStore(pg_url, migrate=False)
    try:
        directory, version = other.coalition.directory_state()  # cached from now on
        assert directory.statuses["KOR"] is MemberStatus.ACTIVE
        store.coalition.set_member_status(
            "KOR", MemberStatus.SUSPENDED, AuditDraft("operator", None, "member.suspend")
        )
        directory, newer = other.coalition.directory_state()
        assert newer > version and directory.statuses["KOR"] is MemberStatus.SUSPENDED
        user = store.coalition.get_user("usa.writer")
        assert user is not None
        before = other.requirements.version()
        draft = RequirementDraft(name="missiles", keywords=["missile"])
        store.requirements.add(user.id, draft, AuditDraft("usa.writer", "USA", "req.add"))
        assert other.requirements.version() > before
        assert [r.name for r in other.requirements.of_user(user.id)] == ["missiles"]
    finally:
        other.close()


def test_stream_presence_is_summed_over_the_node_s_processes(
    store: PostgresStore, pg_url: str
) -> None:
    other = PostgresStore(pg_url, migrate=False)
    try:
        store.operations.report_presence("host-a:1", 3)
        other.operations.report_presence("host-b:2", 2)
        store.operations.report_presence("host-a:1", 4)  # a process's latest word counts
        assert other.operations.subscribers() == (6, 2)
        with store.db.read() as conn:  # host-b falls silent
            conn.execute(
                "UPDATE stream_presence SET reported_at = now() - interval '1 minute' "
                "WHERE process = 'host-b:2'"
            )
        assert store.operations.subscribers(max_age_s=15) == (4, 1)
        store.operations.report_presence("host-a:1", 0)  # a process that stops says so
        assert store.operations.subscribers() == (0, 1)
    finally:
        other.close()


def test_figures_count_the_node_and_its_size(store: PostgresStore) -> None:
    figures = store.operations.figures()
    assert figures["members"] == 2 and figures["active_members"] == 2
    assert figures["users"] == 1 and figures["reports"] == 0 and figures["outbox_head"] == 0
    assert figures["database_bytes"] > 0


def test_tokens_are_stored_hashed(tmp_path: Path) -> None:
    """No table of the node's schema holds a token or a part of one, only its hash."""
    node = make_node(tmp_path / "node", "postgres")
    try:
        user, first = node.coalition.add_user("KOR", "kor.hashed", "NATO SECRET")
        tokens = [first, node.coalition.issue_token(user)]
        store = node.store
        assert isinstance(store, PostgresStore)
        with store.db.read() as conn:
            tables = [row[0] for row in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")]  # fmt: skip
            stored = "\n".join(
                str(row[0]) for table in tables
                for row in conn.execute(f'SELECT t::text FROM "{table}" t')
            )  # fmt: skip
    finally:
        node.close()
    assert "kor.hashed" in stored  # what was read is the node's own
    for token in tokens:
        secret = token.removeprefix("bices_")
        assert token not in stored and secret not in stored and secret[:16] not in stored
