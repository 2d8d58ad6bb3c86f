"""``kakehashi audit export``: the audit log as CSV (for auditors, breach reports, the PPC)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kakehashi.audit import service
from kakehashi.audit.repository import AuditFilter
from kakehashi.auth.cli import cli_actor
from kakehashi.kit.clitools import database
from kakehashi.kit.config import get_settings
from kakehashi.kit.db import make_session_factory, unit_of_work
from kakehashi.tenants import service as tenants

audit_app = typer.Typer(help="The audit log of personal-data access.", no_args_is_help=True)
console = Console(stderr=True)


@audit_app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV file to write ('-' for stdout)")],
    tenant: Annotated[str | None, typer.Option(help="tenant code (default: the center's own)")] = None,
    customer_id: Annotated[int | None, typer.Option(help="only rows about this customer")] = None,
    username: Annotated[str | None, typer.Option("--user", help="only this user's actions")] = None,
    since: Annotated[datetime | None, typer.Option(help="from (ISO time, inclusive)")] = None,
    until: Annotated[datetime | None, typer.Option(help="until (ISO time, exclusive)")] = None,
) -> None:
    """Write the tenant's audit rows (oldest first) as UTF-8 CSV; the export itself is audited."""
    flt = AuditFilter(customer_id=customer_id, username=username, since=_utc(since), until=_utc(until))
    with database() as engine:
        factory = make_session_factory(engine)
        with unit_of_work(factory) as session:
            code = tenant or get_settings().default_tenant
            found = tenants.get_by_code(session, code)
            if found is None:
                console.print(f"[red]no tenant {code}[/]")
                raise typer.Exit(1)
            actor = cli_actor(found.id)
            if str(out) == "-":
                count = service.write_csv(service.export_rows(session, actor, flt), sys.stdout)
            else:
                with out.open("w", encoding="utf-8", newline="") as fh:
                    count = service.write_csv(service.export_rows(session, actor, flt), fh)
            service.record(session, actor, "export", resource="audit", detail={"rows": count, "file": str(out)[:200]})
    console.print(f"[green]{count:,} audit rows[/] written to {out}")


def _utc(value: datetime | None) -> datetime | None:
    """Typer gives naive datetimes: read them as Japan time, the time the center works in."""
    if value is None or value.tzinfo is not None:
        return value
    from zoneinfo import ZoneInfo

    return value.replace(tzinfo=ZoneInfo("Asia/Tokyo"))
