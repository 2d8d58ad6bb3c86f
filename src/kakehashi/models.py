"""Every table, imported in one place for Alembic and the test fixtures."""

from kakehashi.complaints.models import Complaint
from kakehashi.contacts.models import Contact
from kakehashi.customers.models import Customer, CustomerPhone, CustomFieldDef
from kakehashi.kit.db import Base
from kakehashi.orders.models import Order, OrderLine
from kakehashi.tenants.models import Tenant

__all__ = [
    "Base",
    "Complaint",
    "Contact",
    "CustomFieldDef",
    "Customer",
    "CustomerPhone",
    "Order",
    "OrderLine",
    "Tenant",
]
