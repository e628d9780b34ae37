"""THE access rule and the label algebra. Every path out of the node asks this module.

A user of member M sees an item with label L iff the user's clearance dominates
L.classification, M is in expand(L.releasable_to) or is L's originator, the user
holds every caveat of L, and M is active. No I/O: the caller passes a `Directory`
snapshot of member statuses and community membership.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bices.domain.errors import Forbidden, InvalidInput
from bices.domain.labels import Classification, Label
from bices.domain.members import MemberStatus
from bices.domain.users import Viewer


@dataclass(frozen=True, slots=True)
class Directory:
    """What the rule needs to know of the coalition: member statuses and communities."""

    statuses: Mapping[str, MemberStatus]
    communities: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def expand(self, releasable_to: Iterable[str]) -> frozenset[str]:
        """Members named directly or through a community."""
        members: set[str] = set()
        for code in releasable_to:
            members.update(self.communities.get(code, (code,)))
        return frozenset(members)


def may_see(viewer: Viewer, label: Label, directory: Directory) -> bool:
    """The one access rule."""
    if directory.statuses.get(viewer.member) is not MemberStatus.ACTIVE:
        return False
    if viewer.clearance < label.classification:
        return False
    if not label.caveats <= viewer.caveats:
        return False
    return viewer.member == label.originator or viewer.member in directory.expand(
        label.releasable_to
    )


def may_receive(members: Iterable[str], label: Label, directory: Directory) -> bool:
    """The boundary rule: a peer node may receive an item iff the item is releasable to (or
    originated by) an active member that the peer serves. Clearances and caveats are not a
    node's but its users': the receiving node applies `may_see` to each of them."""
    releasable = directory.expand(label.releasable_to)
    return any(
        directory.statuses.get(member) is MemberStatus.ACTIVE
        and (member == label.originator or member in releasable)
        for member in members
    )


def combine(labels: Iterable[Label], originator: str, directory: Directory) -> Label:
    """The label of an item derived from several sources.

    Highest classification, intersection of (expanded) releasability, union of caveats.
    Releasability stays a set of members, never written back as a community: a community
    redefined later must not widen what the sources allowed.
    The deriving member must itself be entitled to every source.
    """
    sources = list(labels)
    if not sources:
        raise InvalidInput("a derived item needs at least one source label")
    for label in sources:
        if originator != label.originator and originator not in directory.expand(
            label.releasable_to
        ):
            # Otherwise the originator clause would show the deriver what it may not read.
            raise Forbidden(f"{originator} may not derive from an item labelled {label.render()}")
    level = max(label.classification for label in sources)
    releasable = directory.expand(sources[0].releasable_to)
    caveats: set[str] = set()
    for label in sources:
        releasable &= directory.expand(label.releasable_to)
        caveats |= label.caveats
    return Label(
        classification=level,
        releasable_to=releasable,
        originator=originator,
        caveats=frozenset(caveats),
    )


def member_only(member: str) -> Label:
    """The label of a record of one member's own activity (its searches, its refused
    requests): under the rule only that member's users may see it."""
    return Label(Classification.PUBLIC, frozenset({member}), member)


def check_may_create(viewer: Viewer, label: Label, directory: Directory) -> None:
    """Refuse a label the viewer may not put on a new item.

    The label must name only known members and communities, not exceed the viewer's
    clearance, carry only caveats the viewer holds, and be releasable to the viewer's member.
    """
    unknown = sorted(
        code
        for code in label.releasable_to
        if code not in directory.communities and code not in directory.statuses
    )
    if unknown:
        raise InvalidInput(
            f"label.releasable_to names unknown members or communities: {', '.join(unknown)}"
        )
    if label.originator != viewer.member:
        raise Forbidden(
            f"label.originator {label.originator!r} is not the caller's member {viewer.member!r}"
        )
    if directory.statuses.get(viewer.member) is not MemberStatus.ACTIVE:
        raise Forbidden(f"member {viewer.member} is not active")
    if label.classification > viewer.clearance:
        raise Forbidden(
            f"label.classification {label.classification.marking!r} is above the caller's "
            f"clearance {viewer.clearance.marking!r}"
        )
    missing = sorted(label.caveats - viewer.caveats)
    if missing:
        raise Forbidden(f"label.caveats {', '.join(missing)} not held by the caller")
    if viewer.member not in directory.expand(label.releasable_to):
        raise Forbidden(
            f"label is not releasable to the caller's member {viewer.member}: "
            f"REL TO {', '.join(sorted(label.releasable_to))}"
        )
