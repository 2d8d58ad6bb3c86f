"""``kakehashi privacy source-add|disclose``: APPI records and disclosure exports from the shell."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from kakehashi.auth.cli import cli_actor
from kakehashi.kit.clitools import database, fail
from kakehashi.kit.clock import business_today
from kakehashi.kit.config import get_settings
from kakehashi.kit.context import Actor
from kakehashi.kit.db import make_session_factory, unit_of_work
from kakehashi.kit.errors import DomainError
from kakehashi.privacy import export, service
from kakehashi.privacy.schemas import Channel, SourceCreate
from kakehashi.tenants import service as tenants

privacy_app = typer.Typer(help="APPI (個人情報保護法): list sources, disclosure exports.", no_args_is_help=True)
console = Console(stderr=True)

# Items are typed as 氏名,電話番号 or 氏名、電話番号 (the Japanese comma) alike.
_ITEM_SEPARATORS = re.compile(r"[,、，]")


def _date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"'{value}' is not a date (YYYY-MM-DD)", param_hint=option) from None


def _actor(session: Session, tenant: str | None) -> Actor:
    """The shell user acting in the named tenant (which must exist) or in the center's own."""
    if tenant is None:
        # The center's tenant exists once the server has started; made here too, as the server would.
        code = get_settings().default_tenant
        return cli_actor(tenants.ensure(session, code).id)
    found = tenants.get_by_code(session, tenant)
    if found is None:
        console.print(f"[red]no tenant {tenant}[/]")
        raise typer.Exit(1)
    return cli_actor(found.id)


@privacy_app.command("source-add")
def source_add(
    provider: Annotated[str, typer.Option(help="provider's name (提供元の氏名・名称)")],
    method: Annotated[str, typer.Option(help="how the provider obtained the data (取得の経緯)")],
    received: Annotated[str, typer.Option(help="date received, YYYY-MM-DD (受領日)")],
    items: Annotated[str, typer.Option(help="items received, comma separated: 氏名,電話番号,住所")],
    address: Annotated[str | None, typer.Option(help="provider's address (住所)")] = None,
    representative: Annotated[str | None, typer.Option(help="representative, for a company (代表者)")] = None,
    purpose: Annotated[str | None, typer.Option(help="what the list is used for (利用目的)")] = None,
    retain_until: Annotated[str | None, typer.Option(help="keep the record until (default: 3 years)")] = None,
    tenant: Annotated[str | None, typer.Option(help="tenant code (default: the center's own)")] = None,
) -> None:
    """Record a third-party provision record (第三者提供に係る記録); prints the new source id."""
    try:
        data = SourceCreate(
            provider_name=provider,
            provider_address=address,
            provider_representative=representative,
            acquisition_method=method,
            received_on=_date(received, "--received"),
            items=[i for i in _ITEM_SEPARATORS.split(items) if i.strip()],
            purpose=purpose,
            retain_until=_date(retain_until, "--retain-until") if retain_until else None,
        )
    except ValidationError as exc:
        for err in exc.errors():
            console.print(f"[red]{'.'.join(str(p) for p in err['loc'])}: {err['msg']}[/]")
        raise typer.Exit(1) from None
    with database() as engine, unit_of_work(make_session_factory(engine)) as session:
        try:
            source = service.record_source(session, _actor(session, tenant), data)
        except DomainError as exc:
            raise fail(console, exc) from None
    console.print(f"[green]list source {source.id}[/] ({source.provider_name}) kept until {source.retain_until}")
    typer.echo(source.id)


@privacy_app.command("disclose")
def disclose(
    customer_id: int,
    out: Annotated[Path, typer.Option("--out", "-o", help="file to write: .json or .xlsx (one sheet per section)")],
    tenant: Annotated[str | None, typer.Option(help="tenant code (default: the center's own)")] = None,
    channel: Annotated[Channel | None, typer.Option(help="how the request came in")] = None,
    received: Annotated[str | None, typer.Option(help="date the request came in (default: today)")] = None,
    note: Annotated[str | None, typer.Option(help="note kept with the request")] = None,
) -> None:
    """Write everything held about a customer (開示請求); recorded as a request and audited as an export."""
    if out.suffix.lower() not in export.FORMATS:
        raise typer.BadParameter(f"use a file ending {' or '.join(export.FORMATS)}", param_hint="--out")
    received_on = _date(received, "--received") if received else None
    with database() as engine, unit_of_work(make_session_factory(engine)) as session:
        actor = _actor(session, tenant)
        try:
            disclosure = service.disclose(
                session, actor, customer_id, channel=channel, received_on=received_on, note=note
            )
        except DomainError as exc:
            raise fail(console, exc) from None
        # Written inside the transaction: if the file cannot be written, the request and audit row roll back.
        export.write(disclosure, actor, out)
    console.print(f"[green]disclosure of customer {customer_id}[/] written to {out}")


def resolve_import_source(
    engine: Engine,
    file: Path,
    *,
    tenant: str | None,
    source: int | None,
    provider: str | None,
    method: str | None,
    received: str | None,
    encoding: str | None = None,
    sheet: str | None = None,
) -> int:
    """The source record an import links its customers to: an existing one, or one recorded now."""
    from kakehashi.customers.importer import ImportSetupError, open_table

    if source is None and not (provider and method):
        raise ImportSetupError(
            "say where the list came from (APPI): --source ID (kakehashi privacy source-add), "
            "or --provider NAME --method HOW [--received YYYY-MM-DD]"
        )
    with unit_of_work(make_session_factory(engine)) as session:
        actor = _actor(session, tenant)
        try:
            if source is not None:
                return service.get_source(session, actor, source)[0].id
            table = open_table(file, encoding=encoding, sheet=sheet)
            try:
                headers = [h for h in table.headers if h.strip()]
            finally:
                table.close()
            data = SourceCreate(
                provider_name=provider or "",
                acquisition_method=method or "",
                received_on=_date(received, "--received") if received else business_today(),
                items=headers[:100] or ["(no header)"],
            )
            return service.record_source(session, actor, data).id
        except DomainError as exc:
            raise ImportSetupError(f"{exc.detail}: " + "; ".join(str(e.get("message")) for e in exc.errors)) from None
