"""`bices stix import|export`: bundles as files, through the same mapping as TAXII."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stix2validator import ValidationOptions, validate_instance
from typer.testing import CliRunner

from bices.cli import app as cli

SAMPLES = Path(__file__).parent / "stix_samples"


def run(data: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--data", str(data), *args])


def setup(data: Path) -> None:
    assert run(data, "member", "add", "USA", "--name", "United States", "--community",
               "NATO").exit_code == 0  # fmt: skip
    assert run(data, "member", "add", "KOR", "--name", "Korea", "--community", "IP4").exit_code == 0
    for name, member in (("usa.a", "USA"), ("kor.a", "KOR")):
        added = run(data, "user", "add", "--member", member, "--name", name, "--clearance",
                    "NATO SECRET")  # fmt: skip
        assert added.exit_code == 0, added.output


def test_import_a_misp_export_and_export_it_again(tmp_path: Path) -> None:
    data = tmp_path / "node"
    setup(data)
    imported = run(data, "stix", "import", str(SAMPLES / "misp_event_report.json"),
                   "--user", "usa.a")  # fmt: skip
    assert imported.exit_code == 0, imported.output
    report_id = imported.output.split()[0]
    exported = run(data, "stix", "export", report_id, "--user", "usa.a")
    assert exported.exit_code == 0, exported.output
    bundle = json.loads(exported.output)
    reports = [o for o in bundle["objects"] if o["type"] == "report"]
    assert [r["id"] for r in reports] == [f"report--{report_id}"]
    options = ValidationOptions(strict=True, disabled=["uuid-check"])
    result = validate_instance(bundle, options)
    assert result.is_valid, [str(e) for e in result.errors]
    # TLP:AMBER maps to the posting member alone: another member's user may not export it,
    # and hears of it exactly as of a missing report.
    assert "NATO UNCLASSIFIED // REL TO USA" in imported.output
    hidden = run(data, "stix", "export", report_id, "--user", "kor.a")
    assert hidden.exit_code == 2 and f"report {report_id} not found" in hidden.output


def test_an_unmappable_bundle_stores_nothing(tmp_path: Path) -> None:
    data = tmp_path / "node"
    setup(data)
    bundle = json.loads((SAMPLES / "opencti_report.json").read_text())
    red = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"  # TLP 2.0 RED
    for obj in bundle["objects"]:
        if obj["type"] == "report":
            obj["object_marking_refs"] = [red]
    path = tmp_path / "red.json"
    path.write_text(json.dumps(bundle))
    refused = run(data, "stix", "import", str(path), "--user", "usa.a")
    assert refused.exit_code == 2
    assert "TLP:RED" in refused.output
    listed = run(data, "search", "report", "--user", "usa.a", "--json")
    assert json.loads(listed.output)["total"] == 0
    not_json = tmp_path / "broken.json"
    not_json.write_text("{")
    broken = run(data, "stix", "import", str(not_json), "--user", "usa.a")
    assert broken.exit_code == 2 and "bundle" in broken.output


def test_export_and_taxii_agree_on_created_from_the_first_visible_version(
    tmp_path: Path,
) -> None:
    """Version 1 REL TO USA, version 2 REL TO NATO, KOR: read by KOR, `created` is when
    version 2 was stored, in `bices stix export` as over TAXII (never version 1's time)."""
    from fastapi.testclient import TestClient

    from bices.api import create_app
    from bices.domain.reports import ReportDraft
    from bices.node import Node
    from bices.settings import Settings
    from tests.conftest import auth, report_json

    data = tmp_path / "node"
    setup(data)
    node = Node.open(Settings(data=data))
    try:
        usa = node.coalition.viewer_of("usa.a")
        hidden = {"classification": "NATO SECRET", "releasable_to": ["USA"], "caveats": []}
        wide = {"classification": "NATO SECRET", "releasable_to": ["NATO", "KOR"], "caveats": []}
        (first,) = node.collector.submit(usa, [ReportDraft.model_validate(
            report_json(title="One", label=hidden))])  # fmt: skip
        second = node.collector.update(usa, first.id, ReportDraft.model_validate(
            report_json(title="Two", label=wide)))  # fmt: skip
        kor_token = node.coalition.add_user("KOR", "kor.b", "NATO SECRET", (), ("analyst",))[1]
        with TestClient(create_app(node, exploit_thread=False)) as client:
            got = client.get(
                f"/taxii2/bices/collections/everything/objects/report--{first.id}/",
                headers={**auth(kor_token), "Accept": "application/taxii+json;version=2.1"},
            )
            assert got.status_code == 200, got.text
            (served,) = got.json()["objects"]
    finally:
        node.close()
    exported = run(data, "stix", "export", first.id, "--user", "kor.a")
    assert exported.exit_code == 0, exported.output
    (report,) = [o for o in json.loads(exported.output)["objects"] if o["type"] == "report"]
    assert report["modified"] == served["modified"]
    assert report["created"] == served["created"] == served["modified"]
    assert second.stored_at > first.stored_at


def test_malformed_stix_is_refused_naming_the_field_and_stores_nothing(tmp_path: Path) -> None:
    data = tmp_path / "node"
    setup(data)
    for field, value in (("object_marking_refs", 5), ("published", "9999-12-31T23:59:59-05:00"),
                         ("labels", 5), ("name", ["a"])):  # fmt: skip
        bundle = json.loads((SAMPLES / "opencti_report.json").read_text())
        report = next(o for o in bundle["objects"] if o["type"] == "report")
        report[field] = value
        path = tmp_path / f"bad-{field}.json"
        path.write_text(json.dumps(bundle))
        refused = run(data, "stix", "import", str(path), "--user", "kor.a")
        assert refused.exit_code == 2, (field, refused.output)
        assert report["id"] in refused.output and field in refused.output, refused.output
    listed = run(data, "search", "report", "--user", "kor.a", "--json")
    assert json.loads(listed.output)["total"] == 0
