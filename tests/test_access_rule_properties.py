"""Every read path shows a user exactly what `bices.policy.may_see` allows.

Each hypothesis example builds a node of its own, defines an operator community, posts a
few reports (some in several versions) under random labels, adds random users, and then
compares every answer of the REST API with an oracle computed here from the labels posted:
single reads and their 404s, version histories, attachments, listings with their cursor and
`total`, search with `total` and facets, and the audit trail. Suspending a member closes
every path to its users without changing what anyone else sees; redefining a community
changes what its members see at once.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bices.api import create_app
from bices.domain.errors import Conflict
from bices.domain.labels import Classification, Label
from bices.domain.members import IP4_NATIONS, NATO_NATIONS, MemberStatus
from bices.domain.reports import ReportType
from bices.domain.users import Role, Viewer
from bices.node import Node
from bices.policy import Directory, may_see
from bices.store import sqlite_listing
from bices.store.base import ReportWrite
from tests.conftest import MEMBERS, auth, make_node, report_json

COMMUNITY = "OPS"  # the operator-defined community of each example
CAVEATS = ("ATOMAL", "CRYPTO", "COMMERCIAL IMAGERY")
WORDS = ("alpha", "bravo", "charlie")  # search terms; every body also says "bulletin"
LANGUAGES = ("en", "ko", "ja", "fr")
MISSING = "00000000-0000-4000-8000-000000000000"

RULE_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PHASED_SETTINGS = settings(RULE_SETTINGS, max_examples=15)  # tests that read in several phases

# -- what an example posts, as plain data --------------------------------------------


@dataclass(frozen=True)
class VersionSpec:
    classification: Classification
    releasable_to: tuple[str, ...]
    caveats: tuple[str, ...]
    words: tuple[str, ...]


@dataclass(frozen=True)
class ReportSpec:
    originator: str
    type: ReportType
    language: str
    versions: tuple[VersionSpec, ...]


@dataclass(frozen=True)
class UserSpec:
    member: str
    clearance: Classification
    caveats: tuple[str, ...]
    role: str


@dataclass(frozen=True)
class WorldSpec:
    community: tuple[str, ...]
    reports: tuple[ReportSpec, ...]
    users: tuple[UserSpec, ...]
    suspended: tuple[str, ...]
    redefined: tuple[str, ...]  # the operator community's members after a redefinition


def communities(community: tuple[str, ...]) -> dict[str, frozenset[str]]:
    return {
        "NATO": frozenset(NATO_NATIONS),
        "IP4": frozenset(IP4_NATIONS),
        COMMUNITY: frozenset(community),
    }


def codes_of(releasable_to: tuple[str, ...], community: tuple[str, ...]) -> set[str]:
    known = communities(community)
    return set().union(*(known.get(code, {code}) for code in releasable_to))


@st.composite
def version_specs(draw: st.DrawFn, originator: str, community: tuple[str, ...]) -> VersionSpec:
    """A random label its originator may create: releasable to its own member somehow."""
    releasable = draw(
        st.lists(
            st.sampled_from((*MEMBERS, "NATO", "IP4", COMMUNITY)),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    if originator not in codes_of(tuple(releasable), community):
        releasable.append(originator)
    return VersionSpec(
        classification=draw(st.sampled_from(list(Classification))),
        releasable_to=tuple(releasable),
        caveats=tuple(draw(st.lists(st.sampled_from(CAVEATS), max_size=2, unique=True))),
        words=tuple(draw(st.lists(st.sampled_from(WORDS), max_size=2, unique=True))),
    )


@st.composite
def report_specs(draw: st.DrawFn, community: tuple[str, ...]) -> ReportSpec:
    originator = draw(st.sampled_from(MEMBERS))
    count = draw(st.integers(min_value=1, max_value=3))
    return ReportSpec(
        originator=originator,
        type=draw(st.sampled_from(list(ReportType))),
        language=draw(st.sampled_from(LANGUAGES)),
        versions=tuple(draw(version_specs(originator, community)) for _ in range(count)),
    )


user_specs = st.builds(
    UserSpec,
    member=st.sampled_from(MEMBERS),
    clearance=st.sampled_from(list(Classification)),
    caveats=st.lists(st.sampled_from(CAVEATS), max_size=3, unique=True).map(tuple),
    role=st.sampled_from(("analyst", "member-admin", "operator")),
)


@st.composite
def worlds(draw: st.DrawFn) -> WorldSpec:
    members = st.lists(st.sampled_from(MEMBERS), max_size=4, unique=True).map(tuple)
    community = draw(members)
    return WorldSpec(
        community=community,
        reports=tuple(draw(st.lists(report_specs(community), min_size=1, max_size=5))),
        users=tuple(draw(st.lists(user_specs, min_size=1, max_size=5))),
        redefined=draw(members),
        suspended=tuple(draw(st.lists(st.sampled_from(MEMBERS), min_size=1, max_size=3,
                                      unique=True))),
    )  # fmt: skip


# -- the world as built, and the oracle ----------------------------------------------


@dataclass
class Posted:
    id: str
    spec: ReportSpec
    labels: list[Label]  # one per version, as the test posted it
    attachments: list[str]  # sha256 of each version's attachment

    @property
    def current(self) -> int:
        return len(self.labels)


@dataclass
class User:
    name: str
    token: str
    spec: UserSpec


@dataclass
class World:
    node: Node
    client: TestClient
    spec: WorldSpec
    reports: list[Posted]
    users: list[User]
    statuses: dict[str, MemberStatus] = field(default_factory=dict)
    community: tuple[str, ...] = ()  # the operator community's members as they are now

    def directory(self) -> Directory:
        """The oracle's directory, from what the test itself set up."""
        return Directory(dict(self.statuses), communities(self.community))

    def sees(self, user: User, posted: Posted, version: int) -> bool:
        """The oracle: the rule of DESIGN.md §2 applied to the label the test posted,
        which `bices.policy.may_see` must agree with."""
        label = posted.labels[version - 1]
        releasable = codes_of(tuple(label.releasable_to), self.community)
        expected = (
            user.spec.clearance >= label.classification
            and (user.spec.member in releasable or user.spec.member == label.originator)
            and label.caveats <= set(user.spec.caveats)
            and self.statuses[user.spec.member] is MemberStatus.ACTIVE
        )
        assert may_see(viewer_of(user, self.statuses), label, self.directory()) is expected
        return expected

    def visible_versions(self, user: User, posted: Posted) -> list[int]:
        return [n for n in range(1, posted.current + 1) if self.sees(user, posted, n)]

    def visible_current(self, user: User) -> list[Posted]:
        return [p for p in self.reports if self.sees(user, p, p.current)]

    def get(self, user: User, path: str, **params: Any) -> httpx2.Response:
        return self.client.get(path, headers=auth(user.token), params=params or None)


