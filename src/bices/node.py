"""The node: settings, the chosen store and bus, and the services built on them."""

from __future__ import annotations

from dataclasses import dataclass

from bices.bus.base import Bus
from bices.bus.memory import MemoryBus
from bices.coalition import CoalitionService
from bices.federation.peering import Federation
from bices.pipeline.collect import Collector, Limits
from bices.pipeline.exploit import Exploitation, Exploiter
from bices.settings import Settings
from bices.share.entities import EntityReader
from bices.share.reading import Reader
from bices.share.requirements import RequirementService
from bices.share.rfis import RfiService
from bices.store.base import Store


def open_store(settings: Settings) -> Store:
    """The one place a storage backend is chosen."""
    if settings.database_url:
        from bices.store.pg import PostgresStore

        return PostgresStore(settings.database_url, settings.search_rank_limit, settings.migrate)
    from bices.store.sqlite import SqliteStore

    return SqliteStore(settings.data / "bices.db", settings.search_rank_limit)


def open_bus(settings: Settings) -> Bus:
    """The one place a bus backend is chosen."""
    if settings.bus_url:
        from bices.bus.nats import NatsBus, names

        stream, subjects = names(settings.bus_namespace)
        return NatsBus(settings.bus_url, stream, subjects)
    return MemoryBus()


@dataclass
class Node:
    settings: Settings
    store: Store
    bus: Bus
    coalition: CoalitionService
    collector: Collector
    reader: Reader
    entities: EntityReader
    requirements: RequirementService
    rfis: RfiService
    federation: Federation

    @classmethod
    def open(cls, settings: Settings) -> Node:
        store = open_store(settings)
        bus = open_bus(settings)
        reader = Reader(store)
        limits = Limits(settings.max_batch, settings.max_attachment_bytes, settings.batch_signing)
        collector = Collector(store, bus, limits)
        rfis = RfiService(store, collector)
        federation = Federation(store, collector, settings.node_name)
        rfis.remote = federation.rfi_actions  # what is done to a peer's RFI is done there
        federation.rfi_actions.service = rfis
        return cls(
            settings=settings,
            store=store,
            bus=bus,
            coalition=CoalitionService(store, settings.accession_quorum),
            collector=collector,
            reader=reader,
            entities=EntityReader(store, reader),
            requirements=RequirementService(store),
            rfis=rfis,
            federation=federation,
        )

    def exploitation(self, batch: int = 50) -> Exploitation:
        """How this node's workers exploit: through the bus's work queue when the bus is
        NATS (workers on many machines share it), else by following the outbox."""
        from bices.bus.nats import NatsBus

        if isinstance(self.bus, NatsBus):
            from bices.bus.work import WorkQueue
            from bices.pipeline.queued import QueuedExploiter

            queue = WorkQueue(self.bus, self.settings.work_ack_wait_s)
            return QueuedExploiter(self.store, queue, batch=batch)
        return Exploiter(self.store, batch=batch)

    def work_queue_depth(self) -> int | None:
        """Jobs on the bus's work queue (queued or in a worker's hands); None without one."""
        from bices.bus.nats import NatsBus

        if not isinstance(self.bus, NatsBus):
            return None
        from bices.bus.work import depth

        return depth(self.bus)

    def exploit_backlog(self) -> int:
        """Stored versions not exploited yet (queued or in hand, on the work queue)."""
        from bices.pipeline.exploit import CONSUMER

        queued = self.work_queue_depth()
        if queued is not None:
            from bices.pipeline.queued import DISPATCH

            return self.store.exploits.lag(DISPATCH) + queued
        return self.store.exploits.lag(CONSUMER)

    def close(self) -> None:
        self.bus.close()
        self.store.close()
