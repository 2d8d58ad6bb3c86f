"""Administrative database chores for tests and benchmarks (PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import URL, create_engine, text
from sqlalchemy.engine import make_url


def recreate_database(url: str | URL, *, create: bool = True) -> None:
    """Drop the URL's PostgreSQL database (closing its sessions) and, unless ``create=False``, create it empty."""
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
            if create:
                conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        admin.dispose()
