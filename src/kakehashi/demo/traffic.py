"""Live demo traffic: while ``kakehashi demo`` serves the app, simulated customers call the demo numbers and
simulated agents answer them, through the real pipeline (driver → calls → call controller → database).

The outside world only, as a phone system and its users would be:

* **Customers** dial the demo numbers (``demo.routing.NUMBERS``) at ``calls_per_hour`` — a Poisson process with a
  TV-shopping spike in every window (``traffic.plan_inbound``) — from numbers of the demo customers (showcase and
  generated) or unknown numbers; they press IVR keys, wait with an exponential patience, talk (lognormal) and hang
  up. A customer called back answers (or not) like a person.
* **Agents** (every demo agent but ``operator``, who is a person logging in to the UI) log in one after another,
  answer their ringing phone after a short random delay, close their wrap-up with a result code after a few
  seconds (as ``POST /api/v1/calls/{id}/wrap-up`` does), and now and then take a break with an aux code.
  The ``operator``'s phone is an auto-answer headset: when the real operator is available, calls reach them.

Threads: everything is scheduled on the driver's clock (the app's ``RealTimeClock`` runs actions one at a time on
its thread). Agent state choices go through ``CallController.choose_state``, which serializes with the calls'
events (its lock and inbox). Driver and bus handlers here only record and schedule. :meth:`DemoTraffic.stop` sets a
flag every pending action checks, so nothing new happens after it; the clock itself is closed by
``kakehashi.pipeline.stop``.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from sqlalchemy.orm import Session, sessionmaker

from kakehashi.agents import service as agents
from kakehashi.calls import service as calls
from kakehashi.campaigns import attempts
from kakehashi.campaigns import service as campaign_service
from kakehashi.campaigns.live import LiveDialer
from kakehashi.demo import campaigns as demo_campaigns
from kakehashi.demo import routing as demo
from kakehashi.dispositions import service as dispositions
from kakehashi.dispositions.service import DEFAULTS as DEFAULT_DISPOSITIONS
from kakehashi.kit.context import Actor
from kakehashi.kit.db import unit_of_work
from kakehashi.kit.errors import Conflict, NotFound
from kakehashi.kit.events import Event, bus
from kakehashi.kit.phone import try_normalize_phone
from kakehashi.routing import service as routing
from kakehashi.routing.controller import CallController
from kakehashi.routing.engine import AgentState, AgentStateError
from kakehashi.routing.live import LivePipeline
from kakehashi.telephony.drivers.sim.driver import SimDriver
from kakehashi.telephony.drivers.sim.traffic import ArrivalProfile, CallerModel, PlannedCall, Spike, plan_inbound
from kakehashi.telephony.port import AgentRinging, Bridged, DriverEvent

log = logging.getLogger(__name__)

#: How often the simulated agents pick a result code of each kind, against 1 for the others (a sale is common).
DISPOSITION_WEIGHTS = {"sale": 3, "no_contact": 0.3}
#: (code, kind) of the built-in result codes, for a center that has not set its own.
DEFAULT_RESULTS = tuple((d.code, d.kind) for d in DEFAULT_DISPOSITIONS)

#: Menu keys of the order-desk flow: 1 order, 2 order inquiry (then 8 digits), 3 complaint, 9 repeat; 0 is a
#: wrong key (the menu asks again, then sends the caller to orders).
DEMO_CALLERS = CallerModel(
    ivr_choices={"1": 0.55, "2": 0.24, "3": 0.12, "9": 0.04, "0": 0.05},
    mean_patience_s=150.0,
    mean_talk_s=80.0,
    talk_sd_s=40.0,
    repeat_share=0.5,
)


#: Calls per hour under ``kakehashi demo`` unless KAKEHASHI_DEMO_TRAFFIC_PER_HOUR says otherwise.
DEMO_CALLS_PER_HOUR = 120.0

#: A TV-shopping slot in every window: six times the calls for two minutes.
TV_SLOT = Spike(start_s=240.0, duration_s=120.0, multiplier=6.0)


@dataclass(frozen=True)
class TrafficOptions:
    """How the demo behaves; the app sets ``calls_per_hour`` from ``KAKEHASHI_DEMO_TRAFFIC_PER_HOUR``."""

    calls_per_hour: float = DEMO_CALLS_PER_HOUR
    seed: int | None = None
    window_s: float = 600.0  # arrivals are planned one window at a time
    spike: Spike | None = TV_SLOT
    callers: CallerModel = DEMO_CALLERS
    #: Share of calls per demo number (numbers missing in the tenant are left out).
    dnis_share: dict[str, float] = field(
        default_factory=lambda: {"0120-555-010": 0.8, "0120-555-020": 0.07, "0120-555-030": 0.13}
    )
    answer_after_s: tuple[float, float] = (1.5, 5.0)
    operator_answer_after_s: float = 3.0
    close_wrap_up_after_s: tuple[float, float] = (3.0, 12.0)
    log_in_over_s: float = 15.0  # the simulated agents log in one after another over this time
    first_break_s: tuple[float, float] = (300.0, 600.0)  # one agent starts on a lunch break
    break_chance: float = 0.08  # after a call
    break_s: tuple[float, float] = (60.0, 240.0)
    callback_answered: float = 0.8  # a customer called back picks up (else: no answer)
    join_campaign_after_s: float = 20.0  # the outbound agents join the demo campaign once logged in


@dataclass
class TrafficStats:
    placed: int = 0  # calls the simulated customers made
    answered: int = 0  # calls a simulated agent picked up (inbound and callbacks)
    wrap_ups_closed: int = 0  # wrap-ups a simulated agent closed with a result code
    breaks: int = 0
    errors: int = 0


class DemoTraffic:
    """Call :meth:`start` once, :meth:`stop` once (more calls do nothing)."""

    def __init__(
        self,
        driver: SimDriver,
        controller: CallController,
        factory: sessionmaker[Session],
        tenant_id: int,
        *,
        numbers: Sequence[str],
        agents: Sequence[str],
        operator: str | None = None,
        aux_codes: Sequence[str] = (),
        dispositions: Sequence[tuple[str, str]] = DEFAULT_RESULTS,
        options: TrafficOptions | None = None,
        campaign: tuple[int, Sequence[str]] | None = None,
        dialer: LiveDialer | None = None,
    ) -> None:
        self.driver, self.controller, self.factory, self.tenant_id = driver, controller, factory, tenant_id
        self.options = options or TrafficOptions()
        self.numbers = list(numbers)
        self.agents = tuple(agents)
        self.operator = operator
        self.aux_codes = tuple(aux_codes)
        # The center's result codes (code, kind), as its agents see them at wrap-up.
        self.dispositions = [code for code, _ in dispositions]
        self.disposition_weights = [DISPOSITION_WEIGHTS.get(kind, 1) for _, kind in dispositions]
        self.stats = TrafficStats()
        self._rng = random.Random(self.options.seed)
        self._lock = threading.Lock()
        self._talking: dict[str, str] = {}  # call ref → simulated agent on it
        self._stopped = threading.Event()
        self._started = False
        self._unsubscribe: list[Callable[[], None]] = []
        self._known: list[str] | None = None
        # The outbound campaign (id, its simulated agents) and the dialer they join it on.
        self.campaign, self.dialer = campaign, dialer

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    # -- start and stop ------------------------------------------------------------------------------------

    def start(self) -> DemoTraffic:
        if self._started:
            return self
        self._started = True
        self.driver.subscribe(self._on_driver_event)
        self._unsubscribe.append(bus.subscribe("call.hangup", self._on_hangup))
        low, high = self.options.answer_after_s
        for agent in self.agents:
            self.driver.set_agent(agent, answer_after=self._rng.uniform(low, high))
        if self.operator:
            self.driver.set_agent(self.operator, answer_after=self.options.operator_answer_after_s)
        step = self.options.log_in_over_s / max(1, len(self.agents))
        for i, agent in enumerate(self.agents):
            at = 0.2 + i * step
            if i == len(self.agents) - 1 and "lunch" in self.aux_codes and len(self.agents) > 1:
                self._later(at, partial(self._choose, agent, AgentState.BREAK, "lunch"))
                back = at + self._rng.uniform(*self.options.first_break_s)
                self._later(back, partial(self._choose, agent, AgentState.AVAILABLE))
            else:
                self._later(at, partial(self._choose, agent, AgentState.AVAILABLE))
        if self.options.calls_per_hour > 0 and self.numbers:
            self._later(0.0, self._plan_window)
        if self.campaign is not None and self.dialer is not None:
            for agent in self.campaign[1]:
                self._later(self.options.join_campaign_after_s, partial(self._join, agent))
        log.info("demo traffic: %s calls/hour to %s, %d simulated agents",
                 self.options.calls_per_hour, ", ".join(self.numbers), len(self.agents))  # fmt: skip
        return self

    def stop(self) -> None:
        """No new calls or agent actions from now on; the simulated agents log out (after a call in progress)."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        while self._unsubscribe:
            self._unsubscribe.pop()()
        for agent in self.agents:
            try:
                self.controller.choose_state(self.tenant_id, agent, AgentState.LOGGED_OUT)
            except Exception:  # shutting down: one agent's trouble must not stop the others or the app
                log.exception("demo traffic: could not log %s out", agent)
        log.info("demo traffic stopped: %s", self.stats)

    # -- customers -----------------------------------------------------------------------------------------

    def _plan_window(self) -> None:
        opts = self.options
        spikes = () if opts.spike is None else (opts.spike,)
        plan = plan_inbound(
            ArrivalProfile(opts.calls_per_hour, spikes),
            opts.window_s,
            seed=self._rng.randrange(2**31),
            known_numbers=self._known_numbers(),
            callers=opts.callers,
        )
        for call in plan:
            self._later(call.at_s, partial(self._dial, call))
        self._later(opts.window_s, self._plan_window)

    def _dial(self, call: PlannedCall) -> None:
        rng = self._rng
        shares = [self.options.dnis_share.get(n, 0.0) for n in self.numbers]
        dnis = rng.choices(self.numbers, weights=shares)[0] if sum(shares) > 0 else rng.choice(self.numbers)
        # If this caller asks for (or overflows into) a callback, this is how they answer it.
        answers = rng.random() < self.options.callback_answered
        self.driver.set_number(call.ani, "answer" if answers else "no_answer",
                               ring_seconds=rng.uniform(3.0, 10.0), talk_s=call.talk_s)  # fmt: skip
        self.driver.incoming(ani=call.ani, dnis=dnis, tenant_id=self.tenant_id, presses=self._keys(call.presses),
                             patience=call.patience_s, talk_s=call.talk_s)  # fmt: skip
        self.stats.placed += 1

    def _keys(self, choice: str) -> str:
        """What the caller will key: an order inquiry types the 8-digit order number; "again" picks again."""
        rng = self._rng
        if choice == "2":
            return "2" + "".join(rng.choice("0123456789") for _ in range(8))
        if choice == "9":
            return "9" + self._keys(rng.choice("123"))
        return choice

    def _known_numbers(self) -> list[str]:
        """Numbers of the demo's customers: the showcase five (a VIP, an open complaint…) and generated people
        (those ``kakehashi demo`` seeded; with fewer customers some are simply unknown callers)."""
        if self._known is None:
            # Imported here: the generator's tables are heavy, and only a running demo needs them.
            from kakehashi.demo.customers import SHOWCASE_NUMBERS
            from kakehashi.demo.synthetic import mobile_number

            showcase = list(SHOWCASE_NUMBERS.values())
            self._known = showcase * 8 + [mobile_number(i).national for i in range(300)]
        return self._known

    # -- agents --------------------------------------------------------------------------------------------

    def _on_driver_event(self, event: DriverEvent) -> None:
        """Runs in whichever thread the driver emits from: record and schedule only."""
        if self._stopped.is_set():
            return
        match event:
            case AgentRinging(agent=agent) if agent in self.agents:
                low, high = self.options.answer_after_s
                self.driver.set_agent(agent, answer_after=self._rng.uniform(low, high))  # a new delay each call
            case Bridged(call_ref=ref, agent=agent) if agent in self.agents:
                with self._lock:
                    self._talking[ref] = agent
                    self.stats.answered += 1
            case _:
                pass

    def _on_hangup(self, event: Event) -> None:
        """``call.hangup``: the line is free and the agent is in wrap-up; a simulated agent closes it soon."""
        ref = str(event.payload.get("call_ref"))
        with self._lock:
            agent = self._talking.pop(ref, None)
        if agent is None or self._stopped.is_set() or event.tenant_id != self.tenant_id:
            return
        call_id = int(event.payload["call_id"])
        self._later(self._rng.uniform(*self.options.close_wrap_up_after_s), partial(self._close, agent, call_id))

    def _close(self, agent: str, call_id: int) -> None:
        actor = Actor(tenant_id=self.tenant_id, username=agent, origin="sim")
        try:
            with unit_of_work(self.factory) as session:
                if calls.get_call(session, actor, call_id).lead_id is not None:
                    self._close_lead(session, actor, agent)
                else:
                    result = self._rng.choices(self.dispositions, self.disposition_weights)[0]
                    calls.finish_wrap_up(session, actor, call_id, result, self.driver.clock.now())
        except (Conflict, NotFound):
            return  # the queue's wrap-up time ran out first: the call is already closed
        self.stats.wrap_ups_closed += 1
        if self.aux_codes and self._rng.random() < self.options.break_chance:
            self.stats.breaks += 1
            self._choose(agent, AgentState.BREAK, self._rng.choice(self.aux_codes))
            self._later(self._rng.uniform(*self.options.break_s), partial(self._choose, agent, AgentState.AVAILABLE))

    def _join(self, agent: str) -> None:
        assert self.campaign is not None and self.dialer is not None
        try:
            self.dialer.join(Actor(tenant_id=self.tenant_id, username=agent, origin="sim"), agent, self.campaign[0])
        except Conflict as exc:  # the campaign was paused or stopped by a supervisor
            log.info("demo traffic: %s does not join the campaign: %s", agent, exc)

    def _close_lead(self, session: Session, actor: Actor, agent: str) -> None:
        """A simulated agent's outbound call: the opening statement was given, then one of the campaign's codes."""
        from kakehashi.demo.campaigns import OUTBOUND_CODES, OUTBOUND_WEIGHTS

        attempt = attempts.current(session, actor, agent)
        if attempt is None:
            return
        now = self.driver.clock.now()
        code, _, _, flags = self._rng.choices(OUTBOUND_CODES, OUTBOUND_WEIGHTS)[0]
        attempts.confirm_opening(session, actor, attempt.id, agent, now)
        later = now + timedelta(hours=2) if flags.get("callback") else None
        attempts.finish(session, actor, attempt.id, agent, code, now, driver=self.driver.name, callback_at=later,
                        callback_personal=False)  # fmt: skip

    def _choose(self, agent: str, state: AgentState, reason: str | None = None) -> None:
        try:
            self.controller.choose_state(self.tenant_id, agent, state, reason)
        except AgentStateError as exc:  # e.g. an admin deleted the agent meanwhile
            log.warning("demo traffic: %s cannot choose %s: %s", agent, state.value, exc)

    # -- scheduling ----------------------------------------------------------------------------------------

    def _later(self, seconds: float, action: Callable[[], None]) -> None:
        """Run ``action`` on the clock unless stopped by then; an error is logged, never left to the clock's
        thread (which would stop every call of the demo)."""

        def run() -> None:
            if self._stopped.is_set():
                return
            try:
                action()
            except Exception:
                self.stats.errors += 1
                log.exception("demo traffic: a simulated action failed")

        self.driver.clock.call_later(seconds, run)


