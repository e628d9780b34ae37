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
    max_body_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    max_batch: int = Field(default=1000, gt=0)
    max_attachment_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    log_format: str = Field(default="text", pattern="^(text|json)$",
                            description="`json`: one JSON object per log line")  # fmt: skip
    accession_quorum: str = "majority"
    exploit: bool = Field(default=True, description="run the exploitation worker in `bices serve`")
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
