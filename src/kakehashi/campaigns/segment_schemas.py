"""Target extraction (ターゲット抽出): a segment's criteria, schedule and the answers of a count and a run.

Every group of the criteria is optional; groups combine with AND, the values of one list with OR (``ranks:
["gold", "vip"]`` is gold or vip). What the schema cannot know (the tenant's custom fields, its result codes) the
service checks against the database (``campaigns.segments.validate``), with the same field names in its errors.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from kakehashi.campaigns.schemas import Clock, Name
from kakehashi.kit.masking import PhoneText

#: Work limits of one criteria (the live count runs it on every edit): items per list, custom conditions, days.
MAX_ITEMS = 50
MAX_CUSTOM = 20
MAX_DAYS = 3650

Item = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
]
Items = Annotated[list[Item], Field(max_length=MAX_ITEMS)]
Days = Annotated[int, Field(ge=1, le=MAX_DAYS)]
Gender = Literal["male", "female", "other", "unknown"]
#: Why a matching customer is not added (or would not be): the scrub of ``campaigns.service.scrub`` plus
#: ``no_phone`` (the customer has no number).
SegmentScrubReason = Literal["do_not_contact", "outbound_excluded", "no_phone", "refused", "dnc", "duplicate"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgeRange(_Strict):
    """Age in whole years on today's Japanese date, from the birthday (customers without one never match)."""

    min: int | None = Field(default=None, ge=0, le=150)
    max: int | None = Field(default=None, ge=0, le=150)

    @model_validator(mode="after")
    def _ordered(self) -> AgeRange:
        if self.min is None and self.max is None:
            raise ValueError("give min or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not be above max")
        return self


class CustomCondition(_Strict):
    """A condition on a custom field: ``equals`` (``value``), ``in`` (``values``, any of) or ``range`` (``min``
    and/or ``max``, inclusive; number and date fields)."""

    key: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    op: Literal["equals", "in", "range"]
    value: str | int | float | bool | None = None
    values: Annotated[list[str | int | float | bool], Field(max_length=MAX_ITEMS)] | None = None
    min: str | int | float | None = None
    max: str | int | float | None = None

    @model_validator(mode="after")
    def _operands(self) -> CustomCondition:
        if self.op == "equals" and self.value is None:
            raise ValueError("equals needs value")
        if self.op == "in" and not self.values:
            raise ValueError("in needs values")
        if self.op == "range" and self.min is None and self.max is None:
            raise ValueError("range needs min or max")
        return self


class Recency(_Strict):
    """The last order: ``within_days`` (ordered in the last N days) and/or ``older_than_days`` (has ordered, but
    not in the last N days)."""

    within_days: Days | None = None
    older_than_days: Days | None = None

    @model_validator(mode="after")
    def _given(self) -> Recency:
        if self.within_days is None and self.older_than_days is None:
            raise ValueError("give within_days or older_than_days")
        if (
            self.within_days is not None
            and self.older_than_days is not None
            and self.within_days <= self.older_than_days
        ):
            raise ValueError("within_days must be more than older_than_days (or nobody matches)")
        return self


class _Between(_Strict):
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)
    #: Count only orders of the last N days (null: all time).
    period_days: Days | None = None

    @model_validator(mode="after")
    def _ordered(self) -> _Between:
        if self.min is None and self.max is None:
            raise ValueError("give min or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not be above max")
        return self


class Frequency(_Between):
    """How many orders (inclusive range; customers without orders count 0)."""

    min: int | None = Field(default=None, ge=0, le=1_000_000)
    max: int | None = Field(default=None, ge=0, le=1_000_000)


class Monetary(_Between):
    """The sum of the orders' totals in yen (inclusive range; customers without orders count 0)."""

    # Bounded so that the database compares it as an integer it can hold (a 32-bit parameter on PostgreSQL).
    min: int | None = Field(default=None, ge=0, le=2_000_000_000)
    max: int | None = Field(default=None, ge=0, le=2_000_000_000)


