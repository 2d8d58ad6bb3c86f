"""Helpers shared by the CLI commands of every domain."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from kakehashi.kit.config import get_settings
from kakehashi.kit.db import make_engine


@contextmanager
def database() -> Iterator[Engine]:
    """The configured database's engine, disposed when the command ends."""
    engine = make_engine(get_settings().effective_database_url)
    try:
        yield engine
    finally:
        engine.dispose()
