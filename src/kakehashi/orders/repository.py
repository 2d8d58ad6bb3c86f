from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, bindparam, func, or_, select
from sqlalchemy.orm import joinedload, selectinload

from kakehashi.kit.repository import TenantRepository
from kakehashi.orders.models import Order, OrderLine


class OrderRepository(TenantRepository):
    def add(self, order: Order) -> Order:
        order.tenant_id = self.tenant_id
        self.session.add(order)
        self.session.flush()
        return order

    def latest_for_customer(self, customer_id: int, limit: int) -> list[Order]:
        """The newest ``limit`` orders with their lines, in one statement whatever the count."""
        stmt = self.scoped(
            select(Order)
            .where(Order.customer_id == customer_id)
            .options(joinedload(Order.lines))
            .order_by(Order.ordered_at.desc(), Order.id.desc())
            .limit(limit),
            Order,
        )
        return list(self.session.scalars(stmt).unique())

    def all_for_customer(self, customer_id: int) -> list[Order]:
        """Every order with its lines, oldest first (disclosure: no limit)."""
        stmt = self.scoped(
            select(Order)
            .where(Order.customer_id == customer_id)
            .options(selectinload(Order.lines))
            .order_by(Order.ordered_at, Order.id),
            Order,
        )
        return list(self.session.scalars(stmt))

    def belongs_to(self, order_id: int, customer_id: int) -> bool:
        stmt = self.scoped(select(Order.id).where(Order.id == order_id, Order.customer_id == customer_id), Order)
        return self.session.execute(stmt).first() is not None

    def recent_rows(self, customer_id: int, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` orders with ``lines``, as plain dicts, in one statement (screen pop)."""
        params = {"customer_id": customer_id, "tenant_id": self.tenant_id, "limit": limit}
        orders: dict[int, dict[str, Any]] = {}
        for r in self.session.execute(_RECENT_WITH_LINES, params).mappings():
            order = orders.get(r["id"])
            if order is None:
                order = {key: r[key] for key in _ORDER_KEYS}
                order["lines"] = []
                orders[r["id"]] = order
            if r["line_id"] is not None:
                order["lines"].append({key: r[f"line_{key}"] for key in _LINE_KEYS})
        return list(orders.values())

    # -- target extraction (statements of customer ids, composed by campaigns.segments)
    def customer_ids_ordered(self, since: datetime | None = None) -> Select[Any]:
        """Customers with an order (at or after ``since``)."""
        stmt = select(Order.customer_id)
        if since is not None:
            stmt = stmt.where(Order.ordered_at >= since)
        return self.scoped(stmt, Order)

    def customer_ids_by_orders(
        self, measure: str, *, low: int | None, high: int | None, since: datetime | None
    ) -> Select[Any]:
        """Customers whose orders (at or after ``since``) number (``measure`` "count") or total in yen ("total")
        between ``low`` and ``high`` inclusive; only customers with an order (the caller handles zero)."""
        value = func.count(Order.id) if measure == "count" else func.sum(Order.total)
        stmt = select(Order.customer_id)
        if since is not None:
            stmt = stmt.where(Order.ordered_at >= since)
        stmt = self.scoped(stmt, Order).group_by(Order.customer_id)
        if low is not None:
            stmt = stmt.having(value >= low)
        if high is not None:
            stmt = stmt.having(value <= high)
        return stmt

    def customer_ids_by_product(
        self, codes: Sequence[str], names: Sequence[str], since: datetime | None
    ) -> Select[Any]:
        """Customers with an order line whose code is one of ``codes`` or whose name contains one of ``names``."""
        match: list[ColumnElement[bool]] = [OrderLine.name.contains(n, autoescape=True) for n in names]
        if codes:
            match.append(OrderLine.sku.in_(list(codes)))
        stmt = select(Order.customer_id).join(OrderLine, OrderLine.order_id == Order.id).where(or_(*match))
        if since is not None:
            stmt = stmt.where(Order.ordered_at >= since)
        return self.scoped(stmt, Order)


def _recent_with_lines_statement() -> Select[Any]:
    o, line = Order.__table__, OrderLine.__table__
    newest = (
        select(o)
        .where(o.c.customer_id == bindparam("customer_id"), o.c.tenant_id == bindparam("tenant_id"))
        .order_by(o.c.ordered_at.desc(), o.c.id.desc())
        .limit(bindparam("limit", type_=Integer))
        .subquery("newest")
    )
    return (
        select(newest, line.c.id.label("line_id"), *(line.c[key].label(f"line_{key}") for key in _LINE_KEYS))
        .select_from(newest.outerjoin(line, line.c.order_id == newest.c.id))
        .order_by(newest.c.ordered_at.desc(), newest.c.id.desc(), line.c.id)
    )


_ORDER_KEYS = tuple(Order.__table__.columns.keys())
_LINE_KEYS = ("sku", "name", "quantity", "unit_price", "amount")
_RECENT_WITH_LINES = _recent_with_lines_statement()
