from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from kakehashi.kit.repository import TenantRepository
from kakehashi.orders.models import Order


class OrderRepository(TenantRepository):
    def add(self, order: Order) -> Order:
        order.tenant_id = self.tenant_id
        self.session.add(order)
        self.session.flush()
        return order

    def latest_for_customer(self, customer_id: int, limit: int) -> list[Order]:
        """The newest ``limit`` orders with their lines (two queries, whatever the count)."""
        stmt = self.scoped(
            select(Order)
            .where(Order.customer_id == customer_id)
            .options(selectinload(Order.lines))
            .order_by(Order.ordered_at.desc(), Order.id.desc())
            .limit(limit),
            Order,
        )
        return list(self.session.scalars(stmt))

    def belongs_to(self, order_id: int, customer_id: int) -> bool:
        stmt = self.scoped(select(Order.id).where(Order.id == order_id, Order.customer_id == customer_id), Order)
        return self.session.execute(stmt).first() is not None
