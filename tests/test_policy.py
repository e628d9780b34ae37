"""The label algebra and the access rule (`bices.policy`, `bices.domain.labels`), without I/O."""

from __future__ import annotations

from dataclasses import replace
from functools import reduce

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bices.domain.errors import Forbidden, InvalidInput
from bices.domain.labels import Classification, Label
from bices.domain.members import IP4_NATIONS, NATO_NATIONS, MemberStatus
from bices.domain.users import Role, Viewer
from bices.policy import Directory, check_may_create, combine, may_see

ACTIVE = MemberStatus.ACTIVE
DIRECTORY = Directory(
    statuses={
        "USA": ACTIVE,
        "GBR": ACTIVE,
        "EST": ACTIVE,
        "POL": MemberStatus.SUSPENDED,
        "KOR": ACTIVE,
        "JPN": ACTIVE,
        "AUS": ACTIVE,
        "NZL": MemberStatus.WITHDRAWN,
    },
    communities={
        "NATO": frozenset(NATO_NATIONS),
        "IP4": frozenset(IP4_NATIONS),
        "FVEY": frozenset({"USA", "GBR", "AUS", "NZL"}),
        "EMPTY": frozenset(),
    },
)


def viewer(
    member: str = "USA",
    clearance: Classification = Classification.NATO_SECRET,
    caveats: tuple[str, ...] = (),
    status: MemberStatus = ACTIVE,
) -> Viewer:
    return Viewer(
        user_id=1,
        name=f"{member.lower()}.analyst",
        member=member,
        member_status=status,
        clearance=clearance,
        caveats=frozenset(caveats),
        roles=frozenset({Role.ANALYST}),
    )


def label(
    classification: str = "NATO SECRET",
    releasable_to: tuple[str, ...] = ("NATO", "KOR"),
    originator: str = "USA",
    caveats: tuple[str, ...] = (),
) -> Label:
    return Label.build(classification, list(releasable_to), originator, list(caveats))


# -- Classification ------------------------------------------------------------------


@pytest.mark.parametrize("level", list(Classification))
def test_parse_reads_every_marking_back(level: Classification) -> None:
    assert Classification.parse(level.marking) is level


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("nato secret", Classification.NATO_SECRET),
        ("  NATO-Restricted ", Classification.NATO_RESTRICTED),
        ("cosmic_top   secret", Classification.COSMIC_TOP_SECRET),
        ("Public", Classification.PUBLIC),
        ("NATO\tUNCLASSIFIED", Classification.NATO_UNCLASSIFIED),
    ],
)
def test_parse_forgives_case_and_separators(text: str, level: Classification) -> None:
    assert Classification.parse(text) is level


def test_markings_and_order() -> None:
    assert [level.marking for level in Classification] == [
        "PUBLIC",
        "NATO UNCLASSIFIED",
        "NATO RESTRICTED",
        "NATO CONFIDENTIAL",
        "NATO SECRET",
        "COSMIC TOP SECRET",
    ]
    assert sorted(Classification, reverse=True)[0] is Classification.COSMIC_TOP_SECRET
    assert Classification.NATO_CONFIDENTIAL < Classification.NATO_SECRET


@pytest.mark.parametrize("text", ["TOP SECRET", "", "NATO", "secret", "NATO SECRET!"])
def test_parse_refuses_unknown_markings_naming_input_and_choices(text: str) -> None:
    with pytest.raises(InvalidInput) as error:
        Classification.parse(text)
    message = str(error.value)
    assert f"unknown classification {text!r}" in message
    assert "expected one of PUBLIC, NATO UNCLASSIFIED, NATO RESTRICTED" in message
    assert message.endswith("COSMIC TOP SECRET")


# -- Label.build and render ----------------------------------------------------------


def test_build_normalises_codes_and_caveats() -> None:
    built = Label.build("nato secret", ["nato", " kor", "KOR"], "usa", ["atomal", " crypto  x "])
    assert built == Label(
        Classification.NATO_SECRET,
        frozenset({"NATO", "KOR"}),
        "USA",
        frozenset({"ATOMAL", "CRYPTO X"}),
    )


