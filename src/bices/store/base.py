"""The storage interface every backend implements (SQLite now, PostgreSQL next).

Every read of labelled items takes the `Viewer` and applies `bices.policy.may_see` to the
node's distinct labels; the backend filters rows by the resulting label ids in its query,
so items, totals and facets all come from the same visible set. Every write takes the
audit event that records it and stores both in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bices.domain.audit import AuditDraft, AuditEvent
from bices.domain.corroboration import Reported
from bices.domain.cursors import Sealer
from bices.domain.fingerprints import Fingerprint
from bices.domain.labels import Classification, Label
from bices.domain.members import Member, MemberKind, MemberStatus
from bices.domain.peers import Peer, PeerStatus
from bices.domain.reports import ReportType, ReportVersion
from bices.domain.requirements import Requirement, RequirementDraft
from bices.domain.rfis import Change, Rfi, RfiFilter, RfiPage
from bices.domain.users import Role, Viewer
from bices.policy import Directory
from bices.store.taxii import TaxiiRecords


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    member: str
    name: str
    clearance: Classification
    caveats: frozenset[str]
    roles: frozenset[Role]
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "member": self.member,
            "name": self.name,
            "clearance": self.clearance.marking,
            "caveats": sorted(self.caveats),
            "roles": sorted(role.value for role in self.roles),
        }


@dataclass(frozen=True, slots=True)
class Accession:
    """An application to join, and the votes of active members on it."""

    code: str
    name: str
    kind: MemberKind
    sponsor: str
    communities: tuple[str, ...]
    status: str  # pending, approved, rejected
    applied_at: datetime
    public_key: str | None = None  # given when the applicant keeps its own signing key
    approvals: tuple[str, ...] = ()
    rejections: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "kind": self.kind.value,
            "sponsor": self.sponsor,
            "communities": list(self.communities),
            "status": self.status,
            "public_key": self.public_key,
            "approvals": list(self.approvals),
            "rejections": list(self.rejections),
        }


@dataclass(frozen=True, slots=True)
class ReportFilter:
    """Filters shared by listing and search; None means no filter."""

    types: frozenset[ReportType] | None = None
    originators: frozenset[str] | None = None
    classifications: frozenset[Classification] | None = None
    languages: frozenset[str] | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Page:
    items: list[ReportVersion]
    total: int
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class SearchResult:
    """A page of hits with the total and facets of every visible match, or, when `exact`
    is False (more matches than the store ranks), a lower-bound total, facets of the newest
    matches it examined, and hits newest first."""

    items: list[ReportVersion]
    total: int
    facets: dict[str, dict[str, int]]
    next_cursor: str | None
    exact: bool = True


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """An attachment's bytes and the visible version through which they were reached."""

    sha256: str
    data: bytes
    carrier: ReportVersion


@dataclass(slots=True)
class ReportWrite:
    """A version to store with its attachments' bytes and its audit event."""

    version: ReportVersion
    # Attachment bytes by their sha256, which the maker of the write computed from them or
    # checked them against; the store keeps them under it (content-addressed).
    blobs: dict[str, bytes] = field(default_factory=dict)
    audit: AuditDraft | None = None
    received: bool = False  # from a peer node: earlier versions may never have been due here
    tearline_of: tuple[str, int] | None = None  # the report and version this one sanitises


@dataclass(frozen=True, slots=True)
class EntitySummary:
    """A canonical entity as one viewer sees it: `reports` counts the current versions
    visible to that viewer that mention it."""

    id: str  # the public id: a digest of the key
    key: str
    type: str
    canonical: str
    reports: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "canonical": self.canonical,
                "reports": self.reports}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Exploited:
    """What the worker found in one stored version."""

    seq: int
    result: dict[str, Any]  # the extraction, as `bices extract --json` prints it
    fingerprint: Fingerprint | None


@dataclass(frozen=True, slots=True)
class Link:
    """A report correlated with another: `duplicate` (same words), `near-duplicate`
    (estimated Jaccard similarity of 4-word shingles ≥ 0.8) or `related` (`score` entities
    in common, reported within three days of each other)."""

    report: ReportVersion
    kind: str
    score: float


