"""Queries of the APPI records, always scoped to one tenant."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import bindparam, func, insert, select, text
from sqlalchemy.dialects import sqlite

from kakehashi.kit.db import UTCDateTime
from kakehashi.kit.repository import TenantRepository
from kakehashi.privacy.models import CustomerSource, DataSource, PrivacyRequest

#: Bound parameters per IN list; well under SQLite's limit, and keeps PostgreSQL plans simple.
_CHUNK = 500
#: The links of a list of customers in one statement (an array parameter), the new ones returned.
_LINK_PG = text(
    "INSERT INTO customer_sources (customer_id, source_id, tenant_id, linked_at)"
    " SELECT unnest(CAST(:ids AS bigint[])), :source_id, :tenant_id, :at"
    " ON CONFLICT DO NOTHING RETURNING customer_id"
).bindparams(bindparam("at", type_=UTCDateTime()))


class SourceRepository(TenantRepository):
    def add(self, source: DataSource) -> DataSource:
        source.tenant_id = self.tenant_id
        self.session.add(source)
        self.session.flush()
        return source

    def get(self, source_id: int) -> DataSource | None:
        stmt = self.scoped(select(DataSource).where(DataSource.id == source_id), DataSource)
        return self.session.scalars(stmt).one_or_none()

    def page(self, limit: int, offset: int) -> tuple[list[DataSource], int]:
        """Newest first."""
        stmt = self.scoped(select(DataSource), DataSource)
        total = self.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        page = stmt.order_by(DataSource.received_on.desc(), DataSource.id.desc()).limit(limit).offset(offset)
        return list(self.session.scalars(page)), total

    def customer_count(self, source_id: int) -> int:
        stmt = self.scoped(select(func.count()).where(CustomerSource.source_id == source_id), CustomerSource)
        return self.session.scalar(stmt) or 0

    def linked(self, source_id: int, customer_ids: Sequence[int]) -> set[int]:
        """Which of these customers are already linked to the source."""
        found: set[int] = set()
        for start in range(0, len(customer_ids), _CHUNK):
            chunk = list(customer_ids[start : start + _CHUNK])
            # The customers' links first (primary key), then the source: with both conditions at once PostgreSQL
            # may scan all of the source's links through ix_customer_sources_source_id when the table has no
            # statistics yet (a bulk import: every row has that source), a cost growing with the list.
            links = (
                select(CustomerSource.customer_id, CustomerSource.source_id)
                .where(CustomerSource.customer_id.in_(chunk))
                .cte("links")
                .prefix_with("MATERIALIZED")
            )
            stmt = select(links.c.customer_id).where(links.c.source_id == source_id)
            found.update(self.session.scalars(stmt))
        return found

    def link(self, source_id: int, customer_ids: Sequence[int], at: datetime) -> int:
        """Insert the pairs not linked yet (also those another transaction linked meanwhile are skipped, not an
        error); return how many are new. On PostgreSQL one statement whatever the number of customers."""
        if not customer_ids:
            return 0
        dialect = self.session.get_bind().dialect.name
        if dialect == "postgresql":
            inserted = self.session.execute(
                _LINK_PG, {"ids": list(customer_ids), "source_id": source_id, "tenant_id": self.tenant_id, "at": at}
            )
            return len(inserted.all())
        already = self.linked(source_id, customer_ids)
        rows: list[dict[str, Any]] = [
            {"customer_id": cid, "source_id": source_id, "tenant_id": self.tenant_id, "linked_at": at}
            for cid in customer_ids
            if cid not in already
        ]
        if rows:
            insert_ = sqlite.insert(CustomerSource).on_conflict_do_nothing() if dialect == "sqlite" else None
            self.session.execute(insert_ if insert_ is not None else insert(CustomerSource), rows)
        return len(rows)

    def link_created(self, source_id: int, customer_ids: Sequence[int], at: datetime) -> int:
        """Link customers created in this transaction (none linked yet): on PostgreSQL one ``COPY``."""
        if not customer_ids:
            return 0
        if self.session.get_bind().dialect.name != "postgresql":
            rows = [
                {"customer_id": cid, "source_id": source_id, "tenant_id": self.tenant_id, "linked_at": at}
                for cid in customer_ids
            ]
            self.session.execute(insert(CustomerSource), rows)
            return len(rows)
        raw = self.session.connection().connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        tail = f"\t{source_id}\t{self.tenant_id}\t{at.isoformat()}\n"
        sql = "COPY customer_sources (customer_id, source_id, tenant_id, linked_at) FROM STDIN"
        with raw.cursor() as cur, cur.copy(sql) as copy:
            copy.write("".join(f"{cid}{tail}" for cid in customer_ids))
        return len(customer_ids)

    def sources_of_customer(self, customer_id: int) -> list[tuple[DataSource, datetime]]:
        """The lists a customer came from, with when each link was made, oldest first."""
        stmt = self.scoped(
            select(DataSource, CustomerSource.linked_at)
            .join(CustomerSource, CustomerSource.source_id == DataSource.id)
            .where(CustomerSource.customer_id == customer_id)
            .order_by(CustomerSource.linked_at, DataSource.id),
            DataSource,
            CustomerSource,
        )
        return [(source, linked_at) for source, linked_at in self.session.execute(stmt)]


class PrivacyRequestRepository(TenantRepository):
    def add(self, request: PrivacyRequest) -> PrivacyRequest:
        request.tenant_id = self.tenant_id
        self.session.add(request)
        self.session.flush()
        return request

    def for_customer(self, customer_id: int) -> list[PrivacyRequest]:
        """Oldest first."""
        stmt = self.scoped(select(PrivacyRequest).where(PrivacyRequest.customer_id == customer_id), PrivacyRequest)
        return list(self.session.scalars(stmt.order_by(PrivacyRequest.created_at, PrivacyRequest.id)))