def test_build_refuses_empty_releasability() -> None:
    with pytest.raises(InvalidInput, match=r"label\.releasable_to is empty"):
        Label.build("NATO SECRET", [], "USA")


@pytest.mark.parametrize(
    ("releasable_to", "originator", "caveats", "message"),
    [
        (["N"], "USA", [], "invalid releasable-to code 'N'"),
        (["NATO", "K*R"], "USA", [], "invalid releasable-to code 'K*R'"),
        (["NATO"], "1SA", [], "invalid member code '1SA'"),
        (["NATO"], "USA", ["ATOMAL;DROP"], "invalid caveat 'ATOMAL;DROP'"),
        (["NATO"], "USA", [""], "invalid caveat ''"),
    ],
)
def test_build_refuses_malformed_parts_naming_them(
    releasable_to: list[str], originator: str, caveats: list[str], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message.replace("*", r"\*")):
        Label.build("NATO SECRET", releasable_to, originator, caveats)


def test_build_refuses_unknown_classification() -> None:
    with pytest.raises(InvalidInput, match="unknown classification 'SECRETISSIMO'"):
        Label.build("SECRETISSIMO", ["NATO"], "USA")


@pytest.mark.parametrize(
    ("built", "banner"),
    [
        (label(), "NATO SECRET // REL TO NATO, KOR"),
        (label("COSMIC TOP SECRET", ("USA",)), "COSMIC TOP SECRET // REL TO USA"),
        (
            label(releasable_to=("KOR", "IP4", "NATO", "AUS")),
            "NATO SECRET // REL TO NATO, IP4, AUS, KOR",
        ),
        (
            label(caveats=("COMMERCIAL IMAGERY", "ATOMAL")),
            "NATO SECRET // ATOMAL // COMMERCIAL IMAGERY // REL TO NATO, KOR",
        ),
        (label("public", ("FVEY", "JPN")), "PUBLIC // REL TO FVEY, JPN"),
    ],
)
def test_render_banner(built: Label, banner: str) -> None:
    assert built.render() == banner


def test_json_form() -> None:
    built = label(releasable_to=("KOR", "NATO"), caveats=("ATOMAL",))
    assert built.to_json() == {
        "classification": "NATO SECRET",
        "releasable_to": ["NATO", "KOR"],
        "caveats": ["ATOMAL"],
        "originator": "USA",
    }
    assert Label.from_json(built.to_json()) == built


# -- may_see, clause by clause -------------------------------------------------------


@pytest.mark.parametrize(
    ("clearance", "expected"),
    [
        (Classification.NATO_CONFIDENTIAL, False),
        (Classification.NATO_SECRET, True),
        (Classification.COSMIC_TOP_SECRET, True),
    ],
)
def test_clearance_must_dominate_classification(clearance: Classification, expected: bool) -> None:
    assert may_see(viewer("GBR", clearance), label(), DIRECTORY) is expected


@pytest.mark.parametrize(
    ("member", "releasable_to", "expected"),
    [
        ("GBR", ("NATO",), True),  # through the NATO community
        ("KOR", ("NATO",), False),
        ("KOR", ("NATO", "KOR"), True),  # named directly
        ("JPN", ("IP4",), True),
        ("GBR", ("IP4",), False),
        ("AUS", ("FVEY",), True),  # an operator-defined community
        ("EST", ("FVEY",), False),
        ("GBR", ("EMPTY",), False),  # a community without members releases to nobody
        ("JPN", ("KOR", "AUS"), False),
    ],
)
def test_releasability_through_members_and_communities(
    member: str, releasable_to: tuple[str, ...], expected: bool
) -> None:
    assert may_see(viewer(member), label(releasable_to=releasable_to), DIRECTORY) is expected


def test_originator_sees_its_own_item_without_being_releasable_to() -> None:
    own = Label(Classification.NATO_SECRET, frozenset({"NATO"}), "JPN")
    assert may_see(viewer("JPN"), own, DIRECTORY)
    assert not may_see(viewer("KOR"), own, DIRECTORY)


