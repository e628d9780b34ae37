"""The node: settings, the chosen store and bus, and the services built on them."""

from __future__ import annotations

from dataclasses import dataclass

from bices.bus.base import Bus
from bices.bus.memory import MemoryBus
from bices.coalition import CoalitionService
from bices.pipeline.collect import Collector, Limits
from bices.settings import Settings
from bices.share.entities import EntityReader
from bices.share.reading import Reader
from bices.share.requirements import RequirementService
from bices.share.rfis import RfiService
from bices.store.base import Store


def open_store(settings: Settings) -> Store:
    """The one place a storage backend is chosen."""
    if settings.database_url:
        raise SystemExit(
            "BICES_DATABASE_URL is set, but the PostgreSQL backend is not part of this release yet"
        )
    from bices.store.sqlite import SqliteStore

    return SqliteStore(settings.data / "bices.db", settings.search_rank_limit)


def open_bus(settings: Settings) -> Bus:
    """The one place a bus backend is chosen."""
    if settings.bus_url:
        from bices.bus.nats import NatsBus

        return NatsBus(settings.bus_url)
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

    @classmethod
    def open(cls, settings: Settings) -> Node:
        store = open_store(settings)
        bus = open_bus(settings)
        reader = Reader(store)
        collector = Collector(store, bus, Limits(settings.max_batch, settings.max_attachment_bytes))
        return cls(
            settings=settings,
            store=store,
            bus=bus,
            coalition=CoalitionService(store, settings.accession_quorum),
            collector=collector,
            reader=reader,
            entities=EntityReader(store, reader),
            requirements=RequirementService(store),
            rfis=RfiService(store, collector),
        )

    def close(self) -> None:
        self.bus.close()
        self.store.close()
