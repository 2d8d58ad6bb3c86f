"""``kakehashi user|tenant|token …``: make the first admin, manage tenants and tokens from the shell."""

from __future__ import annotations

import getpass
import sys
from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from kakehashi.audit import service as audit
from kakehashi.auth import repository as users_repo
from kakehashi.auth import service
from kakehashi.kit.clitools import database, fail
from kakehashi.kit.config import get_settings
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.db import make_session_factory, unit_of_work
from kakehashi.kit.errors import DomainError
from kakehashi.tenants import service as tenants

user_app = typer.Typer(help="Users: create the first admin, reset passwords.", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants: client companies (委託元) and the center.", no_args_is_help=True)
token_app = typer.Typer(help="API bearer tokens.", no_args_is_help=True)
console = Console(stderr=True)


def cli_actor(tenant_id: int) -> Actor:
    """The shell user, as the audit log should name them."""
    return Actor(tenant_id=tenant_id, username=f"cli:{getpass.getuser()}"[:60], origin="cli", route="cli")


def _center_id(session: Session) -> int:
    """The center's own tenant: where center-level events (tenant changes, center-wide admins) are logged."""
    code = get_settings().default_tenant
    return tenants.ensure(session, code).id


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = typer.prompt("password", hide_input=True)
    if typer.prompt("again", hide_input=True) != first:
        raise typer.BadParameter("the passwords differ")
    return str(first)


@user_app.command("create")
def user_create(
    username: str,
    role: Annotated[Role, typer.Option(help="operator, supervisor, admin or client_viewer")],
    tenant: Annotated[str | None, typer.Option(help="tenant code (default: the center's own tenant)")] = None,
    center_wide: Annotated[bool, typer.Option(help="an admin not bound to one tenant")] = False,
    name: Annotated[str | None, typer.Option(help="display name")] = None,
    password_stdin: Annotated[bool, typer.Option(help="read the password from stdin (scripts)")] = False,
) -> None:
    """Create a user; the password is asked twice (or read from stdin)."""
    password = _read_password(password_stdin)
    with database() as engine, unit_of_work(make_session_factory(engine)) as session:
        code = tenant or get_settings().default_tenant
        home = tenants.ensure(session, code)
        try:
            user = service.create_user(
                session,
                username=username,
                password=password,
                role=role,
                tenant_id=None if center_wide else home.id,
                display_name=name,
            )
        except DomainError as exc:
            raise fail(console, exc) from None
        audit.record(session, cli_actor(home.id), "user.create", resource="user", resource_id=user.id,
                     detail={"role": role.value, "center_wide": center_wide})  # fmt: skip
    where = "center-wide" if center_wide else f"tenant {code}"
    console.print(f"[green]user {user.username}[/] ({role.value}, {where}) created")


@user_app.command("passwd")
def user_passwd(
    username: str,
    password_stdin: Annotated[bool, typer.Option(help="read the password from stdin")] = False,
) -> None:
    """Set a new password (also unlocks the name, ends the user's sessions and revokes their tokens)."""
    password = _read_password(password_stdin)
    with database() as engine, unit_of_work(make_session_factory(engine)) as session:
        user = users_repo.user_by_username(session, username)
        if user is None:
            console.print(f"[red]no user {username}[/]")
            raise typer.Exit(1)
        try:
            ended = service.reset_password(session, user, password)
        except DomainError as exc:
            raise fail(console, exc) from None
        actor = cli_actor(user.tenant_id or _center_id(session))
        audit.record(session, actor, "user.update", resource="user", resource_id=user.id,
                     detail={"password_reset": True, **ended})  # fmt: skip
    console.print(f"[green]password of {username} changed[/] (sessions ended: {ended['sessions_ended']}, "
                  f"tokens revoked: {ended['tokens_revoked']})")  # fmt: skip


@user_app.command("list")
def user_list() -> None:
    with database() as engine, unit_of_work(make_session_factory(engine)) as session:
        table = Table("user", "name", "role", "tenant", "active", "last login")
        codes = {t.id: t.code for t in tenants.all_tenants(session)}
        for user in users_repo.all_users(session):
            table.add_row(
                user.username,
                user.display_name,
                user.role,
                codes.get(user.tenant_id, "") if user.tenant_id else "(center-wide)",
                "yes" if user.active else "no",
                user.last_login_at.isoformat(timespec="minutes") if user.last_login_at else "",
            )
    Console().print(table)


@tenant_app.command("create")
def tenant_create(
    code: str,
    name: str,
    client_sees_personal_data: Annotated[bool, typer.Option(help="client viewers see unmasked data")] = False,
) -> None:
    from kakehashi.tenants.schemas import TenantCreate

    with database() as engine, unit_of_work(make_session_factory(engine)) as session:
        try:
            data = TenantCreate(code=code, name=name, client_sees_personal_data=client_sees_personal_data)
            tenant = tenants.create_tenant(session, cli_actor(_center_id(session)), data)
        except DomainError as exc:
            raise fail(console, exc) from None
    console.print(f"[green]tenant {tenant.code}[/] ({tenant.name}) created")


@tenant_app.command("list")
def tenant_list() -> None:
    with database() as engine, unit_of_work(make_session_factory(engine)) as session:
        table = Table("id", "code", "name", "client sees personal data")
        for t in tenants.all_tenants(session):
            table.add_row(str(t.id), t.code, t.name, "yes" if t.client_sees_personal_data else "no")
    Console().print(table)


@token_app.command("create")
def token_create(
    username: str,
    name: Annotated[str, typer.Option(help="what the token is for")] = "cli",
    ttl_hours: Annotated[int | None, typer.Option(help="hours until it expires (empty: until revoked)")] = None,
) -> None:
    """Print a new bearer token for a user (shown once)."""
    with database() as engine, unit_of_work(make_session_factory(engine)) as session:
        user = users_repo.user_by_username(session, username)
        if user is None or not user.active:
            console.print(f"[red]no active user {username}[/]")
            raise typer.Exit(1)
        secret, _token = service.issue_token(session, user, name, ttl=timedelta(hours=ttl_hours) if ttl_hours else None)
    print(secret)
