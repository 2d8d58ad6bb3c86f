"""Calls follow the driver's events: each event moves the state machine, is persisted in the same
transaction, and is re-published as the CTI's own typed event after the commit. A call that reaches a
final state gets its CDR in that transaction, so no CDR depends on anything kept in memory."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from kakehashi.audit import service as audit
from kakehashi.billing import service as billing
from kakehashi.billing.rating import billable_kind
from kakehashi.calls import repository
from kakehashi.calls.models import Call, CallTransition, Cdr
from kakehashi.calls.repository import CallRepository
from kakehashi.calls.states import DEFLECTED, FINAL, CallState, check
from kakehashi.contacts import service as contacts
from kakehashi.customers import service as customers
from kakehashi.dispositions import service as dispositions
from kakehashi.kit.clock import BUSINESS_TZ
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.errors import Conflict, NotFound, ValidationFailed, field_error
from kakehashi.kit.events import Event, publish_on_commit
from kakehashi.kit.export import csv_writer
from kakehashi.kit.phone import try_normalize_phone
from kakehashi.telephony.port import (
    AgentRinging,
    Answered,
    Bridged,
    Consult,
    ConsultState,
    Direction,
    DriverEvent,
    DtmfReceived,
    EndCause,
    Ended,
    HoldChanged,
    Offered,
    RecordingChanged,
    Transferred,
)

_END_STATE = {
    EndCause.BUSY: CallState.BUSY,
    EndCause.NO_ANSWER: CallState.NO_ANSWER,
    EndCause.INVALID_NUMBER: CallState.FAILED,
    EndCause.FAILED: CallState.FAILED,
    EndCause.TRANSFERRED: CallState.TRANSFERRED,
}
_TIMESTAMP = {
    CallState.IVR: "ivr_at",
    CallState.QUEUED: "queued_at",
    CallState.RINGING: "ringing_at",
    CallState.CONNECTED: "connected_at",
    CallState.WRAP_UP: "wrap_up_at",
}


def apply_event(session: Session, event: DriverEvent, *, driver: str) -> Call | None:
    """Apply one driver event; returns the call (None for an event about a call we never saw)."""
    if isinstance(event, Offered):
        return _offered(session, event, driver)
    call = repository.call_by_ref(session, driver, event.call_ref)
    if call is None or CallState(call.state) in FINAL or _deflected_and_over(call):
        return None  # late or unknown events (e.g. a duplicate hangup) change nothing
    match event:
        case Answered(by="remote"):
            _move(session, call, CallState.CONNECTED, event.at, "call.answered", {"by": "remote"})
        case Answered():
            _move(session, call, CallState.IVR, event.at, "call.answered", {"by": event.by})
        case DtmfReceived(digits=digits):
            call.digits = ((call.digits or "") + digits)[-40:]
            _publish(session, call, "call.dtmf", {"digits": digits})
        case AgentRinging(agent=agent):
            call.agent = agent
            _move(session, call, CallState.RINGING, event.at, "agent.ringing", {"agent": agent})
        case Bridged(agent=agent):
            call.agent, call.consult_agent = agent, None
            _move(session, call, CallState.CONNECTED, event.at, "call.bridged", {"agent": agent})
        case HoldChanged(on_hold=on_hold):
            _hold(call, on_hold, event.at)
            _publish(session, call, "call.held" if on_hold else "call.resumed", {})
        case RecordingChanged(state=state, recording_ref=ref):
            call.recording_state = state.value
            call.recording_ref = ref or call.recording_ref
            _publish(session, call, "call.recording", {"state": state.value})
        case Transferred(target=target, attended=attended):
            call.transferred_to = target
            _publish(session, call, "call.transferred", {"target": target, "attended": attended, "from": call.agent})
        case Consult(target=target, state=consult_state, cause=cause):
            call.consult_agent = None if consult_state is ConsultState.ENDED else target
            _publish(session, call, "call.consult", {"target": target, "consult": consult_state.value,
                                                     "cause": cause.value if cause else None})  # fmt: skip
        case Ended(cause=cause):
            _ended(session, call, cause, event.at)
    session.flush()
    return call


def queue_call(session: Session, call: Call, queue: str, at: datetime) -> None:
    """The routing layer put the caller in a queue (the driver only parks them)."""
    call.queue = queue
    _move(session, call, CallState.QUEUED, at, "call.queued", {"queue": queue})


def deflect(session: Session, call: Call, kind: CallState, at: datetime, *, queue: str | None = None) -> None:
    """The caller leaves a message or asks for a callback instead of waiting (``kind`` is VOICEMAIL or CALLBACK).
    The CDR follows when the line drops, with ``kind`` as its final state."""
    if kind not in DEFLECTED:
        raise ValueError(f"{kind} is not a deflection")
    call.queue = queue or call.queue
    _move(session, call, kind, at, f"call.{kind.value}", {"queue": call.queue})


def _deflected_and_over(call: Call) -> bool:
    return CallState(call.state) in DEFLECTED and call.ended_at is not None


def finish_wrap_up(
    session: Session, actor: Actor, call_id: int, disposition: str, at: datetime, *, notes: str | None = None,
    customer_id: int | None = None,
) -> Call:  # fmt: skip
    """The agent closes the call with a result code and notes (後処理の完了): the call ends and its CDR is
    written; a call from an unknown number may name the customer it was about (registered during the call).

    An operator closes only their own calls (others: 404). A person's code must be one of the center's active
    result codes (``dispositions.check_choice``: 422 with the field ``disposition``); the system's own closers
    (role None: simulated agents, benchmarks) are trusted, as everywhere. The wrap-up time running out is
    :func:`close_wrap_up_automatically`."""
    call = get_call(session, actor, call_id)
    if actor.role is not None:
        disposition = dispositions.check_choice(session, actor, disposition)
    return _close_wrap_up(session, actor, call, disposition, at, notes=notes, customer_id=customer_id)


def close_wrap_up_automatically(session: Session, tenant_id: int, ref: str, driver: str, at: datetime) -> Call | None:
    """The queue's wrap-up time ran out before the agent closed the call: it closes with the system's code
    (``dispositions.AUTO_CLOSE``). Nothing happens to a call the agent closed already (or never saw)."""
    call = repository.call_by_ref(session, driver, ref)
    if call is None or call.state != CallState.WRAP_UP:
        return None
    actor = Actor(tenant_id=tenant_id, username="routing", origin="system")
    return _close_wrap_up(session, actor, call, dispositions.AUTO_CLOSE.code, at)


def call_by_ref(session: Session, driver: str, ref: str) -> Call | None:
    """The call a driver event (or a decision on it) is about, locked for this transaction, so the events and
    decisions of one call apply in order; None for a call not stored."""
    return repository.call_by_ref(session, driver, ref)


def tag_outbound(
    session: Session, driver: str, ref: str, *, campaign_id: int | None, lead_id: int | None
) -> Call | None:
    """Mark an originated call as a campaign's (its CDR carries the campaign: costs by campaign); None for a call
    not stored."""
    call = repository.call_by_ref(session, driver, ref)
    if call is not None:
        call.campaign_id, call.lead_id = campaign_id, lead_id
    return call


def last_agent_with(session: Session, tenant_id: int, e164: str) -> tuple[str, datetime] | None:
    """The agent who last talked with ``e164`` and when: on a call from it, or a call to it (a campaign's lead
    calling back reaches the agent who called them, where the queue keeps callers with their last agent)."""
    found = [row for row in (repository.last_agent_from(session, tenant_id, e164),
                             repository.last_agent_to(session, tenant_id, e164)) if row is not None]  # fmt: skip
    return max(found, key=lambda row: row[1]) if found else None


def matched_caller(session: Session, driver: str, ref: str) -> tuple[int | None, str | None] | None:
    """(customer id, caller's E.164) as matched when the call was offered, so the routing layer does not parse
    the number and look the customer up again; None for a call not stored."""
    return repository.customer_and_caller_of(session, driver, ref)


def _close_wrap_up(
    session: Session, actor: Actor, call: Call, disposition: str, at: datetime, *, notes: str | None = None,
    customer_id: int | None = None,
) -> Call:  # fmt: skip
    call_id = call.id
    if call.state != CallState.WRAP_UP:
        raise Conflict(f"call {call_id} is {call.state}, not in wrap-up")
    if customer_id is not None and call.customer_id is None:
        call.customer_id = customers.get_customer(session, actor, customer_id).id  # 404 for another tenant's
    call.disposition = disposition.strip()[:40]
    call.notes = (notes or "").strip() or None
    _move(session, call, CallState.ENDED, at, "call.ended", {"disposition": call.disposition})
    session.flush()
    return call


def recover(session: Session, driver: str, live: set[str], at: datetime) -> list[Call]:
    """After a restart: calls the driver no longer has are ended (their CDR written, or wrap-up for a talking
    agent); live ones and those already in wrap-up stay."""
    lost = []
    for call in repository.open_calls(session, driver):
        # Wrap-up needs no line: the agent finishes the notes after reconnecting, then the CDR is written.
        if call.ref in live or call.state == CallState.WRAP_UP:
            continue
        _ended(session, call, EndCause.SYSTEM_RESTART, at)
        lost.append(call)
    session.flush()
    return lost


def in_wrap_up(session: Session, driver: str) -> list[Call]:
    """A driver's calls whose agent has not closed the wrap-up yet (all tenants: for the restart)."""
    return [call for call in repository.open_calls(session, driver) if call.state == CallState.WRAP_UP]


def customer_ids_by_last_result(session: Session, actor: Actor, codes: Sequence[str]) -> Select[Any]:
    """A statement of the ids of customers whose latest call with a result code (the wrap-up's disposition, by
    offer time) has one of ``codes`` — "last contact result" for campaigns.segments. Not run here."""
    return CallRepository(session, actor.tenant_id).customer_ids_by_last_result(codes)


def get_call(session: Session, actor: Actor, call_id: int) -> Call:
    """A call of the actor's tenant; an operator only sees calls they took (others: 404)."""
    call = CallRepository(session, actor.tenant_id).get(call_id)
    if call is None or (actor.role is Role.OPERATOR and actor.username not in (call.agent, call.consult_agent)):
        raise NotFound(f"call {call_id} not found")
    return call


_SINCE = {
    CallState.QUEUED: "queued_at",
    CallState.RINGING: "ringing_at",
    CallState.CONNECTED: "connected_at",
    CallState.WRAP_UP: "wrap_up_at",
}


def live_calls(session: Session, actor: Actor) -> list[Call]:
    """Calls in progress: the whole tenant for supervisors, an operator's own (taken or consulted on)."""
    agent = actor.username if actor.role is Role.OPERATOR else None
    return CallRepository(session, actor.tenant_id).in_progress(agent)


def remote_number(call: Call) -> str:
    """The other party's number as recorded: the caller of an inbound call, the number we dialled outbound
    (a callback, a campaign). Never the center's own number: the screen pop looks the customer up by it."""
    if call.direction == Direction.INBOUND:
        return call.ani_e164 or call.ani_raw
    return call.dnis


def state_since(call: Call) -> datetime:
    """When the call entered its current state (a later transfer or requeue is not tracked separately)."""
    column = _SINCE.get(CallState(call.state))
    at: datetime | None = getattr(call, column) if column else None
    return at or call.offered_at


def read_call(session: Session, actor: Actor, call_id: int) -> tuple[Call, list[CallTransition]]:
    """A call with its history, for showing: reading a known customer's call is an audited read."""
    call = get_call(session, actor, call_id)
    if call.customer_id is not None:
        audit.record_customer_reads(session, actor, [call.customer_id], resource="call")
    return call, CallRepository(session, actor.tenant_id).transitions(call.id)


#: Recording references a driver may give: ``sip/<file>.wav`` is a file in the data dir's ``recordings``.
_RECORDING_REF = re.compile(r"^sip/([A-Za-z0-9_.-]{1,150}\.wav)$")


def recording_file(session: Session, actor: Actor, call_id: int, data_dir: Path) -> Path:
    """The WAV of a call's recording, for playing or downloading: an audited read of the customer's data.
    404 when the call has none (or the driver keeps none, as the simulator)."""
    call = get_call(session, actor, call_id)
    found = _RECORDING_REF.match(call.recording_ref or "")
    path = data_dir / "recordings" / found.group(1) if found else None
    if path is None or not path.is_file():
        raise NotFound(f"call {call_id} has no recording")
    audit.record(session, actor, "read", resource="recording", resource_id=call.id, customer_id=call.customer_id)
    return path


def list_cdrs(
    session: Session,
    actor: Actor,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    agent: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Cdr], int]:
    """A page of CDRs, newest first. Callers' numbers are personal data: each known customer on the page is
    an audited read (one row per customer, as for customer lists)."""
    rows, total = CallRepository(session, actor.tenant_id).cdrs(since, until, agent, limit=limit, offset=offset)
    audit.record_customer_reads(session, actor, [c.customer_id for c in rows if c.customer_id is not None],
                                resource="cdr")  # fmt: skip
    return rows, total


