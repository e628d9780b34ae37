"""The objects the TAXII server serves for each version: each served exactly as the STIX
mapping makes it, the reference objects versions share serialised once, and never one
viewer's `created` handed to another."""

from __future__ import annotations

import json
from datetime import timedelta

from bices.stix import report_objects
from bices.taxii.objects import ObjectSource
from tests.test_stix_export import LABELS, STORED, version


def test_every_object_is_served_as_the_mapping_makes_it() -> None:
    source = ObjectSource()
    for v in (version(), version(id="0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f", seq=2)):
        served = source.of(v, None)
        assert [json.loads(o.text) for o in served] == report_objects(v, None)


def test_versions_under_one_label_share_their_reference_objects() -> None:
    source = ObjectSource()
    one = source.of(version(seq=1), None)
    other = source.of(version(id="0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f", seq=2), None)
    shared = {o.id for o in one if o.is_reference} & {o.id for o in other if o.is_reference}
    assert any(o.type == "marking-definition" for o in one if o.id in shared)
    for obj in one:
        if obj.id in shared:
            (twin,) = [o for o in other if o.id == obj.id]
            assert twin is obj  # serialised once
    # each report's own source identity is its own
    sources = [o.id for o in one if o.type == "identity" and o.id not in shared]
    assert sources and not set(sources) & {o.id for o in other}


def test_a_version_served_to_viewers_of_different_first_versions_keeps_each_created() -> None:
    """Version 2 as served to a viewer who saw version 1 (created: when version 1 was
    stored) and to one who did not (created: when version 2 was): each, in either order,
    gets its own, the shared reference objects included."""
    v2 = version(version=2, seq=2, stored_at=STORED + timedelta(days=1), label=LABELS["public"])
    for order in ((STORED, None), (None, STORED)):
        source = ObjectSource()
        served = {first: source.of(v2, None, first) for first in order}
        for first, objects in served.items():
            assert [json.loads(o.text) for o in objects] == report_objects(
                v2, None, first_stored_at=first
            )
        saw_v1 = {json.loads(o.text)["created"] for o in served[STORED] if o.type == "report"}
        did_not = {json.loads(o.text)["created"] for o in served[None] if o.type == "report"}
        assert saw_v1 != did_not
