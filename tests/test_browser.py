"""The customer-master page in a real browser (Debian's chromium, headless, driven by Playwright).

A real uvicorn server runs in a background thread on a free port; data goes in through the API.
Waits are on page conditions (``expect`` with timeouts), never sleeps.

The suite fails when chromium or Playwright is missing (``scripts/services`` installs chromium);
set ``KAKEHASHI_SKIP_BROWSER=1`` to skip these tests on purpose. With ``KAKEHASHI_SCREENSHOTS=1`` the
tests also write the user-guide screenshots to ``docs/img/``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
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
    from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(os.environ.get("KAKEHASHI_SKIP_BROWSER") == "1", reason="KAKEHASHI_SKIP_BROWSER=1"),
]

SCREENSHOTS = os.environ.get("KAKEHASHI_SCREENSHOTS") == "1"
IMG_DIR = Path(__file__).resolve().parents[1] / "docs" / "img"
WAIT_MS = 20_000  # CI machines are shared and busy: a wait ends as soon as its condition holds
RED = "rgb(179, 38, 30)"  # --danger in app.css
EXPECTED_4XX = "Failed to load resource: the server responded with a status of 4"

KNOWN_PHONE = "03-1234-5678"
ADMIN, OPERATOR, PASSWORD = "admin", "sato", "browser-test-passphrase"
NOTE = "<script>alert(1)</script>\n配達は午前中希望。インターホン故障中のため電話で呼び出し。"


# ---- server and data -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("web")
    settings = Settings(database_url=f"sqlite:///{tmp}/t.db", data_dir=tmp)
    engine = make_engine(settings.effective_database_url)
    migrate.upgrade(engine)
    with unit_of_work(make_session_factory(engine)) as session:
        home = tenants.get_or_create(session, settings.default_tenant, "コールセンター")
        for username, role in ((ADMIN, Role.ADMIN), (OPERATOR, Role.OPERATOR)):
            auth.create_user(session, username=username, password=PASSWORD, role=role, tenant_id=home.id)
    engine.dispose()
    with serving(create_app(settings)) as url:
        seed(url)
        yield url


def seed(url: str) -> None:
    """A known caller with history, an open complaint and a note holding a script tag; a second ヤ customer."""
    with httpx.Client(base_url=url, timeout=10) as api:
        token = api.post("/api/v1/auth/token", json={"username": ADMIN, "password": PASSWORD}).json()["token"]
        api.headers["Authorization"] = f"Bearer {token}"

        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            r = api.post(path, json=body)
            assert r.status_code == 201, r.text
            result: dict[str, Any] = r.json()
            return result

        post("/api/v1/custom-fields", {"key": "children", "label": "子供の人数", "type": "number", "position": 1})
        post("/api/v1/custom-fields", {"key": "married", "label": "既婚", "type": "boolean", "position": 2})
        post(
            "/api/v1/custom-fields",
            {"key": "dm", "label": "DM送付", "type": "choice", "choices": ["希望", "不要"], "position": 3},
        )
        yamada = post(
            "/api/v1/customers",
            {
                "name": "山田 太郎",
                "name_kana": "ヤマダ タロウ",
                "gender": "male",
                "birthday": "1975-04-12",
                "postal_code": "100-0001",
                "prefecture": "東京都",
                "city": "千代田区",
                "town": "千代田",
                "street": "1-1-1",
                "building": "千代田ハイツ 201",
                "email": "taro.yamada@example.jp",
                "rank": "VIP",
                "notes": NOTE,
                "phones": [{"number": KNOWN_PHONE, "label": "自宅"}, {"number": "090-1111-2222"}],
                "custom": {"children": 2, "married": True, "dm": "希望"},
            },
        )
        cid = yamada["id"]
        order_ids = []
        for when, lines in [
            ("2025-11-03T10:12:00+09:00", [{"name": "羽毛布団 シングル", "unit_price": 19800}]),
            ("2025-12-14T20:45:00+09:00", [{"name": "低反発枕", "quantity": 2, "unit_price": 4980}]),
            (
                "2026-01-20T21:03:00+09:00",
                [{"name": "電気毛布", "unit_price": 6980}, {"name": "替えカバー", "quantity": 2, "unit_price": 1500}],
            ),
        ]:
            order = post(f"/api/v1/customers/{cid}/orders", {"ordered_at": when, "lines": lines})
            order_ids.append(order["id"])
        post(
            f"/api/v1/customers/{cid}/complaints",
            {
                "category": "配送遅延",
                "text": "指定日に届かなかった。次回は必ず午前中に届けてほしい。",
                "severity": "high",
                "order_id": order_ids[-1],
            },
        )
        for when, summary in [
            ("2026-01-22T10:05:00+09:00", "配送遅延のお詫び、再配達日を調整"),
            ("2026-01-20T21:03:00+09:00", "テレビショッピングで電気毛布を注文"),
        ]:
            post(
                f"/api/v1/customers/{cid}/contacts",
                {"channel": "call", "direction": "inbound", "occurred_at": when, "summary": summary, "agent": "佐藤"},
            )
        post(
            "/api/v1/customers",
            {
                "name": "山本 花子",
                "name_kana": "ヤマモト ハナコ",
                "prefecture": "大阪府",
                "city": "大阪市北区",
                "phones": [{"number": "06-6123-4567"}],
            },
        )


# ---- browser ---------------------------------------------------------------------------------


class Watched:
    """A page plus what must never happen on it: dialogs (an executed alert), script errors, CSP violations."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", self._console)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, msg: ConsoleMessage) -> None:
        # The browser logs every 4xx fetch; a 422/409 answer is expected where a test enters bad data.
        if msg.type == "error" and not msg.text.startswith(EXPECTED_4XX):
            self.errors.append(msg.text)