COST_GROUPS = ("total", "campaign", "agent", "direction", "day")


def month_window(month: str) -> tuple[datetime, datetime]:
    """``2026-11`` → [1 Nov 00:00, 1 Dec 00:00) in Japan time (a center's month is Japan's month)."""
    try:
        year, mon = (int(part) for part in month.split("-"))
        start = datetime(year, mon, 1, tzinfo=BUSINESS_TZ)
    except ValueError:
        raise ValidationFailed("month must look like 2026-11", errors=[field_error("month", "YYYY-MM")]) from None
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=BUSINESS_TZ)
    return start, end


def cost_summary(session: Session, actor: Actor, *, month: str, group: str) -> list[dict[str, Any]]:
    """Calls, billed seconds and cost of a month, by campaign, agent, direction or day (Japan dates)."""
    if group not in COST_GROUPS:
        raise ValidationFailed("unknown grouping", errors=[field_error("group", f"one of {', '.join(COST_GROUPS)}")])
    since, until = month_window(month)
    totals: dict[str, dict[str, Any]] = {}
    for cdr in CallRepository(session, actor.tenant_id).stream_cdrs(since, until, None):
        if group == "day":
            key = cdr.started_at.astimezone(BUSINESS_TZ).date().isoformat()
        elif group == "total":
            key = month
        else:
            value = getattr(cdr, "campaign_id" if group == "campaign" else group)
            key = "" if value is None else str(value)
        row = totals.setdefault(
            key, {group: key, "calls": 0, "answered": 0, "billed_seconds": 0, "cost_yen": Decimal(0)}
        )
        row["calls"] += 1
        row["answered"] += cdr.answered_at is not None
        row["billed_seconds"] += cdr.billed_seconds or 0
        row["cost_yen"] += cdr.cost_yen or Decimal(0)
    return [totals[k] for k in sorted(totals)]


