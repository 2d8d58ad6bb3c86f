"""The API's /docs page in headless Chromium: a login first, then Swagger UI renders from our own files under
the pages' Content-Security-Policy, asks nothing of another host, and "Try it out" works with the session
(a change carries the session's CSRF token). ``KAKEHASHI_SKIP_BROWSER=1`` skips the module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from kakehashi.app import create_app
from kakehashi.auth import service as auth
from kakehashi.kit import migrate
from kakehashi.kit.config import Settings
from kakehashi.kit.context import Role
from kakehashi.kit.db import make_engine, make_session_factory, unit_of_work
from kakehashi.tenants import repository as tenants
from web_server import serving

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [
    pytest.mark.skipif(os.environ.get("KAKEHASHI_SKIP_BROWSER") == "1", reason="KAKEHASHI_SKIP_BROWSER=1"),
]
WAIT_MS = 30_000  # generous: the machine is shared
USER, PASSWORD = "docs-reader", "browser-test-passphrase"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("apidocs")
    settings = Settings(database_url=f"sqlite:///{tmp}/t.db", data_dir=tmp, telephony_driver="none")
    engine = make_engine(settings.effective_database_url)
    migrate.upgrade(engine)
    with unit_of_work(make_session_factory(engine)) as session:
        home = tenants.get_or_create(session, settings.default_tenant, "コールセンター")
        auth.create_user(session, username=USER, password=PASSWORD, role=Role.OPERATOR, tenant_id=home.id)
    engine.dispose()
    with serving(create_app(settings)) as url:
        yield url


def try_it_out(page: Page, operation_id: str) -> str:
    """Run an operation from its "Try it out" form; the status code the page shows."""
    block = page.locator(f"#operations-{operation_id}")
    block.locator(".opblock-summary").click()
    block.locator("button.try-out__btn").click()
    block.locator("button.execute").click()
    status = block.locator(".live-responses-table tr.response .response-col_status")
    status.wait_for(timeout=WAIT_MS)
    return status.inner_text().strip()


def test_docs_render_locally_after_login_and_try_it_out_works(browser: Browser, base_url: str) -> None:
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
    foreign: list[str] = []
    page.on("request", lambda r: None if r.url.startswith((base_url, "data:")) else foreign.append(r.url))
    try:
        page.goto(f"{base_url}/docs")
        assert "/login?next=/docs" in page.url
        page.fill("input[name=username]", USER)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base_url}/docs", timeout=WAIT_MS)
        # Every tag is drawn (folded: an API this size drawn unfolded stopped after its first tag), then the one
        # the operations below are in is opened.
        page.locator(".opblock-tag").nth(19).wait_for(state="attached", timeout=WAIT_MS)
        page.locator("#operations-tag-auth").click()
        page.locator(".opblock").nth(5).wait_for(state="attached", timeout=WAIT_MS)

        assert try_it_out(page, "auth-me_api_v1_auth_me_get").startswith("200")
        # A change: the session's CSRF token goes with it (403 without).
        assert try_it_out(page, "auth-create_token_api_v1_auth_tokens_post").startswith("201")
    finally:
        page.close()
    assert foreign == []
    assert console == []
