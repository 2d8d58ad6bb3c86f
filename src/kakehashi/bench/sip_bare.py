"""The bare path of ``kakehashi bench sip``: the same calls with no CTI at all, for comparison.

sipp customer ↔ Kamailio ↔ rtpengine ↔ sipp agent: the customers dial ``bench-agent`` instead of the center's
number, and Kamailio hands an INVITE for a registered user straight to it ("agent to agent" in
``kamailio.cfg.tmpl``), with rtpengine's offer and answer as for any call. The same scenario, tone (the agent
echoes it), concurrency, call length and duration as the CTI's phase, so the media load matches; on a fresh
stack of its own, started once the CTI's phase has ended, so the two never overlap. It runs second so that the
CTI's figures are measured exactly as before (the same start, a machine no busier), comparable with earlier
runs and with ``--no-bare``.

Reported under ``bare``: ``calls``, ``completed`` (sipp got through its scenario), ``failed``,
``answer_p50_ms``/``answer_p99_ms``, concurrency (sipp's open calls), ``cpu_percent`` (Kamailio + rtpengine,
% of one core over the steady part; ``cpu_by``, sipp apart) and memory as for the CTI's phase. ``compare``
puts ``bare_cpu_percent``, ``cpu_ratio_vs_bare`` and ``bare_rss_mb_per_call`` next to the CTI's figures.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kakehashi.bench.sip import (
    AGENT,
    Ports,
    Window,
    group_members,
    kamailio_children,
    percentile,
    pss_mb,
    rtp_ports,
    sipp_rtts,
    sipp_stats,
    start_agent,
    start_customers,
    stop_sipp,
    watch,
)
from kakehashi.telephony.drivers.sip.lab import SipStack


def run(work: Path, scenario: Path, concurrent: int, seconds: float, call_s: float) -> dict[str, Any]:
    """``concurrent`` calls for ``seconds`` (each ``call_s`` long) over the bare path; ``scenario`` is the CTI
    phase's customer scenario (``agent.xml`` next to it). JSON-ready figures."""
    work.mkdir(parents=True, exist_ok=True)
    rate = concurrent / call_s
    total = max(1, round(rate * seconds))
    ports = Ports()
    try:
        # cti_workers=1: the dispatcher needs a set; no call goes there.
        with SipStack(work / "lab", rtp_port_count=rtp_ports(concurrent, "bare"), cti_workers=1,
                      kamailio_children=kamailio_children(concurrent)) as stack:  # fmt: skip
            running = [start_agent(work, stack, ports, scenario.parent / "agent.xml")]
            try:
                groups = {"kamailio+rtpengine": stack.process_groups, "sipp": lambda: [p.pid for p in running]}

                def memory_pids() -> list[int]:
                    return group_members(stack.process_groups())

                base_mb = pss_mb(memory_pids())  # before the first call
                customers = start_customers(work, scenario, AGENT, stack.sip_port, rate, concurrent, total,
                                            seconds, call_s, ports)  # fmt: skip
                running.append(customers)
                window = watch(customers, groups, _open_calls(work / "customers.csv"), memory_pids, base_mb,
                               seconds, call_s)  # fmt: skip
            finally:
                stop_sipp(running)
    finally:
        ports.release()
    return _report(work, total, window)


def _open_calls(stats: Path) -> Callable[[], int]:
    """Live calls on the bare path: sipp's open calls (its statistics file, written every second)."""
    return lambda: sipp_stats(stats).get("CurrentCall", 0)


def _report(work: Path, total: int, window: Window) -> dict[str, Any]:
    stats = sipp_stats(work / "customers.csv")
    calls = stats.get("TotalCallCreated", total)
    completed = stats.get("SuccessfulCall(C)", 0)
    answer = sorted(sipp_rtts(work))
    return {
        "calls": calls,
        "completed": completed,
        "failed": calls - completed,
        "answer_p50_ms": percentile(answer, 0.5),
        "answer_p99_ms": percentile(answer, 0.99),
        **window.figures(),
    }


def compare(cti: dict[str, Any], bare: dict[str, Any]) -> dict[str, Any]:
    """The bare path's figures next to the CTI's: ``cpu_ratio_vs_bare`` = the CTI's CPU / the bare path's."""
    ratio = round(cti["cpu_percent"] / bare["cpu_percent"], 2) if bare["cpu_percent"] > 0 else None
    return {
        "bare_cpu_percent": bare["cpu_percent"],
        "cpu_ratio_vs_bare": ratio,
        "bare_rss_mb_per_call": bare["rss_mb_per_call"],
        "bare": bare,
    }
