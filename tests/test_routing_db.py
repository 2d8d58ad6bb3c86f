"""The call controller with the database behind it (SQLite and PostgreSQL): numbers, flows, queues and agents
read from the tables; every outcome written — CDR final states, agent state spans, callbacks, voicemail."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kakehashi.agents import service as agents
from kakehashi.agents.models import AgentStateSpan
from kakehashi.calls.models import Call, Cdr
from kakehashi.calls.sink import CallEventSink
from kakehashi.customers import service as customers
from kakehashi.customers.schemas import CustomerCreate
from kakehashi.ivr import service as ivr
from kakehashi.ivr.schemas import FlowCreate
from kakehashi.kit.context import Actor
from kakehashi.kit.db import unit_of_work
from kakehashi.routing import persist
from kakehashi.routing import service as routing
from kakehashi.routing.controller import CallController
from kakehashi.routing.engine import AgentState
from kakehashi.routing.models import Callback, Voicemail
from kakehashi.routing.persist import DbDirectory, DbListener
from kakehashi.telephony.drivers.sim.driver import SimDriver

NUMBER = "0120-444-444"
FLOW = {
    "start": "notice",
    "nodes": {
        "notice": {"type": "notice", "prompt": "この通話は録音します", "next": "menu"},
        "menu": {"type": "menu", "prompt": "ご注文は1", "options": {"1": "orders"}, "on_fail": "orders"},
        "orders": {"type": "queue", "queue": "orders"},
    },
}


@dataclass
class Center:
    sim: SimDriver
    controller: CallController
    factory: sessionmaker[Session]
    actor: Actor

    def cdr(self, ref: str) -> Cdr:
        with self.factory() as s:
            return s.scalars(select(Cdr).join(Call, Call.id == Cdr.call_id).where(Call.ref == ref)).one()

    def rows(self, model: type) -> list:  # type: ignore[type-arg]
        """In the order they were written (PostgreSQL returns an updated row after the others otherwise)."""
        with self.factory() as s:
            return list(s.scalars(select(model).order_by(model.id)))  # type: ignore[attr-defined]


@pytest.fixture
def center(session_factory: sessionmaker[Session], actor: Actor) -> Iterator[Center]:
    with unit_of_work(session_factory) as s:
        agents.create_agent(s, actor, "sato", "佐藤", {})
        queue = routing.create_queue(
            s, actor, "orders", {"wrap_up_s": 20, "max_length": 1, "overflow_action": "callback", "ring_timeout_s": 10}
        )
        routing.set_members(s, actor, queue.id, {"sato": 1})
        ivr.create_flow(s, actor, FlowCreate(name="main", definition=FLOW))
        routing.add_number(s, actor, NUMBER, flow="main", queue=None)
    sim = SimDriver()
    sim.set_agent("sato", answer_after=2)
    CallEventSink.attach(sim, session_factory)
    controller = CallController(
        sim, sim.clock, DbDirectory(session_factory), DbListener(session_factory, sim.name)
    ).attach()
    yield Center(sim, controller, session_factory, actor)


def test_answered_abandoned_and_callback_calls_are_recorded(center: Center) -> None:
    c, tenant = center, center.actor.tenant_id
    c.controller.choose_state(tenant, "sato", AgentState.AVAILABLE)
    answered = c.sim.incoming(ani="03-1111-2222", dnis=NUMBER, tenant_id=tenant, presses="1", talk_s=60)
    c.sim.clock.advance(3)
    waiting = c.sim.incoming(ani="03-3333-4444", dnis=NUMBER, tenant_id=tenant, presses="1", patience=30)
    c.sim.clock.advance(3)
    full = c.sim.incoming(ani="03-5555-6666", dnis=NUMBER, tenant_id=tenant, presses="1")
    c.sim.clock.advance(40)  # waiting gives up at 30 s; the full-queue caller got a callback offer
    c.sim.clock.advance(60)  # answered: talk 60 s, then 20 s of wrap-up, then the callback is dialled

    cdr = c.cdr(answered)
    assert (cdr.final_state, cdr.agent, cdr.queue, cdr.disposition) == ("ended", "sato", "orders", "自動完了")
    assert cdr.recording_ref  # the recording notice started it
    assert c.cdr(waiting).final_state == "abandoned"
    assert c.cdr(full).final_state == "callback"
    (callback,) = c.rows(Callback)
    assert (callback.number_e164, callback.status, callback.agent) == ("+81355556666", "done", "sato")
    (leg,) = [row for row in c.rows(Call) if row.direction == "outbound"]
    assert (leg.dnis, leg.ani_raw) == ("03-5555-6666", "+81120444444")  # from the number they had called
    states = [(s.state, s.call_ref) for s in c.rows(AgentStateSpan)]
    # straight from wrap-up to the callback: the agent never sat idle with a customer waiting for them
    assert [s for s, _ in states[:6]] == ["available", "ringing", "on_call", "wrap_up", "ringing", "on_call"]


def test_queue_without_agents_overflows_to_voicemail(
    session_factory: sessionmaker[Session], actor: Actor, center: Center
) -> None:
    with unit_of_work(session_factory) as s:
        (queue,) = routing.list_queues(s, actor)
        routing.update_queue(s, actor, queue.id, {"max_length": None, "max_wait_s": 30, "overflow_action": "voicemail"})
    center.controller.reload(actor.tenant_id)
    ref = center.sim.incoming(ani="03-7777-8888", dnis=NUMBER, tenant_id=actor.tenant_id, presses="1")
    center.sim.clock.advance(200)
    assert center.cdr(ref).final_state == "voicemail"
    (message,) = center.rows(Voicemail)
    assert (message.number_e164, message.queue) == ("+81377778888", "orders")


def test_a_pending_callback_survives_a_restart_with_its_place_and_caller_id(
    session_factory: sessionmaker[Session], center: Center
) -> None:
    from kakehashi.pipeline import reload_callbacks

    c, tenant = center, center.actor.tenant_id
    c.controller.choose_state(tenant, "sato", AgentState.AVAILABLE)
    c.sim.incoming(ani="03-1111-2222", dnis=NUMBER, tenant_id=tenant, presses="1", talk_s=600)
    c.sim.clock.advance(3)
    c.sim.incoming(ani="03-3333-4444", dnis=NUMBER, tenant_id=tenant, presses="1")  # waits (max_length 1)
    c.sim.clock.advance(3)
    c.sim.incoming(ani="03-5555-6666", dnis=NUMBER, tenant_id=tenant, presses="1")  # line full → callback
    c.sim.clock.advance(10)
    (pending,) = c.rows(Callback)
    assert (pending.status, pending.caller_id) == ("pending", "+81120444444")

    # The app restarts: a new driver and controller; sato comes back and is free.
    with unit_of_work(session_factory) as s:
        agents.record_state(s, tenant, "sato", "logged_out", None, None, None, pending.requested_at)
    sim = SimDriver(prefix="sim-after-restart")
    sim.set_agent("sato", answer_after=1)
    CallEventSink.attach(sim, session_factory)
    controller = CallController(sim, sim.clock, DbDirectory(session_factory), DbListener(session_factory, sim.name))
    controller.attach()
    reload_callbacks(controller, session_factory)
    controller.choose_state(tenant, "sato", AgentState.AVAILABLE)
    sim.clock.advance(15)
    (leg,) = [row for row in c.rows(Call) if row.direction == "outbound"]
    assert (leg.dnis, leg.ani_raw) == ("+81355556666", "+81120444444")  # the number from the row
    (done,) = c.rows(Callback)
    assert (done.status, done.agent) == ("done", "sato")


def restart(session_factory: sessionmaker[Session], prefix: str) -> tuple[SimDriver, CallController]:
    """What ``kakehashi.pipeline.start`` does after a restart: calls the new driver does not have are ended (a
    talking agent's go to wrap-up), pending callbacks and open wrap-ups are restored."""
    from kakehashi.calls import service as calls
    from kakehashi.kit.db import utcnow
    from kakehashi.pipeline import restore_floor

    sim = SimDriver(prefix=prefix)
    sim.set_agent("sato", answer_after=1)
    with unit_of_work(session_factory) as s:
        calls.recover(s, sim.name, sim.live_calls(), utcnow())
    CallEventSink.attach(sim, session_factory)
    controller = CallController(sim, sim.clock, DbDirectory(session_factory), DbListener(session_factory, sim.name))
    controller.attach()
    restore_floor(controller, session_factory, sim.name)
    return sim, controller


def talking(c: Center) -> str:
    """sato takes a long call and is talking: the call's reference."""
    c.controller.choose_state(c.actor.tenant_id, "sato", AgentState.AVAILABLE)
    cut = c.sim.incoming(ani="03-1111-2222", dnis=NUMBER, tenant_id=c.actor.tenant_id, presses="1", talk_s=600)
    c.sim.clock.advance(5)
    assert [s.state for s in c.rows(AgentStateSpan)][-1] == "on_call"
    return cut


def test_a_call_cut_by_a_restart_holds_its_agent_in_wrap_up_then_closes(
    session_factory: sessionmaker[Session], center: Center
) -> None:
    c, tenant = center, center.actor.tenant_id
    cut = talking(c)

    sim, controller = restart(session_factory, "sim-after-restart")
    spans = c.rows(AgentStateSpan)
    assert [(s.state, s.call_ref) for s in spans][-2:] == [("on_call", cut), ("wrap_up", cut)]  # no idle blip
    assert controller.engine(tenant).agent("sato").state is AgentState.WRAP_UP
    waiting = sim.incoming(ani="03-3333-4444", dnis=NUMBER, tenant_id=tenant, presses="1", talk_s=30)
    sim.clock.advance(15)
    assert controller.live(waiting).stage == "waiting"  # type: ignore[union-attr]  # sato is writing notes
    sim.clock.advance(10)  # the queue's 20 s of wrap-up from the restart are over
    assert c.cdr(cut).disposition == "自動完了"
    assert controller.live(waiting).agent == "sato"  # type: ignore[union-attr]  # then the next caller is theirs


def test_an_agent_who_closes_a_cut_calls_wrap_up_is_free_at_once(
    session_factory: sessionmaker[Session], center: Center
) -> None:
    from kakehashi.calls import service as calls
    from kakehashi.kit.db import utcnow

    c, tenant = center, center.actor.tenant_id
    cut = talking(c)
    sim, controller = restart(session_factory, "sim-after-restart-2")
    call_id = next(row.id for row in c.rows(Call) if row.ref == cut)
    with unit_of_work(session_factory) as s:
        calls.finish_wrap_up(s, Actor(tenant_id=tenant, username="sato"), call_id, "受注", utcnow(), notes="途中で切断")
    controller.wrap_up_finished(tenant, cut)  # what the app does on call.ended
    assert controller.engine(tenant).agent("sato").state is AgentState.AVAILABLE
    assert [s.state for s in c.rows(AgentStateSpan)][-1] == "available"
    sim.clock.advance(60)  # the old wrap-up timer does nothing now
    assert c.cdr(cut).disposition == "受注"


def test_a_busy_agent_without_a_call_left_is_recorded_free_after_a_restart(
    session_factory: sessionmaker[Session], center: Center
) -> None:
    c, tenant = center, center.actor.tenant_id
    c.sim.set_agent("sato", answers=False)
    c.controller.choose_state(tenant, "sato", AgentState.AVAILABLE)
    c.sim.incoming(ani="03-1111-2222", dnis=NUMBER, tenant_id=tenant, presses="1")
    c.sim.clock.advance(5)  # sato's phone rings, nobody picks up yet
    assert [s.state for s in c.rows(AgentStateSpan)][-1] == "ringing"
    _, controller = restart(session_factory, "sim-after-restart-3")  # the ringing call was not answered: ended
    # recorded at start-up, not at the tenant's first call: the wallboard does not show "ringing" until then
    assert [s.state for s in c.rows(AgentStateSpan)][-1] == "available"
    assert controller.engine(tenant).agent("sato").state is AgentState.AVAILABLE


def test_the_directory_uses_the_customer_matched_at_the_offer(center: Center, monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller's number is parsed and the customer found once, by ``calls`` when the call is offered; the
    routing directory reads that match (issue 16) and looks nothing up by number again."""
    c, tenant = center, center.actor.tenant_id
    with unit_of_work(c.factory) as s:
        customers.create_customer(s, c.actor, CustomerCreate(name="山田 花子", rank="VIP",
                                                             phones=[{"number": "03-1111-2222"}]))  # fmt: skip
    parsed: list[str] = []
    real_parse = persist.try_normalize_phone
    monkeypatch.setattr(persist, "try_normalize_phone", lambda raw: parsed.append(raw) or real_parse(raw))
    c.controller.choose_state(tenant, "sato", AgentState.AVAILABLE)
    ref = c.sim.incoming(ani="(03) 1111-2222", dnis=NUMBER, tenant_id=tenant, presses="1", talk_s=5)
    c.sim.clock.advance(60)
    assert c.cdr(ref).agent == "sato" and "(03) 1111-2222" not in parsed  # only the dialled numbers
    directory = DbDirectory(c.factory)
    known = directory.caller(tenant, "whatever the switch sent", (c.sim.name, ref))
    assert (known.facts.known, known.facts.rank, known.last_agent) == (True, "vip", "sato")
    assert directory.caller(tenant, "withheld", (c.sim.name, "no-such-call")) == persist.Caller()


def test_the_offers_match_is_carried_to_the_directory_in_memory(
    center: Center, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sink that stored the offer keeps its match (customer, number) for the routing layer: no read of the
    call, no parse of the number; a call it does not know (another process's) is read from the database."""
    c, tenant = center, center.actor.tenant_id
    with unit_of_work(c.factory) as s:
        cid = customers.create_customer(s, c.actor, CustomerCreate(name="山田 花子", rank="VIP",
                                                                   phones=[{"number": "03-1111-2222"}])).id  # fmt: skip
    sim = SimDriver()  # a line of its own: offers stored by this sink, no controller answering them
    sink = CallEventSink.attach(sim, session_factory)
    ref = sim.incoming(ani="(03) 1111-2222", dnis=NUMBER, tenant_id=tenant)
    assert sink.matched_caller(sim.name, ref) == (cid, "+81311112222")
    assert sink.matched_caller("another-driver", ref) is None
    read_back: list[str] = []
    real = persist.calls.matched_caller
    monkeypatch.setattr(persist.calls, "matched_caller", lambda s, d, r: read_back.append(r) or real(s, d, r))
    directory = DbDirectory(c.factory, matched=sink.matched_caller)
    known = directory.caller(tenant, "whatever the switch sent", (sim.name, ref))
    assert (known.facts.known, known.facts.rank, read_back) == (True, "vip", [])
    other = sim.incoming(ani="03-1111-2222", dnis=NUMBER, tenant_id=tenant)
    sink._matched.pop(other)  # as if another process had stored this offer
    assert directory.caller(tenant, "x", (sim.name, other)).facts.rank == "vip" and read_back == [other]
