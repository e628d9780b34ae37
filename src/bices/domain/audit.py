"""Audit events: who did what to which item, chained by hashes so that tampering shows."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bices.domain.labels import Label
from bices.domain.reports import iso
from bices.domain.signing import canonical

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditDraft:
    """An event before the store numbers and chains it."""

    actor: str  # user name, or "operator" for the node operator at the CLI
    member: str | None  # the actor's member
    action: str  # e.g. "report.create", "report.read", "member.suspend"
    target: str | None = None  # the item acted on
    label_id: int | None = None  # the item's label; the audit view applies the rule to it
    detail: dict[str, Any] = field(default_factory=dict)
    label: Label | None = None  # a label the store resolves to `label_id` when appending


@dataclass(frozen=True, slots=True)
class AuditEvent:
    seq: int
    at: datetime
    actor: str
    member: str | None
    action: str
    target: str | None
    label_id: int | None
    detail: dict[str, Any]
    prev: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": iso(self.at),
            "actor": self.actor,
            "member": self.member,
            "action": self.action,
            "target": self.target,
            "detail": self.detail,
            "prev": self.prev,
            "hash": self.hash,
        }


def chain_hash(prev: str, seq: int, at: datetime, draft: AuditDraft | AuditEvent) -> str:
    """The hash of an event: it covers the previous hash, its position and all its fields."""
    return fields_hash(prev, seq, iso(at), draft.actor, draft.member, draft.action,
                       draft.target, draft.label_id, draft.detail)  # fmt: skip


def fields_hash(
    prev: str,
    seq: int,
    at: str,
    actor: str,
    member: str | None,
    action: str,
    target: str | None,
    label_id: int | None,
    detail: dict[str, Any],
) -> str:
    """`chain_hash` of an event's fields, `at` already as `iso` writes it."""
    body = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "member": member,
        "action": action,
        "target": target,
        "label_id": label_id,
        "detail": detail,
    }
    return hashlib.sha256(prev.encode() + canonical(body)).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first event at which the chain no longer holds, and why."""

    seq: int
    reason: str


def verify_chain(
    events: Iterable[AuditEvent], start_prev: str = GENESIS
) -> tuple[int, ChainBreak | None]:
    """Walk events in stored order; return how many held and the first break, if any."""
    prev = start_prev
    expected_seq = 1
    count = 0
    for event in events:
        if event.seq != expected_seq:
            kind = "removed" if event.seq > expected_seq else "reordered or duplicated"
            return count, ChainBreak(
                event.seq, f"expected event {expected_seq} here, found {event.seq} ({kind})"
            )
        if event.prev != prev:
            return count, ChainBreak(event.seq, "previous-hash link broken (removed or reordered)")
        if chain_hash(prev, event.seq, event.at, event) != event.hash:
            return count, ChainBreak(event.seq, "content does not match its hash (changed)")
        prev = event.hash
        expected_seq += 1
        count += 1
    return count, None
