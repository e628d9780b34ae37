"""TAXII 2.1 interop over real HTTP: `taxii2-client` and `stix2` as clients of a served node."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import requests
import stix2
from taxii2client.v21 import ApiRoot, Collection, Server, as_pages

from bices.stix import foreign_report_id
from tests.conftest import Coalition, RunningServer
from tests.taxii_samples import envelope, label, stix_report


@pytest.fixture(autouse=True)
def _quiet_clients() -> Any:
    # taxii2-client and stix2 use APIs their dependencies have deprecated.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def stored_id(group: list[dict[str, Any]], member: str = "USA") -> str:
    """The id a posted report (of another platform: no BICES report extension) is served as."""
    return f"report--{foreign_report_id(member, group[0]['id'])}"


def ingest(server: RunningServer, name: str, token: str) -> Collection:
    root = ApiRoot(f"{server.base_url}/taxii2/bices/", user=name, password=token)
    return next(c for c in root.collections if c.alias == "ingest")


def test_discovery_and_collections(server: RunningServer, coalition: Coalition) -> None:
    token = coalition.user("USA", name="usa.client")
    found = Server(f"{server.base_url}/taxii2/", user="usa.client", password=token)
    assert found.title
    assert [r.url for r in found.api_roots] == [f"{server.base_url}/taxii2/bices/"]
    root = found.default
    assert root is not None and "application/taxii+json;version=2.1" in root.versions
    aliases = {c.alias: (c.can_read, c.can_write) for c in root.collections}
    assert aliases == {
        "everything": (True, False),
        "community-nato": (True, False),
        "ingest": (True, True),
    }


def test_wrong_password_is_401(server: RunningServer, coalition: Coalition) -> None:
    coalition.user("USA", name="usa.client")
    with pytest.raises(requests.HTTPError) as refused:
        Server(f"{server.base_url}/taxii2/", user="usa.client", password="bices_wrong").title  # noqa: B018
    assert refused.value.response.status_code == 401


def test_add_read_page_and_fetch(server: RunningServer, coalition: Coalition) -> None:
    token = coalition.user("USA", name="usa.client")
    collection = ingest(server, "usa.client", token)
    posted = [stix_report(label(), f"Report {i}") for i in range(7)]
    status = collection.add_objects(envelope(*posted))
    assert status.status == "complete"
    assert status.success_count == status.total_count == len(envelope(*posted)["objects"])

    # page by page
    reports: list[dict[str, Any]] = []
    pages = 0
    for page in as_pages(collection.get_objects, per_request=2, type="report"):
        reports += page.get("objects", [])
        pages += 1
    assert pages >= 4
    assert [r["name"] for r in reports] == [f"Report {i}" for i in range(7)]
    # a report another platform made becomes a report of the posting member, id and all
    assert [r["id"] for r in reports] == [stored_id(group) for group in posted]

    # one by id, its versions, the manifest
    wanted = reports[3]["id"]
    one = collection.get_object(wanted)
    assert [o["id"] for o in one["objects"]] == [wanted]
    assert collection.object_versions(wanted)["versions"] == [reports[3]["modified"]]
    many = collection.get_objects(id=[reports[0]["id"], reports[5]["id"]])
    assert {o["id"] for o in many["objects"]} == {reports[0]["id"], reports[5]["id"]}
    manifest = collection.get_manifest(type="report")
    assert [m["id"] for m in manifest["objects"]] == [r["id"] for r in reports]
    # one envelope is stored at one moment: a later one is what is added after it
    collection.add_objects(envelope(stix_report(label(), "Later")))
    after = collection.get_objects(added_after=manifest["objects"][-1]["date_added"], type="report")
    assert [o["name"] for o in after["objects"]] == ["Later"]

    with pytest.raises(requests.HTTPError) as refused:
        collection.delete_object(wanted)
    assert refused.value.response.status_code == 405


def test_other_member_sees_nothing_of_it(server: RunningServer, coalition: Coalition) -> None:
    token = coalition.user("USA", name="usa.client")
    ingest(server, "usa.client", token).add_objects(
        envelope(stix_report(label(releasable_to=("USA", "GBR")), "Bilateral"))
    )
    kor = coalition.user("KOR", name="kor.client")
    root = ApiRoot(f"{server.base_url}/taxii2/bices/", user="kor.client", password=kor)
    for collection in root.collections:
        assert collection.get_objects().get("objects", []) == []
        assert collection.get_manifest().get("objects", []) == []


def test_stix2_source_and_sink(server: RunningServer, coalition: Coalition) -> None:
    token = coalition.user("USA", name="usa.client")
    collection = ingest(server, "usa.client", token)
    sink = stix2.TAXIICollectionSink(collection)
    group = stix_report(label(), "Through the sink")
    objects = [stix2.parse(obj, allow_custom=True) for obj in envelope(group)["objects"]]
    sink.add(stix2.Bundle(objects, allow_custom=True))  # posted as one bundle

    source = stix2.TAXIICollectionSource(collection)
    report = source.get(stored_id(group))
    assert report is not None and report.name == "Through the sink"
    found = source.query([stix2.Filter("type", "=", "report")])
    assert [r.id for r in found] == [stored_id(group)]
    assert len(source.all_versions(stored_id(group))) == 1
    assert source.get("report--00000000-0000-4000-8000-000000000000") is None
    # the marking definition of its label came along, and parses as STIX 2.1
    marking = source.get(report.object_marking_refs[0])
    assert marking is not None and marking.type == "marking-definition"
