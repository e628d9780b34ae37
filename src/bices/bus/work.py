"""Exploitation work shared by worker processes through a JetStream work queue.

The stream `BICES_EVENTS_WORK` (retention: work queue, subject `bices.work.exploit`,
beside the event stream of the same bus and namespaced with it) holds one message per
stored report version: its seq, published with the message id `exploit-<seq>`, so
JetStream drops a second publish of the same seq within its duplicate window. Every
worker pulls from one durable consumer with explicit acknowledgement: a message is with
one worker at a time, is acknowledged once its result is stored, and — if that worker
dies first — is delivered again, to whichever worker asks next, after `ack_wait`.
Results are stored idempotently (a version already exploited is skipped), so a
redelivery after a crash between storing and acknowledging exploits nothing twice.

What feeds the queue is the store's outbox (`bices.pipeline.queued`): seqs are published
first and the dispatch cursor moved after, so a publish lost to a crash is made again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from bices.bus.nats import NatsBus

DURABLE = "exploit"
PUBLISH_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Job:
    """One version to exploit; `delivery` counts how often it was handed out."""

    seq: int
    delivery: int
    message: Any


class WorkQueue:
    """The exploitation queue on a NATS bus's connection (any thread may call it)."""

    def __init__(self, bus: NatsBus, ack_wait_s: float = 30.0) -> None:
        self._bus = bus
        self.stream = f"{bus.stream}_WORK"  # as `depth` reads it
        # beside the events' subjects, not under them: two streams may not share subjects
        self.subject = f"{bus.subjects.removesuffix('.events')}.work.exploit"
        self._ack_wait_s = ack_wait_s
        self._pull: Any = None
        bus.call(self._setup(), timeout=10)

    async def _setup(self) -> None:
        js = self._bus.jetstream
        try:
            await js.stream_info(self.stream)
        except NotFoundError:
            await js.add_stream(
                StreamConfig(
                    name=self.stream,
                    subjects=[self.subject],
                    retention=RetentionPolicy.WORK_QUEUE,
                    storage=StorageType.FILE,
                    duplicate_window=600.0,
                )
            )
        config = ConsumerConfig(
            durable_name=DURABLE,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self._ack_wait_s,
            max_ack_pending=10_000,
        )
        self._pull = await js.pull_subscribe(
            self.subject, durable=DURABLE, stream=self.stream, config=config
        )

    def publish(self, seqs: list[int]) -> None:
        """Queue versions by seq and wait until JetStream has stored them all (raises if
        it has not: the caller keeps its cursor and publishes them again)."""
        if seqs:
            self._bus.call(self._publish(seqs), timeout=PUBLISH_TIMEOUT_S * 2)

    async def _publish(self, seqs: list[int]) -> None:
        js = self._bus.jetstream
        await asyncio.gather(
            *(
                js.publish(
                    self.subject,
                    json.dumps({"seq": seq}).encode(),
                    timeout=PUBLISH_TIMEOUT_S,
                    headers={"Nats-Msg-Id": f"exploit-{seq}"},
                )
                for seq in seqs
            )
        )

    def fetch(self, batch: int, timeout_s: float) -> list[Job]:
        """Up to `batch` jobs, waiting at most `timeout_s` for the first."""
        return list(self._bus.call(self._fetch(batch, timeout_s), timeout=timeout_s + 5))

    async def _fetch(self, batch: int, timeout_s: float) -> list[Job]:
        try:
            messages = await self._pull.fetch(batch, timeout=timeout_s)
        except (NatsTimeout, TimeoutError):  # nats-py raises either when none came in time
            return []
        jobs = []
        for message in messages:
            try:
                seq = int(json.loads(message.data)["seq"])
            except (ValueError, KeyError, TypeError):
                await message.term()  # not ours to read: never deliver it again
                continue
            jobs.append(Job(seq, int(message.metadata.num_delivered), message))
        return jobs

    def ack(self, jobs: list[Job]) -> None:
        """Done: the results are stored."""
        if jobs:
            self._bus.call(_each(jobs, "ack_sync"), timeout=PUBLISH_TIMEOUT_S * 2)

    def release(self, jobs: list[Job]) -> None:
        """Not done (e.g. the store refused the write): deliver again, to anyone."""
        if jobs:
            with contextlib.suppress(Exception):
                self._bus.call(_each(jobs, "nak"), timeout=PUBLISH_TIMEOUT_S)

    def touch(self, jobs: list[Job]) -> None:
        """Still working on these: restart their `ack_wait`."""
        if jobs:
            self._bus.call(_each(jobs, "in_progress"), timeout=PUBLISH_TIMEOUT_S)

    def depth(self) -> int:
        """Jobs queued or being worked on."""
        return depth(self._bus)

    def delete(self) -> None:
        """Remove the queue's stream (tests and namespaces being torn down)."""
        self._bus.call(self._bus.jetstream.delete_stream(self.stream), timeout=5)


def depth(bus: NatsBus) -> int:
    """Jobs queued or being worked on in the bus's work queue (0 before it exists)."""

    async def count() -> int:
        try:
            info = await bus.jetstream.stream_info(f"{bus.stream}_WORK")
        except NotFoundError:
            return 0
        return int(info.state.messages)

    return int(bus.call(count(), timeout=5))


async def _each(jobs: list[Job], method: str) -> None:
    await asyncio.gather(*(getattr(job.message, method)() for job in jobs))
