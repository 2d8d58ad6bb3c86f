"""The target extraction page (/segments) in chromium: a supervisor builds a segment and watches the live count
follow the edits (with the scrub reasons), a bad range is refused beside its field in Japanese, the segment is
saved with a weekly schedule, added to a campaign, and the report lists who was left out and why. The server is a
real uvicorn on SQLite (tests/web_server.py); the page's script is segments.js on the web kit (static/lib.js)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import httpx
import pytest

from kakehashi.app import create_app
from kakehashi.auth import service as auth
from kakehashi.customers import service as customers
from kakehashi.customers.schemas import CustomerCreate, PhoneIn
from kakehashi.kit import migrate
from kakehashi.kit.config import Settings
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.db import make_engine, make_session_factory, unit_of_work
from kakehashi.tenants import repository as tenants
from test_browser import WAIT_MS, Watched
from web_server import serving

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(os.environ.get("KAKEHASHI_SKIP_BROWSER") == "1", reason="KAKEHASHI_SKIP_BROWSER=1"),
]

ADMIN, SUPERVISOR, PASSWORD = "seg-admin", "seg-supervisor", "segments-page-passphrase"


@dataclass
class Center:
    url: str
    api: httpx.Client  # the admin's bearer token
    campaign_id: int


@pytest.fixture(scope="module")
def center(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Center]:
    tmp = tmp_path_factory.mktemp("segments")
    settings = Settings(database_url=f"sqlite:///{tmp}/t.db", data_dir=tmp)
    engine = make_engine(settings.effective_database_url)
    migrate.upgrade(engine)
    with unit_of_work(make_session_factory(engine)) as session:
        home = tenants.get_or_create(session, settings.default_tenant, "コールセンター")
        for username, role in ((ADMIN, Role.ADMIN), (SUPERVISOR, Role.SUPERVISOR)):
            auth.create_user(session, username=username, password=PASSWORD, role=role, tenant_id=home.id)
        system = Actor(tenant_id=home.id)
        people = [
            ("山田 花子", "female", "東京都", "090-1111-0001"),
            ("鈴木 うめ", "female", "東京都", "090-1111-0002"),
            ("佐藤 太郎", "male", "東京都", "090-1111-0003"),
            ("田中 次郎", "male", "大阪府", "090-1111-0004"),
        ]
        made = [
            customers.create_customer(
                session,
                system,
                CustomerCreate(
                    name=name, gender=gender, prefecture=pref, birthday=date(1980, 1, 1), phones=[PhoneIn(number=phone)]
                ),
            )
            for name, gender, pref, phone in people
        ]
        customers.mark_do_not_contact(session, system, made[1].id, "本人の申し出")  # うめ: APPI suspension
    engine.dispose()
    with serving(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as api:
        token = api.post("/api/v1/auth/token", json={"username": ADMIN, "password": PASSWORD}).json()["token"]
        api.headers["Authorization"] = f"Bearer {token}"
        body = {"name": "秋の見直し", "kind": "sales", "caller_id": "03-1234-5678"}
        created = api.post("/api/v1/campaigns", json=body)
        assert created.status_code == 201, created.text
        yield Center(url, api, created.json()["id"])


@pytest.fixture
def supervisor(browser: Browser, center: Center) -> Iterator[Watched]:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    context = browser.new_context(base_url=center.url, locale="ja-JP", timezone_id="Asia/Tokyo",
                                  viewport={"width": 1440, "height": 1000})  # fmt: skip
    context.set_default_timeout(WAIT_MS)
    watched = Watched(context.new_page())
    page = watched.page
    page.goto("/segments")
    page.locator("#username").fill(SUPERVISOR)
    page.locator("#password").fill(PASSWORD)
    page.locator("#password").press("Enter")
    expect(page).to_have_url(re.compile(r"/segments$"))
    yield watched
    context.close()
    assert watched.dialogs == [] and watched.errors == [], watched.errors


def test_a_supervisor_builds_a_segment_with_a_live_count_and_adds_it_to_a_campaign(
    supervisor: Watched, center: Center
) -> None:
    from playwright.sync_api import expect

    page = supervisor.page
    expect(page.locator("h1")).to_have_text("ターゲット抽出")
    expect(page.locator('nav.pages a[href="/segments"]')).to_be_visible()
    # every customer at first, one of them scrubbed (do-not-contact)
    expect(page.locator("#count-matching")).to_have_text("4")
    expect(page.locator("#count-callable")).to_have_text("3")
    expect(page.locator('#count-reasons li[data-reason="do_not_contact"]')).to_have_text("利用停止（連絡不可）: 1")
    # the count follows the edits
    page.get_by_label("女性").check()
    expect(page.locator("#count-matching")).to_have_text("2")
    expect(page.locator("#count-callable")).to_have_text("1")
    page.get_by_label("女性").uncheck()
    page.locator("#f-prefectures summary").click()
    page.get_by_label("東京都").check()
    expect(page.locator("#count-matching")).to_have_text("3")
    # a range upside down: refused beside its field, in Japanese
    page.locator("#age-min").fill("60")
    page.locator("#age-max").fill("30")
    expect(page.locator("#f-age .field-error")).to_have_text("下限は上限以下にしてください")
    page.locator("#age-min").fill("")
    page.locator("#age-max").fill("")
    expect(page.locator("#f-age .field-error")).to_have_count(0)
    expect(page.locator("#count-matching")).to_have_text("3")
    # saved with its campaign and a Monday 09:00 schedule
    page.locator("#seg-name").fill("東京の顧客")
    page.locator("#seg-campaign").select_option(str(center.campaign_id))
    page.get_by_label("月", exact=True).check()
    page.locator("#save").click()
    expect(page.locator("#status")).to_have_text("「東京の顧客」を保存しました")
    expect(page.locator("#segments li")).to_have_count(1)
    expect(page.locator("#segments li")).to_contain_text("毎週 月 09:00")
    expect(page.locator("#next-run")).to_contain_text("次回")
    # added to the campaign: the report
    page.locator("#run-campaign").select_option(str(center.campaign_id))
    page.locator("#run").click()
    expect(page.locator("#report")).to_be_visible()
    expect(page.locator("#report-added")).to_have_text("2")
    expect(page.locator("#report-skipped")).to_have_text("0")
    expect(page.locator("#report-scrubbed")).to_have_text("1")
    expect(page.locator('#report-table tbody tr[data-reason="do_not_contact"] td').nth(2)).to_have_text(
        "利用停止（連絡不可）"
    )
    leads = center.api.get(f"/api/v1/campaigns/{center.campaign_id}/leads").json()
    assert sorted(lead["phone"] for lead in leads) == ["+819011110001", "+819011110003"]
    # a second run adds nobody: both are in the campaign already
    page.locator("#run").click()
    expect(page.locator("#report-skipped")).to_have_text("2")
    expect(page.locator("#report-added")).to_have_text("0")


def test_the_page_speaks_english_and_refuses_operators(supervisor: Watched, center: Center) -> None:
    from playwright.sync_api import expect

    page = supervisor.page
    page.goto("/segments?lang=en")
    expect(page.locator("h1")).to_have_text("Target extraction")
    expect(page.locator("#count-matching")).not_to_have_text("–")
    page.get_by_label("Female").check()
    expect(page.locator("#count-matching")).to_have_text("2")
    assert httpx.get(f"{center.url}/segments", follow_redirects=False).status_code in (302, 303, 401)
