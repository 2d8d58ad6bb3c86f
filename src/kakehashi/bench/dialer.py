"""``kakehashi bench dialer``: progressive, VICIdial's three ADAPT modes and Kakehashi's predictive pacing on one
seeded simulation (issue 19).

Every mode gets the same agents, the same lead population and the same called parties: whether a number answers,
how long it rings and how long the talk lasts are drawn from a generator seeded by (seed, number, attempt), so a
lead dialled at the same hour behaves the same in every mode. Answer rates change with the hour (people answer
more in the evening), some households have an answering machine (detected with a 1.2 % false-machine and 10 %
missed-machine rate, for every mode), some numbers are busy, dead or never answer. The calls run on the
simulator and a virtual clock through the real campaign code — reservation, attempts, retry rules, the 72-hour
block after an abandon — in a SQLite database of their own per mode. Simulated agents pick up after 1 s, talk,
write up the call (10–40 s) and save a result.

A person who answers when no agent is free for 2 s is abandoned (FCC: 2 s) in every mode, and hears the
identification message. ``abandon_rate`` = abandoned ÷ people who answered (agent pick-up time-outs included),
per Japanese day and over the run (``_30d``: the run is shorter than 30 days); ``abandon_rate_ofcom`` adds the
people the detector took for machines (Ofcom counts them; the simulator knows them, our pacer estimates them from
the campaign's false-machine rate, here the simulator's 1.2 %).

``predictive_gain_vs_adapt`` compares ours with the best ADAPT run that kept every day within 3 %: each ADAPT mode
at VICIdial's default drop limit (3 %) and, with ``adapt_limits``, at lower ones — what an administrator whose
ADAPT broke the law would set (``adaptive_dropped_percentage``).
"""

from __future__ import annotations

import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kakehashi.agents import service as agents_service
from kakehashi.campaigns import attempts
from kakehashi.campaigns import service as campaigns
from kakehashi.campaigns.models import Campaign, Lead, LeadAttempt
from kakehashi.campaigns.schemas import CampaignCreate, LeadsIn
from kakehashi.dialer import Dialer, DialerListener
from kakehashi.dialer import attach as attach_dialer
from kakehashi.dialer.predictive import default_pacer
from kakehashi.dispositions import service as dispositions
from kakehashi.dispositions.schemas import DispositionIn
from kakehashi.kit import migrate
from kakehashi.kit.clock import BUSINESS_TZ
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.db import make_engine, make_session_factory, unit_of_work
from kakehashi.kit.timers import VirtualClock
from kakehashi.pacing.adapt import AdaptPacer
from kakehashi.pacing.types import Pacer
from kakehashi.routing import service as routing
from kakehashi.routing.controller import CallController
from kakehashi.routing.engine import AgentState
from kakehashi.routing.persist import DbDirectory
from kakehashi.telephony.drivers.sim.driver import AmdErrors, SimDriver
from kakehashi.telephony.port import Answered, Bridged, DriverEvent, Ended, Offered
from kakehashi.tenants import service as tenants

MODES = ("progressive", "adapt_average", "adapt_hard_limit", "adapt_tapered", "predictive")
#: A Monday, 09:00 in Japan: the first simulated day.
FIRST_DAY = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)
ABANDON = "株式会社かけはしです。改めてお電話いたします。お問い合わせは03-1234-5678まで。"
CODES = [
    {"code": "成約", "human": True, "contact": True, "success": True, "final": True},
    {"code": "お断り", "human": True, "contact": True, "refusal": True},
    {"code": "再架電", "human": True, "contact": True, "callback": True},
    {"code": "検討中", "human": True, "contact": True},
    {"code": "本人不在", "human": True},
]
CODE_WEIGHTS = [0.08, 0.25, 0.10, 0.32, 0.25]
RING_TIMEOUT_S = 25
AMD_ERRORS = AmdErrors(false_machine=0.012, missed_machine=0.10)


