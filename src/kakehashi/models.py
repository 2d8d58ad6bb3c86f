"""Every table, imported in one place for Alembic and the test fixtures."""

from kakehashi.agents.models import Agent, AgentSkill, AgentStateSpan, AuxCode
from kakehashi.audit.models import AuditEvent
from kakehashi.auth.models import ApiToken, LoginThrottle, User, WebSession
from kakehashi.billing.models import Rate, RatePlan
from kakehashi.calls.models import Call, CallTransition, Cdr
from kakehashi.campaigns.models import Campaign, CampaignList, DncNumber, Lead, LeadAttempt, Refusal, Segment
from kakehashi.complaints.models import Complaint
from kakehashi.contacts.models import Contact
from kakehashi.customers.models import Customer, CustomerPhone, CustomFieldDef
from kakehashi.dispositions.models import Disposition
from kakehashi.ivr.models import IvrFlow, IvrFlowVersion
from kakehashi.kit.db import Base
from kakehashi.orders.models import Order, OrderLine
from kakehashi.privacy.models import CustomerSource, DataSource, PrivacyRequest
from kakehashi.routing.models import Callback, InboundNumber, Queue, QueueMember, Voicemail
from kakehashi.tenants.models import Tenant

__all__ = [
    "Agent",
    "AgentSkill",
    "AgentStateSpan",
    "ApiToken",
    "AuditEvent",
    "AuxCode",
    "Base",
    "Call",
    "CallTransition",
    "Callback",
    "Campaign",
    "CampaignList",
    "Cdr",
    "Complaint",
    "Contact",
    "CustomFieldDef",
    "Customer",
    "CustomerPhone",
    "CustomerSource",
    "DataSource",
    "Disposition",
    "DncNumber",
    "InboundNumber",
    "IvrFlow",
    "IvrFlowVersion",
    "Lead",
    "LeadAttempt",
    "LoginThrottle",
    "Order",
    "OrderLine",
    "PrivacyRequest",
    "Queue",
    "QueueMember",
    "Rate",
    "RatePlan",
    "Refusal",
    "Segment",
    "Tenant",
    "User",
    "Voicemail",
    "WebSession",
]
