"""Store and forward: deliver this node's outbox to each peer, in store order.

One thread per peer, woken when reports are stored (and polling as a fallback), takes the
next events after the peer's position, keeps the versions that the boundary rule lets this
peer receive *now* (originated by a member this node serves, releasable to an active member
the peer serves), and posts them as one signed batch. The position moves only when the
peer's signed answer has come back, in the same transaction as the audit of what was sent,
so a crash or an outage resends, never skips; the peer's receive is idempotent. Failures
back off exponentially with jitter up to `max_backoff_s`. A suspended peer holds: its items
wait in the outbox until it is reinstated.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from bices.domain.audit import AuditDraft
from bices.domain.labels import Label
from bices.domain.peers import Peer, PeerStatus
from bices.domain.reports import ReportVersion
from bices.federation.wire import SIGNATURE, NodeKey, item_of, response_verifies
from bices.policy import may_receive
from bices.store.base import Store

log = logging.getLogger("bices.federation")

INBOX = "/federation/v1/inbox"
LEASE_S = 15.0  # how long a process may go silent before another takes a peer over
SCAN = 2000  # outbox events looked at per batch
BATCH_BYTES = 8 * 1024 * 1024  # a batch stops growing past this (the default body limit: 32 MiB)


def wire_size(version: ReportVersion) -> int:
    """About what a version takes in a batch: its text and its attachments in base64."""
    return (
        2048
        + len(version.title)
        + len(version.body) * 2
        + sum(a.size * 4 // 3 for a in version.attachments)
    )


class DeliveryFailed(Exception):
    """The peer did not acknowledge a batch (down, refused the request, bad answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the peer's HTTP status, if it answered


@dataclass(frozen=True, slots=True)
class Batch:
    after: int  # the peer's position before
    upto: int  # its position once acknowledged
    versions: list[ReportVersion]
    rfi_ids: list[str]  # RFIs changed meanwhile (the rule is applied as their items are made)


def next_batch(store: Store, peer: Peer, limit: int) -> Batch | None:
    """The next versions due to `peer` after its position, or None if nothing is stored
    after it; `upto` may pass events that are not due to it."""
    events = store.outbox.after(peer.sent_seq, SCAN, kinds=["report", "rfi"])
    if not events:
        return None
    directory = store.coalition.directory()
    served = set(store.peers.served())
    due: list[ReportVersion] = []
    rfi_ids: list[str] = []
    upto = peer.sent_seq
    size = 0
    for first in range(0, len(events), limit):  # read only as many versions as are needed
        chunk = events[first : first + limit]
        reports = [e.seq for e in chunk if e.kind == "report"]
        versions = {v.seq: v for v in store.reports.by_seq(reports)}
        for event in chunk:
            if len(due) == limit or size > BATCH_BYTES:
                return Batch(peer.sent_seq, upto, due, rfi_ids)
            if event.kind == "rfi":
                upto = event.seq
                rfi_ids.append(event.item_id)
                continue
            version = versions[event.seq]
            if version.label.originator in served and may_receive(
                peer.members, version.label, directory
            ):
                if due and size + wire_size(version) > BATCH_BYTES:
                    return Batch(peer.sent_seq, upto, due, rfi_ids)
                due.append(version)
                size += wire_size(version)
            upto = event.seq
    return Batch(peer.sent_seq, upto, due, rfi_ids)


def sent_events(
    peer: Peer, versions: list[ReportVersion], refused: list[dict[str, object]]
) -> list[AuditDraft]:
    """One `report.send` per version sent (under its label, so its originator's admins see
    where it went) and one `federation.refused` per item the peer refused."""
    reasons = {(r.get("id"), r.get("version")): r.get("reason") for r in refused}
    drafts = []
    for v in versions:
        reason = reasons.get((v.id, v.version))
        action = "report.send" if reason is None else "federation.refused"
        detail: dict[str, object] = {"version": v.version, "peer": peer.name}
        if reason is not None:
            detail["reason"] = reason
        drafts.append(AuditDraft(f"peer:{peer.name}", None, action, v.id, v.label_id, detail))
    return drafts


def wire_items(store: Store, peer: Peer, versions: list[ReportVersion]) -> list[dict[str, Any]]:
    """Versions due to `peer` as items: with their attachments' bytes, and, for a
    tearline, the report it was made from if that report may go to the peer too."""
    blobs = store.reports.blob_bytes([a.sha256 for v in versions for a in v.attachments])
    directory = store.coalition.directory()
    items = []
    for v in versions:
        item = item_of(v, {a.sha256: blobs[a.sha256] for a in v.attachments if a.sha256 in blobs})
        source = store.tearlines.source_of(v.id)
        if source is not None:
            original = store.reports.current_unfiltered(source[0])
            if original is not None and may_receive(peer.members, original.label, directory):
                item["tearline_of"] = {"id": source[0], "version": source[1]}
        items.append(item)
    return items


class PeerLink:
    """Delivery to one peer."""

    def __init__(
        self,
        store: Store,
        key: NodeKey,
        name: str,
        owner: str,
        batch: int,
        poll_s: float,
        max_backoff_s: float,
    ) -> None:
        self.store = store
        self.key = key
        self.name = name
        self.owner = owner
        self.batch = batch
        self.poll_s = poll_s
        self.max_backoff_s = max_backoff_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, connect=3.0))
        self.thread = threading.Thread(target=self.run, name=f"bices-peer-{name}", daemon=True)

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def run(self) -> None:
        backoff = 0.0
        try:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    more = self.step()
                    backoff = 0.0
                except DeliveryFailed as error:
                    backoff = min(max(backoff * 2, 0.25), self.max_backoff_s)
                    log.warning(
                        "delivery to peer %s failed: %s; retry in %.1f s", self.name, error, backoff
                    )
                    self._failed(str(error))
                    self._stop.wait(backoff * random.uniform(0.8, 1.2))
                    continue
                except Exception:  # the store busy or gone: log, wait, try again
                    log.exception("delivery to peer %s failed", self.name)
                    backoff = min(max(backoff * 2, 0.25), self.max_backoff_s)
                    self._stop.wait(backoff)
                    continue
                if more is None:
                    return  # the peer was removed
                if not more:
                    self._wake.wait(self.poll_s)
        finally:
            self._client.close()
            try:
                self.store.peers.release(self.name, self.owner)
            except Exception:  # closing down: the lease runs out by itself
                log.debug("could not release the lease on peer %s", self.name)

    def _failed(self, error: str) -> None:
        try:
            self.store.peers.failed(self.name, error)
        except Exception:
            log.exception("could not record the failure of peer %s", self.name)

    def step(self) -> bool | None:
        """Deliver one batch: True if more may be waiting, False if idle, None if the peer
        is gone."""
        peer = self.store.peers.get(self.name)
        if peer is None:
            return None
        if peer.status is not PeerStatus.ACTIVE:
            return False
        if not self.store.peers.claim(self.name, self.owner, LEASE_S):
            return False  # another process delivers to this peer
        batch = next_batch(self.store, peer, self.batch)
        if batch is None:
            return False
        refused: list[dict[str, object]] = []
        rfis = rfi_items(self.store, peer, batch.rfi_ids) if batch.rfi_ids else []
        if batch.versions or rfis:
            try:
                refused = self.post(peer, batch.versions, rfis)
            except DeliveryFailed as error:
                if error.status != 413 or len(batch.versions) + len(rfis) != 1:
                    raise
                # One item larger than the peer takes: it can never go; say so, move on.
                if batch.versions:
                    named: tuple[object, object] = (batch.versions[0].id, batch.versions[0].version)
                else:
                    named = (rfis[0]["id"], rfis[0]["revision"])
                reason = f"larger than peer {peer.name} accepts: {error}"
                refused = [{"id": named[0], "version": named[1], "reason": reason}]
        audit = sent_events(peer, batch.versions, refused) + rfis_sent(peer, rfis, refused)
        if not self.store.peers.delivered(peer.name, batch.after, batch.upto, audit):
            return True  # another sender moved it: start again from where it stands
        for item in refused:
            log.warning(
                "peer %s refused %s version %s: %s",
                peer.name,
                item.get("id"),
                item.get("version"),
                item.get("reason"),
            )
        return True

    def post(
        self, peer: Peer, versions: list[ReportVersion], rfis: list[dict[str, Any]]
    ) -> list[dict[str, object]]:
        """Send one signed batch; the items the peer refused (with reasons)."""
        items = wire_items(self.store, peer, versions) + rfis
        body = json.dumps({"batch": str(uuid.uuid4()), "items": items}).encode()
        return post_signed(self._client, self.key, peer, INBOX, body)["rejected"]


