"""Several agents reserving at once: no lead is handed out twice (ADR 0022) — ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, the single writer on SQLite.

Real transactions in a database of the test's own (made by the migrations, dropped after), one thread per agent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from conftest import PG_URL
from kakehashi.campaigns import service
from kakehashi.campaigns.schemas import CampaignCreate, LeadsIn, OutcomeIn, Window
from kakehashi.kit import migrate
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.db import make_engine, make_session_factory, unit_of_work
from kakehashi.kit.dbadmin import recreate_database
from kakehashi.tenants import service as tenants

MONDAY_10 = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
LEADS, AGENTS = 60, 6


@pytest.fixture
def own_db(engine: Engine, tmp_path: Path) -> Iterator[tuple[sessionmaker[Session], Actor, int]]:
    """PostgreSQL: ``SKIP LOCKED``; SQLite: its single writer (kit/db.py: every transaction BEGIN IMMEDIATE)."""
    postgres = engine.dialect.name == "postgresql"
    url = f"{PG_URL}_conc" if postgres else f"sqlite:///{tmp_path / 'conc.db'}"
    if postgres:
        recreate_database(url)
    own = make_engine(url)
    migrate.upgrade(own)
    factory = make_session_factory(own)
    code = "concurrency"
    with unit_of_work(factory) as s:
        tenant_id = tenants.get_or_create(s, code, code).id
        actor = Actor(tenant_id=tenant_id, username="setup")
        windows = [Window(weekday=d, start="09:00", end="20:00") for d in range(5)]
        data = CampaignCreate(name="並行", kind="sales", caller_id="03-1234-5678", windows=windows)
        campaign = service.create_campaign(s, actor, data)
        phones = [f"090-5{n:03d}-0000" for n in range(LEADS)]
        service.add_leads(s, actor, campaign.id, LeadsIn(phones=phones))
        service.set_status(s, actor, campaign.id, "running")
        campaign_id = campaign.id
    try:
        yield factory, actor, campaign_id
    finally:
        own.dispose()
        if postgres:
            recreate_database(url, create=False)


def test_given_agents_reserving_concurrently_then_no_lead_is_handed_out_twice(
    own_db: tuple[sessionmaker[Session], Actor, int],
) -> None:
    factory, setup, campaign_id = own_db
    handed: list[tuple[str, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(AGENTS)

    def work(name: str) -> None:
        agent = Actor(tenant_id=setup.tenant_id, username=name, role=Role.OPERATOR)
        start.wait()
        try:
            while True:
                with unit_of_work(factory) as s:
                    lead = service.reserve_next(s, agent, campaign_id, name, MONDAY_10).lead
                    if lead is None:
                        return
                    with lock:
                        handed.append((name, lead.id))
                with unit_of_work(factory) as s:  # a final result: the lead is done, never handed out again
                    service.record_outcome(s, agent, campaign_id, lead.id, OutcomeIn(result="answered"), MONDAY_10)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"agent-{i}",)) for i in range(AGENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    ids = [lead_id for _, lead_id in handed]
    assert len(ids) == LEADS and len(set(ids)) == LEADS
    assert len({name for name, _ in handed}) > 1  # the agents really did work side by side
