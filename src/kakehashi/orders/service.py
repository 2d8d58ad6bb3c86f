"""Purchase history. Orders belong to a customer of the same tenant."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from kakehashi.audit import service as audit
from kakehashi.customers import service as customers
from kakehashi.kit.context import Actor
from kakehashi.kit.db import utcnow
from kakehashi.kit.events import Event, publish_on_commit
from kakehashi.orders.models import Order, OrderLine
from kakehashi.orders.repository import OrderRepository
from kakehashi.orders.schemas import OrderCreate

SCREENPOP_ORDERS = 20


def create_order(session: Session, actor: Actor, customer_id: int, data: OrderCreate) -> Order:
    customers.require_customer(session, actor, customer_id)
    lines = [
        OrderLine(
            sku=line.sku,
            name=line.name.strip(),
            quantity=line.quantity,
            unit_price=line.unit_price,
            amount=line.quantity * line.unit_price,
        )
        for line in data.lines
    ]
    order = Order(
        customer_id=customer_id,
        order_no=data.order_no,
        ordered_at=data.ordered_at or utcnow(),
        channel=data.channel,
        status="ordered",
        total=sum(line.amount for line in lines),
        lines=lines,
    )
    OrderRepository(session, actor.tenant_id).add(order)
    audit.record(session, actor, "create", resource="order", resource_id=order.id, customer_id=customer_id)
    publish_on_commit(
        session,
        Event("order.created", actor.tenant_id, {"order_id": order.id, "customer_id": customer_id}),
    )
    return order


def latest_orders(session: Session, actor: Actor, customer_id: int, limit: int = SCREENPOP_ORDERS) -> list[Order]:
    return OrderRepository(session, actor.tenant_id).latest_for_customer(customer_id, limit)


def recent_order_rows(
    session: Session, actor: Actor, customer_id: int, limit: int = SCREENPOP_ORDERS
) -> list[dict[str, Any]]:
    """Newest orders with lines as plain dicts (the screen pop's read path)."""
    return OrderRepository(session, actor.tenant_id).recent_rows(customer_id, limit)


def list_orders(session: Session, actor: Actor, customer_id: int, limit: int = 100) -> list[Order]:
    customers.require_customer(session, actor, customer_id)
    audit.record_customer_reads(session, actor, [customer_id], resource="orders")
    return latest_orders(session, actor, customer_id, limit)


def all_for_customer(session: Session, actor: Actor, customer_id: int) -> list[Order]:
    """Every order of the customer, oldest first. Not audited: the caller (a disclosure) audits its export."""
    return OrderRepository(session, actor.tenant_id).all_for_customer(customer_id)


def order_belongs_to(session: Session, actor: Actor, order_id: int, customer_id: int) -> bool:
    return OrderRepository(session, actor.tenant_id).belongs_to(order_id, customer_id)


# -- target extraction (ターゲット抽出): statements of customer ids for campaigns.segments (not run here)


def customer_ids_ordered(session: Session, actor: Actor, *, since: datetime | None = None) -> Select[Any]:
    """Customers of the tenant with an order (at or after ``since``): recency."""
    return OrderRepository(session, actor.tenant_id).customer_ids_ordered(since)


def customer_ids_by_order_count(
    session: Session, actor: Actor, *, low: int | None, high: int | None, since: datetime | None = None
) -> Select[Any]:
    """Customers with between ``low`` and ``high`` orders (at or after ``since``), at least one: frequency."""
    return OrderRepository(session, actor.tenant_id).customer_ids_by_orders("count", low=low, high=high, since=since)


def customer_ids_by_order_total(
    session: Session, actor: Actor, *, low: int | None, high: int | None, since: datetime | None = None
) -> Select[Any]:
    """Customers whose orders (at or after ``since``, at least one) total between ``low`` and ``high`` yen:
    monetary."""
    return OrderRepository(session, actor.tenant_id).customer_ids_by_orders("total", low=low, high=high, since=since)


def customer_ids_by_product(
    session: Session, actor: Actor, *, codes: Sequence[str], names: Sequence[str], since: datetime | None = None
) -> Select[Any]:
    """Customers who bought a product: an order line (at or after ``since``) with one of the codes, or whose
    name contains one of the names."""
    return OrderRepository(session, actor.tenant_id).customer_ids_by_product(codes, names, since)
