"""A ready coalition for `bices demo`: members, an accession, users and sample reports."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from bices.coalition import CoalitionService
from bices.domain.members import IP4_NATIONS, NATO_NATIONS, MemberKind, country_name
from bices.domain.reports import ReportDraft
from bices.node import Node

DEMO_USERS: tuple[tuple[str, str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    # name, member, clearance, caveats, roles
    ("usa.operator", "USA", "COSMIC TOP SECRET", ("ATOMAL", "COMMERCIAL IMAGERY"),
     ("operator", "member-admin", "analyst")),
    ("usa.analyst", "USA", "NATO SECRET", (), ("analyst",)),
    ("gbr.analyst", "GBR", "NATO SECRET", ("COMMERCIAL IMAGERY",), ("analyst",)),
    ("est.analyst", "EST", "NATO RESTRICTED", (), ("analyst",)),
    ("kor.admin", "KOR", "NATO SECRET", (), ("member-admin", "analyst")),
    ("kor.analyst", "KOR", "NATO SECRET", (), ("analyst",)),
    ("jpn.analyst", "JPN", "NATO CONFIDENTIAL", (), ("analyst",)),
    ("nzl.analyst", "NZL", "NATO SECRET", (), ("analyst",)),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class DemoUser:
    name: str
    member: str
    clearance: str
    token: str


def sample_reports() -> list[dict[str, Any]]:
    """The packaged sample reports (our own writing, after public events of 2022-2024)."""
    text = resources.files("bices.data").joinpath("sample_reports.json").read_text("utf-8")
    reports: list[dict[str, Any]] = json.loads(text)
    return reports


def seed(node: Node) -> list[DemoUser]:
    """Build the sample coalition on an empty node and return the demo users' tokens."""
    service: CoalitionService = node.coalition
    for code in NATO_NATIONS:
        service.add_member(code, country_name(code) or code, MemberKind.NATION)
    for code in IP4_NATIONS:
        if code != "KOR":
            service.add_member(code, country_name(code) or code, MemberKind.NATION)
    _admit_korea(service)
    users = [
        DemoUser(name, member, clearance, service.add_user(member, name, clearance, caveats,
                                                           roles)[1])
        for name, member, clearance, caveats, roles in DEMO_USERS
    ]  # fmt: skip
    _load_samples(node)
    return users


def _admit_korea(service: CoalitionService) -> None:
    """South Korea joins as it did in 2024: sponsored, then approved by a quorum of members."""
    service.apply("KOR", "Korea, Republic of", sponsor="USA", communities=["IP4"])
    for voter in NATO_NATIONS:
        accession = service.vote("KOR", True, member=voter)
        if accession.status != "pending":
            break


def _load_samples(node: Node) -> None:
    by_originator: dict[str, list[ReportDraft]] = {}
    for raw in sample_reports():
        data = dict(raw)
        originator = data.pop("originator")
        by_originator.setdefault(originator, []).append(ReportDraft.model_validate(data))
    for originator, drafts in by_originator.items():
        name = f"{originator.lower()}.collector"
        node.coalition.add_user(
            originator, name, "COSMIC TOP SECRET", ("ATOMAL", "COMMERCIAL IMAGERY"), ("collector",)
        )
        node.collector.submit(node.coalition.viewer_of(name), drafts)
