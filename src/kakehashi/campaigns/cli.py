"""``kakehashi campaign load``: a call list into a campaign from the shell (docs/user-guide/campaigns.md)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from kakehashi.auth.cli import cli_actor
from kakehashi.campaigns import compliance, lists
from kakehashi.campaigns import service as campaigns
from kakehashi.campaigns.lists_schemas import ListReport
from kakehashi.campaigns.segments_cli import run_segments
from kakehashi.customers.importer import ImportSetupError, parse_mapping
from kakehashi.kit.clitools import database, fail
from kakehashi.kit.config import get_settings
from kakehashi.kit.context import Actor
from kakehashi.kit.db import make_session_factory, unit_of_work
from kakehashi.kit.errors import DomainError, NotFound
from kakehashi.tenants import service as tenants

campaign_app = typer.Typer(help="Outbound campaigns: call lists.", no_args_is_help=True)
console = Console(stderr=True)


def _campaign_id(actor: Actor, engine_factory: sessionmaker[Session], campaign: str) -> int:
    """The campaign named (its id, or its name) in the actor's tenant."""
    with unit_of_work(engine_factory) as session:
        if campaign.isdigit():
            try:
                return campaigns.get_campaign(session, actor, int(campaign)).id
            except NotFound:
                pass  # a campaign may be named "2026"
        for found in campaigns.list_campaigns(session, actor):
            if found.name == campaign:
                return found.id
    raise NotFound(f"no campaign {campaign!r} in this tenant")


@campaign_app.command("load")
def load(
    campaign: Annotated[str, typer.Argument(help="the campaign: its id or its name")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    name: Annotated[str | None, typer.Option(help="the list's name (default: the file's name)")] = None,
    source: Annotated[
        int | None, typer.Option(help="id of the list's source record (kakehashi privacy source-add)")
    ] = None,
    provider: Annotated[str | None, typer.Option(help="or record the source here: provider (提供元)")] = None,
    method: Annotated[str | None, typer.Option(help="how the provider obtained the data (取得の経緯)")] = None,
    received: Annotated[str | None, typer.Option(help="date the list was received (default: today)")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="all or nothing: load no row if any row is bad")] = False,
    mapping: Annotated[
        list[str] | None, typer.Option("--map", help="column mapping SOURCE=field (e.g. --map 連絡先=phone)")
    ] = None,
    encoding: Annotated[str | None, typer.Option(help="CSV encoding (default: detect UTF-8 / CP932)")] = None,
    sheet: Annotated[str | None, typer.Option(help="XLSX sheet name (default: the first)")] = None,
    on_duplicate: Annotated[str, typer.Option(help="a customer holding the number: update | skip | error")] = "update",
    sim_outcomes: Annotated[
        str | None, typer.Option(help='simulator outcome mix, JSON: {"answer": 0.4, "busy": 0.1, …}')
    ] = None,
    errors_out: Annotated[Path | None, typer.Option("--errors", help="also write the bad rows here (CSV)")] = None,
    tenant: Annotated[str | None, typer.Option(help="tenant code (default: the center's own)")] = None,
) -> None:
    """Load a call list (CSV UTF-8 / Shift_JIS, XLSX) into CAMPAIGN: customers matched by phone or created,
    every number scrubbed, a lead per remaining row. Prints the report (JSON) on stdout.

    Exit 0 when rows were loaded, 1 when none was (or ``--strict`` failed), 2 when the file or the options are
    unusable (nothing written)."""
    received_on = None
    if received:
        try:
            received_on = date.fromisoformat(received.strip())
        except ValueError:
            raise typer.BadParameter(f"'{received}' is not a date (YYYY-MM-DD)", param_hint="--received") from None
    try:
        mix = json.loads(sim_outcomes) if sim_outcomes else None
    except ValueError:
        raise typer.BadParameter("a JSON object", param_hint="--sim-outcomes") from None
    try:
        columns = parse_mapping(mapping or [])
    except ImportSetupError as exc:
        raise typer.BadParameter(str(exc), param_hint="--map") from None
    with database() as engine:
        factory = make_session_factory(engine)
        try:
            with unit_of_work(factory) as session:
                code = tenant or get_settings().default_tenant
                found = tenants.get_by_code(session, code) if tenant else tenants.ensure(session, code)
                if found is None:
                    console.print(f"[red]no tenant {tenant}[/]")
                    raise typer.Exit(2)
                actor = replace(cli_actor(found.id), route="cli campaign load")
            report = lists.load_list(
                factory, actor, _campaign_id(actor, factory, campaign), file,
                source=lists.SourceSpec(source_id=source, provider=provider, method=method, received=received_on),
                name=name, strict=strict, mapping=columns, encoding=encoding, sheet=sheet, on_duplicate=on_duplicate,
                sim_outcomes=mix, progress=True, errors_path=errors_out, region=get_settings().default_region,
            )  # fmt: skip
        except DomainError as exc:
            exit_ = fail(console, exc)
            raise typer.Exit(2) from exit_
    typer.echo(report.model_dump_json())
    _summary(report)
    if report.rows_loaded == 0:
        raise typer.Exit(1)


