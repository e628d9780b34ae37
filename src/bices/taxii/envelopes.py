"""Envelopes posted to the writable collection, and their status resources.

An envelope is all or nothing, as every ingest path of BICES: its objects are mapped to
report drafts by `bices.stix.drafts_from_bundle` (which names the first object it cannot
map and why), then stored by `Collector.submit` as the posting user, in one transaction.
Anything wrong refuses the whole envelope with a 4xx naming the problem, and nothing of it
is stored; so a status resource only ever reports successes, and is complete at once.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from bices.domain.errors import Forbidden, InvalidInput
from bices.domain.reports import ReportVersion
from bices.domain.users import Viewer
from bices.pipeline.collect import Collector
from bices.stix import imported_reports
from bices.stix._common import timestamp
from bices.store.base import Store
from bices.store.taxii import TaxiiReads
from bices.taxii.collections import Collection
from bices.taxii.filters import stix_time


def read_envelope(body: bytes) -> list[dict[str, Any]]:
    """The objects of a TAXII envelope; refuses anything else, naming what is wrong."""
    try:
        data = json.loads(body)
    except UnicodeDecodeError:
        raise MalformedJson("malformed JSON: the body is not valid UTF-8") from None
    except json.JSONDecodeError as error:
        raise MalformedJson(f"malformed JSON: {error}") from None
    if not isinstance(data, dict):
        raise InvalidInput(
            "not a TAXII envelope: expected a JSON object with 'objects', "
            f"got {type(data).__name__}"
        )
    # stix2's TAXIICollectionSink posts a bundle where an envelope belongs: read its objects.
    allowed = {"objects", "more", "next"}
    if data.get("type") == "bundle":
        allowed |= {"type", "id", "spec_version"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidInput(f"not a TAXII envelope: unexpected member(s) {', '.join(unknown)}")
    objects = data.get("objects")
    if not isinstance(objects, list) or not objects:
        raise InvalidInput("not a TAXII envelope: 'objects' must be a non-empty list")
    for index, obj in enumerate(objects):
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
            raise InvalidInput(f"objects[{index}] is not a STIX object with an id")
        if not isinstance(obj.get("type"), str):
            raise InvalidInput(f"objects[{index}] ({obj['id'][:100]}) has no type")
    return objects


class MalformedJson(InvalidInput):
    """A body that is not JSON at all (HTTP 400, as the REST API answers it)."""


def add(
    collector: Collector, store: Store, viewer: Viewer, collection: Collection, body: bytes
) -> dict[str, Any]:
    if not collection.can_write:
        raise Forbidden(f"collection {collection.alias} is read-only; post to 'ingest'")
    with collector.serially():  # one batch at a time in this process, read to stored
        return _stored(collector, store, viewer, collection, body)


def _stored(
    collector: Collector, store: Store, viewer: Viewer, collection: Collection, body: bytes
) -> dict[str, Any]:
    requested_at = datetime.now(UTC)
    objects = read_envelope(body)
    directory = store.coalition.directory()
    imported = imported_reports(objects, viewer.member, directory=directory)
    writes = collector.prepare(viewer, [i.draft for i in imported])
    status_id = str(uuid.uuid4())
    reports = {i.stix_id for i in imported}

    def record(stored: list[ReportVersion]) -> dict[str, Any]:
        return {
            "reports": [_stored_entry(v, i.stix_id)
                        for v, i in zip(stored, imported, strict=True)],
            "others": [
                {"id": o["id"], "version": str(o.get("modified") or o.get("created") or "")}
                for o in objects
                if o["id"] not in reports
            ],
        }  # fmt: skip

    stored, status = store.taxii.store_with_status(
        writes, status_id, viewer, collection.alias, requested_at, record
    )
    collector.announce(stored)
    return _resource(status_id, requested_at, status["reports"], status["others"])


def _stored_entry(version: ReportVersion, posted_id: str) -> dict[str, Any]:
    """A stored report, under the id of the object posted (a report another platform made
    is stored under an id of the posting member's own: the message names it)."""
    return {
        "report": version.id,
        "report_version": version.version,
        "id": posted_id,
        "version": timestamp(version.stored_at),
        "message": f"stored as report {version.id} version {version.version}",
    }


def visible_status(
    snap: TaxiiReads,
    visible: tuple[int, ...],
    status_id: str,
    requested_at: datetime,
    body: dict[str, Any],
) -> dict[str, Any]:
    """A stored status as the reader may see it now: only reports the reader may see, and
    the envelope's other objects only if every one of its reports is visible (they tell of
    the reports' labels and sources)."""
    reports = body["reports"]
    pairs = [(r["report"], int(r["report_version"])) for r in reports]
    seen = snap.existing(pairs, visible)
    shown = [r for r, pair in zip(reports, pairs, strict=True) if pair in seen]
    others = body["others"] if len(shown) == len(reports) else []
    return _resource(status_id, requested_at, shown, others)


def _resource(
    status_id: str,
    requested_at: datetime,
    reports: list[dict[str, Any]],
    others: list[dict[str, Any]],
) -> dict[str, Any]:
    successes = [
        {"id": r["id"], "version": r["version"], "message": r["message"]} for r in reports
    ] + [
        {
            "id": o["id"],
            **({"version": o["version"]} if o["version"] else {}),
            "message": "read into the envelope's reports (label, author, source, places); "
            "served back as part of them",
        }
        for o in others
    ]
    return {
        "id": status_id,
        "status": "complete",
        "request_timestamp": stix_time(requested_at),
        "total_count": len(successes),
        "success_count": len(successes),
        "successes": successes,
        "failure_count": 0,
        "pending_count": 0,
    }