def viewer_of(user: User, statuses: dict[str, MemberStatus]) -> Viewer:
    return Viewer(
        user_id=0,
        name=user.name,
        member=user.spec.member,
        member_status=statuses[user.spec.member],
        clearance=user.spec.clearance,
        caveats=frozenset(user.spec.caveats),
        roles=frozenset({Role(user.spec.role)}),
    )


def draft(version: VersionSpec, index: int, number: int, attachment: bytes) -> dict[str, Any]:
    return report_json(
        title=f"Report {index} version {number}",
        body=" ".join(("bulletin", *version.words, "from the coastal watch")),
        label={
            "classification": version.classification.marking,
            "releasable_to": list(version.releasable_to),
            "caveats": list(version.caveats),
        },
        attachments=[
            {
                "name": "note.txt",
                "media_type": "text/plain",
                "content_base64": base64.b64encode(attachment).decode(),
            }
        ],
    )


@contextmanager
def built(spec: WorldSpec, factory: pytest.TempPathFactory, backend: str) -> Iterator[World]:
    """A fresh node with the example's community, reports and users, served in-process."""
    node = make_node(factory.mktemp("rule"), backend)
    try:
        with TestClient(create_app(node)) as client:
            node.coalition.define_community(COMMUNITY, list(spec.community))
            writers = {
                code: node.coalition.add_user(
                    code, f"{code.lower()}.writer", "COSMIC TOP SECRET", CAVEATS, ("analyst",)
                )[1]
                for code in MEMBERS
            }
            reports: list[Posted] = []
            for index, report in enumerate(spec.reports):
                posted = Posted("", report, [], [])
                for number, version in enumerate(report.versions, start=1):
                    content = f"attachment of report {index} version {number}".encode()
                    body = draft(version, index, number, content)
                    body.update(type=report.type.value, language=report.language)
                    headers = auth(writers[report.originator])
                    if number == 1:
                        answer = client.post("/api/v1/reports", json=body, headers=headers)
                        assert answer.status_code == 201, answer.text
                        posted.id = answer.json()["id"]
                    else:
                        answer = client.put(
                            f"/api/v1/reports/{posted.id}", json=body, headers=headers
                        )
                        assert answer.status_code == 200, answer.text
                    assert answer.json()["version"] == number
                    posted.labels.append(
                        Label.build(version.classification, list(version.releasable_to),
                                    report.originator, list(version.caveats))
                    )  # fmt: skip
                    posted.attachments.append(hashlib.sha256(content).hexdigest())
                reports.append(posted)
            users = [
                User(
                    f"{user.member.lower()}.user{number}",
                    node.coalition.add_user(
                        user.member,
                        f"{user.member.lower()}.user{number}",
                        user.clearance.marking,
                        user.caveats,
                        (user.role,),
                    )[1],
                    user,
                )
                for number, user in enumerate(spec.users)
            ]
            statuses = {code: MemberStatus.ACTIVE for code in MEMBERS}
            yield World(node, client, spec, reports, users, statuses, spec.community)
    finally:
        node.close()


