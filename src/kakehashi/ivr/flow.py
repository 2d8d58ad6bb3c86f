"""The shape of an IVR flow: named nodes, each one step, linked by node ids.

A flow is JSON an admin edits::

    {"start": "hello", "nodes": {
        "hello": {"type": "notice", "prompt": "この通話は品質向上のため録音します", "next": "hours"},
        "hours": {"type": "hours", "schedule": {...}, "open": "menu", "closed": "vm"},
        "menu":  {"type": "menu", "prompt": "ご注文は1、お問い合わせは2", "options": {"1": "orders", "2": "support"},
                  "on_fail": "orders"},
        "orders": {"type": "queue", "queue": "orders"}, ...}}

Steps that end the IVR part of a call (``queue``, ``transfer``, ``voicemail``, ``callback_offer`` accepted,
``hangup``) are *exits*; every path through a flow must reach one (``ivr.validate``).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

NodeId = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_\-]+$")]
Prompt = Annotated[str, Field(min_length=1, max_length=500)]
Digit = Annotated[str, Field(pattern=r"^[0-9*#]$")]
#: ``HH:MM`` from 00:00 to 23:59, or 24:00 (midnight, as a closing time).
Clock = Annotated[str, Field(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Play(_Node):
    """Play a prompt, then go on."""

    type: Literal["play"]
    prompt: Prompt
    next: NodeId


class Notice(_Node):
    """The recording notice (APPI: tell the caller the purpose); recording starts after it when ``record``."""

    type: Literal["notice"]
    prompt: Prompt
    record: bool = True
    next: NodeId


class Menu(_Node):
    """Play a prompt and branch on one key; after ``retries`` wrong or missing keys go to ``on_fail``."""

    type: Literal["menu"]
    prompt: Prompt
    options: dict[Digit, NodeId] = Field(min_length=1)
    timeout_s: float = Field(default=5, gt=0, le=60)
    retries: int = Field(default=2, ge=0, le=5)
    invalid_prompt: Prompt | None = None
    on_fail: NodeId


class Collect(_Node):
    """Collect digits (an order number…) into ``var``; ``#`` ends early. Too few digits after the retries →
    ``on_fail``. ``sensitive`` (card numbers, PINs): the recording pauses while the caller keys them, and only
    the masked value is kept (``ivr.runner.mask_digits``): the digits never reach published events, logs or the
    database."""

    type: Literal["collect"]
    prompt: Prompt
    var: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,29}$")]
    min_digits: int = Field(default=1, ge=1, le=30)
    max_digits: int = Field(default=10, ge=1, le=30)
    timeout_s: float = Field(default=8, gt=0, le=60)
    retries: int = Field(default=1, ge=0, le=5)
    sensitive: bool = False
    next: NodeId
    on_fail: NodeId


class Schedule(BaseModel):
    """Opening hours in Japan time: per weekday a list of [open, close) ranges, ``closed_on_holidays``
    (Japanese public holidays), and extra dates closed (年末年始) or open."""

    model_config = ConfigDict(extra="forbid")

    weekly: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], list[tuple[Clock, Clock]]]
    closed_on_holidays: bool = True
    closed_dates: list[date] = Field(default_factory=list)
    open_dates: list[date] = Field(default_factory=list)


class Hours(_Node):
    """Branch on whether the center is open now."""

    type: Literal["hours"]
    schedule: Schedule
    open: NodeId
    closed: NodeId


class Condition(BaseModel):
    """What to test about the caller: ``known`` (the number matched a customer), ``rank_in`` (e.g. VIP),
    ``open_complaint``, or a collected variable's value."""

    model_config = ConfigDict(extra="forbid")

    known: bool | None = None
    rank_in: list[str] | None = None
    open_complaint: bool | None = None
    var: str | None = None
    equals: str | None = None


class Branch(_Node):
    type: Literal["branch"]
    when: Condition
    then: NodeId
    otherwise: NodeId = Field(alias="else")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SetRoute(_Node):
    """Set what the ACD uses: the caller's priority (higher first), and where a ``queue`` exit without its own
    queue goes — a queue by name, or a ``skill`` (the tenant's queue whose members are the agents with that
    skill). The last ``set`` naming a queue or a skill decides; one node names one or the other."""

    type: Literal["set"]
    queue: str | None = None
    priority: int | None = Field(default=None, ge=0, le=100)
    skill: Annotated[str, Field(min_length=1, max_length=60)] | None = None
    next: NodeId


class ToQueue(_Node):
    """Exit: hand the caller to the ACD (``queue`` or the one set earlier)."""

    type: Literal["queue"]
    queue: str | None = None
    priority: int | None = Field(default=None, ge=0, le=100)


class Transfer(_Node):
    """Exit: send the call to a number or an agent (取次)."""

    type: Literal["transfer"]
    target: Annotated[str, Field(min_length=1, max_length=60)]


class VoicemailNode(_Node):
    """Exit: the caller leaves a message (for ``queue``'s team)."""

    type: Literal["voicemail"]
    prompt: Prompt
    queue: str | None = None


class CallbackOffer(_Node):
    """Offer a callback: the ``accept`` key files a request that keeps the caller's place in ``queue``
    (exit); anything else goes to ``decline``."""

    type: Literal["callback_offer"]
    prompt: Prompt
    accept: Digit = "1"
    queue: str | None = None
    timeout_s: float = Field(default=5, gt=0, le=60)
    decline: NodeId


class Hangup(_Node):
    """Exit: play a goodbye (optional) and hang up."""

    type: Literal["hangup"]
    prompt: Prompt | None = None


AnyNode = (
    Play | Notice | Menu | Collect | Hours | Branch | SetRoute | ToQueue | Transfer | VoicemailNode | CallbackOffer
    | Hangup
)  # fmt: skip
Node = Annotated[AnyNode, Field(discriminator="type")]

EXITS = ("queue", "transfer", "voicemail", "hangup")


class Flow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: NodeId
    nodes: dict[NodeId, Node] = Field(min_length=1, max_length=500)


def successors(node: AnyNode) -> list[str]:
    """The node ids a node can lead to."""
    match node:
        case Play() | Notice() | SetRoute():
            return [node.next]
        case Menu():
            return [*node.options.values(), node.on_fail]
        case Collect():
            return [node.next, node.on_fail]
        case Hours():
            return [node.open, node.closed]
        case Branch():
            return [node.then, node.otherwise]
        case CallbackOffer():
            return [node.decline]
        case _:
            return []
