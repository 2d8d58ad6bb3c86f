"""Helpers shared by the CLI commands of every domain."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from sqlalchemy import Engine

from kakehashi.kit.config import get_settings
from kakehashi.kit.db import make_engine
from kakehashi.kit.errors import DomainError


@contextmanager
def database() -> Iterator[Engine]:
    """The configured database's engine, disposed when the command ends."""
    engine = make_engine(get_settings().effective_database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def fail(console: Console, exc: DomainError) -> typer.Exit:
    """Print a domain error with its per-field problems; the caller raises the returned exit (code 1)."""
    console.print(f"[red]{exc.detail}[/]")
    for err in exc.errors:
        console.print(f"  {err.get('field')}: {err.get('message')}")
    return typer.Exit(1)
