"""The campaign dialer (ADR 0023): wiring between the campaigns domain (leads, attempts, rules) and the call
controller (``routing.outbound``: an agent held while their number is dialled). Beside ``pipeline.py``, which
builds it; the desk reaches it through ``app.state.telephony.dialer`` (``campaigns.live.LiveDialer``).

Preview: the agent asks for the next lead (``campaigns.attempts.open_next``: the card), reads it and presses dial
(:meth:`Dialer.dial`). Progressive: an agent who joined a progressive campaign is dialled for as soon as they are
available (:meth:`Dialer.fill`): the lead's card is on their screen while the number rings. In both, every rule
(calling window, DNC, refusals, APPI suspension) is checked again at the moment of dialing.

Database work never runs under the controller's lock, except the listener's reports (as every decision's record,
ADR 0019); the dialer's own work runs on the clock (virtual in tests, real in the app) or in the request.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from kakehashi.audit import service as audit
from kakehashi.campaigns import attempts, compliance
from kakehashi.campaigns import service as campaigns
from kakehashi.campaigns.models import CampaignList, LeadAttempt
from kakehashi.dialer.predictive import PacerFactory, PredictiveRunner
from kakehashi.kit.context import Actor
from kakehashi.kit.db import unit_of_work
from kakehashi.kit.errors import Conflict
from kakehashi.kit.events import Event, publish_on_commit
from kakehashi.routing.controller import CallController, Clock
from kakehashi.routing.engine import AgentState
from kakehashi.routing.live_types import CallControlError
from kakehashi.routing.persist import DbListener
from kakehashi.telephony.drivers.sim.driver import OUTCOMES, SimDriver
from kakehashi.telephony.port import TelephonyDriver

log = logging.getLogger(__name__)

#: How long after a call the agent has to save the result before the wrap-up closes by itself (saving ends it).
OUTBOUND_WRAP_UP_S = 120.0
#: A manual dial rings this long before it counts as no answer.
MANUAL_RING_TIMEOUT_S = 40.0
#: An idle progressive agent is looked at again this often (leads fall due, a window opens).
IDLE_RECHECK_S = 15.0


@dataclass(frozen=True, slots=True)
class Dial:
    """What the controller needs to place an attempt's call."""

    attempt_id: int
    campaign_id: int
    lead_id: int
    number: str
    caller_id: str
    ring_timeout_s: float
    sim_outcomes: dict[str, float] | None


