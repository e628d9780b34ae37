"""RFIs show each viewer exactly what `bices.policy.may_see` allows.

Each hypothesis example builds a node of its own, asks a few RFIs under random labels,
has an addressee answer them with reports under random labels, adds random viewers and
suspends random members; then every read (get, list, totals, filters, answers, history)
and every refusal (404 for hidden, 403 for a visible RFI not addressed to the viewer's
member) is compared with an oracle computed here from the labels alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bices.domain.errors import Forbidden, NotFound
from bices.domain.labels import Classification, Label
from bices.domain.members import MemberStatus
from bices.domain.reports import LabelDraft, ReportDraft
from bices.domain.rfis import Priority, RfiDraft, RfiFilter
from bices.domain.users import Viewer
from bices.node import Node
from bices.policy import may_see
from tests.conftest import MEMBERS, make_node, report_json

CAVEATS = ("ATOMAL", "CRYPTO")
CODES = (*MEMBERS, "NATO", "IP4")


@dataclass(frozen=True)
class LabelSpec:
    classification: Classification
    releasable_to: tuple[str, ...]
    caveats: tuple[str, ...]

    def draft(self, must_reach: tuple[str, ...]) -> LabelDraft:
        rel = sorted(set(self.releasable_to) | set(must_reach))
        return LabelDraft(classification=self.classification.marking, releasable_to=rel,
                          caveats=list(self.caveats))  # fmt: skip


labels = st.builds(
    LabelSpec,
    st.sampled_from(list(Classification)),
    st.lists(st.sampled_from(CODES), min_size=1, max_size=3, unique=True).map(tuple),
    st.lists(st.sampled_from(CAVEATS), max_size=2, unique=True).map(tuple),
)
viewers = st.tuples(
    st.sampled_from(MEMBERS),
    st.sampled_from(list(Classification)),
    st.lists(st.sampled_from(CAVEATS), max_size=2, unique=True).map(tuple),
)


@contextmanager
def fresh_node(backend: str) -> Iterator[Node]:
    with TemporaryDirectory() as folder:
        node = make_node(Path(folder) / "node", backend)
        try:
            yield node
        finally:
            node.close()


def chief(node: Node, member: str) -> Viewer:
    """A writer of the member who may see anything the member may."""
    name = f"{member.lower()}.chief"
    if node.store.coalition.get_user(name) is None:
        node.coalition.add_user(member, name, "COSMIC TOP SECRET", CAVEATS, ["analyst"])
    return node.coalition.viewer_of(name)


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    rfi_labels=st.lists(labels, min_size=1, max_size=4),
    answer_labels=st.lists(labels, max_size=3),
    people=st.lists(viewers, min_size=1, max_size=5),
    suspended=st.sets(st.sampled_from([m for m in MEMBERS if m != "USA"]), max_size=2),
    priorities=st.lists(st.sampled_from(list(Priority)), min_size=4, max_size=4),
)
def test_rfis_and_their_answers_obey_the_rule(
    rfi_labels: list[LabelSpec],
    answer_labels: list[LabelSpec],
    people: list[tuple[str, Classification, tuple[str, ...]]],
    suspended: set[str],
    priorities: list[Priority],
    backend: str,
) -> None:
    with fresh_node(backend) as node:
        asker = chief(node, "USA")
        directory = node.store.coalition.directory()
        asked: dict[str, Label] = {}
        addressed: dict[str, list[str]] = {}
        answers: dict[str, dict[str, Label]] = {}
        for index, spec in enumerate(rfi_labels):
            label = spec.draft(("USA",)).model_copy()
            bound = label.bind("USA")
            reach = directory.expand(bound.releasable_to) | {"USA"}
            to = sorted((reach & set(MEMBERS)) - {"USA"})[:3] or ["USA"]
            draft = RfiDraft(
                question=f"question {index}",
                priority=priorities[index],
                deadline=datetime.now(UTC) + timedelta(hours=1 + index),
                addressees=to,
                label=label,
            )
            rfi = node.rfis.create(asker, draft)
            asked[rfi.id] = rfi.label
            addressed[rfi.id] = to
            answers[rfi.id] = {}
            # The first addressee answers the first RFI with reports under random labels.
            if index == 0 and answer_labels:
                answerer = chief(node, to[0])
                node.rfis.accept(answerer, rfi.id)
                for spec_a in answer_labels:
                    body = report_json(type="RFI-RESPONSE",
                                       label=spec_a.draft((to[0], "USA")).model_dump())  # fmt: skip
                    done = node.rfis.answer(
                        answerer, rfi.id, draft=ReportDraft.model_validate(body)
                    )
                    newest = max(done.answers, key=lambda a: a.revision)
                    assert newest.report is not None
                    answers[rfi.id][newest.report_id] = newest.report.label

        for n, (member, clearance, caveats) in enumerate(people):
            node.coalition.add_user(member, f"viewer{n}", clearance.marking, caveats, ["analyst"])
        for member in suspended:
            node.coalition.set_status(member, MemberStatus.SUSPENDED)
        directory = node.store.coalition.directory()

        for n, (member, _, _) in enumerate(people):
            viewer = node.coalition.viewer_of(f"viewer{n}")
            visible = {i for i, label in asked.items() if may_see(viewer, label, directory)}

            page = node.rfis.page(viewer, RfiFilter(), None, 200)
            assert page.total == len(visible)
            assert {r.id for r in page.items} == visible
            mine = node.rfis.page(viewer, RfiFilter(addressed_to_me=True), None, 200)
            assert {r.id for r in mine.items} == {i for i in visible if member in addressed[i]}
            assert mine.total == len(mine.items)

            for rfi_id in asked:
                if rfi_id not in visible:
                    with pytest.raises(NotFound):
                        node.rfis.get(viewer, rfi_id)
                    with pytest.raises(NotFound):
                        node.rfis.accept(viewer, rfi_id)
                    with pytest.raises(NotFound):
                        node.rfis.close(viewer, rfi_id)
                    continue
                seen = node.rfis.get(viewer, rfi_id)
                expected = {
                    r for r, lab in answers[rfi_id].items() if may_see(viewer, lab, directory)
                }
                assert {a.report_id for a in seen.answers} == expected
                named = {c.detail.get("report_id") for c in seen.history} - {None}
                assert named == expected
                if member not in addressed[rfi_id]:
                    with pytest.raises(Forbidden):
                        node.rfis.accept(viewer, rfi_id)
            if member in suspended:
                assert page.total == 0
