"""A campaign's results page (/campaigns/{id}/results) in chromium: the tiles and the four Chart.js charts drawn
from seeded attempts, the table by any grouping, the window, the downloads — as a supervisor and as a client
viewer (operators masked OP-01…). The seeded set is the one of tests/test_campaign_results.py, whose figures are
worked out by hand there.

``KAKEHASHI_SKIP_BROWSER=1`` skips the module, as for tests/test_browser.py.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from kakehashi.app import create_app
from kakehashi.auth import service as auth
from kakehashi.campaigns.models import Segment
from kakehashi.kit import migrate
from kakehashi.kit.config import Settings
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.db import make_engine, make_session_factory, unit_of_work
from kakehashi.tenants import repository as tenants
from test_browser import SCREENSHOTS, Watched, shot
from test_campaign_results import attempt, jst, make_campaign, make_lead, make_list
from web_server import serving

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(os.environ.get("KAKEHASHI_SKIP_BROWSER") == "1", reason="KAKEHASHI_SKIP_BROWSER=1"),
]

SUPERVISOR, VIEWER, PASSWORD = "sv-results", "client-results", "results-test-passphrase"
WAIT_MS = 20_000
MARKUP = '<img src=x onerror="alert(1)">秋リスト'  # a list name typed with markup in it: shown as text


@dataclass
class Site:
    url: str
    campaign_id: int


def seed(session: Any, tenant_id: int) -> int:
    """The hand-built set of tests/test_campaign_results.py: 7 dials, 3 connects, 2 contacts, 1 success, 1 refusal,
    1 abandoned of 4 answered-or-abandoned, 6 leads of which 4 remain, goal 10."""
    actor = Actor(tenant_id=tenant_id, username="seed")
    campaign = make_campaign(session, actor)
    segment = Segment(tenant_id=tenant_id, name="優良顧客", criteria={}, created_by="seed")
    session.add(segment)
    session.flush()
    spring, autumn = make_list(session, campaign, "春リスト", segment), make_list(session, campaign, MARKUP)
    a, b, c, d = (make_lead(session, campaign, s, spring) for s in ("done", "in_progress", "new", "callback"))
    e, f = (make_lead(session, campaign, s, autumn) for s in ("unworkable", "new"))
    flags = {"human": True, "contact": True}
    attempt(session, a, jst(1, 8, 30), "answered", disposition="SALE", talk=120, wrap=30, success=True, **flags)
    attempt(session, b, jst(1, 8, 45), "no_answer")
    attempt(session, b, jst(1, 9, 10), "answered", "suzuki", disposition="NG", talk=60, wrap=20, refusal=True, **flags)
    attempt(session, c, jst(1, 9, 20), "skipped", "suzuki")
    attempt(session, d, jst(1, 9, 30), "abandoned", None)
    attempt(session, e, jst(2, 10, 0), "invalid")
    attempt(session, f, jst(2, 10, 5), "answered", talk=30)
    attempt(session, f, jst(2, 10, 10), "machine")
    return campaign.id


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("results")
    settings = Settings(database_url=f"sqlite:///{tmp}/t.db", data_dir=tmp, default_tenant="center")
    engine = make_engine(settings.effective_database_url)
    migrate.upgrade(engine)
    with unit_of_work(make_session_factory(engine)) as session:
        home = tenants.get_or_create(session, settings.default_tenant, "コールセンター")
        for username, role in ((SUPERVISOR, Role.SUPERVISOR), (VIEWER, Role.CLIENT_VIEWER)):
            auth.create_user(session, username=username, password=PASSWORD, role=role, tenant_id=home.id)
        campaign_id = seed(session, home.id)
    engine.dispose()
    with serving(create_app(settings)) as url:
        yield Site(url, campaign_id)


def open_page(browser: Browser, site: Site, username: str, lang: str = "") -> Watched:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    context = browser.new_context(
        base_url=site.url, locale="ja-JP", timezone_id="Asia/Tokyo", viewport={"width": 1440, "height": 1000}
    )
    context.set_default_timeout(WAIT_MS)
    watched = Watched(context.new_page())
    page = watched.page
    path = f"/campaigns/{site.campaign_id}/results"
    page.goto(path + (f"?lang={lang}" if lang else ""))
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.locator("#username").fill(username)
    page.locator("#password").fill(PASSWORD)
    page.locator("#password").press("Enter")
    expect(page.locator("main[data-loaded=true]")).to_be_attached()
    return watched


@pytest.fixture
def supervisor(browser: Browser, site: Site) -> Iterator[Watched]:
    watched = open_page(browser, site, SUPERVISOR)
    yield watched
    watched.page.context.close()
    assert watched.dialogs == [] and watched.errors == [], watched.errors


@pytest.fixture
def viewer(browser: Browser, site: Site) -> Iterator[Watched]:
    watched = open_page(browser, site, VIEWER)
    yield watched
    watched.page.context.close()
    assert watched.dialogs == [] and watched.errors == [], watched.errors


def chart(page: Page, by: str) -> dict[str, Any]:
    """What Chart.js drew on a canvas: its labels and each dataset's data."""
    page.wait_for_function(f"() => window.Chart && Chart.getChart(document.getElementById('chart-{by}'))")
    found: dict[str, Any] = page.evaluate(
        """(by) => { const c = Chart.getChart(document.getElementById(`chart-${by}`));
            return { labels: c.data.labels, data: c.data.datasets.map((d) => d.data) }; }""",
        by,
    )
    return found