@pytest.mark.parametrize(
    "clause",
    ["clearance", "caveat", "status"],
)
def test_originator_clause_does_not_bypass_the_other_clauses(clause: str) -> None:
    own = Label(Classification.NATO_SECRET, frozenset({"NATO"}), "JPN", frozenset({"ATOMAL"}))
    cleared = viewer("JPN", Classification.COSMIC_TOP_SECRET, ("ATOMAL",))
    assert may_see(cleared, own, DIRECTORY)
    directory = DIRECTORY
    if clause == "clearance":
        who = viewer("JPN", Classification.NATO_CONFIDENTIAL, ("ATOMAL",))
    elif clause == "caveat":
        who = viewer("JPN", Classification.COSMIC_TOP_SECRET)
    else:
        who = cleared
        directory = Directory(
            {**DIRECTORY.statuses, "JPN": MemberStatus.SUSPENDED}, DIRECTORY.communities
        )
    assert not may_see(who, own, directory)


@pytest.mark.parametrize(
    ("held", "expected"),
    [
        ((), False),
        (("ATOMAL",), False),
        (("ATOMAL", "COMMERCIAL IMAGERY"), True),
        (("ATOMAL", "COMMERCIAL IMAGERY", "CRYPTO"), True),
    ],
)
def test_viewer_must_hold_every_caveat(held: tuple[str, ...], expected: bool) -> None:
    marked = label(caveats=("ATOMAL", "COMMERCIAL IMAGERY"))
    assert may_see(viewer("KOR", caveats=held), marked, DIRECTORY) is expected


@pytest.mark.parametrize("member", ["POL", "NZL", "FRA"])
def test_only_active_members_see(member: str) -> None:
    """POL is suspended, NZL withdrawn, FRA is in NATO but not a member of this directory."""
    everyone = label("PUBLIC", ("NATO", "IP4"), originator=member)
    assert not may_see(viewer(member, Classification.COSMIC_TOP_SECRET), everyone, DIRECTORY)


def test_status_is_read_from_the_directory_not_the_viewer() -> None:
    """A viewer built before a suspension still carries `active`; the directory decides."""
    stale = viewer("POL", status=ACTIVE)
    assert not may_see(stale, label(releasable_to=("NATO",)), DIRECTORY)


# -- combine -------------------------------------------------------------------------


def test_combine_takes_highest_classification_and_union_of_caveats() -> None:
    derived = combine(
        [
            label("NATO RESTRICTED", ("NATO", "KOR"), caveats=("ATOMAL",)),
            label("NATO SECRET", ("NATO", "KOR"), caveats=("COMMERCIAL IMAGERY",)),
            label("NATO CONFIDENTIAL", ("NATO", "KOR")),
        ],
        "GBR",
        DIRECTORY,
    )
    assert derived.classification is Classification.NATO_SECRET
    assert derived.caveats == {"ATOMAL", "COMMERCIAL IMAGERY"}
    assert derived.originator == "GBR"


def test_combine_intersects_expanded_releasability() -> None:
    derived = combine(
        [label(releasable_to=("NATO", "KOR")), label(releasable_to=("USA", "KOR", "JPN"))],
        "USA",
        DIRECTORY,
    )
    assert derived.releasable_to == {"USA", "KOR"}
    assert derived.render() == "NATO SECRET // REL TO KOR, USA"


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        ((("NATO", "KOR"), ("NATO", "IP4")), {*NATO_NATIONS, "KOR"}),
        ((("IP4",), ("AUS", "JPN", "KOR", "NZL", "USA")), {"AUS", "JPN", "KOR", "NZL"}),
        ((("FVEY",), ("NATO",)), {"GBR", "USA"}),
    ],
)
def test_combine_names_members_not_communities(
    sources: tuple[tuple[str, ...], ...], expected: set[str]
) -> None:
    derived = combine([label(releasable_to=rel) for rel in sources], "USA", DIRECTORY)
    assert derived.releasable_to == expected


