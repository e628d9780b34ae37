"""Exploitation through the NATS work queue: workers in several processes (here, nodes
with buses of their own on one store) share the work, each version is exploited once, and
what a worker took but never acknowledged goes to another after `ack_wait`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bices.bus.nats import NatsBus
from bices.bus.work import WorkQueue
from bices.domain.reports import ReportDraft
from bices.node import Node
from bices.pipeline.queued import QueuedExploiter
from tests.conftest import Coalition, make_node, report_json
from tests.test_bus_nats import buses  # noqa: F401  (the fixture)

ACK_WAIT_S = 1.0


@pytest.fixture
def nodes(
    tmp_path: Path,
    backend: str,
    buses: Callable[[], NatsBus],  # noqa: F811
) -> Iterator[Callable[[], Node]]:
    """Nodes on one store, each with a bus of its own on this test's stream: as the
    processes of one scale-out node would be."""
    made: list[Node] = []

    def node() -> Node:
        if not made:
            made.append(make_node(tmp_path / "node", backend, exploit=False))
        else:
            made.append(Node.open(made[0].settings))
        made[-1].bus.close()
        made[-1].bus = made[-1].collector.bus = buses()
        return made[-1]

    yield node
    for each in reversed(made):
        each.store.close()


def worker(node: Node, batch: int = 5) -> QueuedExploiter:
    assert isinstance(node.bus, NatsBus)
    return QueuedExploiter(node.store, WorkQueue(node.bus, ACK_WAIT_S), batch=batch, wait_s=0.2)


def post(node: Node, count: int, title: str = "Launch report {i} from Sinpo") -> list[int]:
    coalition = Coalition(node)
    writer = node.coalition.authenticate(coalition.user("USA"))
    body = "Another solid-fuel missile was launched from Sinpo towards the East Sea."
    drafts = [ReportDraft.model_validate(report_json(title=title.format(i=i), body=body))
              for i in range(count)]  # fmt: skip
    return [version.seq for version in node.collector.submit(writer, drafts)]


def test_two_workers_share_the_queue_and_exploit_each_version_once(
    nodes: Callable[[], Node],
) -> None:
    first, second = nodes(), nodes()
    seqs = post(first, 30)
    workers = [worker(first), worker(second)]
    stored = [0, 0]

    def run(i: int) -> None:
        stored[i] = workers[i].drain(max_batches=200)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sum(stored) == len(seqs)  # every version stored once, by one worker or the other
    assert all(first.store.exploits.result(seq) is not None for seq in seqs)
    assert workers[0].pending() == 0


def test_jobs_a_worker_took_and_never_acknowledged_go_to_another(
    nodes: Callable[[], Node],
) -> None:
    dying, other = nodes(), nodes()
    seqs = post(dying, 4)
    taken = worker(dying)
    assert taken.dispatch() == 4
    held = taken.queue.fetch(10, 2.0)
    assert sorted(job.seq for job in held) == seqs  # and then it dies, acknowledging nothing
    rescuer = worker(other)
    assert rescuer.run_once() == 0  # in another's hands: nothing to take yet
    assert rescuer.drain(max_batches=50) == 4  # after ack_wait, delivered again
    assert all(other.store.exploits.result(seq) is not None for seq in seqs)


def test_a_job_delivered_again_after_its_result_was_stored_is_not_exploited_twice(
    nodes: Callable[[], Node],
) -> None:
    crashed, other = nodes(), nodes()
    coalition = Coalition(crashed)
    watcher = crashed.coalition.authenticate(coalition.user("USA", name="watcher"))
    crashed.entities.watch(watcher, "Sinpo")
    seqs = post(crashed, 2)
    first = worker(crashed)
    first.dispatch()
    jobs = first.queue.fetch(10, 2.0)
    results = [first._exploiter.exploit(v) for v in crashed.store.reports.by_seq(seqs)]
    assert crashed.store.exploits.record(results) == 2  # stored; the worker dies before acking
    assert len(jobs) == 2
    second = worker(other)
    assert second.drain(max_batches=50) == 0  # delivered again, but already exploited
    assert second.pending() == 0
    alerts = other.store.exploits.alerts(watcher, 0, 100)
    assert sorted(alert.report.seq for alert in alerts) == seqs  # one alert per version