def _summary(report: ListReport) -> None:
    table = Table(title=f"list {report.list_id}: {report.name}")
    for column in ("rows", "loaded", "scrubbed", "bad", "not loaded"):
        table.add_column(column, justify="right")
    table.add_row(*(f"{n:,}" for n in (report.rows_total, report.rows_loaded, report.rows_scrubbed, report.rows_bad,
                                       report.rows_not_loaded)))  # fmt: skip
    console.print(table)
    reasons: dict[str, int] = {}
    for row in report.scrubbed_rows:
        reasons[row.reason] = reasons.get(row.reason, 0) + 1
    if reasons:
        console.print("scrubbed: " + ", ".join(f"{reason} {n:,}" for reason, n in sorted(reasons.items())))
    for bad in report.bad_rows[:10]:
        console.print(f"[yellow]row {bad.row}[/] {bad.column or '-'}: {bad.message}")
    if len(report.bad_rows) > 10:
        console.print(f"… {len(report.bad_rows) - 10:,} more bad rows in the report")
    if report.strict and report.rows_bad:
        console.print("[red]--strict: nothing was loaded[/]")


# -- the do-not-call list (compliance.py; the same rules as POST /api/v1/campaigns/dnc/import and GET dnc.csv)


def _tenant_actor(session: Session, tenant: str | None, route: str) -> Actor:
    code = tenant or get_settings().default_tenant
    found = tenants.get_by_code(session, code) if tenant else tenants.ensure(session, code)
    if found is None:
        console.print(f"[red]no tenant {tenant}[/]")
        raise typer.Exit(2)
    return replace(cli_actor(found.id), route=route)


@campaign_app.command("dnc-import")
def dnc_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    tenant: Annotated[str | None, typer.Option(help="tenant code (default: the center's own)")] = None,
) -> None:
    """Add the numbers of a CSV / XLSX (a 電話番号 or phone column, optionally 理由 or reason) to the do-not-call
    list. Prints the result (JSON); exit 1 when a row was bad (the good ones are added), 2 when the file is
    unusable (nothing added)."""
    with database() as engine:
        try:
            with unit_of_work(make_session_factory(engine)) as session:
                actor = _tenant_actor(session, tenant, "cli campaign dnc-import")
                result = compliance.import_dnc_file(session, actor, file)
        except DomainError as exc:
            exit_ = fail(console, exc)
            raise typer.Exit(2) from exit_
    typer.echo(result.model_dump_json())
    for bad in result.bad_rows[:10]:
        console.print(f"[yellow]row {bad.row}[/] {bad.column}: {bad.problem}")
    if result.bad:
        raise typer.Exit(1)


@campaign_app.command("dnc-export")
def dnc_export(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="where to write: .csv or .xlsx")],
    tenant: Annotated[str | None, typer.Option(help="tenant code (default: the center's own)")] = None,
) -> None:
    """Write the do-not-call list to FILE (CSV UTF-8 with BOM, or XLSX by its suffix; formula-safe). Audited."""
    suffix = file.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise typer.BadParameter("a .csv or .xlsx file", param_hint="FILE")
    with database() as engine, unit_of_work(make_session_factory(engine)) as session:
        actor = _tenant_actor(session, tenant, "cli campaign dnc-export")
        export = compliance.export_dnc(session, actor, "xlsx" if suffix == ".xlsx" else "csv")
    file.write_bytes(export.content)
    console.print(f"wrote {file}")


# ターゲット抽出: the scheduled segments that are due (segments_cli.py)
campaign_app.command("run-segments")(run_segments)
