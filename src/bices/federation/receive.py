"""What a node does with a peer's items: check each one again and store what passes.

A peer is trusted for nothing: every item must carry its originator's valid signature over
exactly what will be stored, come from a peer that serves that originator (never a member
this node serves itself), and be releasable to a member this node serves. What fails is
refused with its reason, logged and audited; what passes is stored with its audit in one
transaction and announced to this node's streams. The same id and version twice is one
item.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from bices.bus.base import RfiChanged
from bices.domain.audit import AuditDraft
from bices.domain.errors import BicesError, Conflict
from bices.domain.labels import Label
from bices.domain.members import MemberStatus
from bices.domain.peers import Peer
from bices.domain.reports import ReportVersion
from bices.domain.rfis import Rfi
from bices.domain.signing import load_public, verifies
from bices.federation.rfis import RfiWire, is_rfi_item, rfi_of
from bices.federation.wire import ItemWire, same_content, signed_part, version_of
from bices.pipeline.collect import Collector
from bices.policy import Directory, may_receive
from bices.store.base import ReportWrite, Store

log = logging.getLogger("bices.federation")


@dataclass(slots=True)
class Outcome:
    """Per item: stored, already held (a duplicate), or refused with the reason."""

    accepted: list[tuple[str, int]] = field(default_factory=list)
    duplicates: list[tuple[str, int]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": [{"id": i, "version": v} for i, v in self.accepted],
            "duplicates": [{"id": i, "version": v} for i, v in self.duplicates],
            "rejected": self.rejected,
        }


def _named(raw: object) -> tuple[str, int]:
    """An item's id and version as far as they can be read, for the refusal."""
    if isinstance(raw, Mapping):
        item_id, version = raw.get("id"), raw.get("version")
        return (
            str(item_id)[:64] if item_id is not None else "?",
            version if isinstance(version, int) else 0,
        )
    return "?", 0