@dataclass(frozen=True, slots=True)
class Watch:
    """An entity a user watches, by canonical name (case does not matter)."""

    id: int
    name: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "created_at": self.created_at.isoformat()}


@dataclass(frozen=True, slots=True)
class Alert:
    """A report that mentions a watched entity."""

    id: int
    watch: str
    at: datetime
    report: ReportVersion


@dataclass(frozen=True, slots=True)
class EntityView:
    """An entity page: the names it goes by and the reports that mention it, newest first,
    all taken from reports the viewer may see."""

    summary: EntitySummary
    aliases: list[str]
    reports: list[ReportVersion]


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One row of the outbox: `kind` is `report` (item_id = report id, revision = version),
    `rfi` (item_id = RFI id, revision = its revision) or `alert` (item_id = report id,
    revision = the watcher's alert number, user_id = the watcher); `label_id` is the label
    of what the event shows, which the access rule decides on at send time."""

    seq: int
    kind: str
    item_id: str
    revision: int
    label_id: int
    at: datetime
    user_id: int | None = None


class Requirements(Protocol):
    """Each user's standing requirements; only their owner reads or changes them."""

    def add(self, user_id: int, draft: RequirementDraft, audit: AuditDraft) -> Requirement: ...
    def replace(
        self, user_id: int, n: int, draft: RequirementDraft, audit: AuditDraft
    ) -> Requirement | None: ...
    def remove(self, user_id: int, n: int, audit: AuditDraft) -> bool: ...
    def get(self, user_id: int, n: int) -> Requirement | None: ...
    def of_user(self, user_id: int) -> list[Requirement]: ...
    def version(self) -> int: ...


class Rfis(Protocol):
    """Requests for information: each change stored with its history entry, its `rfi`
    outbox event and its audit in one transaction; reads under the rule."""

    def create(self, rfi: Rfi, audit: Sequence[AuditDraft]) -> None: ...
    def change(
        self,
        rfi: Rfi,
        change: Change,
        audit: Sequence[AuditDraft],
        report: ReportWrite | None = None,
    ) -> list[ReportVersion]:
        """Apply a change to the RFI as read (409 if it changed since); `report`, a new
        answer report, is stored in the same transaction."""
        ...

    def get(self, viewer: Viewer, rfi_id: str) -> Rfi | None: ...
    def page(
        self, viewer: Viewer, where: RfiFilter, cursor: str | None, limit: int, now: datetime
    ) -> RfiPage: ...
    def event_payload(self, rfi_id: str, revision: int) -> dict[str, Any] | None:
        """The RFI as it was at a revision (system use: the stream has checked the label)."""
        ...

    def snapshot(self, rfi_id: str) -> Rfi | None:
        """The whole RFI, every answer included (system use: federation applies the
        boundary rule to it and to each answer)."""
        ...

    def mirror(self, rfi: Rfi, home: str, audit: Sequence[AuditDraft]) -> bool:
        """Keep a revision of an RFI asked on peer `home`, replacing an older one, with its
        outbox event and audit; False if one as new is held (Conflict if the RFI is not
        that peer's)."""
        ...

    def home_of(self, rfi_id: str) -> str | None:
        """The peer an RFI was asked on (None for one asked here)."""
        ...


class Operations(Protocol):
    """Node-wide figures for the operator (never served to users: they count everything)."""

    def figures(self) -> dict[str, int]: ...
    def report_presence(self, process: str, subscribers: int) -> None: ...
    def subscribers(self, max_age_s: float = 15.0) -> tuple[int, int]: ...


class Outbox(Protocol):
    """What to disseminate, in store order (system use: readers apply the rule)."""

    def after(
        self, seq: int, limit: int, kinds: Sequence[str] | None = None
    ) -> list[OutboxEvent]: ...
    def head(self) -> int: ...


class Coalition(Protocol):
    """Members, communities, accession, users, tokens and members' signing keys."""

    def directory(self) -> Directory: ...
    def directory_state(self) -> tuple[Directory, int]:
        """The directory and its version, which changes with every change of a member's
        status, a community, or a token's revocation."""
        ...

    def add_member(
        self,
        member: Member,
        communities: Sequence[str],
        audit: AuditDraft,
        private_key: bytes | None = None,
    ) -> None: ...
    def get_member(self, code: str) -> Member | None: ...
    def list_members(self) -> list[Member]: ...
    def member_communities(self, code: str) -> list[str]: ...
    def set_member_status(self, code: str, status: MemberStatus, audit: AuditDraft) -> None: ...
    def set_community(self, name: str, members: Sequence[str], audit: AuditDraft) -> None: ...
    def apply(self, accession: Accession, audit: AuditDraft) -> None: ...
    def get_accession(self, code: str) -> Accession | None: ...
    def list_accessions(self) -> list[Accession]: ...
    def vote(
        self,
        code: str,
        member: str,
        approve: bool,
        audit: AuditDraft,
        quorum: str,
        new_key: tuple[str, bytes],
    ) -> Accession: ...
    def signing_key(self, member: str) -> bytes | None: ...
    def add_user(
        self,
        member: str,
        name: str,
        clearance: Classification,
        caveats: frozenset[str],
        roles: frozenset[Role],
        audit: AuditDraft,
        token_hash: str,
    ) -> UserRecord: ...
    def get_user(self, name: str) -> UserRecord | None: ...
    def list_users(self, member: str | None = None) -> list[UserRecord]: ...
    def add_token(
        self, user_id: int, token_hash: str, expires_at: datetime | None, audit: AuditDraft
    ) -> int: ...
    def revoke_tokens(
        self, user_id: int, audit: AuditDraft, token_id: int | None = None
    ) -> int: ...
    def viewer_for_token(self, token_hash: str, now: datetime) -> Viewer | None: ...


class Reports(Protocol):
    """Report versions, their attachments, listing and full-text search, under the rule."""

    def add(self, writes: Sequence[ReportWrite]) -> list[ReportVersion]: ...
    def current(self, viewer: Viewer, report_id: str) -> ReportVersion | None: ...
    def current_unfiltered(self, report_id: str) -> ReportVersion | None: ...
    def version(self, viewer: Viewer, report_id: str, version: int) -> ReportVersion | None: ...
    def versions(self, viewer: Viewer, report_id: str) -> list[ReportVersion]: ...
    def blob(self, viewer: Viewer, report_id: str, sha256: str) -> StoredBlob | None: ...
    def page(self, viewer: Viewer, where: ReportFilter, cursor: str | None, limit: int) -> Page: ...
    def search(
        self, viewer: Viewer, query: str, where: ReportFilter, cursor: str | None, limit: int
    ) -> SearchResult: ...
    def all_versions(self) -> Iterator[ReportVersion]: ...
    def label(self, label_id: int) -> Label:
        """A stored label by its id (labels never change)."""
        ...

    def signatures(self, report_id: str) -> dict[int, str]:
        """Each stored version's signature, whatever its label (system use)."""
        ...

    def blob_bytes(self, shas: list[str]) -> dict[str, bytes]:
        """Attachment bytes by digest (system use: the caller has applied the rule)."""
        ...

    def by_seq(self, seqs: list[int]) -> list[ReportVersion]:
        """Stored versions by seq whatever their labels (system use: the caller applies the
        rule before anything leaves the node)."""
        ...


class Exploits(Protocol):
    """Exploitation results: one extraction per stored version, written by the worker from
    the `events` outbox, and the canonical entities; every read is under the rule."""

    def pending(self, consumer: str, limit: int) -> tuple[int, list[ReportVersion]]:
        """The consumer's cursor and the next stored versions after it (system use only)."""
        ...

    def save(self, consumer: str, after: int, upto: int, results: Sequence[Exploited]) -> bool:
        """Store extractions and their correlations and move the cursor from `after` to
        `upto`, atomically; False (nothing stored) if another process moved it meanwhile."""
        ...

    def record(self, results: Sequence[Exploited]) -> int:
        """Store extractions and their correlations, in any order, for the versions not
        exploited yet (a version delivered twice by a work queue is stored once); how many
        were stored."""
        ...

    def lag(self, consumer: str) -> int:
        """Stored versions the consumer has not processed yet."""
        ...

    def newest(self) -> int:
        """The seq of the newest stored version (0 if none)."""
        ...

    def result(self, seq: int) -> dict[str, Any] | None: ...
    def entities(
        self, viewer: Viewer, q: str | None, type_: str | None, limit: int
    ) -> list[EntitySummary]: ...
    def entity(self, viewer: Viewer, entity_id: str, limit: int) -> EntityView | None: ...
    def events(
        self, viewer: Viewer, since: datetime | None, until: datetime | None, limit: int
    ) -> list[Reported]:
        """Events extracted from the newest `limit` visible current reports in the period."""
        ...

    def watch(self, user_id: int, name: str, audit: AuditDraft) -> Watch: ...
    def unwatch(self, user_id: int, watch_id: int, audit: AuditDraft) -> bool: ...
    def watches(self, user_id: int) -> list[Watch]: ...
    def alerts(self, viewer: Viewer, after: int, limit: int) -> list[Alert]:
        """The viewer's alerts about current reports the viewer may see now."""
        ...

    def alert_of(self, user_id: int, n: int) -> tuple[str, int] | None:
        """The watched name and the version's seq of a user's alert (system use)."""
        ...

    def related(self, viewer: Viewer, seq: int, limit: int) -> list[Link]:
        """Reports correlated with a version the caller has already reached visibly; only
        current ones the viewer may see."""
        ...


class AuditLog(Protocol):
    """The append-only hash chain of audit events."""

    def append(self, drafts: Sequence[AuditDraft]) -> None: ...
    def events(
        self, viewer: Viewer, member: str | None, after: int, limit: int
    ) -> list[AuditEvent]: ...
    def all_events(self) -> Iterator[AuditEvent]: ...


class Peers(Protocol):
    """Peer nodes and the delivery position of each in the outbox (system use)."""

    def add(self, peer: Peer, audit: AuditDraft) -> None: ...
    def get(self, name: str) -> Peer | None: ...
    def by_fingerprint(self, fingerprint: str) -> Peer | None: ...
    def all(self) -> list[Peer]: ...
    def set_status(self, name: str, status: PeerStatus, audit: AuditDraft) -> bool: ...
    def remove(self, name: str, audit: AuditDraft) -> bool: ...
    def claim(self, name: str, owner: str, ttl_s: float) -> bool: ...
    def release(self, name: str, owner: str) -> None: ...
    def delivered(self, name: str, after: int, upto: int, audit: Sequence[AuditDraft]) -> bool: ...
    def failed(self, name: str, error: str) -> None: ...
    def set_pulled(self, name: str, cursor: str) -> None: ...
    def served(self) -> list[str]: ...


class Tearlines(Protocol):
    """Links of tearlines to the reports they sanitise (system use: readers apply the rule
    to both ends)."""

    def source_of(self, report_id: str) -> tuple[str, int] | None: ...
    def made_from(self, source_id: str) -> list[str]: ...


class Store(Protocol):
    @property
    def coalition(self) -> Coalition: ...
    @property
    def reports(self) -> Reports: ...
    @property
    def audit(self) -> AuditLog: ...
    @property
    def exploits(self) -> Exploits: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def rfis(self) -> Rfis: ...
    @property
    def requirements(self) -> Requirements: ...
    @property
    def operations(self) -> Operations: ...
    @property
    def sealer(self) -> Sealer:
        """Seals positions given out as cursors (the key is the node's own)."""
        ...

    @property
    def taxii(self) -> TaxiiRecords: ...

    @property
    def peers(self) -> Peers: ...

    @property
    def tearlines(self) -> Tearlines: ...

    @property
    def node_key(self) -> bytes:
        """The node's Ed25519 private key (raw), made on first use."""
        ...

    def optimize(self) -> str:
        """Operator maintenance for a large node (index merge, statistics); a summary."""
        ...

    def close(self) -> None: ...