class Product(_Strict):
    """Bought (or, with ``bought`` false, never bought) a product: an order line whose code is one of ``codes`` or
    whose name contains one of ``names``."""

    codes: Items = Field(default_factory=list)
    names: Items = Field(default_factory=list)
    period_days: Days | None = None
    bought: bool = True

    @model_validator(mode="after")
    def _given(self) -> Product:
        if not self.codes and not self.names:
            raise ValueError("give codes or names")
        return self


class LastContact(_Strict):
    """The result code (disposition) of the customer's latest call that has one is one of ``results``."""

    results: Annotated[list[Item], Field(min_length=1, max_length=MAX_ITEMS)]


CaseKind = Literal["complaint", "return"]


def _complaints_only() -> list[CaseKind]:
    return ["complaint"]


class Complaints(_Strict):
    """Complaint history: ``has`` true (at least one) or false (none), counting only those of the last
    ``within_days`` days, only open ones, of these kinds."""

    has: bool = True
    within_days: Days | None = None
    open_only: bool = False
    kinds: Annotated[list[CaseKind], Field(min_length=1)] = Field(default_factory=_complaints_only)


class Criteria(_Strict):
    """Who a segment selects. Groups AND, list items OR; an empty criteria selects every customer."""

    age: AgeRange | None = None
    genders: Annotated[list[Gender], Field(max_length=4)] = Field(default_factory=list)
    prefectures: Items = Field(default_factory=list)
    cities: Items = Field(default_factory=list)
    ranks: Items = Field(default_factory=list)
    custom: Annotated[list[CustomCondition], Field(max_length=MAX_CUSTOM)] = Field(default_factory=list)
    recency: Recency | None = None
    frequency: Frequency | None = None
    monetary: Monetary | None = None
    product: Product | None = None
    last_contact: LastContact | None = None
    complaints: Complaints | None = None


class Schedule(_Strict):
    """Re-run on these weekdays (0 Monday … 6 Sunday) at ``time``, Japan time."""

    weekdays: Annotated[list[Annotated[int, Field(ge=0, le=6)]], Field(min_length=1, max_length=7)]
    time: Clock = Field(examples=["09:00"])

    @model_validator(mode="after")
    def _no_midnight_24(self) -> Schedule:
        if self.time == "24:00":
            raise ValueError("time must be 00:00–23:59")
        self.weekdays = sorted(set(self.weekdays))
        return self


class SegmentIn(_Strict):
    name: Name
    criteria: Criteria = Field(default_factory=Criteria)
    campaign_id: int | None = Field(default=None, ge=1)
    schedule: Schedule | None = None


class SegmentUpdate(_Strict):
    name: Name | None = None
    criteria: Criteria | None = None
    campaign_id: int | None = Field(default=None, ge=1)
    schedule: Schedule | None = None


class SegmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    criteria: dict[str, Any]
    campaign_id: int | None
    schedule: dict[str, Any] | None
    last_run_at: datetime | None
    next_run_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class SegmentCount(BaseModel):
    """``matching``: customers the criteria select; ``callable``: those a run could add now (a number, no flag,
    no refusal, not on the DNC list); ``scrubbed_by_reason``: the others, by the first reason that applies."""

    matching: int
    callable: int
    scrubbed_by_reason: dict[str, int]


class RunIn(_Strict):
    campaign_id: int | None = Field(default=None, ge=1, description="default: the segment's campaign")


class ScrubbedCustomer(BaseModel):
    customer_id: int
    phone: PhoneText | None
    reason: SegmentScrubReason


class SegmentRun(BaseModel):
    """What a run did: leads ``added`` (on the list ``list_id``), each customer left out with the reason, and how
    many matching customers were in the campaign already (by customer or by number)."""

    campaign_id: int
    list_id: int | None
    added: int
    scrubbed: list[ScrubbedCustomer]
    skipped_already_in_campaign: int


class DueRun(BaseModel):
    """One scheduled run of :func:`campaigns.segments.run_due_segments`: its report or its error."""

    segment_id: int
    tenant_id: int
    ran_at: AwareDatetime
    report: SegmentRun | None = None
    error: str | None = None
    next_run_at: datetime | None = None
