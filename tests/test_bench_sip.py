"""``kakehashi bench sip`` at a small size: real calls from sipp through Kamailio to a pool of media workers
(answered, recorded, joined to a sipp agent), every one completed and recorded, the JSON complete; then the
same calls over the bare path (no CTI), measured for comparison."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from kakehashi.cli import app

pytestmark = pytest.mark.sip


def test_bench_sip_small_run_completes_every_call_and_records_it_then_measures_the_bare_path() -> None:
    result = CliRunner().invoke(
        app,
        ["bench", "sip", "--engine", "pjsip", "--concurrent", "4", "--seconds", "5", "--call-seconds", "2", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    for key in ("setup_p50_ms", "setup_p99_ms", "completed", "failed", "cpu_percent", "calls", "recordings_ok"):
        assert key in report, key
    assert report["calls"] == 10  # 4 calls up at once, each 2 s long, for 5 s: 2 a second
    assert report["completed"] == report["calls"] and report["failed"] == 0, report
    assert report["recordings_ok"] == report["calls"], report  # each call's WAV holds its audio
    assert report["recordings_two_sided"] is None and report["recordings_lag_s"] is None, report  # mono, in-call
    assert report["workers"] == 3 and report["peak_concurrent"] >= 3, report  # two calls a worker, and spares
    assert 0 < report["setup_p50_ms"] <= report["setup_p99_ms"] < 5000
    assert report["cpu_percent"] > 0
    assert report["rss_mb_before"] > 0 and report["rss_mb_total"] > 0, report  # PSS of stack, workers, driver
    assert isinstance(report["rss_mb_per_call"], float), report
    # The bare path: the same calls, sipp ↔ Kamailio ↔ rtpengine ↔ sipp, after the CTI's phase.
    bare = report["bare"]
    assert bare["calls"] == report["calls"] and bare["completed"] == bare["calls"] and bare["failed"] == 0, bare
    assert set(bare["cpu_by"]) == {"kamailio+rtpengine", "sipp"}, bare
    assert report["bare_cpu_percent"] == bare["cpu_percent"] > 0, report
    assert report["cpu_ratio_vs_bare"] == round(report["cpu_percent"] / report["bare_cpu_percent"], 2) > 0, report
    assert isinstance(report["bare_rss_mb_per_call"], float) and bare["rss_mb_total"] > 0, report


def test_an_agent_who_answers_before_the_callers_ack_is_joined_to_the_caller() -> None:
    """A busy machine or a slow far end: the caller's ACK of our answer comes after the agent's phone answered.
    The media worker answered the caller a second time (PJSIP refused: PJ_EINVALIDOP) and never joined them."""
    argv = ["bench", "sip", "--engine", "pjsip", "--concurrent", "2", "--seconds", "3", "--call-seconds", "2",
            "--ack-delay-ms", "300", "--no-bare", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["ack_delay_ms"] == 300
    assert "bare" not in report and "cpu_ratio_vs_bare" not in report  # --no-bare: the CTI's path only
    assert report["calls"] >= 2 and report["completed"] == report["calls"] and report["failed"] == 0, report


def test_on_rtpengines_media_plane_each_recording_holds_both_sides_on_its_own_channel() -> None:
    """The media plane (``--engine rtpengine``): one signalling process, every call recorded as a two-channel WAV,
    the customer's tone on the left and the agent's echo of it on the right; each caller hears a greeting and keys
    "1" (RFC 4733), which rings the agent."""
    argv = ["bench", "sip", "--engine", "rtpengine", "--concurrent", "4", "--seconds", "3", "--call-seconds", "3",
            "--prompt-s", "0.5", "--dtmf", "--no-bare", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["engine"] == "rtpengine" and report["workers"] == 1 and report["prompt_s"] == 0.5, report
    assert report["dtmf"] and report["keys_heard"] == report["calls"], report  # each call's key put it through
    assert report["calls"] >= 4 and report["completed"] == report["calls"] and report["failed"] == 0, report
    assert report["recordings_ok"] == report["recordings_two_sided"] == report["calls"], report
    assert 0 <= report["recordings_lag_s"] < 10, report  # the WAVs are made after each call