def test_a_community_redefined_later_does_not_widen_a_derived_label() -> None:
    derived = combine([label(releasable_to=("FVEY",))], "USA", DIRECTORY)
    wider = Directory(DIRECTORY.statuses, {**DIRECTORY.communities, "FVEY": frozenset(MEMBER_POOL)})
    outsiders = [m for m in MEMBER_POOL if m not in DIRECTORY.communities["FVEY"]]
    assert not any(may_see(viewer(m), derived, wider) for m in outsiders)


def test_combine_of_disjoint_releasability_releases_to_nobody_but_its_originator() -> None:
    derived = combine(
        [label(releasable_to=("IP4",)), label(releasable_to=("NATO",))], "USA", DIRECTORY
    )
    assert derived.releasable_to == frozenset()
    assert may_see(viewer("USA"), derived, DIRECTORY)
    assert not any(
        may_see(viewer(member), derived, DIRECTORY) for member in ("GBR", "EST", "KOR", "JPN")
    )


def test_combine_needs_a_source() -> None:
    with pytest.raises(InvalidInput, match="at least one source label"):
        combine([], "USA", DIRECTORY)


# -- check_may_create ----------------------------------------------------------------


def test_create_allows_a_label_within_the_callers_standing() -> None:
    check_may_create(
        viewer("KOR", Classification.NATO_SECRET, ("ATOMAL",)),
        label(releasable_to=("NATO", "IP4"), originator="KOR", caveats=("ATOMAL",)),
        DIRECTORY,
    )


def test_create_refuses_above_clearance() -> None:
    with pytest.raises(Forbidden) as error:
        check_may_create(
            viewer("USA", Classification.NATO_CONFIDENTIAL), label("COSMIC TOP SECRET"), DIRECTORY
        )
    assert str(error.value) == (
        "label.classification 'COSMIC TOP SECRET' is above the caller's clearance "
        "'NATO CONFIDENTIAL'"
    )


def test_create_refuses_a_caveat_not_held() -> None:
    with pytest.raises(Forbidden, match=r"label\.caveats ATOMAL, CRYPTO not held by the caller"):
        check_may_create(
            viewer("USA", caveats=("COMMERCIAL IMAGERY",)),
            label(caveats=("CRYPTO", "ATOMAL", "COMMERCIAL IMAGERY")),
            DIRECTORY,
        )


def test_create_refuses_a_label_not_releasable_to_own_member() -> None:
    with pytest.raises(Forbidden) as error:
        check_may_create(viewer("KOR"), label(releasable_to=("NATO",), originator="KOR"), DIRECTORY)
    assert str(error.value) == "label is not releasable to the caller's member KOR: REL TO NATO"


def test_create_refuses_unknown_members_and_communities() -> None:
    """FRA is a NATO nation but not a member of this directory."""
    with pytest.raises(InvalidInput) as error:
        check_may_create(viewer(), label(releasable_to=("NATO", "FRA", "QUAD")), DIRECTORY)
    assert str(error.value) == (
        "label.releasable_to names unknown members or communities: FRA, QUAD"
    )


def test_create_refuses_another_originator() -> None:
    with pytest.raises(Forbidden) as error:
        check_may_create(viewer("USA"), label(originator="GBR"), DIRECTORY)
    assert str(error.value) == "label.originator 'GBR' is not the caller's member 'USA'"


def test_create_refuses_an_inactive_member() -> None:
    with pytest.raises(Forbidden, match="member POL is not active"):
        check_may_create(viewer("POL"), label(originator="POL"), DIRECTORY)


# -- properties ----------------------------------------------------------------------

MEMBER_POOL = ("USA", "GBR", "EST", "POL", "FRA", "KOR", "JPN", "AUS", "NZL")
CAVEAT_POOL = ("ATOMAL", "CRYPTO", "COMMERCIAL IMAGERY", "NOFORN")
levels = st.sampled_from(list(Classification))
members = st.sampled_from(MEMBER_POOL)
caveat_sets = st.frozensets(st.sampled_from(CAVEAT_POOL), max_size=3)