CDR_COLUMNS = (
    "call_id", "direction", "ani_e164", "dnis", "customer_id", "agent", "queue", "campaign_id", "started_at",
    "answered_at", "ended_at", "ring_seconds", "queue_seconds", "talk_seconds", "hold_seconds",
    "wrap_up_seconds", "final_state", "end_cause", "disposition", "recording_ref", "billed_seconds", "cost_yen",
)  # fmt: skip


def export_cdrs(
    session: Session, actor: Actor, out: IO[str], *, since: datetime | None, until: datetime | None, agent: str | None
) -> int:
    """CDRs as CSV (UTF-8, header row, formula-safe cells). Audited like the JSON listing: one ``export`` row
    per customer in the file (resource ``cdr``), plus one row for the export itself with its row count."""
    writer = csv_writer(out)
    writer.writerow(CDR_COLUMNS)
    count = 0
    customer_ids: dict[int, None] = {}
    for cdr in CallRepository(session, actor.tenant_id).stream_cdrs(since, until, agent):
        writer.writerow([getattr(cdr, c) for c in CDR_COLUMNS])
        if cdr.customer_id is not None:
            customer_ids[cdr.customer_id] = None
        count += 1
    detail = {"rows": count, "customers": len(customer_ids), "format": "csv"}
    audit.record(session, actor, "export", resource="cdrs", detail=detail)
    audit.record_customer_reads(session, actor, customer_ids, action="export", resource="cdr", detail={"format": "csv"})
    return count