class Dialer:
    """Preview and progressive dialing for the agents of running campaigns."""

    def __init__(
        self, controller: CallController, driver: TelephonyDriver, factory: sessionmaker[Session], clock: Clock,
        *, idle_recheck_s: float = IDLE_RECHECK_S, pacer_factory: PacerFactory | None = None,
        trunk_lines: int | None = None,
    ) -> None:  # fmt: skip
        self.controller, self.driver, self.factory, self.clock = controller, driver, factory, clock
        #: Calls the trunk carries at once (inbound too): predictive dialing stays under it (None: no limit).
        self.trunk_lines = trunk_lines
        self.idle_recheck_s = idle_recheck_s
        self.wrap_up_s = OUTBOUND_WRAP_UP_S
        #: The simulator's called party for a number dialled now (the benchmark's model); None: the list's mix.
        self.called_party: Callable[[str, datetime], None] | None = None
        self.predictive = PredictiveRunner(self, pacer_factory)
        self._joined: dict[tuple[int, str], int] = {}  # (tenant, agent) → the campaign they work now
        self._lock = threading.Lock()
        self._filling: set[tuple[int, str]] = set()
        self._random = random.Random()  # noqa: S311 — the simulator's called parties, not secrets
        self._ticking = False

    # -- the desk's commands

    def join(self, actor: Actor, agent: str, campaign_id: int) -> None:
        """``agent`` works ``campaign_id`` now (progressive: dialled for whenever available)."""
        with unit_of_work(self.factory) as session:
            campaign = campaigns.get_campaign(session, actor, campaign_id)
            if campaign.status != "running":
                raise Conflict(f"the campaign is {campaign.status}")
            if not attempts.works(session, actor, campaign, agent):
                raise Conflict(f"{agent} does not work this campaign")
            with self._lock:
                self._joined[(actor.tenant_id, agent)] = campaign_id
        if campaign.dial_mode == "predictive":
            self.predictive.joined(actor.tenant_id, campaign)
        self._start_ticking()
        self.clock.call_later(0, lambda: self.fill(actor.tenant_id, agent))

    def leave(self, actor: Actor, agent: str) -> None:
        with self._lock:
            self._joined.pop((actor.tenant_id, agent), None)

    def joined(self, tenant_id: int, agent: str) -> int | None:
        with self._lock:
            return self._joined.get((tenant_id, agent))

    def pacing(self, tenant_id: int) -> list[dict[str, Any]]:
        """The tenant's predictive campaigns being paced now: dial level, calls in flight and waiting, abandon
        rates over 24 hours and 30 days (``dialer.predictive.PacedCampaign.snapshot``)."""
        return self.predictive.snapshots(tenant_id)

    def agents_of(self, tenant_id: int, campaign_id: int) -> list[str]:
        """The agents who joined the campaign (and have not left it)."""
        with self._lock:
            return [a for (t, a), c in self._joined.items() if t == tenant_id and c == campaign_id]

    def pool(self, tenant_id: int, campaign_id: int) -> list[str]:
        """Who takes a predictive call answered now: the campaign's free agents, longest idle first (asked under
        the controller's lock: memory only)."""
        engine = self.controller.engine(tenant_id)
        free = [engine.agent(a) for a in self.agents_of(tenant_id, campaign_id) if engine.has_agent(a)]
        free = [rec for rec in free if rec.state is AgentState.AVAILABLE]
        return [rec.name for rec in sorted(free, key=lambda rec: rec.idle_since)]

    def dial(self, actor: Actor, agent: str, attempt_id: int) -> str:
        """Preview: dial the agent's open attempt now (409 with the reason when a rule forbids it now)."""
        with unit_of_work(self.factory) as session:
            attempt = attempts.get(session, actor, attempt_id)
            if attempt.agent != agent or attempt.ended_at is not None:
                raise Conflict("this lead is not on your desk")
            if attempt.call_ref is not None:  # a second press (two tabs, a double click): the call goes on
                raise Conflict("the lead is being dialled already")
            reason = attempts.check_dialable(session, actor, attempt, self.clock.now())
            if reason is None:
                plan = _plan(session, attempt)
        if reason is not None:
            # A number blocked since the card came up leaves the list; other reasons (the window closed, the
            # campaign paused) give the lead back as it was.
            with unit_of_work(self.factory) as session:
                attempts.give_back(session, actor, attempt_id, reason, self.clock.now())
            raise Conflict(f"the number cannot be dialled now: {reason}")
        try:
            self._place(actor.tenant_id, agent, plan)
        except CallControlError as exc:
            raise Conflict(str(exc)) from None
        return str(plan.attempt_id)

    def dial_manual(self, actor: Actor, agent: str, number: str, campaign_id: int | None) -> str:
        """Dial a number by hand for ``agent``: refused (409) when the number may not be called — the DNC list,
        a refusal in force (Art.17; with ``campaign_id``, by that campaign's refusal scope), a customer's
        suspension (APPI) or exclusion. Shown caller ID: the campaign's, else the tenant's first number."""
        with unit_of_work(self.factory) as session:
            e164, caller_id, blocked = attempts.manual_dial_check(session, actor, number, campaign_id)
            if blocked is not None:
                raise Conflict(f"this number may not be called: {blocked}")
            audit.record(session, actor, "campaign.manual_dial", resource="call", detail={"campaign_id": campaign_id})
        try:
            return self.controller.dial_for_agent(
                actor.tenant_id, agent, e164, caller_id=caller_id, ring_timeout_s=MANUAL_RING_TIMEOUT_S,
                wrap_up_s=OUTBOUND_WRAP_UP_S, tag={"manual": True, "campaign_id": campaign_id},
            )  # fmt: skip
        except CallControlError as exc:
            raise Conflict(str(exc)) from None

    # -- progressive

    def fill(self, tenant_id: int, agent: str) -> None:
        """Dial for ``agent`` if they work a progressive campaign, are available and have no lead open."""
        campaign_id = self.joined(tenant_id, agent)
        if campaign_id is None or not self._available(tenant_id, agent):
            return
        key = (tenant_id, agent)
        with self._lock:
            if key in self._filling:
                return
            self._filling.add(key)
        try:
            self._fill(tenant_id, agent, campaign_id)
        except Exception:  # the dialer must go on for the other agents; the cause is in the log
            log.exception("dialer: filling for %s failed", agent)
        finally:
            with self._lock:
                self._filling.discard(key)

    def _fill(self, tenant_id: int, agent: str, campaign_id: int) -> None:
        actor = attempts.system_actor(tenant_id)
        now = self.clock.now()
        with unit_of_work(self.factory) as session:
            campaign = campaigns.get_campaign(session, actor, campaign_id)
            if campaign.status != "running" or campaign.dial_mode != "progressive":
                return
            if attempts.current(session, actor, agent) is not None:
                return
            opened = attempts.open_next(session, actor, campaign_id, agent, now)
            if opened.attempt is None:
                return
            plan = _plan(session, opened.attempt)
            _tell(session, tenant_id, agent, opened.attempt)
        try:
            self._place(tenant_id, agent, plan)
        except CallControlError as exc:  # taken by an inbound call meanwhile: the lead goes back untouched
            with unit_of_work(self.factory) as session:
                attempts.release_undialled(session, tenant_id, plan.attempt_id, str(exc), self.clock.now())

    def _available(self, tenant_id: int, agent: str) -> bool:
        engine = self.controller.engine(tenant_id)
        return engine.has_agent(agent) and engine.agent(agent).state is AgentState.AVAILABLE

    def _start_ticking(self) -> None:
        with self._lock:
            if self._ticking:
                return
            self._ticking = True
        self.clock.call_later(self.idle_recheck_s, self._tick)

    def _tick(self) -> None:
        with self._lock:
            joined = list(self._joined)
        for tenant_id, agent in joined:
            self.fill(tenant_id, agent)
        with self._lock:
            self._ticking = bool(self._joined)
        if self._ticking:
            self.clock.call_later(self.idle_recheck_s, self._tick)

    # -- placing the call

    def plan(self, session: Session, attempt: LeadAttempt) -> Dial:
        return _plan(session, attempt)

    def simulate(self, plan: Dial) -> None:
        """On the simulator: how the called party will behave (the benchmark's model, else the list's mix)."""
        if self.called_party is not None:
            self.called_party(plan.number, self.clock.now())
        elif isinstance(self.driver, SimDriver) and plan.sim_outcomes:
            self._simulate(plan)

    def _place(self, tenant_id: int, agent: str, plan: Dial) -> None:
        self.simulate(plan)
        self.controller.dial_for_agent(
            tenant_id, agent, plan.number, caller_id=plan.caller_id, ring_timeout_s=plan.ring_timeout_s,
            wrap_up_s=OUTBOUND_WRAP_UP_S,
            tag={"attempt_id": plan.attempt_id, "campaign_id": plan.campaign_id, "lead_id": plan.lead_id},
        )  # fmt: skip

    def _simulate(self, plan: Dial) -> None:
        """The simulator's called party behaves by the list's outcome mix (demo and load tests)."""
        assert isinstance(self.driver, SimDriver) and plan.sim_outcomes
        outcomes = [o for o in OUTCOMES if plan.sim_outcomes.get(o)]
        weights = [float(plan.sim_outcomes[o]) for o in outcomes]
        if not outcomes:
            return
        chosen = self._random.choices(outcomes, weights)[0]
        ring = self._random.uniform(4.0, 15.0)
        self.driver.set_number(plan.number, chosen, ring_seconds=ring, talk_s=self._random.uniform(40.0, 240.0))

    # -- the controller's reports (under its lock: database writes only, as every decision's record)

    def dialed(self, tenant_id: int, ref: str, agent: str, tag: dict[str, Any]) -> None:
        with unit_of_work(self.factory) as session:
            attempts.dialed(session, tenant_id, int(tag["attempt_id"]), ref, self.driver.name)
            attempt = session.get(LeadAttempt, int(tag["attempt_id"]))
            if attempt is not None and agent:
                _tell(session, tenant_id, agent, attempt)

    def line_result(self, tenant_id: int, agent: str, tag: dict[str, Any], result: str, at: datetime) -> None:
        with unit_of_work(self.factory) as session:
            attempt = attempts.line_result(session, tenant_id, int(tag["attempt_id"]), result, at, agent=agent)
            if attempt is not None and agent:
                _tell(session, tenant_id, agent, attempt)
        if tag.get("predictive"):
            self.predictive.line_result(tenant_id, agent, tag, result, at)

    def wrap_up_closed(self, tenant_id: int, ref: str, at: datetime) -> None:
        with unit_of_work(self.factory) as session:
            attempt = attempts.close_unsaved(session, tenant_id, ref, at)
            if attempt is not None and attempt.agent:
                _tell(session, tenant_id, attempt.agent, attempt)

    def agent_gone(self, tenant_id: int, agent: str) -> None:
        """The agent logged out: they leave their campaign, a card not dialled goes back to the list, and any lead
        they still hold is freed (``campaigns.compliance.release_agent``)."""
        with self._lock:
            self._joined.pop((tenant_id, agent), None)
        actor = attempts.system_actor(tenant_id)
        with unit_of_work(self.factory) as session:
            attempt = attempts.current(session, actor, agent)
            if attempt is not None and attempt.call_ref is None:
                attempts.release_undialled(session, tenant_id, attempt.id, "the agent logged out", self.clock.now())
            compliance.release_agent(session, actor, agent)

    def agent_free(self, tenant_id: int, agent: str) -> None:
        self.predictive.agent_free(tenant_id, agent)
        if self.joined(tenant_id, agent) is not None:
            self.clock.call_later(0, lambda: self.fill(tenant_id, agent))


