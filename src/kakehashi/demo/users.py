"""Demo logins: one user per role with random passwords, kept in the data dir (never in the repo)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sqlalchemy import Engine

from kakehashi.auth import service
from kakehashi.kit.config import Settings
from kakehashi.kit.context import Role
from kakehashi.kit.db import make_session_factory, unit_of_work
from kakehashi.tenants import service as tenants

#: username, role, display name. The admin is center-wide, the others work in the default tenant.
DEMO_USERS = (
    ("admin", Role.ADMIN, "管理者 (デモ)"),
    ("supervisor", Role.SUPERVISOR, "鈴木 SV"),
    ("operator", Role.OPERATOR, "佐藤 オペレーター"),
    ("client", Role.CLIENT_VIEWER, "委託元 閲覧"),
)
CREDENTIALS_FILE = "demo-users.txt"


def _read(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split("\t", 1) for line in path.read_text(encoding="utf-8").splitlines() if "\t" in line)
    return {name: password for name, password in pairs}


def ensure_demo_users(engine: Engine, settings: Settings) -> tuple[Path, dict[str, str]]:
    """Create the demo users once; a user whose password is not on file gets a new one."""
    path = settings.data_dir / CREDENTIALS_FILE
    known = _read(path)
    result: dict[str, str] = {}
    with unit_of_work(make_session_factory(engine)) as session:
        code = settings.default_tenant
        home = tenants.ensure(session, code)
        for username, role, display in DEMO_USERS:
            user = service.user_named(session, username)
            password = known.get(username) if user is not None else None
            if password is None:
                password = secrets.token_urlsafe(12)
                if user is None:
                    service.create_user(
                        session,
                        username=username,
                        password=password,
                        role=role,
                        tenant_id=None if role is Role.ADMIN else home.id,
                        display_name=display,
                    )
                else:
                    service.reset_password(session, user, password)
            result[username] = password
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("# Kakehashi demo logins (generated; delete this file to get new passwords)\n")
        fh.writelines(f"{name}\t{password}\n" for name, password in result.items())
    return path, result