def test_a_supervisor_sees_the_tiles_and_the_charts(supervisor: Watched) -> None:
    from playwright.sync_api import expect

    page = supervisor.page
    expect(page.locator("#kpi-dials")).to_have_text("7")
    expect(page.locator("#kpi-connects")).to_have_text("3")
    expect(page.locator("#kpi-contact_rate")).to_have_text("28.6%")  # 2 / 7
    expect(page.locator("#kpi-success_rate")).to_have_text("50.0%")  # 1 / 2
    expect(page.locator("#kpi-refusals")).to_have_text("1")
    expect(page.locator("#kpi-abandon_rate")).to_have_text("25.0%")  # 1 / (1 + 3)
    expect(page.locator("#kpi-remaining")).to_have_text("4")
    expect(page.locator("#kpi-remaining-sub")).to_have_text("全 6 件中")
    expect(page.locator("#kpi-forecast")).to_have_text("データ不足")  # two settled leads: too few to say
    expect(page.locator("#kpi-goal")).to_have_text("10.0%")
    expect(page.locator("#kpi-goal-sub")).to_have_text("成約 1 / 目標 10")
    expect(page.locator("#masked-note")).to_be_hidden()
    # Japan hours across midnight UTC: 08:30 JST is 23:30 UTC the day before.
    assert chart(page, "hour") == {
        "labels": ["8:00", "9:00", "10:00"],
        "data": [[2, 2, 3], [1, 1, 0], [1, 0, 0], [50, 50, 0]],
    }
    assert chart(page, "day")["labels"] == ["2026-12-01", "2026-12-02"]
    assert chart(page, "day")["data"][0] == [4, 3]
    assert chart(page, "agent")["labels"] == ["sato", "suzuki", "（担当なし）"]
    assert chart(page, "list")["labels"] == [MARKUP, "春リスト"]  # by name; the markup is a label, not HTML
    # The table, by list (the default), then by operator.
    rows = page.locator("#rows tr")
    expect(rows).to_have_count(2)
    expect(rows.first.locator("th")).to_have_text(MARKUP)
    expect(page.locator("#total-row th")).to_have_text("合計")
    page.locator("#group-by").select_option("agent")
    expect(rows.first.locator("th")).to_have_text("sato")
    expect(page.locator("#download-csv")).to_have_attribute("href", re.compile(r"results\.csv\?by=agent$"))
    if SCREENSHOTS:
        shot(page, "campaign-results.png")


def test_the_window_narrows_the_figures(supervisor: Watched) -> None:
    from playwright.sync_api import expect

    page = supervisor.page
    page.locator("#since").fill("2026-12-02")
    page.locator("#until").fill("2026-12-02")
    page.locator("#window button[type=submit]").click()
    expect(page.locator("#kpi-dials")).to_have_text("3")
    expect(page.locator("#kpi-remaining")).to_have_text("4")  # now, whatever the window
    expect(page.locator("#download-xlsx")).to_have_attribute(
        "href", re.compile(r"results\.xlsx\?since=2026-12-02&until=2026-12-03&by=list$")
    )
    assert chart(page, "hour")["labels"] == ["10:00"]


def test_the_csv_download_answers(supervisor: Watched) -> None:
    page = supervisor.page
    href = page.locator("#download-csv").get_attribute("href")
    assert href is not None
    answer = page.request.get(href)
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.text().splitlines()[-1].startswith("total,")


def test_a_client_viewer_sees_the_results_with_operators_masked(viewer: Watched) -> None:
    from playwright.sync_api import expect

    page = viewer.page
    expect(page.locator("#kpi-dials")).to_have_text("7")
    expect(page.locator("#kpi-contact_rate")).to_have_text("28.6%")
    expect(page.locator("#masked-note")).to_be_visible()
    assert chart(page, "agent")["labels"] == ["OP-01", "OP-02", "（担当なし）"]
    page.locator("#group-by").select_option("agent")
    expect(page.locator("#rows tr").first.locator("th")).to_have_text("OP-01")
    content = page.content()
    assert "sato" not in content and "suzuki" not in content


def test_the_page_in_english(browser: Browser, site: Site) -> None:
    from playwright.sync_api import expect

    watched = open_page(browser, site, SUPERVISOR, lang="en")
    page = watched.page
    try:
        expect(page.locator('[data-kpi="contact_rate"] .kpi-label')).to_have_text("Contact rate")
        expect(page.locator("#kpi-forecast")).to_have_text("Too little data")
        expect(page.locator("#total-row th")).to_have_text("Total")
    finally:
        page.context.close()
    assert watched.dialogs == [] and watched.errors == [], watched.errors
