"""The call controller's database side: configuration read from the tables (:class:`DbDirectory`) and every
decision written, each in its own transaction, with events sent after commit (:class:`DbListener`).

What is committed when (ADR 0019): ``calls.sink`` commits each driver event first; each decision the
controller takes on it is then one transaction here. Two events describe live memory only and are sent
straight away: ``call.ivr_done`` and ``queue.stats``."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from kakehashi.agents import service as agents
from kakehashi.calls import service as calls
from kakehashi.calls.models import Call
from kakehashi.calls.states import CallState
from kakehashi.complaints import service as complaints
from kakehashi.customers import service as customers
from kakehashi.ivr import service as ivr
from kakehashi.ivr.runner import CallerFacts, Exit
from kakehashi.kit.context import Actor
from kakehashi.kit.db import unit_of_work
from kakehashi.kit.events import Event, bus
from kakehashi.kit.phone import try_normalize_phone
from kakehashi.routing import repository, service
from kakehashi.routing.engine import AgentState
from kakehashi.routing.live_types import Caller, NumberRoute, RoutingListener, TenantSetup
from kakehashi.routing.models import Callback, Voicemail

T = TypeVar("T")
STATS_EVERY_S = 1.0  # queue.stats events: at most one per queue per second


def _system(tenant_id: int) -> Actor:
    return Actor(tenant_id=tenant_id, username="routing", origin="system")


#: ``(driver, ref) → (customer id, caller's E.164)`` of an offered call, known in memory (``CallEventSink``).
MatchedCaller = Callable[[str, str], "tuple[int | None, str | None] | None"]


class DbDirectory:
    def __init__(self, factory: sessionmaker[Session], matched: MatchedCaller | None = None) -> None:
        self.factory = factory
        self.matched = matched

    def _read(self, work: Callable[[Session], T]) -> T:
        with self.factory() as session:
            return work(session)

    def number(self, dnis: str) -> NumberRoute | None:
        e164 = try_normalize_phone(dnis) or dnis

        def read(session: Session) -> NumberRoute | None:
            row = repository.number_by_e164(session, e164)
            if row is None:
                return None
            live = ivr.live_version(session, row.tenant_id, row.flow) if row.flow else None
            return NumberRoute(row.tenant_id, flow=live[1] if live else None, queue=row.queue,
                               callback_caller_id=row.number_e164)  # fmt: skip

        return self._read(read)

    def caller(self, tenant_id: int, ani: str, call: tuple[str, str] | None = None) -> Caller:
        """Rank, open complaint and last agent of the caller. With ``call`` (driver, ref) of a stored call, the
        customer ``calls`` matched at the offer is used; the number is parsed and looked up only without one."""

        def read(session: Session) -> Caller:
            actor = _system(tenant_id)
            matched = None
            if call is not None:
                matched = (self.matched and self.matched(*call)) or calls.matched_caller(session, *call)
            if matched is not None:
                customer_id, e164 = matched
            else:
                e164 = try_normalize_phone(ani)
                customer_id = customers.find_customer_id_by_phone(session, actor, e164) if e164 else None
            if e164 is None:
                return Caller()
            # None also for a customer deleted since the offer: an unknown caller, as by number.
            rank = customers.rank_of(session, actor, customer_id) if customer_id is not None else None
            last = calls.last_agent_with(session, tenant_id, e164)
            facts = CallerFacts()
            if customer_id is not None and rank is not None:
                open_complaint = bool(complaints.open_for_customer(session, actor, customer_id))
                facts = CallerFacts(known=True, rank=rank, open_complaint=open_complaint)
            return Caller(facts, last[0] if last else None, last[1] if last else None)

        return self._read(read)

    def setup(self, tenant_id: int) -> TenantSetup:
        return self._read(lambda session: service.setup(session, tenant_id))


class DbListener(RoutingListener):
    def __init__(self, factory: sessionmaker[Session], driver: str) -> None:
        self.factory, self.driver = factory, driver
        self._stats_sent: dict[tuple[int, str], float] = {}

    def _call(self, ref: str, work: Callable[[Session, Call], None]) -> None:
        with unit_of_work(self.factory) as session:
            call = calls.call_by_ref(session, self.driver, ref)
            if call is not None:
                work(session, call)

    def queued(self, tenant_id: int, ref: str, queue: str, priority: int, at: datetime) -> None:
        def work(session: Session, call: Call) -> None:
            # CONNECTED: an agent transferred the caller into a queue.
            waiting = (CallState.OFFERED, CallState.IVR, CallState.QUEUED, CallState.RINGING, CallState.CONNECTED)
            if call.state in waiting:
                calls.queue_call(session, call, queue, at)

        self._call(ref, work)

    def agent_state(
        self, tenant_id: int, agent: str, state: AgentState, reason: str | None, queue: str | None,
        call_ref: str | None, at: datetime,
    ) -> None:  # fmt: skip
        with unit_of_work(self.factory) as session:
            agents.record_state(session, tenant_id, agent, state.value, reason, queue, call_ref, at)

    def deflected(self, tenant_id: int, ref: str, kind: str, queue: str | None, ani: str, at: datetime) -> None:
        def work(session: Session, call: Call) -> None:
            calls.deflect(session, call, CallState(kind), at, queue=queue)
            if kind == "voicemail":
                session.add(Voicemail(tenant_id=tenant_id, queue=queue, number_e164=try_normalize_phone(ani),
                                      call_ref=ref, left_at=at, recording_ref=None))  # fmt: skip

        self._call(ref, work)

    def callback_requested(
        self, tenant_id: int, key: str, ref: str, queue: str, number: str, priority: int, place_at: datetime,
        at: datetime,
    ) -> None:  # fmt: skip
        with unit_of_work(self.factory) as session:
            e164 = try_normalize_phone(number) or number
            origin = calls.call_by_ref(session, self.driver, ref)
            dialled = try_normalize_phone(origin.dnis) if origin else None
            session.add(Callback(tenant_id=tenant_id, queue=queue, number_e164=e164, origin_call_ref=ref,
                                 caller_id=dialled, priority=priority, place_at=place_at, requested_at=at))  # fmt: skip

    def callback_attempt(
        self, tenant_id: int, key: str, status: str, agent: str | None, call_ref: str | None, at: datetime
    ) -> None:
        with unit_of_work(self.factory) as session:
            row = repository.RoutingRepository(session, tenant_id).callback(key.removeprefix("cb-"))
            if row is None:
                return
            row.status = status
            row.agent = agent or row.agent
            row.last_call_ref = call_ref or row.last_call_ref
            if status == "dialing":
                row.attempts += 1
            if status in ("done", "failed"):
                row.done_at = at

    def wrap_up_over(self, tenant_id: int, ref: str, at: datetime) -> None:
        with unit_of_work(self.factory) as session:
            calls.close_wrap_up_automatically(session, tenant_id, ref, self.driver, at)

    def ivr_exit(self, tenant_id: int, ref: str, path: list[str], exit: Exit, at: datetime) -> None:
        # A named exception to "events after commit" (ADR 0019): the IVR's path is kept in memory, no row records
        # it, so there is no transaction to wait for (a transaction just to send it would take SQLite's writer lock).
        bus.send(Event("call.ivr_done", tenant_id, {"call_ref": ref, "path": path, "exit": exit.kind,
                                                    "queue": exit.queue}))  # fmt: skip

    def queue_changed(self, tenant_id: int, queue: str, waiting: int, agents: dict[str, int], at: datetime) -> None:
        # The other named exception (ADR 0019): a throttled snapshot of the engine's memory, not a stored fact.
        now = time.monotonic()
        key = (tenant_id, queue)
        if now - self._stats_sent.get(key, 0.0) < STATS_EVERY_S:
            return
        self._stats_sent[key] = now
        bus.send(Event("queue.stats", tenant_id, {"queue": queue, "waiting": waiting, "agents": agents}))
