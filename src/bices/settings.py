"""One settings object for the node, read from flags and ``BICES_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bices.domain.members import check_quorum


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BICES_", extra="ignore")

    data: Path = Field(default=Path("bices-data"), description="data folder of the embedded node")
    database_url: str | None = Field(default=None, description="postgresql://… (scale-out)")
    bus_url: str | None = Field(default=None, description="nats://… (scale-out)")
    bus_namespace: str = Field(default="", pattern=r"^[A-Za-z0-9_]*$", max_length=32,
                               description="with NATS: a stream and subjects of the node's "
                               "own on a shared server (letters, digits, _)")  # fmt: skip
    migrate: bool = Field(default=True, description="apply pending PostgreSQL migrations on "
                          "start (else `bices db upgrade` must have been run)")  # fmt: skip
    max_body_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    max_batch: int = Field(default=1000, gt=0)
    max_attachment_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    batch_signing: bool = Field(
        default=True,
        description="sign a request's reports under one label with one signature (`batch1:`); "
        "off while a peer node runs a version before batch signatures, which refuses them",
    )
    log_format: str = Field(default="text", pattern="^(text|json)$",
                            description="`json`: one JSON object per log line")  # fmt: skip
    accession_quorum: str = "majority"
    exploit: bool = Field(default=True, description="run the exploitation worker in `bices serve`")
    work_ack_wait_s: float = Field(
        default=30.0, gt=0, le=3600,
        description="with NATS: how long a worker may hold a job before it goes to another",
    )  # fmt: skip
    node_name: str = Field(
        default="",
        pattern=r"^([a-z0-9][a-z0-9._-]{0,62})?$",
        description="how this node names itself to peers "
        "(default: bices- and the start of its key's fingerprint)",
    )
    federate: bool = Field(default=True, description="deliver to peer nodes from `bices serve`")
    federation_poll_s: float = Field(
        default=2.0, gt=0, le=600, description="how often peers are polled without a wake-up"
    )
    federation_max_backoff_s: float = Field(
        default=30.0, gt=0, le=3600, description="the longest wait between retries to a peer"
    )
    search_rank_limit: int = Field(
        default=4000,
        gt=0,
        description="searches with more visible matches are answered newest first, "
        "with a lower-bound total",
    )

    @field_validator("accession_quorum")
    @classmethod
    def _quorum(cls, value: str) -> str:
        return check_quorum(value)