def _plan(session: Session, attempt: LeadAttempt) -> Dial:
    campaign = attempts.campaign_of(session, attempt)
    lead = attempts.lead_of(session, attempt)
    mix = None
    if attempt.list_id is not None:
        row = session.get(CampaignList, attempt.list_id)
        mix = row.sim_outcomes if row is not None else None
    return Dial(attempt.id, campaign.id, lead.id, lead.phone, campaign.caller_id, float(campaign.ring_timeout_s), mix)


def _tell(session: Session, tenant_id: int, agent: str, attempt: LeadAttempt) -> None:
    """The agent's desk learns where their attempt is (it reads the card again): after commit."""
    payload = {"agent": agent, "attempt_id": attempt.id, "stage": attempts.stage_of(attempt),
               "result": attempt.result, "call_ref": attempt.call_ref}  # fmt: skip
    publish_on_commit(session, Event("agent.outbound", tenant_id, payload))


class DialerListener(DbListener):
    """The database listener, and the dialer told of outbound calls, free agents and closed wrap-ups."""

    def __init__(self, factory: sessionmaker[Session], driver: str) -> None:
        super().__init__(factory, driver)
        self.dialer: Dialer | None = None

    def outbound_dialed(self, tenant_id: int, ref: str, agent: str, tag: dict[str, Any], at: datetime) -> None:
        if self.dialer is not None and "attempt_id" in tag:
            self.dialer.dialed(tenant_id, ref, agent, tag)

    def outbound_result(
        self, tenant_id: int, ref: str, agent: str, tag: dict[str, Any], result: str, at: datetime
    ) -> None:
        if self.dialer is not None and "attempt_id" in tag:
            self.dialer.line_result(tenant_id, agent, tag, result, at)

    def agent_state(
        self, tenant_id: int, agent: str, state: AgentState, reason: str | None, queue: str | None,
        call_ref: str | None, at: datetime,
    ) -> None:  # fmt: skip
        super().agent_state(tenant_id, agent, state, reason, queue, call_ref, at)
        self.tell_dialer(tenant_id, agent, state)

    def tell_dialer(self, tenant_id: int, agent: str, state: AgentState) -> None:
        """The dialer's part of an agent's new state: free (refill, handle time), wrapping up, gone."""
        if self.dialer is None:
            return
        if state is AgentState.AVAILABLE:
            self.dialer.agent_free(tenant_id, agent)
        elif state is AgentState.WRAP_UP:
            self.dialer.predictive.agent_wrapping(tenant_id, agent)
        elif state is AgentState.LOGGED_OUT:
            self.dialer.agent_gone(tenant_id, agent)

    def wrap_up_over(self, tenant_id: int, ref: str, at: datetime) -> None:
        if self.dialer is not None:
            self.dialer.wrap_up_closed(tenant_id, ref, at)
        super().wrap_up_over(tenant_id, ref, at)


def attach(
    controller: CallController, driver: TelephonyDriver, factory: sessionmaker[Session], clock: Clock,
    listener: DialerListener, *, idle_recheck_s: float = IDLE_RECHECK_S, pacer_factory: PacerFactory | None = None,
    trunk_lines: int | None = None,
) -> Dialer:  # fmt: skip
    """A dialer on a running controller whose listener is ``listener`` (``trunk_lines``: see :class:`Dialer`)."""
    dialer = Dialer(controller, driver, factory, clock, idle_recheck_s=idle_recheck_s, pacer_factory=pacer_factory,
                    trunk_lines=trunk_lines)  # fmt: skip
    listener.dialer = dialer
    return dialer