def cdr_of(session: Session, actor: Actor, call_id: int) -> Cdr | None:
    return CallRepository(session, actor.tenant_id).cdr_of(call_id)


# -- internals ----------------------------------------------------------------------------------------


def _offered(session: Session, event: Offered, driver: str) -> Call:
    e164 = try_normalize_phone(event.ani)
    # The customer is the other party: the caller of an inbound call, the number we dialled outbound.
    remote = e164 if event.direction is Direction.INBOUND else try_normalize_phone(event.dnis)
    actor = Actor(tenant_id=event.tenant_id, username=f"driver:{driver}", origin=driver)
    customer_id = customers.find_customer_id_by_phone(session, actor, remote) if remote else None
    call = Call(
        tenant_id=event.tenant_id,
        driver=driver,
        ref=event.call_ref,
        direction=event.direction.value,
        ani_raw=event.ani[:40],
        ani_e164=e164,
        dnis=event.dnis[:40],
        customer_id=customer_id,
        state=CallState.OFFERED.value,
        offered_at=event.at,
        hold_seconds=Decimal(0),
    )
    session.add(call)
    session.flush()
    session.add(CallTransition(call_id=call.id, from_state=None, to_state=CallState.OFFERED.value, at=event.at))
    _publish(session, call, "call.offered", {"ani": e164 or event.ani, "dnis": event.dnis, "direction": call.direction})
    return call


