"""Response shapes of the API, for the OpenAPI document and for clients."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from bices.domain.reports import ReportDraft


class LabelOut(BaseModel):
    classification: str
    releasable_to: list[str]
    caveats: list[str]
    originator: str
    banner: str = Field(examples=["NATO SECRET // REL TO NATO, KOR"])


class SourceOut(BaseModel):
    name: str
    reliability: str
    credibility: int
    grading: str


class AttachmentOut(BaseModel):
    sha256: str
    name: str
    media_type: str
    size: int


class LocationOut(BaseModel):
    lat: float
    lon: float
    name: str | None = None


class VersionRef(BaseModel):
    id: str
    version: int


class ReportOut(BaseModel):
    id: str
    version: int
    type: str
    title: str
    body: str
    language: str
    label: LabelOut
    source: SourceOut
    reported_at: str
    observed_at: str | None
    locations: list[LocationOut]
    attachments: list[AttachmentOut]
    originator: str
    author: str
    stored_at: str
    signature: str
    tearline_of: VersionRef | None = Field(
        default=None,
        description="(single report only) the report this tearline was sanitised from, "
        "if the caller may see it",
    )
    tearlines: list[str] = Field(
        default_factory=list,
        description="(single report only) tearlines made from this report that the caller may see",
    )


class Created(BaseModel):
    id: str
    version: int


class BatchIn(BaseModel):
    reports: list[ReportDraft] = Field(min_length=1)


class BatchCreated(BaseModel):
    ids: list[str]


class ReportPage(BaseModel):
    items: list[ReportOut]
    total: int
    next_cursor: str | None


class SearchPage(BaseModel):
    items: list[ReportOut]
    total: int
    facets: dict[str, dict[str, int]]
    next_cursor: str | None
    total_exact: bool = Field(
        description="false when more reports match than the node ranks "
        "(BICES_SEARCH_RANK_LIMIT): then `total` is a lower bound, `facets` count the newest "
        "matches and `items` come newest first"
    )
    ranked_by: str = Field(examples=["relevance", "newest"])


class VersionCheck(BaseModel):
    version: int
    valid: bool
    reason: str


class VerifyOut(BaseModel):
    id: str
    versions: list[VersionCheck]


class MemberOut(BaseModel):
    code: str
    name: str
    kind: str
    status: str
    public_key: str | None
    sponsor: str | None
    communities: list[str]


class MemberIn(BaseModel):
    code: str = Field(examples=["KOR"])
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(default="nation", pattern="^(nation|organisation)$")
    communities: list[str] = Field(default_factory=list, max_length=32)


class MemberAddIn(MemberIn):
    public_key: str | None = Field(
        default=None,
        description="For a member served by a peer node: its Ed25519 public key (base64); "
        "this node keeps no signing key for it",
    )


class AccessionIn(MemberIn):
    sponsor: str = Field(examples=["USA"])
    public_key: str | None = Field(
        default=None, description="The applicant's own Ed25519 public key (base64), if it keeps one"
    )


class AccessionOut(BaseModel):
    code: str
    name: str
    kind: str
    sponsor: str
    communities: list[str]
    status: str
    public_key: str | None
    approvals: list[str]
    rejections: list[str]


class CommunityIn(BaseModel):
    members: list[str] = Field(max_length=500)


class UserIn(BaseModel):
    member: str
    name: str = Field(min_length=1, max_length=100)
    clearance: str = Field(examples=["NATO SECRET"])
    caveats: list[str] = Field(default_factory=list, max_length=32)
    roles: list[str] = Field(default_factory=lambda: ["analyst"], min_length=1, max_length=5)


class UserOut(BaseModel):
    id: int
    member: str
    name: str
    clearance: str
    caveats: list[str]
    roles: list[str]


class UserCreated(BaseModel):
    user: UserOut
    token: str


class TokenOut(BaseModel):
    token: str


class Revoked(BaseModel):
    revoked: int


class AuditEventOut(BaseModel):
    seq: int
    at: str
    actor: str
    member: str | None
    action: str
    target: str | None
    detail: dict[str, Any]
    prev: str
    hash: str


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    next_after: int | None


class PeerIn(BaseModel):
    url: str = Field(max_length=500, examples=["https://kor.bices.example"])
    key: str = Field(
        max_length=200,
        description="The peer's node key (base64) or its fingerprint, as checked with the "
        "peer's operator out of band",
    )
    members: list[str] = Field(min_length=1, max_length=64, examples=[["KOR"]])
    name: str | None = Field(default=None, max_length=63)
    since_now: bool = Field(
        default=False, description="send only what is stored from now on, not the history"
    )


class PeerOut(BaseModel):
    name: str
    url: str
    node_key: str
    fingerprint: str
    members: list[str]
    status: str
    added_at: str
    failures: int
    last_error: str | None
    last_success: str | None
