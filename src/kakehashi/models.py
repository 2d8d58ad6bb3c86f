"""Every table, imported in one place for Alembic and the test fixtures."""

from kakehashi.audit.models import AuditEvent
from kakehashi.auth.models import ApiToken, LoginThrottle, User, WebSession
from kakehashi.billing.models import Rate, RatePlan
from kakehashi.calls.models import Call, CallTransition, Cdr
from kakehashi.complaints.models import Complaint
from kakehashi.contacts.models import Contact
from kakehashi.customers.models import Customer, CustomerPhone, CustomFieldDef
from kakehashi.kit.db import Base
from kakehashi.orders.models import Order, OrderLine
from kakehashi.privacy.models import CustomerSource, DataSource, PrivacyRequest
from kakehashi.tenants.models import Tenant

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Base",
    "Call",
    "CallTransition",
    "Cdr",
    "Complaint",
    "Contact",
    "CustomFieldDef",
    "Customer",
    "CustomerPhone",
    "CustomerSource",
    "DataSource",
    "LoginThrottle",
    "Order",
    "OrderLine",
    "PrivacyRequest",
    "Rate",
    "RatePlan",
    "Tenant",
    "User",
    "WebSession",
]