@pytest.fixture
def watched(browser: Browser, base_url: str) -> Iterator[Watched]:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    context = browser.new_context(
        base_url=base_url, locale="ja-JP", timezone_id="Asia/Tokyo", viewport={"width": 1440, "height": 900}
    )
    context.set_default_timeout(WAIT_MS)
    w = Watched(context.new_page())
    log_in(w.page, OPERATOR, PASSWORD)
    w.page.goto("/")
    yield w
    context.close()
    assert w.dialogs == [], "a dialog opened: some text ran as script"
    assert w.errors == [], w.errors


def log_in(page: Page, username: str, password: str) -> None:
    """Through the login form, like an operator starting a shift."""
    from playwright.sync_api import expect

    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    page.locator("#username").fill(username)
    page.locator("#password").fill(password)
    page.locator("#password").press("Enter")
    expect(page.locator("#phone")).to_be_visible()


def shot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        IMG_DIR.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(IMG_DIR / name), full_page=True)


def lookup(page: Page, number: str) -> None:
    from playwright.sync_api import expect

    box = page.locator("#phone")
    expect(box).to_be_focused()
    page.keyboard.type(number)
    page.keyboard.press("Enter")


# ---- tests -----------------------------------------------------------------------------------


class TestCard:
    def test_given_full_width_number_then_card_with_red_complaint_flag(self, watched: Watched) -> None:
        from playwright.sync_api import expect

        page = watched.page
        page.goto("/")
        lookup(page, "０３－１２３４－５６７８")
        card = page.locator("#card")
        expect(card.locator(".name")).to_have_text("山田 太郎")
        expect(card.locator(".kana")).to_have_text("ヤマダ タロウ")
        flag = card.locator(".flags [data-flag=open_complaint]")
        expect(flag).to_be_visible()
        expect(flag).to_contain_text("未解決クレームあり")
        assert flag.evaluate("el => getComputedStyle(el).backgroundColor") == RED
        assert card.locator(".flags li").first.get_attribute("data-flag") == "open_complaint"
        expect(card.locator("[data-flag=caution]")).to_be_visible()
        expect(card.locator("[data-flag=outbound_excluded]")).to_contain_text("発信禁止")
        # orders with yen totals, custom fields with labels, contacts newest first
        expect(card.locator("table.grid tbody tr")).to_have_count(3)
        expect(card).to_contain_text("¥9,980")
        expect(card.locator(".kv")).to_contain_text("子供の人数")
        expect(card.locator(".kv")).to_contain_text("はい")
        expect(card).to_contain_text("配送遅延")
        summaries = card.locator(".events").last.locator("li").all_text_contents()
        assert "再配達" in summaries[0] and "電気毛布" in summaries[1]
        # the note is text, never markup
        notes = card.locator(".notes")
        expect(notes).to_contain_text("<script>alert(1)</script>")
        assert "<script>" in (notes.text_content() or "")
        assert page.locator("#card script").count() == 0
        assert watched.dialogs == []
        assert "phone=" in page.url
        shot(page, "customers-card.png")

    def test_given_phone_in_url_then_card_pops_on_load(self, watched: Watched) -> None:
        from playwright.sync_api import expect

        watched.page.goto(f"/?phone={KNOWN_PHONE}")
        expect(watched.page.locator("#card .name")).to_have_text("山田 太郎")

    def test_given_english_then_flags_in_english(self, watched: Watched) -> None:
        from playwright.sync_api import expect

        page = watched.page
        page.goto(f"/?lang=en&phone={KNOWN_PHONE}")
        expect(page.locator("#card [data-flag=open_complaint]")).to_contain_text("Open complaint")
        expect(page.locator("h1")).to_have_text("Customer master")

    def test_given_name_search_then_existing_card_opens(self, watched: Watched) -> None:
        from playwright.sync_api import expect

        page = watched.page
        page.goto("/")
        page.keyboard.press("F3")
        expect(page.locator("#name-search")).to_be_focused()
        page.keyboard.type("やまだ")
        expect(page.locator("#name-search-list [role=option]").first).to_contain_text("山田 太郎")
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Enter")
        expect(page.locator("#card .name")).to_have_text("山田 太郎")


