"""Peering: this node's identity, the peers it registers, how their requests are
authenticated, and the pull endpoint's answers (`changes since cursor`).

A peer is added only after its node key has been checked out of band: the operator gives
the key (or its fingerprint) read to them by the peer's operator, and the node refuses a
peer whose signed description does not carry that key. The members a peer serves are
registered with the public keys the peer's description carries, unless they are known
here already, in which case the keys must agree.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx

from bices.domain.audit import AuditDraft
from bices.domain.cursors import Sealer
from bices.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from bices.domain.labels import normalise_code
from bices.domain.members import Member, MemberKind, MemberStatus
from bices.domain.peers import Peer, PeerStatus, check_peer_name, fingerprint, same_key
from bices.domain.signing import canonical
from bices.domain.users import Role, Viewer
from bices.federation.forward import next_batch, rfi_items, rfis_sent, wire_items
from bices.federation.receive import Outcome, Receiver
from bices.federation.rfi_actions import RfiActions
from bices.federation.wire import (
    MAX_ITEMS,
    NODE,
    SIGNATURE,
    NodeKey,
    request_problem,
    response_verifies,
    signature_verifies,
)
from bices.pipeline.collect import Collector
from bices.store.base import Store

log = logging.getLogger("bices.federation")

NODE_INFO = "/federation/v1/node"
CHANGES = "/federation/v1/changes"
PULL_CURSOR = b"F"  # the tag of the pull endpoint's cursors


def _actor(viewer: Viewer | None) -> tuple[str, str | None]:
    return ("operator", None) if viewer is None else (viewer.name, viewer.member)


class Federation:
    def __init__(self, store: Store, collector: Collector, node_name: str = "") -> None:
        self.store = store
        self.key = NodeKey(store.node_key)
        self.name = node_name or f"bices-{self.key.fingerprint[:8]}"
        self.receiver = Receiver(store, collector)
        self.rfi_actions = RfiActions(store, self.key, self.receiver)
        self._sealer: Sealer = store.sealer

    # -- identity --------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """This node as peers see it: name, key and the members it serves, signed."""
        members = []
        for code in self.store.peers.served():
            member = self.store.coalition.get_member(code)
            if member is not None and member.status is MemberStatus.ACTIVE:
                members.append(
                    {
                        "code": member.code,
                        "name": member.name,
                        "kind": member.kind.value,
                        "public_key": member.public_key,
                    }
                )
        body = {
            "name": self.name,
            "public_key": self.key.public,
            "fingerprint": self.key.fingerprint,
            "members": members,
        }
        return {**body, "signature": self.key.sign(canonical(body))}

    # -- peers -----------------------------------------------------------------------

    def add_peer(
        self,
        url: str,
        key: str,
        members: Sequence[str],
        name: str | None = None,
        since_now: bool = False,
        viewer: Viewer | None = None,
    ) -> Peer:
        """Register the peer at `url` whose node key is `key` (or its fingerprint), serving
        `members`; from position 0 (everything due to it) or, `since_now`, from now."""
        _require_operator(viewer)
        if not url.startswith(("http://", "https://")):
            raise InvalidInput(f"peer url {url!r} must start with http:// or https://")
        if not members:
            raise InvalidInput("a peer serves at least one member (--member)")
        codes = sorted({normalise_code(code) for code in members})
        info = fetch_description(url)
        if not same_key(key, info["public_key"]):
            raise Forbidden(
                f"the node at {url} has key fingerprint {info['fingerprint']}, not the one "
                "given: check the key with the peer's operator again"
            )
        offered = {m["code"]: m for m in info["members"]}
        missing = [code for code in codes if code not in offered]
        if missing:
            raise InvalidInput(f"the node at {url} does not serve {', '.join(missing)}")
        served = set(self.store.peers.served())
        for code in codes:
            self._register_member(offered[code], served, viewer)
        peer = Peer(
            name=check_peer_name(name or info["name"]),
            url=url.rstrip("/"),
            node_key=info["public_key"],
            members=tuple(codes),
            status=PeerStatus.ACTIVE,
            added_at=datetime.now(UTC),
            sent_seq=self.store.outbox.head() if since_now else 0,
        )
        if peer.node_key == self.key.public:
            raise InvalidInput("that is this node itself")
        actor, member = _actor(viewer)
        self.store.peers.add(
            peer,
            AuditDraft(
                actor,
                member,
                "peer.add",
                peer.name,
                detail={"url": peer.url, "fingerprint": peer.fingerprint, "members": list(codes)},
            ),
        )
        return peer

    def _register_member(
        self, offered: Mapping[str, Any], served: set[str], viewer: Viewer | None
    ) -> None:
        code = str(offered["code"])
        if code in served:
            raise Conflict(f"member {code} is served by this node; a peer cannot serve it too")
        known = self.store.coalition.get_member(code)
        if known is not None:
            if known.public_key != offered["public_key"]:
                raise Conflict(
                    f"member {code} is registered here with another public key than the "
                    "peer's; resolve that with the member before peering"
                )
            return
        actor, by = _actor(viewer)
        member = Member(
            code,
            str(offered["name"]),
            MemberKind(offered["kind"]),
            MemberStatus.ACTIVE,
            str(offered["public_key"]),
        )
        self.store.coalition.add_member(
            member, [], AuditDraft(actor, by, "member.add", code, detail={"served": False})
        )

    def peers(self, viewer: Viewer | None = None) -> list[Peer]:
        _require_operator(viewer)
        return self.store.peers.all()

    def behind(self) -> list[tuple[Peer, int]]:
        """Each peer with the outbox events stored here that its delivery has not passed
        yet (operator figures: they count items of every label)."""
        head = self.store.outbox.head()
        return [(peer, max(0, head - peer.sent_seq)) for peer in self.store.peers.all()]

    def peer(self, name: str, viewer: Viewer | None = None) -> Peer:
        _require_operator(viewer)
        found = self.store.peers.get(check_peer_name(name))
        if found is None:
            raise NotFound(f"no peer {name!r}")
        return found

    def set_status(self, name: str, status: PeerStatus, viewer: Viewer | None = None) -> Peer:
        peer = self.peer(name, viewer)
        actor, member = _actor(viewer)
        audit = AuditDraft(actor, member, f"peer.{status.value}", peer.name)
        self.store.peers.set_status(peer.name, status, audit)
        return self.peer(name, viewer)

    def remove(self, name: str, viewer: Viewer | None = None) -> None:
        peer = self.peer(name, viewer)
        actor, member = _actor(viewer)
        self.store.peers.remove(peer.name, AuditDraft(actor, member, "peer.remove", peer.name))

    # -- node-to-node ----------------------------------------------------------------

    def authenticate(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Peer:
        """The active peer that signed this request, or a refusal naming why (audited)."""
        claimed = headers.get(NODE, "")
        peer = self.store.peers.by_fingerprint(claimed) if claimed else None
        # Requests that do not prove a peer's key go to the log only, so that no one
        # without a node key can grow the audit chain.
        if peer is None:
            log.warning("refused a request from node %s: not a registered peer", claimed or "?")
            raise Unauthenticated(f"node {claimed or '(no ' + NODE + ' header)'} is not a peer")
        problem = request_problem(
            peer.node_key, method, target, headers, body, self.key.fingerprint
        )
        if problem is not None:
            log.warning("refused a request claiming to come from peer %s: %s", peer.name, problem)
            raise Unauthenticated(problem)
        if peer.status is not PeerStatus.ACTIVE:
            self._refused_request(peer.name, "the peer is suspended")
            raise Forbidden(f"peer {peer.name} is suspended")
        return peer

    def _refused_request(self, who: str, reason: str) -> None:
        log.warning("refused a request of peer %s: %s", who, reason)
        self.store.audit.append(
            [
                AuditDraft(
                    f"peer:{who}", None, "federation.refuse-request", who, detail={"reason": reason}
                )
            ]
        )

    def receive(self, peer: Peer, body: bytes) -> Outcome:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as error:
            raise InvalidInput(f"the batch is not JSON: {error}") from None
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise InvalidInput("the batch must be an object with a list 'items'")
        if len(items) > MAX_ITEMS:
            raise InvalidInput(f"a batch carries at most {MAX_ITEMS} items, not {len(items)}")
        return self.receiver.receive(peer, items)

    def changes(self, peer: Peer, after: str | None, limit: int) -> dict[str, Any]:
        """The pull endpoint: items due to `peer` after a cursor this node gave it."""
        position = 0
        if after:
            opened = self._sealer.open(PULL_CURSOR, after)
            if opened is None:
                raise InvalidInput("after is not a cursor this node gave out")
            position = opened[0]
        at = Peer(
            peer.name,
            peer.url,
            peer.node_key,
            peer.members,
            peer.status,
            peer.added_at,
            sent_seq=position,
        )
        batch = next_batch(self.store, at, min(limit, MAX_ITEMS))
        if batch is None:
            return {"items": [], "next": self._sealer.seal(PULL_CURSOR, position), "more": False}
        versions = batch.versions
        rfis = rfi_items(self.store, peer, batch.rfi_ids) if batch.rfi_ids else []
        items = wire_items(self.store, peer, versions) + rfis
        self.store.audit.append(
            [
                AuditDraft(
                    f"peer:{peer.name}",
                    None,
                    "report.send",
                    v.id,
                    v.label_id,
                    {"version": v.version, "peer": peer.name, "via": "pull"},
                )
                for v in versions
            ]
            + [replace(draft, detail={**draft.detail, "via": "pull"})
               for draft in rfis_sent(peer, rfis, [])]
        )  # fmt: skip
        return {
            "items": items,
            "next": self._sealer.seal(PULL_CURSOR, batch.upto),
            "more": batch.upto < self.store.outbox.head(),
        }

    def pull(self, name: str, viewer: Viewer | None = None, max_pages: int = 10_000) -> Outcome:
        """Catch up from a peer through its pull endpoint, page by page, each page through
        the same checks as a push; the position is kept after each page."""
        peer = self.peer(name, viewer)
        total = Outcome()
        with httpx.Client(timeout=httpx.Timeout(30.0, connect=3.0)) as client:
            for _ in range(max_pages):
                page = self._fetch_changes(client, peer)
                outcome = self.receiver.receive(peer, page["items"])
                total.accepted += outcome.accepted
                total.duplicates += outcome.duplicates
                total.rejected += outcome.rejected
                self.store.peers.set_pulled(peer.name, page["next"])
                peer = self.peer(name, viewer)
                if not page["more"]:
                    break
        return total

    def _fetch_changes(self, client: httpx.Client, peer: Peer) -> dict[str, Any]:
        query = f"?after={peer.pulled}&limit={MAX_ITEMS}" if peer.pulled else f"?limit={MAX_ITEMS}"
        target = CHANGES + query
        headers = self.key.request_headers("GET", target, b"", peer.fingerprint)
        try:
            response = client.get(peer.url + target, headers=headers)
        except httpx.HTTPError as error:
            raise Conflict(f"cannot reach peer {peer.name} at {peer.url}: {error}") from None
        if response.status_code != 200:
            raise Conflict(
                f"peer {peer.name} answered HTTP {response.status_code}: {response.text[:300]}"
            )
        if not response_verifies(
            peer.node_key, 200, response.headers, response.content, headers[SIGNATURE]
        ):
            raise Conflict(f"the answer of peer {peer.name} is not signed by its node key")
        try:
            page = response.json()
            valid = (
                isinstance(page["items"], list)
                and len(page["items"]) <= MAX_ITEMS
                and isinstance(page["next"], str)
                and isinstance(page["more"], bool)
            )
        except (ValueError, KeyError, TypeError, RecursionError):
            valid = False
        if not valid:
            raise Conflict(f"peer {peer.name} answered with something other than a page")
        result: dict[str, Any] = page
        return result


def fetch_description(url: str) -> dict[str, Any]:
    """A node's signed description, checked against the key it carries (the caller then
    checks that key against the one given out of band)."""
    try:
        response = httpx.get(url.rstrip("/") + NODE_INFO, timeout=10.0)
    except httpx.HTTPError as error:
        raise Conflict(f"cannot reach a node at {url}: {error}") from None
    if response.status_code != 200:
        raise Conflict(f"{url} answered HTTP {response.status_code}; is it a BICES node?")
    try:
        info = response.json()
        body = {key: info[key] for key in ("name", "public_key", "fingerprint", "members")}
        signature = str(info["signature"])
    except (ValueError, KeyError, TypeError):
        raise Conflict(f"{url} did not describe itself as a BICES node") from None
    if fingerprint(body["public_key"]) != body["fingerprint"] or not signature_verifies(
        body["public_key"], canonical(body), signature
    ):
        raise Conflict(f"the description of the node at {url} is not signed by its key")
    return body


def _require_operator(viewer: Viewer | None) -> None:
    if viewer is not None and not viewer.has(Role.OPERATOR):
        raise Forbidden("peering needs the operator role")