@st.composite
def directories(draw: st.DrawFn) -> Directory:
    """Random statuses over the pool (FRA sometimes unknown) and random extra communities."""
    statuses = {
        code: draw(st.sampled_from(list(MemberStatus)))
        for code in MEMBER_POOL
        if code != "FRA" or draw(st.booleans())
    }
    communities = {
        "NATO": frozenset(NATO_NATIONS),
        "IP4": frozenset(IP4_NATIONS),
        "OPS": draw(st.frozensets(members)),
        "FVEY": frozenset({"USA", "GBR", "AUS", "NZL"}),
    }
    return Directory(statuses, communities)


def labels(originator: st.SearchStrategy[str] = members) -> st.SearchStrategy[Label]:
    return st.builds(
        Label,
        classification=levels,
        releasable_to=st.frozensets(
            st.sampled_from((*MEMBER_POOL, "NATO", "IP4", "OPS", "FVEY")), min_size=1, max_size=4
        ),
        originator=originator,
        caveats=caveat_sets,
    )


viewers = st.builds(
    Viewer,
    user_id=st.just(1),
    name=st.just("someone"),
    member=members,
    member_status=st.just(ACTIVE),
    clearance=levels,
    caveats=caveat_sets,
    roles=st.just(frozenset({Role.ANALYST})),
)


def expand(codes: frozenset[str], directory: Directory) -> frozenset[str]:
    """The test's own reading of expand(): a community stands for its members."""
    out: set[str] = set()
    for code in codes:
        out |= directory.communities.get(code, {code})
    return frozenset(out)


def by_definition(who: Viewer, item: Label, directory: Directory) -> bool:
    """DESIGN.md §2, word for word."""
    return (
        who.clearance >= item.classification
        and (who.member in expand(item.releasable_to, directory) or who.member == item.originator)
        and item.caveats <= who.caveats
        and directory.statuses.get(who.member) is MemberStatus.ACTIVE
    )


def sees_by_releasability(who: Viewer, item: Label, directory: Directory) -> bool:
    return may_see(who, item, directory) and who.member in expand(item.releasable_to, directory)


@given(viewers, labels(), directories())
def test_may_see_is_the_rule_of_the_design(who: Viewer, item: Label, directory: Directory) -> None:
    assert may_see(who, item, directory) is by_definition(who, item, directory)


@given(viewers, labels(), directories(), levels, caveat_sets)
def test_more_clearance_or_caveats_never_hides(
    who: Viewer, item: Label, directory: Directory, level: Classification, more: frozenset[str]
) -> None:
    if may_see(who, item, directory):
        stronger = Viewer(
            who.user_id,
            who.name,
            who.member,
            who.member_status,
            max(level, who.clearance),
            who.caveats | more,
            who.roles,
        )
        assert may_see(stronger, item, directory)


@given(viewers, labels(), directories(), st.sampled_from(MEMBER_POOL))
def test_suspending_a_member_never_reveals(
    who: Viewer, item: Label, directory: Directory, code: str
) -> None:
    suspended = Directory(
        {**directory.statuses, code: MemberStatus.SUSPENDED}, directory.communities
    )
    if may_see(who, item, suspended):
        assert may_see(who, item, directory)
    if code == who.member:
        assert not may_see(who, item, suspended)


def entitled(sources: list[Label], origin: str, directory: Directory) -> bool:
    return all(
        origin == s.originator or origin in expand(s.releasable_to, directory) for s in sources
    )


def readable_by(origin: str, sources: list[Label]) -> list[Label]:
    """The sources made releasable to the deriving member too, as a derivation requires."""
    return [replace(s, releasable_to=s.releasable_to | {origin}) for s in sources]


@given(st.lists(labels(), min_size=1, max_size=5), directories(), members)
def test_deriving_from_a_source_the_deriver_may_not_read_is_refused(
    sources: list[Label], directory: Directory, origin: str
) -> None:
    if entitled(sources, origin, directory):
        combine(sources, origin, directory)
    else:
        with pytest.raises(Forbidden, match="may not derive"):
            combine(sources, origin, directory)


