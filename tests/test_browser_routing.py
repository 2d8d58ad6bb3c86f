"""The inbound routing page (/routing) in chromium: its script (routing.js on the web kit) keeps the queues live from
the event stream (static/events.js) and changes an agent's state through the API client (static/lib.js)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from test_browser import Watched
from test_browser_wallboard import PASSWORD, SUPERVISOR, WAIT_MS, Floor, serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(os.environ.get("KAKEHASHI_SKIP_BROWSER") == "1", reason="KAKEHASHI_SKIP_BROWSER=1"),
]


@pytest.fixture(scope="module")
def floor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Floor]:
    with serve(tmp_path_factory.mktemp("routing")) as own:
        yield own


@pytest.fixture
def routing(browser: Browser, floor: Floor) -> Iterator[Watched]:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    context = browser.new_context(base_url=floor.url, locale="ja-JP", timezone_id="Asia/Tokyo")
    context.set_default_timeout(WAIT_MS)
    watched = Watched(context.new_page())
    page = watched.page
    page.goto("/routing")
    expect(page).to_have_url(re.compile(r"/login\?next=/routing"))
    page.locator("#username").fill(SUPERVISOR)
    page.locator("#password").fill(PASSWORD)
    page.locator("#password").press("Enter")
    expect(page.locator("#live")).to_be_visible()
    yield watched
    context.close()
    assert watched.dialogs == [] and watched.errors == [], watched.errors


def test_the_queues_follow_the_event_stream(floor: Floor, routing: Watched) -> None:
    from playwright.sync_api import expect

    _, dnis = floor.queue("rt-live", "ルーティング試験")
    page = routing.page
    page.reload()
    waiting = page.locator('tr[data-queue="rt-live"] .waiting')
    expect(waiting).to_have_text("0")
    ref = floor.dial(dnis)  # nobody answers this queue: the caller waits
    expect(waiting).to_have_text("1")  # the page swapped in /routing/live on the call's events
    floor.hang_up(ref)
    expect(waiting).to_have_text("0")


def test_a_supervisor_changes_an_agents_state_from_the_page(floor: Floor, routing: Watched) -> None:
    from playwright.sync_api import expect

    page = routing.page
    row = page.locator("tr[data-agent-row]").first
    name = row.get_attribute("data-agent-row")
    row.locator("select").select_option("available")
    row.locator("button[data-agent]").click()
    expect(page.locator("#status")).to_have_class(re.compile(r"\bok\b"))  # the API took it (CSRF token sent)
    expect(page.locator(f'tr[data-agent-row="{name}"] .state')).to_have_class(re.compile("state-available"))
    assert floor.agent(str(name))["state"] == "available"