@dataclass(frozen=True)
class Population:
    """The called parties: a seeded model shared by every mode."""

    seed: int
    base_answer: float = 0.32

    @staticmethod
    def hour_factor(hour: int) -> float:
        """People answer less after lunch and most in the evening (Japan hours)."""
        if hour < 12:
            return 1.0
        if hour < 13:
            return 0.8
        if hour < 17:
            return 0.7
        return 1.4

    def call(self, number: str, attempt: int, at: datetime) -> tuple[str, float, float]:
        """(outcome, ring seconds, talk seconds) for the ``attempt``-th dial of ``number`` at ``at``."""
        rng = random.Random(f"{self.seed}:{number}:{attempt}")
        kind = random.Random(f"{self.seed}:{number}").random()
        hour = at.astimezone(BUSINESS_TZ).hour
        if kind < 0.03:
            return "invalid", 0.5, 0.0
        answer = self.base_answer * self.hour_factor(hour)
        ring = 3.0 + rng.gammavariate(2.0, 3.0)
        talk = rng.uniform(15, 40) if rng.random() < 0.3 else rng.lognormvariate(5.0, 0.5)
        draw = rng.random()
        if draw < answer and ring < RING_TIMEOUT_S:
            return "answer", ring, talk
        if kind < 0.15:  # a household with an answering machine: it picks up after ~4 rings
            return "answering_machine", 12.0 + rng.uniform(0, 6), 0.0
        if draw < answer + 0.06:
            return "busy", 1.0, 0.0
        return "no_answer", float(RING_TIMEOUT_S), 0.0


@dataclass
class Tally:
    """What the harness measures from the driver's events and the simulated agents."""

    talk_s: float = 0.0
    wrap_s: float = 0.0
    handled: int = 0
    false_machines: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # by Japanese day


class _PacingListener(DialerListener):
    """The dialer's listener without the agents' state history (a row per change: the figures are about pacing,
    and the campaign's own rows are all still written)."""

    def agent_state(
        self, tenant_id: int, agent: str, state: AgentState, reason: str | None, queue: str | None,
        call_ref: str | None, at: datetime,
    ) -> None:  # fmt: skip
        self.tell_dialer(tenant_id, agent, state)


