"""``kakehashi bench campaign`` at a small size: the load, its floor and the reservation loop (PostgreSQL only)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kakehashi.bench import campaign
from kakehashi.kit.dbadmin import recreate_database

BACKENDS = [b.strip() for b in os.environ.get("KAKEHASHI_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]


@pytest.fixture
def pg_url() -> Iterator[str]:
    if "postgresql" not in BACKENDS:
        pytest.skip("the benchmark runs on PostgreSQL")
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/kakehashi_test_bench_campaign_{os.getpid()}"
    yield url  # the benchmark creates it
    recreate_database(url, create=False)


def test_a_small_load_and_reservation_loop_report_their_figures(pg_url: str) -> None:
    result = campaign.run(leads=400, agents=5, reservations=60, url=pg_url)
    assert result["rows"] == 400 and result["bad_rows"] == 0
    # 1 % of the numbers were put on the DNC list and 0.5 % refused beforehand: scrubbed, never loaded.
    scrubbed = sum(result["scrubbed"].values())
    assert scrubbed > 0 and set(result["scrubbed"]) <= {"dnc", "refused"}
    assert result["leads_loaded"] + scrubbed == 400
    assert result["stored"]["leads"] == result["leads_loaded"] and result["stored"]["customers"] == 400
    assert result["load_rows_per_s"] > 0 and result["floor_seconds"] > 0 and result["ratio_floor"] > 0
    assert result["reservations"] == 60 and result["each_lead_to_one_agent"] is True
    assert 0 < result["reserve_p50_ms"] <= result["reserve_p99_ms"] and result["reservations_per_s"] > 0


def test_on_sqlite_it_says_it_runs_on_postgresql_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kakehashi.cli import app

    with pytest.raises(campaign.PostgresOnly, match="PostgreSQL only"):
        campaign.run(leads=10, url=f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("KAKEHASHI_BENCH_PG_URL", f"sqlite:///{tmp_path / 'x.db'}")
    out = CliRunner().invoke(app, ["bench", "campaign", "--leads", "10", "--json"])
    assert out.exit_code == 2 and "PostgreSQL only" in out.output
    assert not (tmp_path / "x.db").exists()  # nothing was created


def test_the_cli_prints_json(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from kakehashi.cli import app

    monkeypatch.setenv("KAKEHASHI_BENCH_PG_URL", pg_url)
    args = ["bench", "campaign", "--leads", "150", "--agents", "3", "--reservations", "20", "--talk-ms", "2", "--json"]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["rows"] == 150 and result["reservations"] == 20 and result["agents"] == 3
    assert result["talk_ms"] == 2 and result["each_lead_to_one_agent"] is True