def post_signed(
    client: httpx.Client, key: NodeKey, peer: Peer, path: str, body: bytes
) -> dict[str, list[dict[str, object]]]:
    """POST a signed body to a peer and check its signed answer."""
    target = urlsplit(peer.url.rstrip("/") + path).path
    headers = key.request_headers("POST", target, body, peer.fingerprint)
    headers["content-type"] = "application/json"
    try:
        response = client.post(peer.url.rstrip("/") + path, content=body, headers=headers)
    except httpx.HTTPError as error:
        raise DeliveryFailed(f"{type(error).__name__}: {error}") from None
    if response.status_code != 200:
        raise DeliveryFailed(
            f"HTTP {response.status_code}: {response.text[:300]}", response.status_code
        )
    if not response_verifies(
        peer.node_key, response.status_code, response.headers, response.content, headers[SIGNATURE]
    ):
        raise DeliveryFailed("the answer is not signed by the peer's node key")
    try:
        answer = response.json()
        rejected = answer["rejected"]
        if not isinstance(rejected, list) or not all(isinstance(r, dict) for r in rejected):
            raise TypeError(rejected)
    except (ValueError, KeyError, TypeError):
        raise DeliveryFailed("the peer's answer is not an outcome of the batch") from None
    return {"rejected": rejected}


