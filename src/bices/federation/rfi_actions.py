"""What a user does to a mirrored RFI, done at its home node.

The user's node sends the home a signed request naming the RFI, the action, the user and
the user's member (with, for an answer, the answer report as an item, checked by the home
like any report a peer sends). The home acts for that user through the same RFI service
and life-cycle rules as for its own users, under the member that the peer serves, and
answers with the RFI's new revision, which the user's node mirrors at once.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bices.domain.errors import (
    BicesError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from bices.domain.labels import Classification
from bices.domain.members import MemberStatus
from bices.domain.peers import Peer
from bices.domain.users import Role, Viewer
from bices.federation.forward import DeliveryFailed, post_signed_json, wire_items
from bices.federation.rfis import UUID, rfi_item
from bices.federation.wire import NodeKey
from bices.policy import may_receive

if TYPE_CHECKING:
    from bices.federation.receive import Receiver
    from bices.share.rfis import RfiService
    from bices.store.base import Store

RFI_ACTIONS = "/federation/v1/rfi-actions"
ERRORS: dict[int, type[BicesError]] = {
    401: Unauthenticated, 403: Forbidden, 404: NotFound, 409: Conflict, 422: InvalidInput,
}  # fmt: skip


class ActionWire(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rfi_id: str = Field(pattern=UUID)
    action: str = Field(pattern="^(accept|answer|close)$")
    actor: str = Field(min_length=1, max_length=200)
    member: str = Field(min_length=2, max_length=16)
    reason: str | None = Field(default=None, max_length=2000)
    report: dict[str, Any] | None = None  # the answer report, as an item


class RfiActions:
    def __init__(self, store: Store, key: NodeKey, receiver: Receiver) -> None:
        self.store = store
        self.key = key
        self.receiver = receiver
        self.service: RfiService | None = None  # set by the node once both exist

    # -- at the user's node ------------------------------------------------------------

    def forward(
        self,
        home: str,
        rfi_id: str,
        action: str,
        viewer: Viewer,
        reason: str | None = None,
        report_id: str | None = None,
    ) -> None:
        """Have the home node act for `viewer`, and mirror the revision it answers with."""
        peer = self.store.peers.get(home)
        if peer is None:
            raise Conflict(f"RFI {rfi_id} was asked on node {home}, which is no longer a peer")
        body: dict[str, Any] = {"rfi_id": rfi_id, "action": action, "actor": viewer.name,
                                "member": viewer.member, "reason": reason}  # fmt: skip
        if report_id is not None:
            version = self.store.reports.current(viewer, report_id)
            if version is None:
                raise InvalidInput(f"report_id {report_id}: no such report visible to you")
            directory = self.store.coalition.directory()
            if version.label.originator != viewer.member or not may_receive(
                peer.members, version.label, directory
            ):  # the boundary rule, as for every item that leaves the node
                raise Forbidden(
                    f"report {report_id} may not go to node {home}, where the RFI was asked: "
                    "answer with a report of your member releasable to the asker"
                )
            body["report"] = wire_items(self.store, peer, [version])[0]
        try:
            status, answer = post_signed_json(
                self.key, peer, RFI_ACTIONS, json.dumps(body).encode()
            )
        except DeliveryFailed as error:
            raise Conflict(f"the RFI's home node {home} could not be reached: {error}") from None
        if status != 200:
            raise ERRORS.get(status, Conflict)(f"node {home}: {answer.get('detail', answer)}")
        if answer.get("id") != rfi_id:
            raise Conflict(f"node {home} answered with another RFI than {rfi_id}")
        # The home's answer passes the same checks as an RFI it pushes.
        outcome = self.receiver.receive(peer, [answer])
        if outcome.rejected:
            raise Conflict(f"node {home}'s answer was refused: {outcome.rejected[0]['reason']}")

    # -- at the home node ----------------------------------------------------------------

    def apply(self, peer: Peer, body: bytes) -> dict[str, Any]:
        """Do what a peer's user asks to one of this node's RFIs; the RFI as it now is."""
        assert self.service is not None
        try:
            asked = ActionWire.model_validate_json(body)
        except ValidationError as error:
            first = error.errors()[0]
            raise InvalidInput(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        if asked.member not in peer.members:
            raise Forbidden(f"peer {peer.name} does not serve {asked.member}")
        directory = self.store.coalition.directory()
        if directory.statuses.get(asked.member) is not MemberStatus.ACTIVE:
            raise Forbidden(f"member {asked.member} is not active")
        rfi = self.store.rfis.snapshot(asked.rfi_id)
        if (
            rfi is None
            or self.store.rfis.home_of(rfi.id) is not None
            or not may_receive(peer.members, rfi.label, directory)
        ):
            raise NotFound(f"RFI {asked.rfi_id} not found")
        caveats = set(rfi.label.caveats)
        if asked.report is not None:
            outcome = self.receiver.receive(peer, [asked.report])
            if outcome.rejected:
                raise InvalidInput(f"the answer report: {outcome.rejected[0]['reason']}")
            report = self.store.reports.current_unfiltered(str(asked.report.get("id")))
            if report is not None:
                caveats |= report.label.caveats
        # The peer vouches for its user's standing (its node applied the rule to show the
        # RFI); here the user acts for its member, whom the peer serves.
        viewer = Viewer(0, f"{asked.actor}@{peer.name}", asked.member, MemberStatus.ACTIVE,
                        Classification.COSMIC_TOP_SECRET, frozenset(caveats),
                        frozenset({Role.ANALYST}))  # fmt: skip
        if asked.action == "accept":
            self.service.accept(viewer, rfi.id)
        elif asked.action == "close":
            self.service.close(viewer, rfi.id, asked.reason)
        else:
            if asked.report is None:
                raise InvalidInput("an answer carries its report")
            self.service.answer(viewer, rfi.id, report_id=str(asked.report.get("id")))
        now = self.store.rfis.snapshot(rfi.id)
        assert now is not None
        shown = {a.report_id for a in now.answers
                 if (r := self.store.reports.current_unfiltered(a.report_id)) is not None
                 and may_receive(peer.members, r.label, directory)}  # fmt: skip
        return rfi_item(now, shown)
