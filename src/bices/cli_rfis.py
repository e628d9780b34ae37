"""`bices rfi …`: requests for information, asked and worked by the operator on behalf of
a named user, under the same rules as the API (the audit trail names the operator)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape

from bices.cli import app, err, opened, out
from bices.coalition import OPERATOR
from bices.domain.rfis import Priority, Rfi, RfiDraft, RfiFilter, RfiState

rfi_app = typer.Typer(help="Requests for information.", no_args_is_help=True)
app.add_typer(rfi_app, name="rfi")

User = Annotated[str, typer.Option("--user", help="act as this user, under the rule")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]
PRIORITIES = " < ".join(p.value for p in Priority)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(2)


def _show(rfi: Rfi, as_json: bool) -> None:
    now = datetime.now(UTC)
    if as_json:
        print(json.dumps(rfi.to_json(now), ensure_ascii=False))
        return
    data = rfi.to_json(now)
    overdue = "  [red]OVERDUE[/red]" if data["overdue"] else ""
    out.print(f"[bold]{escape(rfi.question)}[/bold]")
    out.print(f"  id        {rfi.id}")
    out.print(f"  label     {escape(rfi.label.render())}")
    out.print(f"  state     {rfi.state.value}  (revision {rfi.revision})")
    out.print(f"  priority  {rfi.priority.value}   deadline {data['deadline']}{overdue}")
    out.print(f"  asked by  {rfi.asker} ({rfi.asker_member})")
    addressed = ", ".join(f"{a.member}{' (accepted)' if a.accepted_at else ''}"
                          for a in rfi.addressees)  # fmt: skip
    out.print(f"  to        {addressed}")
    for answer in rfi.answers:
        title = "" if answer.report is None else f"  {escape(answer.report.title)}"
        out.print(f"  answer    {answer.report_id} by {answer.member}{title}")
    for change in rfi.history:
        out.print(f"  r{change.revision} {change.action} by {change.actor} ({change.member})")


@rfi_app.command("create")
def rfi_create(
    ctx: typer.Context,
    user: User,
    question: Annotated[str, typer.Option("--question")],
    to: Annotated[list[str], typer.Option("--to", help="addressee member (repeatable)")],
    deadline: Annotated[str, typer.Option("--deadline", help="ISO 8601 with a time zone")],
    classification: Annotated[str, typer.Option("--classification", help='e.g. "NATO SECRET"')],
    rel: Annotated[list[str], typer.Option("--rel", help="releasable to (repeatable)")],
    caveat: Annotated[list[str] | None, typer.Option("--caveat", help="repeatable")] = None,
    priority: Annotated[str, typer.Option("--priority", help=PRIORITIES)] = "ROUTINE",
    detail: Annotated[str, typer.Option("--detail")] = "",
    as_json: AsJson = False,
) -> None:
    """Ask an RFI of other members; the id is printed on the first line."""
    try:
        draft = RfiDraft.model_validate(
            {"question": question, "detail": detail, "priority": priority.strip().upper(),
             "deadline": deadline, "addressees": to,
             "label": {"classification": classification, "releasable_to": rel,
                       "caveats": caveat or []}}
        )  # fmt: skip
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise _fail(f"{where}: {first['msg']}") from None
    with opened(ctx) as node:
        rfi = node.rfis.create(node.coalition.viewer_of(user), draft, acting=OPERATOR)
        if as_json:
            _show(rfi, True)
            return
        out.print(rfi.id)
        _show(rfi, False)


@rfi_app.command("list")
def rfi_list(
    ctx: typer.Context,
    user: User,
    state: Annotated[list[RfiState] | None, typer.Option("--state")] = None,
    addressed_to_me: Annotated[bool, typer.Option("--addressed-to-me")] = False,
    mine: Annotated[bool, typer.Option("--mine", help="asked by the user")] = False,
    overdue: Annotated[bool, typer.Option("--overdue")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 50,
    as_json: AsJson = False,
) -> None:
    """RFIs the user may see, highest priority first, then nearest deadline."""
    where = RfiFilter(frozenset(state) if state else None, addressed_to_me, mine, overdue)
    with opened(ctx) as node:
        viewer = node.coalition.viewer_of(user)
        page = node.rfis.page(viewer, where, None, limit, acting=OPERATOR)
    now = datetime.now(UTC)
    if as_json:
        items = [r.to_json(now) for r in page.items]
        print(json.dumps({"total": page.total, "items": items}, ensure_ascii=False))
        return
    out.print(f"{page.total} RFI(s)")
    for rfi in page.items:
        flag = " OVERDUE" if rfi.overdue(now) else ""
        out.print(
            f"{rfi.priority.value:<9} {rfi.deadline:%Y-%m-%d %H:%M}Z {rfi.state.value:<8} "
            f"{rfi.id}  {escape(rfi.question)}{flag}"
        )


@rfi_app.command("show")
def rfi_show(ctx: typer.Context, rfi_id: str, user: User, as_json: AsJson = False) -> None:
    """One RFI as the user sees it (a hidden one is not found)."""
    with opened(ctx) as node:
        rfi = node.rfis.get(node.coalition.viewer_of(user), rfi_id, acting=OPERATOR)
    _show(rfi, as_json)


@rfi_app.command("accept")
def rfi_accept(ctx: typer.Context, rfi_id: str, user: User) -> None:
    """Accept an RFI for the user's member (an addressee)."""
    with opened(ctx) as node:
        rfi = node.rfis.accept(node.coalition.viewer_of(user), rfi_id, acting=OPERATOR)
    out.print(f"RFI {rfi.id} {rfi.state.value}; accepted by {', '.join(sorted(rfi.accepted))}")


@rfi_app.command("answer")
def rfi_answer(
    ctx: typer.Context,
    rfi_id: str,
    user: User,
    report: Annotated[str, typer.Option("--report", help="id of a report of the user's member")],
) -> None:
    """Answer an accepted RFI with an existing report of the user's member."""
    with opened(ctx) as node:
        viewer = node.coalition.viewer_of(user)
        rfi = node.rfis.answer(viewer, rfi_id, report_id=report, acting=OPERATOR)
    out.print(f"RFI {rfi.id} {rfi.state.value}; {len(rfi.answers)} answer(s) visible")


@rfi_app.command("close")
def rfi_close(
    ctx: typer.Context,
    rfi_id: str,
    user: User,
    reason: Annotated[str | None, typer.Option("--reason")] = None,
) -> None:
    """Close an RFI asked by the user's member."""
    with opened(ctx) as node:
        rfi = node.rfis.close(node.coalition.viewer_of(user), rfi_id, reason, acting=OPERATOR)
    out.print(f"RFI {rfi.id} {rfi.state.value}")
