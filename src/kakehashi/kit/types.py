"""Column types shared by every domain."""

from __future__ import annotations

from sqlalchemy import JSON, String
from sqlalchemy.dialects.postgresql import JSONB

#: A JSON document; JSONB on PostgreSQL so it can be indexed and queried.
JsonDoc = JSON().with_variant(JSONB(), "postgresql")


def search_key_type(length: int) -> String:
    """A string compared by code point (``COLLATE "C"`` on PostgreSQL) so prefix ranges use the index."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")
