"""`bices stix import|export`: STIX 2.1 bundles as files, for platforms that do not speak
TAXII (a MISP or OpenCTI export on disk) and for carrying reports between nodes by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from bices.cli import app, err, opened, out
from bices.coalition import OPERATOR
from bices.domain.errors import InvalidInput
from bices.stix import TlpPolicy, bundle, drafts_from_bundle, report_objects

stix_app = typer.Typer(help="STIX 2.1 bundles in and out.", no_args_is_help=True)
app.add_typer(stix_app, name="stix")

User = Annotated[str, typer.Option("--user", help="act as this user, under the rule")]


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        err.print(f"[red]error:[/red] {what} {path}: {error}")
        raise typer.Exit(2) from None


@stix_app.command("import")
def stix_import(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="a STIX 2.1 bundle (JSON)")],
    user: User,
    tlp_policy: Annotated[
        Path | None,
        typer.Option("--tlp-policy", help="JSON mapping TLP levels to labels (default: built in)"),
    ] = None,
) -> None:
    """Store the reports of a bundle as the user's member, their markings mapped to labels;
    all of them or, if one cannot be mapped, none."""
    data = _read_json(path, "bundle")
    policy = None if tlp_policy is None else TlpPolicy.from_json(_read_json(tlp_policy, "policy"))
    with opened(ctx) as node:
        viewer = node.coalition.viewer_of(user)
        drafts = drafts_from_bundle(data, viewer.member, policy,
                                    directory=node.store.coalition.directory())  # fmt: skip
        if not drafts:
            raise InvalidInput(f"{path}: the bundle holds no report, grouping or note")
        stored = node.collector.submit(viewer, drafts, acting=OPERATOR)
        for version in stored:
            out.print(f"{version.id}  {version.label.render()}  {version.title}", highlight=False)


@stix_app.command("export")
def stix_export(
    ctx: typer.Context,
    report_ids: Annotated[list[str], typer.Argument(help="report ids")],
    user: User,
) -> None:
    """Print one bundle with the current versions of reports the user may see."""
    objects: list[dict[str, Any]] = []
    with opened(ctx) as node:
        viewer = node.coalition.viewer_of(user)
        for report_id in report_ids:
            version = node.reader.get(viewer, report_id)
            blobs = {a.sha256: node.reader.attachment(viewer, report_id, a.sha256).data
                     for a in version.attachments}  # fmt: skip
            # `created`: when the first version the user may see was stored (as over TAXII)
            seen = node.store.reports.versions(viewer, report_id)
            first = min(seen, key=lambda v: v.version, default=version)
            objects += report_objects(
                version, node.store.exploits.result(version.seq), blobs=blobs,
                first_stored_at=first.stored_at,
            )  # fmt: skip
    print(json.dumps(bundle(objects), ensure_ascii=False, indent=1))