class TestNewCaller:
    def test_given_unknown_number_then_blank_form_prefilled(self, watched: Watched) -> None:
        from playwright.sync_api import expect

        page = watched.page
        page.goto("/")
        lookup(page, "03-9876-5432")
        expect(page.locator("#status")).to_contain_text("未登録の番号です")
        expect(page.locator("#new")).to_be_visible()
        expect(page.locator("#card")).to_be_hidden()
        expect(page.locator("#f-phone0")).to_have_value("03-9876-5432")
        expect(page.locator("#f-name")).to_have_value("")
        expect(page.locator("#f-postal")).to_be_focused()
        expect(page.locator("#f-cf-children")).to_have_attribute("type", "number")
        expect(page.locator("#f-cf-married")).to_have_attribute("type", "checkbox")
        assert page.locator("#f-cf-dm option").all_text_contents() == ["—", "希望", "不要"]

    def test_given_keyboard_entry_then_postal_fill_suggest_and_new_card(self, watched: Watched) -> None:
        from playwright.sync_api import expect

        page = watched.page
        page.goto("/")
        lookup(page, "０９０－２２２２－３３３３")
        expect(page.locator("#f-postal")).to_be_focused()
        page.keyboard.type("1000001")
        expect(page.locator("#f-prefecture")).to_have_value("東京都")
        expect(page.locator("#f-city")).to_have_value("千代田区")
        expect(page.locator("#f-town")).to_have_value("千代田")
        expect(page.locator("#f-name")).to_be_focused()  # the address is done: on to the name
        page.keyboard.type("や")
        options = page.locator("#name-list [role=option]")
        expect(options.first).to_be_visible()
        expect(page.locator("#name-list")).to_contain_text("山田 太郎")
        expect(page.locator("#name-list")).to_contain_text("ヤマダ タロウ")
        page.keyboard.press("Escape")
        expect(page.locator("#name-list")).to_be_hidden()
        page.keyboard.press("Backspace")
        for text in ["矢野 花子", "ヤノ ハナコ", None, None, "2-3-4", "丸の内コート 1203", "S55.5.1"]:
            if text:
                page.keyboard.type(text)
            page.keyboard.press("Tab")
        expect(page.locator("#f-birthday-hint")).to_contain_text("1980/05/01")
        expect(page.locator("#f-gender")).to_be_focused()
        page.keyboard.press("ArrowDown")  # 女性
        page.keyboard.press("Tab")
        page.keyboard.type("hanako.yano@example.jp")
        page.keyboard.press("Tab")
        page.keyboard.type("初回購入。夜間は携帯へ。")
        page.keyboard.press("Tab")
        page.keyboard.type("1")  # 子供の人数
        shot(page, "customers-new.png")
        page.keyboard.press("Control+Enter")
        card = page.locator("#card")
        expect(card.locator(".name")).to_have_text("矢野 花子")
        expect(page.locator("#status")).to_contain_text("登録しました")
        expect(card).to_contain_text("〒100-0001")
        expect(card).to_contain_text("東京都千代田区千代田2-3-4")
        expect(card).to_contain_text("1980/05/01")
        expect(card.locator(".facts")).to_contain_text("女性")
        expect(card.locator(".flags")).to_have_count(0)
        expect(page.locator("#phone")).to_have_value("090-2222-3333")

    def test_given_several_towns_then_keyboard_list_picks_one(self, watched: Watched) -> None:
        from playwright.sync_api import expect

        page = watched.page
        page.goto("/")
        page.keyboard.press("F4")
        expect(page.locator("#f-postal")).to_be_focused()
        page.keyboard.type("452-0961")
        options = page.locator("#postal-list [role=option]")
        expect(options.nth(1)).to_be_visible()
        expect(page.locator("#f-city")).to_have_value("清須市")
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
        chosen = page.locator("#postal-list [aria-selected=true]").text_content() or ""
        page.keyboard.press("Enter")
        expect(page.locator("#postal-list")).to_be_hidden()
        town = page.locator("#f-town").input_value()
        assert town and town in chosen
        expect(page.locator("#f-prefecture")).to_have_value("愛知県")
        expect(page.locator("#f-name")).to_be_focused()

    def test_given_invalid_email_then_inline_error(self, watched: Watched) -> None:
        from playwright.sync_api import expect

        page = watched.page
        page.goto("/")
        page.keyboard.press("F4")
        page.locator("#f-name").fill("検証 次郎")
        page.locator("#f-email").fill("not-an-email")
        page.locator("#f-email").press("Enter")
        error = page.locator("#f-email-err")
        expect(error).to_be_visible()
        expect(error).to_contain_text("メールアドレスの形式が正しくありません")
        expect(page.locator("#f-email")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#f-email")).to_be_focused()
        expect(page.locator("#form-errors")).to_be_visible()
        expect(page.locator("#f-name-err")).to_be_hidden()

    def test_given_taken_number_then_error_offers_the_existing_customer(self, watched: Watched) -> None:
        from playwright.sync_api import expect

        page = watched.page
        page.goto("/")
        page.keyboard.press("F4")
        page.locator("#f-name").fill("重複 三郎")
        page.locator("#f-phone0").fill(KNOWN_PHONE)
        page.keyboard.press("Control+Enter")
        error = page.locator("#f-phone0-err")
        expect(error).to_contain_text("既に別の顧客")
        error.get_by_role("button").click()
        expect(page.locator("#card .name")).to_have_text("山田 太郎")
        assert re.search(r"phone=03-1234-5678", page.url)


class TestLogin:
    def test_wrong_password_is_shown_then_login_logout_round_trip(self, browser: Browser, base_url: str) -> None:
        from playwright.sync_api import expect

        context = browser.new_context(base_url=base_url, locale="ja-JP")
        context.set_default_timeout(WAIT_MS)
        w = Watched(context.new_page())
        page = w.page
        page.goto("/?phone=0312345678")
        expect(page).to_have_url(re.compile(r"/login\?next="))
        page.locator("#username").fill(OPERATOR)
        page.locator("#password").fill("not-the-password")
        page.locator("#password").press("Enter")
        expect(page.locator(".form-errors")).to_contain_text("ユーザー名またはパスワードが違います")
        expect(page.locator("#username")).to_have_value(OPERATOR)
        page.locator("#password").fill(PASSWORD)
        page.locator("#password").press("Enter")
        expect(page.locator("#card")).to_contain_text("山田 太郎")  # back where the login started, card popped
        cookie = next(c for c in context.cookies() if c["name"] == "kkh_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        expect(page.locator(".usermenu")).to_contain_text("オペレーター")
        page.get_by_role("button", name="ログアウト").click()
        expect(page).to_have_url(re.compile(r"/login$"))
        page.goto("/")
        expect(page).to_have_url(re.compile(r"/login\?next=/$"))
        context.close()
        assert [e for e in w.errors if "401" not in e] == []
