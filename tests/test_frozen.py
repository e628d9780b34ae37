"""`copied` gives what `dataclasses.replace` gives, and refuses what it cannot do as well."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass, replace
from datetime import UTC, datetime

import pytest

from bices.domain.audit import AuditDraft
from bices.domain.frozen import copied
from bices.domain.labels import Label
from bices.domain.reports import ReportType, ReportVersion, Source


def version() -> ReportVersion:
    return ReportVersion(
        id="r1", version=1, type=ReportType.INTREP, title="t", body="b", language="en",
        label=Label.build("NATO SECRET", ["NATO"], "USA"),
        source=Source(name="s", reliability="B", credibility=2),
        reported_at=datetime(2024, 7, 10, tzinfo=UTC), observed_at=None, locations=(),
        attachments=(), author="u", stored_at=datetime(2024, 7, 11, tzinfo=UTC),
    )  # fmt: skip


def test_copied_equals_replace() -> None:
    v = version()
    assert copied(v, seq=7, label_id=3) == replace(v, seq=7, label_id=3)
    assert copied(v, signature="sig") == replace(v, signature="sig")
    assert copied(v) == v and copied(v) is not v
    audit = AuditDraft("u", "USA", "report.create", "r1", detail={"version": 1})
    assert copied(audit, label_id=4) == replace(audit, label_id=4)
    with pytest.raises(FrozenInstanceError):
        copied(v, seq=1).seq = 2  # type: ignore[misc]


def test_copied_refuses_unknown_fields_and_self_checking_classes() -> None:
    with pytest.raises(TypeError, match="no field sequence"):
        copied(version(), sequence=1)

    @dataclass(frozen=True, slots=True)
    class Checked:
        n: int

        def __post_init__(self) -> None:
            if self.n < 0:
                raise ValueError("negative")

    with pytest.raises(TypeError, match="__post_init__"):
        copied(Checked(1), n=-1)