@given(labels(), labels(), directories(), members)
def test_combine_is_commutative(a: Label, b: Label, directory: Directory, origin: str) -> None:
    a, b = readable_by(origin, [a, b])
    assert combine([a, b], origin, directory) == combine([b, a], origin, directory)


@given(labels(), labels(), labels(), directories(), members)
def test_combine_is_associative(
    a: Label, b: Label, c: Label, directory: Directory, origin: str
) -> None:
    a, b, c = readable_by(origin, [a, b, c])
    flat = combine([a, b, c], origin, directory)
    left = combine([combine([a, b], origin, directory), c], origin, directory)
    right = combine([a, combine([b, c], origin, directory)], origin, directory)
    assert left == flat == right


@given(labels(), viewers, directories())
def test_combining_one_label_changes_nothing_in_effect(
    item: Label, who: Viewer, directory: Directory
) -> None:
    alone = combine([item], item.originator, directory)
    assert alone.classification == item.classification
    assert alone.caveats == item.caveats
    assert expand(alone.releasable_to, directory) == expand(item.releasable_to, directory)
    assert may_see(who, alone, directory) is may_see(who, item, directory)


@given(st.lists(labels(), min_size=1, max_size=5), directories(), members)
def test_combine_is_max_intersection_and_union(
    sources: list[Label], directory: Directory, origin: str
) -> None:
    sources = readable_by(origin, sources)
    derived = combine(sources, origin, directory)
    assert derived.classification == max(s.classification for s in sources)
    assert derived.caveats == frozenset().union(*(s.caveats for s in sources))
    assert derived.releasable_to == reduce(
        frozenset.intersection, (expand(s.releasable_to, directory) for s in sources)
    )


@given(st.lists(labels(), min_size=1, max_size=5), viewers, directories(), members)
def test_a_viewer_who_may_see_the_derived_item_may_see_every_source(
    sources: list[Label], who: Viewer, directory: Directory, origin: str
) -> None:
    """A derived item is made from sources its originator can read (combine insists)."""
    sources = readable_by(origin, sources)
    derived = combine(sources, origin, directory)
    if may_see(who, derived, directory):
        assert all(may_see(who, s, directory) for s in sources)


@given(st.lists(labels(), min_size=1, max_size=5), viewers, directories(), members)
def test_others_see_the_derived_item_iff_releasable_from_every_source(
    sources: list[Label], who: Viewer, directory: Directory, origin: str
) -> None:
    """For anyone but the deriving member: sees it iff each source is releasable to them."""
    if who.member == origin:
        return
    sources = readable_by(origin, sources)
    derived = combine(sources, origin, directory)
    assert may_see(who, derived, directory) is all(
        sees_by_releasability(who, s, directory) for s in sources
    )


@given(viewers, labels(), directories())
def test_what_one_may_create_one_may_see(who: Viewer, item: Label, directory: Directory) -> None:
    own = Label(item.classification, item.releasable_to, who.member, item.caveats)
    try:
        check_may_create(who, own, directory)
    except (Forbidden, InvalidInput):
        return
    assert may_see(who, own, directory)
    assert who.member in expand(own.releasable_to, directory)


@settings(max_examples=200)
@given(labels())
def test_label_json_round_trips(item: Label) -> None:
    assert Label.from_json(item.to_json()) == item
    banner = item.render()
    assert banner.startswith(item.classification.marking + " // ")
    assert all(f" // {caveat} // " in banner for caveat in item.caveats)


def test_a_member_may_not_derive_from_a_source_not_releasable_to_it() -> None:
    """Else the originator clause would let the deriver see the derived item."""
    directory = Directory(
        statuses={"USA": MemberStatus.ACTIVE, "KOR": MemberStatus.ACTIVE},
        communities={"NATO": frozenset({"USA"})},
    )
    nato_only = Label.build("NATO SECRET", ["NATO"], "USA")
    with pytest.raises(Forbidden, match="KOR may not derive"):
        combine([nato_only], "KOR", directory)