class Floor:
    """One mode's run: its own database, simulator, controller, dialer and agents."""

    def __init__(self, mode: str, *, agents: int, leads: int, seed: int, target: float, work: Path) -> None:
        self.mode, self.seed = mode, seed
        engine = make_engine(f"sqlite:///{work / f'{mode}-{target}.db'}")
        migrate.upgrade(engine)
        self.factory: sessionmaker[Session] = make_session_factory(engine)
        self.names = [f"op{i:03d}" for i in range(agents)]
        self.actor, self.campaign_id = _setup(self.factory, mode, self.names, leads, target)
        self.clock = VirtualClock(FIRST_DAY)
        self.sim = SimDriver(self.clock, amd_errors=AMD_ERRORS, seed=seed)
        for name in self.names:
            self.sim.set_agent(name, answer_after=1.0)
        listener = _PacingListener(self.factory, self.sim.name)
        self.controller = CallController(self.sim, self.clock, DbDirectory(self.factory), listener).attach()
        self.dialer: Dialer = attach_dialer(
            self.controller, self.sim, self.factory, self.clock, listener, pacer_factory=_pacer_factory(mode, target)
        )
        self.population = Population(seed)
        self.dialer.called_party = self._called_party
        self.rng = random.Random(seed)
        self.tally = Tally()
        self._bridged: dict[str, tuple[str, float]] = {}
        self._tries: dict[str, int] = defaultdict(int)
        self._truth: dict[str, str] = {}  # number → what it really did on its last dial
        self._numbers: dict[str, str] = {}  # call ref → number
        self.sim.subscribe(self._event)

    def _called_party(self, number: str, at: datetime) -> None:
        self._tries[number] += 1
        outcome, ring, talk = self.population.call(number, self._tries[number], at)
        self._truth[number] = outcome
        self.sim.set_number(number, outcome, ring_seconds=ring, talk_s=talk or None)

    def _event(self, event: DriverEvent) -> None:
        now = event.at.timestamp()
        match event:
            case Offered(call_ref=ref, dnis=number):
                self._numbers[ref] = number
            case Answered(call_ref=ref, amd="machine"):
                if self._truth.get(self._numbers.get(ref, "")) == "answer":
                    self.tally.false_machines[_day(event.at)] += 1
            case Bridged(call_ref=ref, agent=agent):
                self._bridged[ref] = (agent, now)
            case Ended(call_ref=ref):
                # ``_numbers`` keeps the ref: the controller hangs up a detected machine inside the answer's event
                bridged = self._bridged.pop(ref, None)
                if bridged is not None:
                    agent, since = bridged
                    self.tally.talk_s += now - since
                    wrap = self.rng.uniform(10, 40)
                    self.clock.call_later(wrap, lambda: self._save(agent, ref, wrap))

    def _save(self, agent: str, ref: str, wrap: float) -> None:
        """The agent saves the call's result: the wrap-up ends with it."""
        actor = Actor(tenant_id=self.actor.tenant_id, username=agent, role=Role.OPERATOR, origin="bench")
        with unit_of_work(self.factory) as session:
            attempt = attempts.current(session, actor, agent)
            if attempt is not None and attempt.call_ref == ref and attempt.result == "answered":
                code = self.rng.choices(CODES, CODE_WEIGHTS)[0]
                attempts.confirm_opening(session, actor, attempt.id, agent, self.clock.now())
                later = self.clock.now() + timedelta(hours=3) if code.get("callback") else None
                attempts.finish(session, actor, attempt.id, agent, str(code["code"]), self.clock.now(),
                                driver=self.sim.name, callback_at=later, callback_personal=False)  # fmt: skip
        self.tally.wrap_s += wrap
        self.tally.handled += 1
        self.controller.wrap_up_finished(self.actor.tenant_id, ref)

    def run(self, *, days: int, hours: float, progress: Callable[[float], None] | None = None) -> None:
        tenant = self.actor.tenant_id
        for day in range(days):
            start = FIRST_DAY + timedelta(days=day)
            self.clock.advance(max((start - self.clock.now()).total_seconds(), 0))
            for name in self.names:
                self.controller.choose_state(tenant, name, AgentState.AVAILABLE)
                self.dialer.join(Actor(tenant_id=tenant, username=name, role=Role.OPERATOR), name, self.campaign_id)
            step = 600.0
            elapsed = 0.0
            while elapsed < hours * 3600:
                chunk = min(step, hours * 3600 - elapsed)
                self.clock.advance(chunk)
                elapsed += chunk
                if progress is not None:
                    progress(chunk)
            for name in self.names:
                self.dialer.leave(Actor(tenant_id=tenant, username=name, role=Role.OPERATOR), name)
            self.clock.advance(900)  # the last calls end and are written up
            self._numbers.clear()
            for name in self.names:
                if self.controller.engine(tenant).agent(name).state is AgentState.AVAILABLE:
                    self.controller.choose_state(tenant, name, AgentState.BREAK, "終業")

    def result(self, *, days: int, hours: float) -> dict[str, Any]:
        agent_hours = len(self.names) * hours * days
        with self.factory() as session:
            rows = session.execute(
                select(LeadAttempt.started_at, LeadAttempt.answered_at, LeadAttempt.result).where(
                    LeadAttempt.campaign_id == self.campaign_id
                )
            ).all()
            completed = session.scalar(
                select(_count()).where(Lead.campaign_id == self.campaign_id, Lead.status.in_(("done",)))
            )
        humans: dict[str, int] = defaultdict(int)
        abandoned: dict[str, int] = defaultdict(int)
        dials = 0
        for started_at, answered_at, result in rows:
            if result is None or result == "skipped":
                continue
            dials += 1
            if result in ("answered", "abandoned"):
                day = _day(answered_at or started_at)
                humans[day] += 1
                abandoned[day] += result == "abandoned"
        days_seen = sorted(humans)
        rate = {d: abandoned[d] / humans[d] for d in days_seen if humans[d]}
        ofcom = {d: (abandoned[d] + self.tally.false_machines[d]) / (humans[d] + self.tally.false_machines[d])
                 for d in days_seen if humans[d]}  # fmt: skip
        all_humans, all_abandoned = sum(humans.values()), sum(abandoned.values())
        false_machines = sum(self.tally.false_machines.values())
        idle_s = agent_hours * 3600 - self.tally.talk_s - self.tally.wrap_s
        return {
            "talk_min_per_agent_hour": round(self.tally.talk_s / 60 / agent_hours, 2),
            "occupancy": round((self.tally.talk_s + self.tally.wrap_s) / (agent_hours * 3600), 3),
            "abandon_rate_max_day": round(max(rate.values(), default=0.0), 4),
            "abandon_rate_30d": round(all_abandoned / all_humans, 4) if all_humans else 0.0,
            "abandon_rate_by_day": [round(rate[d], 4) for d in days_seen],
            "abandon_rate_ofcom_max_day": round(max(ofcom.values(), default=0.0), 4),
            "leads_completed": int(completed or 0),
            "mean_wait_s_between_calls": round(max(idle_s, 0) / self.tally.handled, 1) if self.tally.handled else None,
            "dials": dials,
            "people_reached": all_humans,
            "abandoned": all_abandoned,
            "false_machines": false_machines,
            "calls_handled": self.tally.handled,
        }