def start(
    telephony: LivePipeline | None, factory: sessionmaker[Session], tenant_id: int, calls_per_hour: float
) -> DemoTraffic | None:
    """Start the demo traffic in the tenant when ``calls_per_hour`` > 0, the driver is the simulator and the demo
    routing exists (``kakehashi demo`` makes it); else None. Only the demo's own numbers and agents take part."""
    if calls_per_hour <= 0 or telephony is None or not isinstance(telephony.driver, SimDriver):
        return None
    driver, controller = telephony.driver, telephony.controller
    actor = Actor(tenant_id=tenant_id, username="demo-traffic", origin="sim")
    with factory() as session:
        present = {n.number_e164 for n in routing.list_numbers(session, actor)}
        names = {a.name for a in agents.list_agents(session, actor)}
        codes = [c.code for c in agents.aux_codes(session, actor)]
        results = [(d.code, d.kind) for d in dispositions.list_dispositions(session, actor)]
        running = [c for c in campaign_service.list_campaigns(session, actor)
                   if c.name == demo_campaigns.CAMPAIGN and c.status == "running"]  # fmt: skip
    numbers = [n for n in demo.NUMBERS if try_normalize_phone(n) in present]
    simulated = [a for a in demo.SIMULATED_AGENTS if a in names]
    if not numbers or not simulated:
        log.warning("demo traffic: no demo numbers or agents in this tenant (run `kakehashi demo`); no traffic")
        return None
    return DemoTraffic(
        driver,
        controller,
        factory,
        tenant_id,
        numbers=numbers,
        agents=simulated,
        operator=demo.OPERATOR if demo.OPERATOR in names else None,
        aux_codes=codes,
        dispositions=results,
        options=TrafficOptions(calls_per_hour=calls_per_hour),
        campaign=(running[0].id, [a for a in demo_campaigns.OUTBOUND_AGENTS if a in names]) if running else None,
        dialer=telephony.dialer,
    ).start()


def stop(traffic: DemoTraffic | None) -> None:
    if traffic is not None:
        traffic.stop()
