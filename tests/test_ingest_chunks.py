"""The ingest service: chunks of at most the batch limit and the byte budget, each all or
nothing, a file's articles kept together, a failed chunk reported file by file."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from bices.domain.errors import Conflict, Forbidden, InvalidInput
from bices.domain.reports import LabelDraft, ReportDraft, ReportVersion
from bices.domain.users import Viewer
from bices.node import Node
from bices.pipeline import ingest as ingest_module
from bices.pipeline.formats import Document
from bices.pipeline.ingest import Ingester, IngestTerms
from bices.pipeline.sources import Original, Refusal
from tests import ingest_samples as samples
from tests.conftest import Coalition, make_node

TERMS = IngestTerms(LabelDraft(classification="PUBLIC", releasable_to=["NATO"]))


@pytest.fixture
def small(tmp_path: Path, backend: str) -> Iterator[tuple[Node, Viewer]]:
    node = make_node(tmp_path / "node", backend, max_batch=2)
    Coalition(node).user("USA", roles=("collector",), name="usa.collector")
    yield node, node.coalition.viewer_of("usa.collector")
    node.close()


def text(name: str, number: int) -> Original:
    body = f"Laporan {number}\n\nKapal ke-{number} tiba di Busan pada hari Senin, kata pejabat."
    return Original(name, name, body.encode())


class CountingCollector:
    """Records each batch handed to the real collector; can fail the n-th one."""

    def __init__(self, node: Node, fail_on: int | None = None) -> None:
        self.real = node.collector
        self.limits = node.collector.limits
        self.batches: list[int] = []
        self.fail_on = fail_on

    def check_label(self, viewer: Viewer, draft: LabelDraft) -> object:
        return self.real.check_label(viewer, draft)

    def submit(
        self, viewer: Viewer, drafts: Sequence[ReportDraft], acting: str | None = None
    ) -> list[ReportVersion]:
        self.batches.append(len(drafts))
        if self.fail_on == len(self.batches):
            raise Conflict("the store refused this batch")
        return self.real.submit(viewer, drafts, acting)


def ingester(collector: CountingCollector, chunk_bytes: int = 1 << 20) -> Ingester:
    return Ingester(collector, chunk_bytes)  # type: ignore[arg-type]


def versions(node: Node) -> int:
    return sum(1 for _ in node.store.reports.all_versions())


def test_chunks_hold_at_most_the_batch_limit(small: tuple[Node, Viewer]) -> None:
    node, viewer = small
    collector = CountingCollector(node)
    inputs = [text(f"{n}.txt", n) for n in range(5)]
    result = ingester(collector).ingest(viewer, inputs, TERMS)
    assert collector.batches == [2, 2, 1]
    assert len(result.stored) == 5 and result.refused == []
    assert versions(node) == 5


def test_a_feed_that_fits_a_chunk_is_not_split(small: tuple[Node, Viewer]) -> None:
    node, viewer = small
    collector = CountingCollector(node)
    atom = Original("news.atom", "news.atom", samples.ATOM.encode())  # two entries
    ingester(collector).ingest(viewer, [text("a.txt", 1), atom, text("b.txt", 2)], TERMS)
    assert collector.batches == [1, 2, 1]  # the feed's entries went together


def test_chunks_respect_the_byte_budget(small: tuple[Node, Viewer]) -> None:
    node, viewer = small
    collector = CountingCollector(node)
    inputs = [text(f"{n}.txt", n) for n in range(4)]
    budget = len(inputs[0].data) + 10  # room for one original per chunk
    ingester(collector, chunk_bytes=budget).ingest(viewer, inputs, TERMS)
    assert collector.batches == [1, 1, 1, 1]


def test_a_failed_chunk_is_reported_per_file_and_the_others_stored(
    small: tuple[Node, Viewer],
) -> None:
    node, viewer = small
    collector = CountingCollector(node, fail_on=2)
    inputs = [text(f"{n}.txt", n) for n in range(5)]
    seen: list[str] = []
    result = ingester(collector).ingest(viewer, inputs, TERMS, progress=seen.append)
    assert [r.location for r in result.refused] == ["2.txt", "3.txt"]
    assert all("the store refused this batch" in r.reason for r in result.refused)
    assert sorted(s.original for s in result.stored) == ["0.txt", "1.txt", "4.txt"]
    assert versions(node) == 3
    assert seen == [f"{n}.txt" for n in range(5)]


def test_unreadable_inputs_are_refused_and_the_rest_stored(small: tuple[Node, Viewer]) -> None:
    node, viewer = small
    inputs: list[Original | Refusal] = [
        Refusal("gone.txt", "gone.txt: cannot be read (Permission denied)"),
        Original("bad.png", "bad.png", b"\x89PNG\r\n\x1a\n\x00\x00"),
        text("good.txt", 1),
    ]
    result = ingester(CountingCollector(node)).ingest(viewer, inputs, TERMS)
    assert [(r.location, r.reason) for r in result.refused] == [
        ("gone.txt", "cannot be read (Permission denied)"),
        ("bad.png", "a PNG image, not text"),
    ]
    assert [s.original for s in result.stored] == ["good.txt"]


def test_a_bad_label_stops_before_any_input_is_read(small: tuple[Node, Viewer]) -> None:
    node, viewer = small
    read: list[str] = []

    def inputs() -> Iterator[Original]:
        read.append("read")
        yield text("a.txt", 1)

    bad = IngestTerms(LabelDraft(classification="SECRETISH", releasable_to=["NATO"]))
    with pytest.raises(InvalidInput, match="unknown classification 'SECRETISH'"):
        ingester(CountingCollector(node)).ingest(viewer, inputs(), bad)
    assert read == []


def test_a_reader_without_a_writing_role_is_refused(tmp_path: Path, backend: str) -> None:
    node = make_node(tmp_path / "n", backend)
    try:
        Coalition(node).user("USA", roles=("member-admin",), name="usa.admin")
        viewer = node.coalition.viewer_of("usa.admin")
        with pytest.raises(Forbidden, match="role"):
            ingester(CountingCollector(node)).ingest(viewer, [text("a.txt", 1)], TERMS)
        assert versions(node) == 0
    finally:
        node.close()


def test_a_feed_over_the_batch_limit_is_refused_whole(small: tuple[Node, Viewer]) -> None:
    """Split across chunks, a feed could be stored in part when a later chunk failed."""
    node, viewer = small
    collector = CountingCollector(node, fail_on=2)
    rss = Original("berita.rss", "berita.rss", samples.RSS.encode())  # three entries
    result = ingester(collector).ingest(viewer, [text("a.txt", 1), rss, text("b.txt", 2)], TERMS)
    assert [r.location for r in result.refused] == ["berita.rss"]
    assert "over the batch limit of 2 reports" in result.refused[0].reason
    assert collector.batches == [2]  # a.txt and b.txt; nothing of the feed was submitted
    assert versions(node) == 2


def test_a_feed_whose_copies_exceed_the_byte_budget_is_refused_whole(
    small: tuple[Node, Viewer],
) -> None:
    node, viewer = small
    collector = CountingCollector(node)
    atom = Original("news.atom", "news.atom", samples.ATOM.encode())  # two entries
    result = ingester(collector, chunk_bytes=len(atom.data) + 10).ingest(viewer, [atom], TERMS)
    assert [r.location for r in result.refused] == ["news.atom"]
    assert "split the feed" in result.refused[0].reason
    assert collector.batches == [] and versions(node) == 0


def test_an_unexpected_error_on_one_input_refuses_it_and_the_others_are_stored(
    small: tuple[Node, Viewer], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    node, viewer = small
    real = ingest_module.documents

    def failing(original: Original, max_documents: int | None = None) -> list[Document]:
        if original.name == "bad.txt":
            raise UnicodeError("label empty or too long")
        return real(original, max_documents)

    monkeypatch.setattr(ingest_module, "documents", failing)
    collector = CountingCollector(node)
    inputs = [text("a.txt", 1), text("bad.txt", 2), text("c.txt", 3)]
    with caplog.at_level(logging.ERROR, logger="bices.pipeline.ingest"):
        result = ingester(collector).ingest(viewer, inputs, TERMS)
    assert [(r.location, r.reason) for r in result.refused] == [
        ("bad.txt", "not read: unexpected UnicodeError: label empty or too long")
    ]
    assert sorted(s.original for s in result.stored) == ["a.txt", "c.txt"]
    assert versions(node) == 2
    [record] = [r for r in caplog.records if "bad.txt" in r.getMessage()]
    assert record.exc_info is not None  # logged with its traceback