def _count() -> Any:
    from sqlalchemy import func

    return func.count()


def _day(at: datetime) -> str:
    return at.astimezone(BUSINESS_TZ).date().isoformat()


def _pacer_factory(mode: str, target: float) -> Callable[[Campaign], Pacer] | None:
    """ADAPT with ``target`` as its drop percentage limit (VICIdial's ``adaptive_dropped_percentage``); ours with
    ``target`` as the campaign's abandon target (``_setup``)."""
    if mode.startswith("adapt_"):
        return lambda _campaign: AdaptPacer(mode, drop_target=target)  # type: ignore[arg-type]
    return default_pacer


def _setup(factory: sessionmaker[Session], mode: str, names: list[str], leads: int, target: float) -> tuple[Actor, int]:
    with unit_of_work(factory) as session:
        tenant_id = tenants.get_or_create(session, "bench-dialer", "bench-dialer").id
        actor = Actor(tenant_id=tenant_id, username="bench", role=Role.ADMIN, origin="bench")
        for name in names:
            agents_service.create_agent(session, actor, name, name, {})
        queue = routing.create_queue(session, actor, "outbound", {"wrap_up_s": 120})
        routing.set_members(session, actor, queue.id, dict.fromkeys(names, 1))
        dispositions.replace_dispositions(session, actor, [DispositionIn(code=str(c["code"]), kind="contact")
                                                           for c in CODES])  # fmt: skip
        campaign = campaigns.create_campaign(session, actor, CampaignCreate.model_validate({
            "name": f"bench {mode}", "kind": "sales", "caller_id": "03-1234-5678",
            "dial_mode": "progressive" if mode == "progressive" else "predictive",
            "windows": [{"weekday": d, "start": "09:00", "end": "20:00"} for d in range(7)], "holidays_off": False,
            "queues": ["outbound"], "result_codes": CODES, "ring_timeout_s": RING_TIMEOUT_S,
            "retry_rules": {"delays": {"busy": 10, "no_answer": 60, "machine": 120}, "max_attempts": 6,
                            "max_per_day": 3},
            "predictive": {"abandon_target": target, "abandon_message": ABANDON},
            "amd": {"enabled": True, "action": "drop"},
        }))  # fmt: skip
        phones = [f"+8190{10_000_000 + n:08d}" if n < 89_000_000 else "" for n in range(leads)]
        for start in range(0, len(phones), 10_000):
            campaigns.add_leads(session, actor, campaign.id, LeadsIn(phones=phones[start : start + 10_000]))
        campaigns.set_status(session, actor, campaign.id, "running")
        return actor, campaign.id


