"""Predictive dialing (issue 19, ADR 0025): every pacing tick each running predictive campaign with agents on it
asks its pacer how many calls to place, reserves that many due leads and dials them with no agent held
(``routing.predictive``); a person who answers goes to the campaign's longest-idle free agent, or hears the
campaign's identification message when nobody is free within 2 s (an abandon, and no redial for 72 h).

The pacer (``kakehashi.pacing``) is told every dial's result and every agent's handle time. A campaign's pacer
lives as long as the process; after a restart it starts again from its priors and the 24-hour / 30-day abandon
counts read back from the attempts (:meth:`PredictiveRunner._pacer`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from kakehashi.campaigns import attempts
from kakehashi.campaigns import service as campaigns
from kakehashi.campaigns.models import Campaign, LeadAttempt
from kakehashi.campaigns.schemas import AmdSettings
from kakehashi.kit.db import unit_of_work
from kakehashi.kit.events import Event, bus
from kakehashi.pacing.estimates import WindowRate
from kakehashi.pacing.predictive import PredictivePacer, PredictiveSettings, unseen_per_person
from kakehashi.pacing.types import DialOutcome, Pacer, PacingState
from kakehashi.routing.engine import AgentState
from kakehashi.routing.live_types import CallControlError, Unattended

if TYPE_CHECKING:
    from kakehashi.dialer import Dialer

log = logging.getLogger(__name__)

#: How often each predictive campaign is paced (the issue asks ≤ 1 s).
PACING_TICK_S = 1.0
#: Connected within this long of the person's answer, or abandoned (FCC 47 CFR 64.1200(a)(7): 2 s).
CONNECT_WITHIN_S = 2.0
#: With no lead due, the database is asked again this often (not every tick).
NO_LEADS_RECHECK_S = 15.0
#: A dial's result is in by its ring time-out, the detector's listening and this (the pacer's ``settle_s``).
SETTLE_MARGIN_S = 5.0
#: ``campaign.pacing`` events: at most one per campaign this often.
PUBLISH_EVERY_S = 2.0
_LONG_AGO = datetime.min.replace(tzinfo=UTC)
_WORKING = (AgentState.AVAILABLE, AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP)

PacerFactory = Callable[[Campaign], Pacer]


def default_pacer(campaign: Campaign) -> Pacer:
    """Kakehashi's predictive pacer with the campaign's settings."""
    settings, amd = campaigns.predictive_settings(campaign), campaigns.amd_settings(campaign)
    return PredictivePacer(PredictiveSettings(
        abandon_target=settings.abandon_target, max_lines_per_agent=settings.max_lines_per_agent,
        max_in_flight=settings.max_in_flight, false_machine_rate=amd.unseen_people_rate(),
        settle_s=campaign.ring_timeout_s + listening_s(amd) + SETTLE_MARGIN_S,
    ))  # fmt: skip


def listening_s(amd: AmdSettings) -> float:
    """How long the detector may listen after an answer (0 without detection): a dial's ring time-out is
    extended by it."""
    return amd.total_analysis_ms / 1000 + 1.0 if amd.enabled else 0.0


@dataclass
class PacedCampaign:
    """One predictive campaign's live pacing."""

    tenant_id: int
    campaign_id: int
    pacer: Pacer
    leads_available: bool = True
    placed_at: dict[int, datetime] = field(default_factory=dict)  # attempt → when dialled (until its result)
    answered: set[int] = field(default_factory=set)  # attempts answered by a person (counted once)
    dials: int = 0
    last_state: PacingState | None = None
    #: Abandons among people who answered over 24 hours and 30 days (the wallboard's, whatever the pacer keeps).
    day: WindowRate = field(default_factory=lambda: WindowRate(timedelta(hours=24)))
    month: WindowRate = field(default_factory=lambda: WindowRate(timedelta(days=30)))
    #: People the detector hung up on, estimated per person it let through (``f/(1 − f)``; 0 without detection).
    unseen: float = 0.0
    published: float = 0.0  # when the last ``campaign.pacing`` event went out (monotonic)
    look_again_at: datetime = _LONG_AGO  # no lead was due: the next look for one

    def count(self, at: datetime, *, human: bool, abandoned: bool) -> None:
        if human or abandoned:
            self.day.add(at, abandoned=abandoned, human=human)
            self.month.add(at, abandoned=abandoned, human=human)

    def snapshot(self, now: datetime) -> dict[str, Any]:
        """What the wallboard shows of this campaign now."""
        self.day.expire(now)
        self.month.expire(now)
        state = self.last_state
        day_est, month_est = self.unseen * self.day.humans, self.unseen * self.month.humans

        def rate(window: WindowRate, estimated: float) -> float:
            people = window.humans + estimated
            return round((window.abandoned + estimated) / people, 4) if people else 0.0

        return {
            "campaign_id": self.campaign_id, "dial_level": round(self.pacer.level, 2),
            "calls_in_flight": state.calls_in_flight if state else 0,
            "calls_waiting": state.calls_waiting if state else 0,
            "agents_active": state.agents_active if state else 0, "agents_ready": state.agents_ready if state else 0,
            "abandon_rate_24h": rate(self.day, day_est), "answered_24h": round(self.day.humans),
            "abandoned_24h": round(self.day.abandoned), "estimated_24h": round(day_est, 1),
            "abandon_rate_30d": rate(self.month, month_est), "answered_30d": round(self.month.humans),
            "abandoned_30d": round(self.month.abandoned), "estimated_30d": round(month_est, 1), "dials": self.dials,
        }  # fmt: skip


