"""Accession decisions are taken in the same transaction as the deciding vote."""

from __future__ import annotations

import pytest

from bices.domain.errors import Conflict, InvalidInput
from bices.domain.members import MemberKind, MemberStatus
from bices.node import Node
from bices.settings import Settings


def test_a_member_added_meanwhile_fails_the_final_vote_and_leaves_no_vote(node: Node) -> None:
    service = node.coalition  # seven active members: a majority is four
    service.apply("NZL", "New Zealand", sponsor="AUS", communities=["IP4"])
    for voter in ("USA", "GBR", "EST"):
        service.vote("NZL", True, member=voter)
    service.add_member("NZL", "New Zealand", MemberKind.NATION)  # eight active: five needed
    service.vote("NZL", True, member="POL")
    with pytest.raises(Conflict, match="became a member"):
        service.vote("NZL", True, member="KOR")
    accession = node.store.coalition.get_accession("NZL")
    assert accession is not None
    assert accession.status == "pending"
    assert "KOR" not in accession.approvals


def test_approvals_of_members_suspended_since_do_not_count(node: Node) -> None:
    service = node.coalition
    service.apply("NZL", "New Zealand", sponsor="AUS", communities=["IP4"])
    for voter in ("USA", "GBR", "EST"):
        service.vote("NZL", True, member=voter)
    service.set_status("USA", MemberStatus.SUSPENDED)  # six active: four needed, two count
    assert service.vote("NZL", True, member="POL").status == "pending"
    assert service.vote("NZL", True, member="JPN").status == "approved"
    nzl = node.store.coalition.get_member("NZL")
    assert nzl is not None and nzl.status is MemberStatus.ACTIVE and nzl.public_key


def test_a_decided_application_takes_no_more_votes(node: Node) -> None:
    service = node.coalition
    service.apply("NZL", "New Zealand", sponsor="AUS")
    for voter in ("USA", "GBR", "EST", "POL"):
        service.vote("NZL", False, member=voter)
    accession = node.store.coalition.get_accession("NZL")
    assert accession is not None and accession.status == "rejected"
    with pytest.raises(Conflict, match="already rejected"):
        service.vote("NZL", True, member="KOR")


@pytest.mark.parametrize("quorum", ["0", "00", "0/3", "3/2", "most"])
def test_a_quorum_that_could_admit_without_approval_is_refused(quorum: str) -> None:
    with pytest.raises(InvalidInput, match="quorum"):
        Settings(accession_quorum=quorum)
