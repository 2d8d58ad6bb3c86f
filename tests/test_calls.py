"""Calls follow driver events through the state machine; every step is persisted; CDRs on the final step.

These flows are written against the boundary's events (``telephony.port``): the simulator and the SIP
driver must produce the same sequences (the contract suite will drive them through each driver).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from kakehashi.calls import service as calls
from kakehashi.calls.models import Call, CallTransition, Cdr
from kakehashi.calls.states import CallState, IllegalTransition, check
from kakehashi.customers import service as customers
from kakehashi.customers.schemas import CustomerCreate, PhoneIn
from kakehashi.kit.context import Actor
from kakehashi.kit.events import Event, bus
from kakehashi.telephony.port import (
    AgentRinging,
    Answered,
    Bridged,
    Direction,
    DriverEvent,
    DtmfReceived,
    EndCause,
    Ended,
    HoldChanged,
    Offered,
    RecordingChanged,
    RecordingState,
    Transferred,
)

T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)  # a TV-shopping slot


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def seen() -> Iterator[list[Event]]:
    got: list[Event] = []
    off = [bus.subscribe(p, got.append) for p in ("call.*", "agent.*")]
    yield got
    for unsubscribe in off:
        unsubscribe()


def feed(session: Session, *events: DriverEvent) -> Call:
    call = None
    for event in events:
        call = calls.apply_event(session, event, driver="sim") or call
    assert call is not None
    return call


def offered(ref: str, actor: Actor, ani: str = "03-1234-5678", direction: Direction = Direction.INBOUND) -> Offered:
    return Offered(call_ref=ref, at=at(0), direction=direction, ani=ani, dnis="0120-444-444", tenant_id=actor.tenant_id)


def cdr(session: Session, call: Call) -> Cdr:
    return session.scalars(select(Cdr).where(Cdr.call_id == call.id)).one()


class TestInbound:
    def test_answered_call_walks_every_state_and_its_cdr_has_exact_durations(
        self, session: Session, actor: Actor, seen: list[Event]
    ) -> None:
        known = customers.create_customer(
            session, actor, CustomerCreate(name="山田 太郎", phones=[PhoneIn(number="0312345678")])
        )
        call = feed(
            session,
            offered("c1", actor, ani="+81 3-1234-5678"),
            Answered(call_ref="c1", at=at(1), by="system"),
            DtmfReceived(call_ref="c1", at=at(5), digits="1"),
        )
        calls.queue_call(session, call, "orders", at(6))
        call = feed(
            session,
            AgentRinging(call_ref="c1", at=at(36), agent="sato"),
            Bridged(call_ref="c1", at=at(40), agent="sato"),
            HoldChanged(call_ref="c1", at=at(100), on_hold=True),
            HoldChanged(call_ref="c1", at=at(115), on_hold=False),
            Ended(call_ref="c1", at=at(220), cause=EndCause.NORMAL),
        )
        assert call.state == CallState.WRAP_UP and call.customer_id == known.id and call.ani_e164 == "+81312345678"
        assert call.digits == "1"
        calls.finish_wrap_up(session, actor, call.id, "受注", at(250))
        session.commit()
        record = cdr(session, call)
        durations = (record.queue_seconds, record.ring_seconds, record.talk_seconds, record.hold_seconds)
        assert durations == (Decimal(30), Decimal(4), Decimal(165), Decimal(15))
        assert record.wrap_up_seconds == Decimal(30)
        assert (record.final_state, record.disposition, record.agent, record.queue) == (
            "ended",
            "受注",
            "sato",
            "orders",
        )
        states = [
            t.to_state
            for t in session.scalars(
                select(CallTransition).where(CallTransition.call_id == call.id).order_by(CallTransition.id)
            )
        ]
        assert states == ["offered", "ivr", "queued", "ringing", "connected", "wrap_up", "ended"]
        names = [e.name for e in seen if e.payload["call_id"] == call.id]
        assert names[:5] == ["call.offered", "call.answered", "call.dtmf", "call.queued", "agent.ringing"]
        assert names[-1] == "call.ended" and "call.held" in names and "call.resumed" in names

    def test_caller_hanging_up_in_queue_is_an_abandon(self, session: Session, actor: Actor) -> None:
        call = feed(session, offered("c2", actor), Answered(call_ref="c2", at=at(1), by="system"))
        calls.queue_call(session, call, "orders", at(3))
        call = feed(session, Ended(call_ref="c2", at=at(48), cause=EndCause.NORMAL))
        assert call.state == CallState.ABANDONED and call.end_cause == "caller_abandoned"
        record = cdr(session, call)
        assert record.queue_seconds == Decimal(45) and record.talk_seconds == 0 and record.answered_at is None

    def test_a_missed_agent_sends_the_call_to_the_next(self, session: Session, actor: Actor) -> None:
        call = feed(session, offered("c3", actor))
        calls.queue_call(session, call, "orders", at(1))
        call = feed(
            session,
            AgentRinging(call_ref="c3", at=at(2), agent="sato"),
            AgentRinging(call_ref="c3", at=at(17), agent="suzuki"),
            Bridged(call_ref="c3", at=at(20), agent="suzuki"),
        )
        assert call.agent == "suzuki" and call.state == CallState.CONNECTED

    def test_transfer_and_recording_pause_are_recorded(self, session: Session, actor: Actor, seen: list[Event]) -> None:
        call = feed(
            session,
            offered("c4", actor),
            AgentRinging(call_ref="c4", at=at(1), agent="sato"),
            Bridged(call_ref="c4", at=at(3), agent="sato"),
            RecordingChanged(call_ref="c4", at=at(3), state=RecordingState.STARTED, recording_ref="rec/c4.wav"),
            RecordingChanged(call_ref="c4", at=at(30), state=RecordingState.PAUSED),  # card number read out
            RecordingChanged(call_ref="c4", at=at(50), state=RecordingState.RESUMED),
            Transferred(call_ref="c4", at=at(60), target="suzuki", attended=False),
            AgentRinging(call_ref="c4", at=at(60), agent="suzuki"),
            Bridged(call_ref="c4", at=at(65), agent="suzuki"),
            Ended(call_ref="c4", at=at(90), cause=EndCause.NORMAL),
        )
        session.commit()
        assert call.transferred_to == "suzuki" and call.recording_ref == "rec/c4.wav"
        states = [e.payload.get("state") for e in seen if e.name == "call.recording"]
        assert states == ["started", "paused", "resumed"]


class TestOutbound:
    @pytest.mark.parametrize(
        ("cause", "state"),
        [(EndCause.NO_ANSWER, "no_answer"), (EndCause.BUSY, "busy"), (EndCause.INVALID_NUMBER, "failed")],
    )
    def test_unanswered_outcomes(self, session: Session, actor: Actor, cause: EndCause, state: str) -> None:
        ref = f"o-{cause.value}"
        call = feed(
            session,
            offered(ref, actor, ani="090-1111-2222", direction=Direction.OUTBOUND),
            Ended(call_ref=ref, at=at(25), cause=cause),
        )
        assert call.state == state and cdr(session, call).final_state == state

    def test_answered_outbound_call_bridged_to_an_agent(self, session: Session, actor: Actor) -> None:
        call = feed(
            session,
            offered("o1", actor, ani="090-1111-2222", direction=Direction.OUTBOUND),
            Answered(call_ref="o1", at=at(12), by="remote"),
            Ended(call_ref="o1", at=at(72), cause=EndCause.NORMAL),
        )
        assert call.state == CallState.ENDED  # no agent: nothing to wrap up
        assert cdr(session, call).talk_seconds == Decimal(60)


class TestRules:
    def test_illegal_transitions_are_refused(self) -> None:
        with pytest.raises(IllegalTransition):
            check(CallState.WRAP_UP, CallState.CONNECTED)
        with pytest.raises(IllegalTransition):
            check(CallState.ENDED, CallState.RINGING)

    def test_events_after_the_end_change_nothing(self, session: Session, actor: Actor) -> None:
        call = feed(session, offered("c5", actor), Ended(call_ref="c5", at=at(2), cause=EndCause.NORMAL))
        assert calls.apply_event(session, Ended(call_ref="c5", at=at(3), cause=EndCause.NORMAL), driver="sim") is None
        assert calls.apply_event(session, Bridged(call_ref="nope", at=at(3), agent="x"), driver="sim") is None
        assert session.scalars(select(Cdr).where(Cdr.call_id == call.id)).all() != []

    def test_events_go_out_only_after_commit(self, session: Session, actor: Actor, seen: list[Event]) -> None:
        feed(session, offered("c6", actor))
        assert seen == []
        session.commit()
        assert [e.name for e in seen] == ["call.offered"]

    def test_another_tenant_does_not_see_the_call(self, session: Session, actor: Actor, other_actor: Actor) -> None:
        call = feed(session, offered("c7", actor))
        assert calls.get_call(session, actor, call.id).id == call.id
        with pytest.raises(calls.NotFound):
            calls.get_call(session, other_actor, call.id)


class TestRestart:
    def test_after_a_restart_no_cdr_is_lost(self, session_factory: object, actor: Actor) -> None:
        """Calls live in the database: a new process ends the ones its driver lost and writes their CDRs."""
        factory = session_factory  # type: ignore[assignment]
        with factory() as first:  # type: ignore[operator]
            call = feed(first, offered("r1", actor))
            calls.queue_call(first, call, "orders", at(2))
            feed(
                first,
                AgentRinging(call_ref="r1", at=at(5), agent="sato"),
                Bridged(call_ref="r1", at=at(8), agent="sato"),
            )
            feed(first, offered("r2", actor), Ended(call_ref="r2", at=at(1), cause=EndCause.NORMAL))
            feed(first, offered("r3", actor))
            first.commit()  # the "process" ends here: nothing but the database is kept
        with factory() as second:  # type: ignore[operator]
            lost = calls.recover(second, "sim", live={"r3"}, at=at(120))
            second.commit()
            assert [c.ref for c in lost] == ["r1"]
            recovered = second.scalars(select(Call).where(Call.ref == "r1")).one()
            assert recovered.state == CallState.WRAP_UP  # the agent still owes the notes
            calls.finish_wrap_up(second, actor, recovered.id, "unfinished", at(130))
            second.commit()
            assert cdr(second, recovered).talk_seconds == Decimal(112)
            still = second.scalars(select(Call).where(Call.ref == "r3")).one()
            assert still.state == CallState.OFFERED


class TestRating:
    """CDRs are rated per second with the tenant's plan in effect on the call's date (Japan)."""

    @pytest.fixture
    def plan(self, session: Session, actor: Actor) -> None:
        from kakehashi.billing import service as billing
        from kakehashi.billing.schemas import PlanCreate, RateIn

        billing.create_plan(
            session,
            actor,
            PlanCreate(
                name="テスト",
                effective_from=T0.date() - timedelta(days=30),
                min_billable_seconds=0,
                increment_seconds=1,
                rounding="up",
                yen_decimals=0,
                rates=[
                    RateIn(direction="outbound", kind="mobile", yen_per_second=Decimal("0.35")),
                    RateIn(direction="inbound", kind="fixed", yen_per_second=Decimal("0.05")),
                ],
            ),
        )

    def test_an_outbound_mobile_call_costs_its_connected_seconds(
        self, session: Session, actor: Actor, plan: None
    ) -> None:
        call = feed(
            session,
            Offered(
                call_ref="b1",
                at=at(0),
                direction=Direction.OUTBOUND,
                ani="03-5555-0000",
                dnis="090-1111-2222",
                tenant_id=actor.tenant_id,
            ),
            Answered(call_ref="b1", at=at(10), by="remote"),
            Ended(call_ref="b1", at=at(70.2), cause=EndCause.NORMAL),  # 60.2 s connected → 61 s billed
        )
        record = cdr(session, call)
        assert (record.billed_seconds, record.cost_yen) == (61, Decimal(22))  # 61 × 0.35 = 21.35 → up to 22

    def test_unanswered_calls_and_calls_the_caller_pays_for_cost_nothing(
        self, session: Session, actor: Actor, plan: None
    ) -> None:
        busy = feed(
            session,
            offered("b2", actor, ani="03-5555-0000", direction=Direction.OUTBOUND),
            Ended(call_ref="b2", at=at(3), cause=EndCause.BUSY),
        )
        assert cdr(session, busy).cost_yen == 0
        inbound_to_geographic = Offered(
            call_ref="b3",
            at=at(0),
            direction=Direction.INBOUND,
            ani="03-1234-5678",
            dnis="03-5555-0000",
            tenant_id=actor.tenant_id,
        )
        call = feed(
            session,
            inbound_to_geographic,
            AgentRinging(call_ref="b3", at=at(1), agent="sato"),
            Bridged(call_ref="b3", at=at(2), agent="sato"),
            Ended(call_ref="b3", at=at(62), cause=EndCause.NORMAL),
        )
        calls.finish_wrap_up(session, actor, call.id, "x", at(70))
        assert cdr(session, call).cost_yen == 0

    def test_an_inbound_toll_free_call_is_paid_by_the_center(self, session: Session, actor: Actor, plan: None) -> None:
        call = feed(
            session,
            offered("b4", actor, ani="03-1234-5678"),  # to 0120-444-444
            AgentRinging(call_ref="b4", at=at(1), agent="sato"),
            Bridged(call_ref="b4", at=at(2), agent="sato"),
            Ended(call_ref="b4", at=at(102), cause=EndCause.NORMAL),
        )
        calls.finish_wrap_up(session, actor, call.id, "x", at(110))
        assert (cdr(session, call).billed_seconds, cdr(session, call).cost_yen) == (100, Decimal(5))