def redefine(world: World, community: tuple[str, ...]) -> None:
    world.node.coalition.define_community(COMMUNITY, list(community))
    world.community = community


def set_status(world: World, codes: tuple[str, ...], status: MemberStatus) -> None:
    for code in codes:
        world.node.coalition.set_status(code, status)
        world.statuses[code] = status


# -- the checks, one per read path ---------------------------------------------------


def assert_like_missing(hidden: httpx2.Response, missing: httpx2.Response, report_id: str) -> None:
    """A hidden report answers exactly as a missing one, its id aside."""
    assert hidden.status_code == missing.status_code == 404, hidden.text
    assert hidden.text.replace(report_id, MISSING) == missing.text
    assert hidden.headers["content-type"] == missing.headers["content-type"]


def check_single_reads(world: World, user: User) -> None:
    """GET a report, its label, its versions one by one and together, verify, attachments."""
    base = "/api/v1/reports"
    for posted in world.reports:
        rid = posted.id
        visible = world.visible_versions(user, posted)

        current = world.get(user, f"{base}/{rid}")
        label_xml = world.get(user, f"{base}/{rid}/label.xml")
        if posted.current in visible:
            assert current.status_code == 200, (posted, current.text)
            assert current.json()["version"] == posted.current
            assert (
                current.json()["label"]["releasable_to"]
                == (posted.labels[-1].to_json()["releasable_to"])
            )
            assert label_xml.status_code == 200, label_xml.text
        else:
            assert_like_missing(current, world.get(user, f"{base}/{MISSING}"), rid)
            assert_like_missing(label_xml, world.get(user, f"{base}/{MISSING}/label.xml"), rid)

        history = world.get(user, f"{base}/{rid}/versions")
        verify = world.get(user, f"{base}/{rid}/verify")
        if visible:
            assert history.status_code == 200, history.text
            assert [v["version"] for v in history.json()] == visible
            assert [v["label"]["classification"] for v in history.json()] == [
                posted.labels[n - 1].classification.marking for n in visible
            ]
            assert verify.status_code == 200, verify.text
            assert [(v["version"], v["valid"]) for v in verify.json()["versions"]] == [
                (n, True) for n in visible
            ]
        else:
            assert_like_missing(history, world.get(user, f"{base}/{MISSING}/versions"), rid)
            assert_like_missing(verify, world.get(user, f"{base}/{MISSING}/verify"), rid)

        for number in range(1, posted.current + 1):
            one = world.get(user, f"{base}/{rid}/versions/{number}")
            sha = posted.attachments[number - 1]
            blob = world.get(user, f"{base}/{rid}/attachments/{sha}")
            if number in visible:
                assert one.status_code == 200, one.text
                assert one.json()["version"] == number
                assert blob.status_code == 200, blob.text
                assert hashlib.sha256(blob.content).hexdigest() == sha
            else:
                missing_one = world.get(user, f"{base}/{MISSING}/versions/{number}")
                assert_like_missing(one, missing_one, rid)
                missing_blob = world.get(user, f"{base}/{MISSING}/attachments/{sha}")
                assert_like_missing(blob, missing_blob, rid)