class PredictiveRunner:
    """The predictive side of :class:`~kakehashi.dialer.Dialer` (it owns one)."""

    def __init__(self, dialer: Dialer, pacer_factory: PacerFactory | None = None) -> None:
        self.dialer = dialer
        self.pacer_factory = pacer_factory or default_pacer
        self._campaigns: dict[tuple[int, int], PacedCampaign] = {}
        self._handling: dict[tuple[int, str], tuple[PacedCampaign, datetime]] = {}  # agent → since answered
        self._wrapping: dict[tuple[int, str], datetime] = {}  # agent → since their wrap-up began
        self._lock = threading.Lock()
        self._ticking = False

    # -- the dialer's hooks

    def joined(self, tenant_id: int, campaign: Campaign) -> None:
        """An agent joined a predictive campaign: it is paced from now on."""
        key = (tenant_id, campaign.id)
        with self._lock:
            if key not in self._campaigns:
                self._campaigns[key] = self._paced(tenant_id, campaign)
            start = not self._ticking
            self._ticking = True
        if start:
            self.dialer.clock.call_later(PACING_TICK_S, self._tick)

    def paced(self, tenant_id: int, campaign_id: int) -> PacedCampaign | None:
        with self._lock:
            return self._campaigns.get((tenant_id, campaign_id))

    def live(self) -> list[PacedCampaign]:
        with self._lock:
            return list(self._campaigns.values())

    def line_result(self, tenant_id: int, agent: str, tag: dict[str, Any], result: str, at: datetime) -> None:
        """A predictive call's line result: the pacer learns it; a person taken by ``agent`` is being handled."""
        paced = self.paced(tenant_id, int(tag["campaign_id"]))
        if paced is None:
            return
        attempt_id = int(tag["attempt_id"])
        placed = paced.placed_at.get(attempt_id, at)
        if result == "answered":
            paced.answered.add(attempt_id)
            paced.pacer.record(DialOutcome(at=at, placed_at=placed, human=True))
            paced.count(at, human=True, abandoned=False)
            if agent:
                with self._lock:
                    self._handling[(tenant_id, agent)] = (paced, at)
            return
        paced.placed_at.pop(attempt_id, None)
        if attempt_id in paced.answered:  # taken by an agent who did not pick up: counted as a person already
            paced.answered.discard(attempt_id)
            if result == "abandoned":
                paced.pacer.record(DialOutcome(at=at, placed_at=placed, human=False, abandoned=True))
                paced.count(at, human=False, abandoned=True)
            return
        paced.pacer.record(DialOutcome(at=at, placed_at=placed, human=result == "abandoned",
                                       machine=result == "machine", abandoned=result == "abandoned"))  # fmt: skip
        paced.count(at, human=result == "abandoned", abandoned=result == "abandoned")

    def agent_wrapping(self, tenant_id: int, agent: str) -> None:
        """The agent's call ended: their wrap-up starts (timed for the pacer)."""
        with self._lock:
            if (tenant_id, agent) in self._handling:
                self._wrapping[(tenant_id, agent)] = self.dialer.clock.now()

    def agent_free(self, tenant_id: int, agent: str) -> None:
        now = self.dialer.clock.now()
        with self._lock:
            handling = self._handling.pop((tenant_id, agent), None)
            wrapping = self._wrapping.pop((tenant_id, agent), None)
        if handling is not None:
            paced, since = handling
            paced.pacer.handled((now - since).total_seconds(), now)
            if wrapping is not None:
                paced.pacer.wrapped((now - wrapping).total_seconds(), now)

    # -- pacing

    def _tick(self) -> None:
        for paced in self.live():
            try:
                self._pace(paced)
            except Exception:  # one campaign's trouble must not stop the others' pacing; the cause is logged
                log.exception("dialer: pacing campaign %s failed", paced.campaign_id)
        with self._lock:
            self._ticking = bool(self._campaigns)
        if self._ticking:
            self.dialer.clock.call_later(PACING_TICK_S, self._tick)

    def _pace(self, paced: PacedCampaign) -> None:
        dialer = self.dialer
        tenant_id, campaign_id = paced.tenant_id, paced.campaign_id
        agents = dialer.agents_of(tenant_id, campaign_id)
        if not agents:
            with self._lock:
                self._campaigns.pop((tenant_id, campaign_id), None)  # nobody works it: paced again when one joins
            return
        engine = dialer.controller.engine(tenant_id)
        states = [engine.agent(a).state for a in agents if engine.has_agent(a)]
        ringing, waiting = dialer.controller.unattended_counts(tenant_id, "campaign_id", campaign_id)
        now = dialer.clock.now()
        state = PacingState(
            now=now, agents_active=sum(s in _WORKING for s in states),
            agents_ready=sum(s is AgentState.AVAILABLE for s in states), calls_in_flight=ringing,
            calls_waiting=waiting, leads_available=paced.leads_available,
            agents_talking=sum(s in (AgentState.RINGING, AgentState.ON_CALL) for s in states),
            talking_elapsed=self._elapsed(tenant_id, agents, now, self._talking_since),
            wrapping_elapsed=self._elapsed(tenant_id, agents, now, self._wrapping),
        )  # fmt: skip
        paced.last_state = state
        wanted = paced.pacer.decide(state)
        self._publish(paced, now)
        if not paced.leads_available:  # look for due leads again now and then (a retry falls due, the window opens)
            if now < paced.look_again_at:
                return
            wanted = max(wanted, 1)
        if dialer.trunk_lines is not None:  # the trunk is shared: other campaigns' calls and inbound ones
            wanted = min(wanted, dialer.trunk_lines - dialer.controller.lines_in_use())
        if wanted <= 0:
            return
        paced.leads_available = self._place(paced, wanted) >= wanted
        if not paced.leads_available:
            paced.look_again_at = now + timedelta(seconds=NO_LEADS_RECHECK_S)

    def _talking_since(self) -> dict[tuple[int, str], datetime]:
        return {key: since for key, (_, since) in self._handling.items() if key not in self._wrapping}

    def _elapsed(
        self, tenant_id: int, agents: list[str], now: datetime, source: Callable[[], dict[tuple[int, str], datetime]]
        | dict[tuple[int, str], datetime],
    ) -> tuple[float, ...]:  # fmt: skip
        with self._lock:
            since = source() if callable(source) else dict(source)
        return tuple((now - since[(tenant_id, a)]).total_seconds() for a in agents if (tenant_id, a) in since)

    def _publish(self, paced: PacedCampaign, now: datetime) -> None:
        """``campaign.pacing`` for the wallboard, at most every ``PUBLISH_EVERY_S`` per campaign. Like
        ``queue.stats`` a throttled snapshot of memory, sent at once (ADR 0019's named exception)."""
        tick = time.monotonic()
        if tick - paced.published < PUBLISH_EVERY_S:
            return
        paced.published = tick
        bus.send(Event("campaign.pacing", paced.tenant_id, paced.snapshot(now)))

    def snapshots(self, tenant_id: int) -> list[dict[str, Any]]:
        """The tenant's paced campaigns now (the wallboard's first paint; then ``campaign.pacing`` events)."""
        now = self.dialer.clock.now()
        return [paced.snapshot(now) for paced in self.live() if paced.tenant_id == tenant_id]

    def _place(self, paced: PacedCampaign, count: int) -> int:
        """Reserve and dial up to ``count`` leads; how many were dialled."""
        dialer = self.dialer
        actor = attempts.system_actor(paced.tenant_id)
        now = dialer.clock.now()
        with unit_of_work(dialer.factory) as session:
            campaign = campaigns.get_campaign(session, actor, paced.campaign_id)
            if campaign.status != "running" or campaign.dial_mode != "predictive":
                return 0
            opened = attempts.open_unattended(session, actor, campaign.id, now, count)
            plans = [dialer.plan(session, attempt) for attempt in opened]
            settings = campaigns.predictive_settings(campaign)
            amd = campaigns.amd_settings(campaign)
        how = Unattended(
            pool=lambda: dialer.pool(paced.tenant_id, paced.campaign_id), connect_within_s=CONNECT_WITHIN_S,
            abandon_prompt=settings.abandon_message or None, amd_action=amd.action,
            machine_prompt=amd.machine_message or None,
        )  # fmt: skip
        detector = amd.detector()
        listening = listening_s(amd)  # the line rings, then the detector listens: the ring time-out covers both
        placed = 0
        for plan in plans:
            dialer.simulate(plan)
            paced.placed_at[plan.attempt_id] = now
            try:
                dialer.controller.dial_unattended(
                    paced.tenant_id, plan.number, caller_id=plan.caller_id,
                    ring_timeout_s=plan.ring_timeout_s + listening, wrap_up_s=dialer.wrap_up_s, how=how, amd=detector,
                    tag={"attempt_id": plan.attempt_id, "campaign_id": plan.campaign_id, "lead_id": plan.lead_id,
                         "predictive": True},
                )  # fmt: skip
                placed += 1
                paced.dials += 1
            except CallControlError as exc:
                paced.placed_at.pop(plan.attempt_id, None)
                with unit_of_work(dialer.factory) as session:
                    attempts.release_undialled(session, paced.tenant_id, plan.attempt_id, str(exc), now)
        return placed

    def _paced(self, tenant_id: int, campaign: Campaign) -> PacedCampaign:
        """A new pacer for ``campaign``, told (as are the wallboard's counts) the 30 days of abandons and answers
        it has behind it."""
        unseen = unseen_per_person(campaigns.amd_settings(campaign).unseen_people_rate())
        paced = PacedCampaign(tenant_id, campaign.id, self.pacer_factory(campaign), unseen=unseen)
        now = self.dialer.clock.now()
        with self.dialer.factory() as session:
            rows = session.execute(
                select(LeadAttempt.answered_at, LeadAttempt.started_at, LeadAttempt.result)
                .where(
                    LeadAttempt.campaign_id == campaign.id,
                    LeadAttempt.mode == "predictive",
                    LeadAttempt.human.is_(True),
                    LeadAttempt.started_at >= now - timedelta(days=30),
                )
                .order_by(LeadAttempt.started_at)
            ).all()
        for answered_at, started_at, result in rows:
            at = answered_at or started_at
            paced.pacer.record(DialOutcome(at=at, placed_at=started_at, human=True, abandoned=result == "abandoned",
                                           history=True))  # fmt: skip
            paced.count(at, human=True, abandoned=result == "abandoned")
        return paced
