"""`bices requirement …`: a user's standing requirements, managed by the operator."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from bices.cli import app, err, opened, out
from bices.coalition import OPERATOR
from bices.domain.requirements import RequirementDraft

requirement_app = typer.Typer(help="Standing requirements (what the stream matches).",
                              no_args_is_help=True)  # fmt: skip
app.add_typer(requirement_app, name="requirement")

User = Annotated[str, typer.Option("--user", help="the user whose requirements these are")]
Many = Annotated[list[str] | None, typer.Option(help="repeatable")]


def _numbers(text: str, count: int, option: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count:
        err.print(f"[red]error:[/red] {option} takes {count} numbers separated by commas")
        raise typer.Exit(2)
    return values


@requirement_app.command("add")
def requirement_add(
    ctx: typer.Context,
    user: User,
    name: Annotated[str, typer.Option("--name")],
    entity: Many = None,
    keyword: Many = None,
    topic: Many = None,
    member: Annotated[list[str] | None, typer.Option("--member", help="originator")] = None,
    type_: Annotated[list[str] | None, typer.Option("--type", help="report type")] = None,
    classification: Many = None,
    min_grading: Annotated[str | None, typer.Option("--min-grading", help="e.g. B2")] = None,
    box: Annotated[str | None, typer.Option("--box", help="SOUTH,WEST,NORTH,EAST")] = None,
    near: Annotated[str | None, typer.Option("--near", help="LAT,LON,RADIUS_KM")] = None,
) -> None:
    """Add a requirement for a user; prints its id."""
    area: dict[str, Any] = {}
    if box is not None:
        south, west, north, east = _numbers(box, 4, "--box")
        area["box"] = {"south": south, "west": west, "north": north, "east": east}
    if near is not None:
        lat, lon, radius = _numbers(near, 3, "--near")
        area["circle"] = {"lat": lat, "lon": lon, "radius_km": radius}
    raw = {"name": name, "entities": entity or [], "keywords": keyword or [],
           "topics": topic or [], "members": member or [], "types": type_ or [],
           "classifications": classification or [], "min_grading": min_grading,
           "area": area or None}  # fmt: skip
    try:
        draft = RequirementDraft.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'requirement'}: {e['msg']}"
                             for e in error.errors())  # fmt: skip
        err.print(f"[red]error:[/red] {problems}")
        raise typer.Exit(2) from None
    with opened(ctx) as node:
        viewer = node.coalition.viewer_of(user)
        found = node.requirements.add(viewer, draft, acting=OPERATOR)
        out.print(f"requirement {found.id} added for {user}")
        print(found.id)


@requirement_app.command("list")
def requirement_list(
    ctx: typer.Context,
    user: User,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A user's requirements."""
    with opened(ctx) as node:
        found = node.requirements.list(node.coalition.viewer_of(user))
        if as_json:
            print(json.dumps([r.to_json() for r in found]))
            return
        for r in found:
            filters = json.dumps(r.draft.filters(), ensure_ascii=False)
            out.print(f"{r.id}  [bold]{r.name}[/bold]  {filters}", markup=True, highlight=False)


@requirement_app.command("remove")
def requirement_remove(ctx: typer.Context, requirement_id: int, user: User) -> None:
    """Remove one of a user's requirements."""
    with opened(ctx) as node:
        node.requirements.remove(node.coalition.viewer_of(user), requirement_id, acting=OPERATOR)
        out.print(f"requirement {requirement_id} of {user} removed")