def walk(world: World, user: User, path: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Every page of a listing by its cursor; each page answers 200."""
    pages: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = dict(params, limit=limit) | ({} if cursor is None else {"cursor": cursor})
        answer = world.get(user, path, **query)
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        cursor = pages[-1]["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) <= 50, "the cursor does not advance"


def check_listing(world: World, user: User, limit: int, member: str) -> None:
    """GET /reports: every visible current version once, newest first, `total` on each page."""
    expected = world.visible_current(user)
    pages = walk(world, user, "/api/v1/reports", limit)
    ids = [item["id"] for page in pages for item in page["items"]]
    assert ids == [p.id for p in reversed(expected)], "listing differs from the rule"
    assert {page["total"] for page in pages} == {len(expected)}
    for page in pages:
        for item in page["items"]:
            assert item["version"] == next(p.current for p in expected if p.id == item["id"])

    filtered = [p for p in expected if p.spec.originator == member]
    pages = walk(world, user, "/api/v1/reports", limit, member=member)
    assert [item["id"] for page in pages for item in page["items"]] == [
        p.id for p in reversed(filtered)
    ]
    assert {page["total"] for page in pages} == {len(filtered)}


def check_search(world: World, user: User, q: str, limit: int) -> None:
    """GET /search: items, `total` and every facet count over the visible matches only."""
    expected = [
        p for p in world.visible_current(user) if q == "bulletin" or q in p.spec.versions[-1].words
    ]
    pages = walk(world, user, "/api/v1/search", limit, q=q)
    ids = [item["id"] for page in pages for item in page["items"]]
    assert sorted(ids) == sorted(p.id for p in expected), f"search {q!r} differs from the rule"
    assert len(ids) == len(set(ids)), f"search {q!r} pages repeat an item: {ids}"
    facets = {
        "type": Counter(p.spec.type.value for p in expected),
        "member": Counter(p.spec.originator for p in expected),
        "classification": Counter(p.labels[-1].classification.marking for p in expected),
        "language": Counter(p.spec.language for p in expected),
    }
    for page in pages:
        assert page["total"] == len(expected), f"search {q!r} total differs from the rule"
        assert page["facets"] == {name: dict(counts) for name, counts in facets.items()}


def audit_events(world: World, user: User) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        answer = world.get(user, "/api/v1/audit", after=after, limit=200)
        assert answer.status_code == 200, answer.text
        events.extend(answer.json()["items"])
        if answer.json()["next_after"] is None:
            return events
        after = answer.json()["next_after"]


def check_audit(world: World, user: User) -> None:
    """GET /audit: events about reports only where the viewer may see the version concerned."""
    if user.spec.role == "analyst":
        answer = world.get(user, "/api/v1/audit")
        assert answer.status_code == 403, answer.text
        return
    events = audit_events(world, user)
    by_id = {p.id: p for p in world.reports}
    hidden = {p.id for p in world.reports if not world.visible_versions(user, p)}
    for event in events:
        if user.spec.role == "member-admin":
            assert event["member"] == user.spec.member, event
        target = event["target"]
        if target in by_id:
            version = event["detail"]["version"]
            assert world.sees(user, by_id[target], version), (
                f"{user.spec} sees audit event {event['action']} of {target} v{version}"
            )
        named = [rid for rid in hidden if rid in json.dumps(event)]
        assert not named, f"audit event {event} names reports hidden from {user.spec}: {named}"

    created = {
        (event["target"], event["detail"]["version"])
        for event in events
        if event["action"] in {"report.create", "report.update"}
    }
    assert created == {
        (p.id, n)
        for p in world.reports
        for n in world.visible_versions(user, p)
        if user.spec.role == "operator" or p.spec.originator == user.spec.member
    }


def check_every_path(world: World, user: User, limit: int, q: str, member: str) -> None:
    check_single_reads(world, user)
    check_listing(world, user, limit, member)
    check_search(world, user, "bulletin", limit)
    check_search(world, user, q, limit)


def check_closed(world: World, user: User) -> None:
    """A user of a suspended member gets 403 on every path, alike for any id or none."""
    base = "/api/v1/reports"
    paths = ["/api/v1/reports", "/api/v1/audit", "/api/v1/search?q=bulletin"]
    for rid in [MISSING, *(p.id for p in world.reports)]:
        sha = world.reports[0].attachments[0]
        paths += [f"{base}/{rid}", f"{base}/{rid}/versions", f"{base}/{rid}/versions/1",
                  f"{base}/{rid}/verify", f"{base}/{rid}/label.xml",
                  f"{base}/{rid}/attachments/{sha}"]  # fmt: skip
    bodies = set()
    for path in paths:
        answer = world.get(user, path)
        assert answer.status_code == 403, (path, answer.text)
        bodies.add(answer.text)
    assert bodies == {json.dumps({"detail": f"member {user.spec.member} is suspended"},
                                 separators=(",", ":"))}  # fmt: skip


# -- the properties ------------------------------------------------------------------

limits = st.integers(min_value=1, max_value=3)


@RULE_SETTINGS
@given(spec=worlds())
def test_single_reads_show_exactly_what_the_rule_allows(
    tmp_path_factory: pytest.TempPathFactory, backend: str, spec: WorldSpec
) -> None:
    with built(spec, tmp_path_factory, backend) as world:
        for user in world.users:
            check_single_reads(world, user)


@RULE_SETTINGS
@given(spec=worlds(), limit=limits, member=st.sampled_from(MEMBERS))
def test_listing_items_and_total_follow_the_rule(
    tmp_path_factory: pytest.TempPathFactory, backend: str, spec: WorldSpec, limit: int, member: str
) -> None:
    with built(spec, tmp_path_factory, backend) as world:
        for user in world.users:
            check_listing(world, user, limit, member)


@contextmanager
def search_plan(words_only_max: int) -> Iterator[None]:
    """Force one of the store's search plans: 0 sends every query through the label tokens
    of FTS5; a large number ranks small match sets on the words and filters afterwards."""
    saved = sqlite_listing.WORDS_ONLY_MAX
    sqlite_listing.WORDS_ONLY_MAX = words_only_max
    try:
        yield
    finally:
        sqlite_listing.WORDS_ONLY_MAX = saved


@RULE_SETTINGS
@given(
    spec=worlds(),
    limit=limits,
    q=st.sampled_from(WORDS),
    words_only_max=st.sampled_from([0, 2000]),
)
def test_search_items_total_and_facets_follow_the_rule(
    tmp_path_factory: pytest.TempPathFactory,
    backend: str,
    spec: WorldSpec,
    limit: int,
    q: str,
    words_only_max: int,
) -> None:
    with built(spec, tmp_path_factory, backend) as world, search_plan(words_only_max):
        for user in world.users:
            check_search(world, user, "bulletin", limit)
            check_search(world, user, q, limit)


@PHASED_SETTINGS
@given(spec=worlds(), q=st.sampled_from(WORDS))
def test_audit_trail_names_only_reports_the_viewer_may_see(
    tmp_path_factory: pytest.TempPathFactory, backend: str, spec: WorldSpec, q: str
) -> None:
    with built(spec, tmp_path_factory, backend) as world:
        for user in world.users:  # every user reads everything it can, by every path
            check_every_path(world, user, 2, q, user.spec.member)
        for user in world.users:
            check_audit(world, user)


@PHASED_SETTINGS
@given(spec=worlds(), limit=limits, q=st.sampled_from(WORDS))
def test_suspension_closes_every_path_and_leaks_nothing(
    tmp_path_factory: pytest.TempPathFactory, backend: str, spec: WorldSpec, limit: int, q: str
) -> None:
    with built(spec, tmp_path_factory, backend) as world:
        for user in world.users:  # fill the per-viewer caches before the directory changes
            check_listing(world, user, limit, user.spec.member)
        set_status(world, spec.suspended, MemberStatus.SUSPENDED)
        for user in world.users:
            if user.spec.member in spec.suspended:
                check_closed(world, user)
            else:
                check_every_path(world, user, limit, q, spec.suspended[0])
                check_audit(world, user)
        set_status(world, spec.suspended, MemberStatus.ACTIVE)
        for user in world.users:
            check_every_path(world, user, limit, q, spec.suspended[0])


@PHASED_SETTINGS
@given(spec=worlds(), limit=limits, q=st.sampled_from(WORDS))
def test_redefining_a_community_takes_effect_at_once(
    tmp_path_factory: pytest.TempPathFactory, backend: str, spec: WorldSpec, limit: int, q: str
) -> None:
    with built(spec, tmp_path_factory, backend) as world:
        for user in world.users:  # fill the per-viewer caches before the directory changes
            check_listing(world, user, limit, user.spec.member)
            check_search(world, user, "bulletin", limit)
        redefine(world, spec.redefined)
        for user in world.users:
            check_every_path(world, user, limit, q, user.spec.member)
            check_audit(world, user)


def test_a_write_that_rolls_back_leaves_no_label_behind(
    tmp_path_factory: pytest.TempPathFactory,
    backend: str,
) -> None:
    """Of two concurrent PUTs of one report, the loser fails inside the store's write
    transaction (409) after its new label was written there. Played here without threads:
    the store is handed the version number the winner already took, as the loser does."""
    node = make_node(tmp_path_factory.mktemp("rollback"), backend)
    try:
        with TestClient(create_app(node)) as client:
            add_user = node.coalition.add_user
            usa = add_user("USA", "usa.writer", "COSMIC TOP SECRET", (), ("analyst",))[1]
            kor = add_user("KOR", "kor.reader", "COSMIC TOP SECRET", (), ("analyst",))[1]
            first = client.post("/api/v1/reports", json=report_json(), headers=auth(usa))
            assert first.status_code == 201, first.text
            current = node.store.reports.current_unfiltered(first.json()["id"])
            assert current is not None
            lost = replace(current, label=Label.build("PUBLIC", ["NATO", "IP4"], "USA"))
            with pytest.raises(Conflict):
                node.store.reports.add([ReportWrite(lost)])

            assert client.get("/api/v1/reports", headers=auth(kor)).json()["total"] == 1
            usa_only = report_json(
                label={"classification": "COSMIC TOP SECRET", "releasable_to": ["USA"]}
            )
            second = client.post("/api/v1/reports", json=usa_only, headers=auth(usa))
            assert second.status_code == 201, second.text
            hidden_id = second.json()["id"]

            assert_like_missing(
                client.get(f"/api/v1/reports/{hidden_id}", headers=auth(kor)),
                client.get(f"/api/v1/reports/{MISSING}", headers=auth(kor)),
                hidden_id,
            )
            listing = client.get("/api/v1/reports", headers=auth(kor)).json()
            assert [item["id"] for item in listing["items"]] == [first.json()["id"]]
            assert listing["total"] == 1
            found = client.get("/api/v1/search", params={"q": "launch"}, headers=auth(kor))
            assert found.json()["total"] == 1
    finally:
        node.close()