def post_signed_json(
    key: NodeKey, peer: Peer, path: str, body: bytes
) -> tuple[int, dict[str, Any]]:
    """POST a signed body to a peer: the status and the JSON answer (a 200 must be signed
    by the peer's node key; an error's message is taken as it comes)."""
    target = urlsplit(peer.url.rstrip("/") + path).path
    headers = key.request_headers("POST", target, body, peer.fingerprint)
    headers["content-type"] = "application/json"
    try:
        with httpx.Client(timeout=httpx.Timeout(30.0, connect=3.0)) as client:
            response = client.post(peer.url.rstrip("/") + path, content=body, headers=headers)
    except httpx.HTTPError as error:
        raise DeliveryFailed(f"{type(error).__name__}: {error}") from None
    if response.status_code == 200 and not response_verifies(
        peer.node_key, 200, response.headers, response.content, headers[SIGNATURE]
    ):
        raise DeliveryFailed("the answer is not signed by the peer's node key")
    try:
        answer = response.json()
    except ValueError:
        answer = {"detail": response.text[:300]}
    return response.status_code, answer if isinstance(answer, dict) else {"detail": answer}


def rfi_items(store: Store, peer: Peer, rfi_ids: list[str]) -> list[dict[str, Any]]:
    from bices.federation.rfis import rfi_items as items_of

    directory = store.coalition.directory()
    return items_of(store, peer, rfi_ids, directory, set(store.peers.served()))


def rfis_sent(
    peer: Peer, rfis: list[dict[str, Any]], refused: list[dict[str, object]]
) -> list[AuditDraft]:
    """One `rfi.send` per RFI revision sent (or `federation.refused`), under its label."""
    reasons = {(r.get("id"), r.get("version")): r.get("reason") for r in refused}
    drafts = []
    for item in rfis:
        reason = reasons.get((item["id"], item["revision"]))
        detail: dict[str, object] = {"revision": item["revision"], "peer": peer.name}
        if reason is not None:
            detail["reason"] = reason
        action = "rfi.send" if reason is None else "federation.refused"
        drafts.append(AuditDraft(f"peer:{peer.name}", None, action, str(item["id"]),
                                 detail=detail, label=Label.from_json(item["label"])))  # fmt: skip
    return drafts


class Forwarder:
    """Every peer's link, kept in step with the peers table (added, removed, reinstated)."""

    def __init__(
        self,
        store: Store,
        key: NodeKey,
        batch: int = 100,
        poll_s: float = 2.0,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.store = store
        self.key = key
        self.batch = batch
        self.poll_s = poll_s
        self.max_backoff_s = max_backoff_s
        self.owner = f"{uuid.uuid4()}"  # this process, for the leases
        self._links: dict[str, PeerLink] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="bices-forward", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        for link in list(self._links.values()):
            link.wake()

    def _supervise(self) -> None:
        while not self._stop.is_set():
            try:
                self._refresh()
            except Exception:
                log.exception("could not read the peers")
            self._stop.wait(self.poll_s)

    def _refresh(self) -> None:
        names = {peer.name for peer in self.store.peers.all()}
        for name, link in list(self._links.items()):
            if not link.thread.is_alive():
                del self._links[name]
        for name in names - self._links.keys():
            link = PeerLink(
                self.store, self.key, name, self.owner, self.batch, self.poll_s, self.max_backoff_s
            )
            self._links[name] = link
            link.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for link in self._links.values():
            link.stop()
        for link in self._links.values():
            link.thread.join(timeout=15)