class Receiver:
    def __init__(self, store: Store, collector: Collector) -> None:
        self.store = store
        self.collector = collector

    def receive(self, peer: Peer, items: Sequence[object]) -> Outcome:
        outcome = Outcome()
        directory = self.store.coalition.directory()
        served = set(self.store.peers.served())
        writes: list[ReportWrite] = []
        batch: dict[str, str] = {}  # report id -> originator, of this batch's writes so far
        rfis: list[object] = []
        for raw in items:
            if is_rfi_item(raw):
                rfis.append(raw)  # after the reports: an answer comes before its link
                continue
            name = _named(raw)
            try:
                write = self._check(peer, raw, directory, served, batch)
            except _Refused as refusal:
                outcome.rejected.append(
                    {"id": name[0], "version": name[1], "reason": refusal.reason}
                )
                continue
            if write is None:
                outcome.duplicates.append(name)
            else:
                writes.append(write)
                batch[write.version.id] = write.version.label.originator
        for run in _runs(writes):
            stored = self._store(run, outcome)
            outcome.accepted.extend((v.id, v.version) for v in stored)
        for raw in rfis:
            self._receive_rfi(peer, raw, directory, served, outcome)
        if outcome.rejected:
            self._refused(peer, outcome.rejected)
        return outcome

    def _check(
        self,
        peer: Peer,
        raw: object,
        directory: Directory,
        served: set[str],
        batch: Mapping[str, str],
    ) -> ReportWrite | None:
        try:
            wire = ItemWire.model_validate(raw)
            version, blobs = version_of(wire)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(map(str, first["loc"]))
            raise _Refused(f"malformed item: {where}: {first['msg']}") from None
        except (ValueError, BicesError) as error:
            raise _Refused(f"malformed item: {error}") from None
        assert isinstance(raw, Mapping)
        originator = version.label.originator
        _from_peer(peer, originator, "originator", served)
        member = self.store.coalition.get_member(originator)
        if member is None or member.public_key is None:
            raise _Refused(f"originator {originator} has no registered public key here")
        if not same_content(version, raw) or not verifies(
            load_public(member.public_key), signed_part(raw), version.signature
        ):
            raise _Refused(f"the signature of originator {originator} does not verify")
        _releasable_here(version.label, directory, served)
        stored = self.store.reports.signatures(version.id)
        if stored:
            held = self.store.reports.current_unfiltered(version.id)
            if held is not None and held.label.originator != originator:
                raise _Refused(
                    f"report {version.id} is held here as {held.label.originator}'s; "
                    f"{originator} cannot issue versions of it"
                )
        if version.version in stored:
            if stored[version.version] != version.signature:
                raise _Refused(
                    f"report {version.id} version {version.version} is already held with "
                    "another signature"
                )
            return None
        if stored and version.version < max(stored):
            raise _Refused(
                f"report {version.id} version {version.version} is older than the "
                f"version {max(stored)} held here"
            )
        audit = AuditDraft(
            actor=f"peer:{peer.name}",
            member=originator,
            action="report.receive",
            target=version.id,
            detail={"version": version.version, "peer": peer.name},
        )
        tearline_of = None
        if wire.tearline_of is not None and version.version == 1:
            source = self.store.reports.current_unfiltered(wire.tearline_of.id)
            by = source.label.originator if source is not None else batch.get(wire.tearline_of.id)
            if by == originator:
                tearline_of = (wire.tearline_of.id, wire.tearline_of.version)
            # else the link is not kept: only the original's originator makes its tearlines
        return ReportWrite(version, blobs, audit, received=True, tearline_of=tearline_of)

    def _receive_rfi(
        self, peer: Peer, raw: object, directory: Directory, served: set[str], outcome: Outcome
    ) -> None:
        """Mirror an RFI asked on the peer, if this node may hold it."""
        item_id, revision = _named(raw)
        if isinstance(raw, Mapping) and isinstance(raw.get("revision"), int):
            revision = int(raw["revision"])
        try:
            rfi = rfi_of(RfiWire.model_validate(raw))
            _from_peer(peer, rfi.asker_member, "asker", served)
            _releasable_here(rfi.label, directory, served)
            mirrored = self.mirror_rfi(peer, rfi)
        except ValidationError as error:
            first = error.errors()[0]
            reason = f"malformed RFI: {'.'.join(map(str, first['loc']))}: {first['msg']}"
            outcome.rejected.append({"id": item_id, "version": revision, "reason": reason})
            return
        except (ValueError, BicesError) as error:
            reason = f"RFI refused: {error}"
            outcome.rejected.append({"id": item_id, "version": revision, "reason": reason})
            return
        except _Refused as refusal:
            outcome.rejected.append({"id": item_id, "version": revision,
                                     "reason": refusal.reason})  # fmt: skip
            return
        (outcome.accepted if mirrored else outcome.duplicates).append((rfi.id, rfi.revision))

    def mirror_rfi(self, peer: Peer, rfi: Rfi) -> bool:
        """Keep this revision of a peer's RFI (False if one as new is held already)."""
        audit = AuditDraft(f"peer:{peer.name}", rfi.asker_member, "rfi.receive", rfi.id,
                           detail={"revision": rfi.revision, "peer": peer.name},
                           label=rfi.label)  # fmt: skip
        mirrored = self.store.rfis.mirror(rfi, peer.name, [audit])
        if mirrored:
            self.collector.bus.publish([RfiChanged(rfi.id)])
        return mirrored

    def _store(self, writes: list[ReportWrite], outcome: Outcome) -> list[ReportVersion]:
        """One transaction; if another delivery stored some of them meanwhile, item by item."""
        try:
            stored = self.store.reports.add(writes)
        except Conflict:
            if len(writes) == 1:
                outcome.duplicates.append((writes[0].version.id, writes[0].version.version))
                return []
            stored = []
            for write in writes:
                stored.extend(self._store([write], outcome))
            return stored
        self.collector.announce(stored)
        return stored

    def _refused(self, peer: Peer, rejected: list[dict[str, Any]]) -> None:
        for item in rejected:
            log.warning(
                "refused item %s version %s from peer %s: %s",
                item["id"],
                item["version"],
                peer.name,
                item["reason"],
            )
        self.store.audit.append(
            [
                AuditDraft(
                    actor=f"peer:{peer.name}",
                    member=None,
                    action="federation.refuse",
                    target=item["id"],
                    detail={
                        "peer": peer.name,
                        "version": item["version"],
                        "reason": item["reason"],
                    },
                )
                for item in rejected
            ]
        )


def _from_peer(peer: Peer, member: str, role: str, served: set[str]) -> None:
    """An item's originator (or asker) must be a member the sending peer serves."""
    if member in served:
        raise _Refused(f"{role} {member} is served by this node, not by the peer")
    if member not in peer.members:
        raise _Refused(f"peer {peer.name} does not serve {role} {member}")


def _releasable_here(label: Label, directory: Directory, served: set[str]) -> None:
    """The boundary rule, on receipt: releasable to an active member this node serves."""
    ours = [m for m in served if directory.statuses.get(m) is MemberStatus.ACTIVE]
    if not may_receive(ours, label, directory):
        raise _Refused(
            f"label {label.render()} is not releasable to a member this node serves "
            f"({', '.join(sorted(served)) or 'none'})"
        )


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _runs(writes: list[ReportWrite]) -> list[list[ReportWrite]]:
    """Split writes, in order, into runs in which each report appears once (one store
    transaction takes one version of a report)."""
    runs: list[list[ReportWrite]] = []
    current: list[ReportWrite] = []
    ids: set[str] = set()
    for write in writes:
        if write.version.id in ids:
            runs.append(current)
            current, ids = [], set()
        current.append(write)
        ids.add(write.version.id)
    if current:
        runs.append(current)
    return runs