def _ended(session: Session, call: Call, cause: EndCause, at: datetime) -> None:
    state = CallState(call.state)
    _hold(call, False, at)
    call.end_cause = cause.value
    if state in DEFLECTED:  # the message or the callback confirmation is over: that is how the call ended
        call.ended_at = at
        _write_cdr(session, call, at)
        _publish(session, call, "call.ended", {"state": state.value, "cause": call.end_cause})
        return
    if cause is EndCause.SYSTEM_RESTART:
        # A talking agent still owes the notes; anyone else was dropped by us, not by the caller.
        final = CallState.WRAP_UP if state is CallState.CONNECTED and call.agent else CallState.FAILED
    elif cause in _END_STATE:
        final = _END_STATE[cause]
    elif state is CallState.CONNECTED and call.agent:
        final = CallState.WRAP_UP  # the line is free; the agent still owes the notes
    elif state in (CallState.QUEUED, CallState.RINGING) or (
        state is CallState.OFFERED and call.direction == Direction.INBOUND
    ):
        final = CallState.ABANDONED
    elif state is CallState.OFFERED:  # we hung up an outbound call nobody answered (its ring time-out)
        final = CallState.NO_ANSWER
        call.end_cause = EndCause.NO_ANSWER.value
    else:
        final = CallState.ENDED
    if final is CallState.ABANDONED:
        call.end_cause = EndCause.CALLER_ABANDONED.value
    if final is CallState.WRAP_UP:
        call.ended_at = at  # the conversation ended now; the call record ends with the wrap-up
        _move(session, call, final, at, "call.hangup", {"cause": call.end_cause})
    else:
        _move(session, call, final, at, "call.ended", {"cause": call.end_cause})


def _move(session: Session, call: Call, new: CallState, at: datetime, name: str, payload: dict[str, Any]) -> None:
    current = CallState(call.state)
    check(current, new)
    call.state = new.value
    column = _TIMESTAMP.get(new)
    if column and getattr(call, column) is None:
        setattr(call, column, at)
    session.add(
        CallTransition(call_id=call.id, from_state=current.value, to_state=new.value, at=at, detail=payload or None)
    )
    if new in FINAL:
        _write_cdr(session, call, at)
    _publish(session, call, name, {"state": new.value, **payload})


