"""The mapping's own UUIDv5 is the standard one, for any name under any namespace."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from bices.stix._common import NAMESPACE, foreign_report_id, stix_id, uuid5


@given(st.uuids(), st.text(max_size=300))
def test_uuid5_is_the_standard_one(namespace: uuid.UUID, name: str) -> None:
    assert uuid5(namespace, name) == str(uuid.uuid5(namespace, name))


def test_ids_made_with_it_are_the_ones_exported_before() -> None:
    # Ids already out in the world must not change: these are the stdlib's.
    assert stix_id("bundle", "a", "b") == f"bundle--{uuid.uuid5(NAMESPACE, 'bundle/a/b')}"
    assert foreign_report_id("USA", "report--X") == str(
        uuid.uuid5(NAMESPACE, "foreign-report/USA/report--x")
    )