def run_mode(
    mode: str, *, agents: int, hours: float, days: int, seed: int, target: float = 0.03, leads: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One mode's figures (its own database in a temporary directory)."""
    # In memory-backed /dev/shm when there is one (no fsync per commit: the figures are about pacing); mkdtemp
    # makes a private directory there.
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108
    with tempfile.TemporaryDirectory(prefix="kk-bench-dialer-", dir=shm) as work:
        floor = Floor(mode, agents=agents, leads=leads or int(agents * hours * days * 150), seed=seed,
                      target=target, work=Path(work))  # fmt: skip
        started = time.perf_counter()
        floor.run(days=days, hours=hours, progress=progress)
        figures = floor.result(days=days, hours=hours)
        figures["wall_s"] = round(time.perf_counter() - started, 1)
        return figures


def _runs(
    plan: list[tuple[str, float]], *, agents: int, hours: float, days: int, seed: int, jobs: int,
    progress: Callable[[float], None] | None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Run each (mode, target) of ``plan``; with ``jobs`` > 1 in that many processes (each run has its own
    database and clock; progress then moves by whole runs)."""
    kwargs: dict[str, Any] = {"agents": agents, "hours": hours, "days": days, "seed": seed}
    if jobs <= 1:
        return [run_mode(mode, target=target, progress=progress, **kwargs) for mode, target in plan]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_mode, mode, target=target, **kwargs) for mode, target in plan]
        results = []
        for future in futures:
            results.append(future.result())
            if progress is not None:
                progress(days * hours * 3600)
        return results


def run(
    *, agents: int = 50, hours: float = 8.0, days: int = 2, seed: int = 7, modes: tuple[str, ...] = MODES,
    sweep: tuple[float, ...] = (), adapt_limits: tuple[float, ...] = (),
    progress: Callable[[float], None] | None = None, jobs: int = 1,
) -> dict[str, Any]:  # fmt: skip
    """Every mode on the same population; the predictive gain over the best ADAPT run that kept every day within
    3 % — its default drop limit (3 %) or any of ``adapt_limits`` (what a VICIdial administrator whose ADAPT broke
    the law would lower it to); optionally the abandon-target sweep of the predictive mode."""
    adapts = [m for m in modes if m.startswith("adapt_")]
    tuned = [(m, limit) for limit in adapt_limits if limit != 0.03 for m in adapts]
    plan = [(mode, 0.03) for mode in modes] + [("predictive", target) for target in sweep] + tuned
    done = _runs(plan, agents=agents, hours=hours, days=days, seed=seed, jobs=jobs, progress=progress)
    results = dict(zip(modes, done[: len(modes)], strict=True))
    swept = done[len(modes) : len(modes) + len(sweep)]
    adapt_runs = [{"mode": m, "drop_limit": 0.03, **results[m]} for m in adapts]
    adapt_runs += [{"mode": m, "drop_limit": limit, **figures}
                   for (m, limit), figures in zip(tuned, done[len(modes) + len(sweep) :], strict=True)]  # fmt: skip
    within = [r for r in adapt_runs if r["abandon_rate_max_day"] <= 0.03]
    best = max(within, key=lambda r: r["talk_min_per_agent_hour"], default=None)
    ours = results.get("predictive")
    gain = None
    if ours is not None and best is not None and best["talk_min_per_agent_hour"] > 0:
        gain = round(ours["talk_min_per_agent_hour"] / best["talk_min_per_agent_hour"] - 1, 3)

    def gain_over(*others: str) -> float | None:
        talk = [results[m]["talk_min_per_agent_hour"] for m in others if m in results]
        if ours is None or not talk or max(talk) <= 0:
            return None
        return round(float(ours["talk_min_per_agent_hour"]) / float(max(talk)) - 1, 3)

    out: dict[str, Any] = {
        "agents": agents, "hours": hours, "days": days, "seed": seed, "modes": results,
        "predictive_gain_vs_adapt": gain,
        "adapt_baseline": None if best is None else {
            "mode": best["mode"], "drop_limit": best["drop_limit"],
            "talk_min_per_agent_hour": best["talk_min_per_agent_hour"],
            "abandon_rate_max_day": best["abandon_rate_max_day"]},
        # The same against every ADAPT mode, within 3 % or not, and against progressive (context when no ADAPT
        # run kept every day within 3 %: the figure above is then null).
        "predictive_gain_vs_any_adapt": gain_over("adapt_average", "adapt_hard_limit", "adapt_tapered"),
        "predictive_gain_vs_progressive": gain_over("progressive"),
        "target_met": bool(gain is not None and gain >= 0.15 and ours is not None
                           and ours["abandon_rate_max_day"] <= 0.03),
        "anchors_talk_min_per_agent_hour": {"one_at_a_time": 40, "predictive": 57},
    }  # fmt: skip
    keep = ("talk_min_per_agent_hour", "abandon_rate_max_day", "abandon_rate_30d", "occupancy", "abandoned",
            "people_reached")  # fmt: skip
    if tuned:
        out["adapt_tuned"] = [{"mode": r["mode"], "drop_limit": r["drop_limit"], **{k: v for k, v in r.items()
                                                                                   if k in keep}}
                              for r in adapt_runs if r["drop_limit"] != 0.03]  # fmt: skip
    if sweep:
        out["sweep"] = [{"abandon_target": t, **{k: v for k, v in figures.items() if k in keep}}
                        for t, figures in zip(sweep, swept, strict=True)]  # fmt: skip
    return out


def write_chart(result: dict[str, Any], path: Path) -> None:
    """The sweep as a PNG: talk minutes per agent-hour against the worst day's abandon rate, one point per
    abandon target, with the other modes and the 40 / 57 anchors for reference."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    sweep = result.get("sweep") or []
    xs = [100 * point["abandon_rate_max_day"] for point in sweep]
    ys = [point["talk_min_per_agent_hour"] for point in sweep]
    ax.plot(xs, ys, marker="o", color="#1f6feb", label="predictive (target swept)")
    for point, x, y in zip(sweep, xs, ys, strict=True):
        ax.annotate(f"{100 * point['abandon_target']:g} %", (x, y), textcoords="offset points", xytext=(6, -12))
    markers = {"progressive": "s", "adapt_average": "^", "adapt_hard_limit": "v", "adapt_tapered": "D"}
    # The region around the 3 % line; a mode far past it (TAPERED: a quarter to half of its people) is drawn at
    # the right edge with its rate written beside it.
    edge = max([6.0, *(1.3 * x for x in xs)])
    for mode, marker in markers.items():
        figures = result["modes"].get(mode)
        if figures is not None:
            rate, talk = 100 * figures["abandon_rate_max_day"], figures["talk_min_per_agent_hour"]
            ax.scatter([min(rate, edge)], [talk], marker=marker, label=mode)
            if rate > edge:
                ax.annotate(f"{rate:.0f} % →", (edge, talk), textcoords="offset points", xytext=(-40, 6), fontsize=8)
    ax.set_xlim(-0.2, edge + 0.3)
    for anchor, label in ((40, "one at a time (Samuelson)"), (57, "predictive (Samuelson)")):
        ax.axhline(anchor, color="#999", linestyle=":", linewidth=1)
        ax.text(ax.get_xlim()[0], anchor + 0.3, label, color="#666", fontsize=8)
    ax.axvline(3, color="#d1242f", linestyle="--", linewidth=1, label="3 % (Ofcom, FCC)")
    ax.set_xlabel("abandon rate, worst simulated day (%)")
    ax.set_ylabel("talk minutes per agent-hour")
    ax.set_title(f"{result['agents']} agents, {result['days']} × {result['hours']:g} h, seed {result['seed']}")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