def _hold(call: Call, on_hold: bool, at: datetime) -> None:
    if on_hold and call.held_since is None:
        call.held_since = at
    elif not on_hold and call.held_since is not None:
        call.hold_seconds = Decimal(call.hold_seconds) + _seconds(call.held_since, at)
        call.held_since = None


def _seconds(start: datetime | None, end: datetime | None) -> Decimal:
    if start is None or end is None or end < start:
        return Decimal(0)
    return Decimal(str(round((end - start).total_seconds(), 3)))


def _write_cdr(session: Session, call: Call, at: datetime) -> None:
    """Durations: ring = agent's phone ringing until answered (or given up); queue = waiting for an agent;
    talk = connected until hangup, minus hold; wrap-up = hangup until the agent closed the call."""
    hung_up = call.ended_at or at
    if call.wrap_up_at is None:
        call.ended_at = at
    hold = Decimal(call.hold_seconds)
    cdr = Cdr(
        call_id=call.id,
        tenant_id=call.tenant_id,
        direction=call.direction,
        ani_e164=call.ani_e164,
        dnis=call.dnis,
        customer_id=call.customer_id,
        agent=call.agent,
        queue=call.queue,
        campaign_id=call.campaign_id,
        started_at=call.offered_at,
        answered_at=call.connected_at,
        ended_at=at,
        ring_seconds=_seconds(call.ringing_at, call.connected_at or hung_up),
        queue_seconds=_seconds(call.queued_at, call.ringing_at or call.connected_at or hung_up),
        talk_seconds=max(Decimal(0), _seconds(call.connected_at, hung_up) - hold),
        hold_seconds=hold,
        wrap_up_seconds=_seconds(call.wrap_up_at, at),
        final_state=call.state,
        end_cause=call.end_cause,
        disposition=call.disposition,
        recording_ref=call.recording_ref,
    )
    _rate(session, call, cdr, hung_up)
    session.add(cdr)
    if call.customer_id is not None:
        contacts.record_call(session, call.tenant_id, call.customer_id, call_id=call.id, direction=call.direction,
                             occurred_at=call.offered_at, agent=call.agent, summary=_call_summary(cdr),
                             recording=bool(call.recording_ref), body=call.notes)  # fmt: skip


_FINAL_WORDS = {"ended": "通話", "abandoned": "放棄呼", "voicemail": "留守電", "callback": "コールバック予約",
                "no_answer": "不在", "busy": "話中", "failed": "不成立"}  # fmt: skip


def _call_summary(cdr: Cdr) -> str:
    """``着信 通話 3分12秒 受注`` — what the timeline shows at a glance."""
    way = "着信" if cdr.direction == "inbound" else "発信"
    talk = int(cdr.talk_seconds)
    parts = [way, _FINAL_WORDS.get(cdr.final_state, cdr.final_state)]
    if talk:
        parts.append(f"{talk // 60}分{talk % 60:02d}秒")
    if cdr.disposition:
        parts.append(cdr.disposition)
    return " ".join(parts)


def _rate(session: Session, call: Call, cdr: Cdr, hung_up: datetime) -> None:
    """Per-second billing of the connected time (hold included: the line is still up), with the tenant's
    plan in effect on the call's date in Japan."""
    connected = _seconds(call.connected_at, hung_up)
    kind = billable_kind(call.direction, caller=call.ani_e164 or call.ani_raw, dialled=call.dnis)
    charge = billing.rate(
        session,
        Actor(tenant_id=call.tenant_id, username="rating", origin="system"),
        seconds=math.ceil(connected),
        direction=call.direction,
        kind=kind,
        on=call.offered_at.astimezone(BUSINESS_TZ).date(),
        answered=call.connected_at is not None,
    )
    cdr.billed_seconds = charge.billed_seconds
    cdr.cost_yen = charge.amount


def _publish(session: Session, call: Call, name: str, payload: dict[str, Any]) -> None:
    publish_on_commit(
        session,
        Event(
            name,
            call.tenant_id,
            {"call_id": call.id, "call_ref": call.ref, "agent": call.agent, "customer_id": call.customer_id, **payload},
        ),
    )
