"""The customer-master page: rendered in Japanese and English, local assets only, user input escaped."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from fastapi.testclient import TestClient

from kakehashi.web.i18n import JS_STRINGS, MESSAGES, js_strings


class _Assets(HTMLParser):
    """Collects the URLs that script and link tags load, and the JSON strings blob."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.json_blob: str | None = None
        self._in_json = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.urls.append(values["src"] or "")
        if tag == "link" and values.get("href"):
            self.urls.append(values["href"] or "")
        self._in_json = tag == "script" and values.get("type") == "application/json"

    def handle_endtag(self, tag: str) -> None:
        self._in_json = False

    def handle_data(self, data: str) -> None:
        if self._in_json:
            self.json_blob = (self.json_blob or "") + data


def parse(html: str) -> _Assets:
    parser = _Assets()
    parser.feed(html)
    return parser


class TestPage:
    def test_given_no_language_then_japanese_page(self, client: TestClient) -> None:
        r = client.get("/")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        assert '<html lang="ja">' in r.text
        for text in ("顧客マスター", "電話番号", "顧客名で検索", "郵便番号", "氏名", "フリガナ", "新規登録"):
            assert text in r.text
        strings = json.loads(parse(r.text).json_blob or "{}")
        assert strings["unknownNumber"] == "未登録の番号です"

    def test_given_lang_en_then_english_page_and_cookie_remembers(self, client: TestClient) -> None:
        r = client.get("/?lang=en")
        assert '<html lang="en">' in r.text
        assert "Customer master" in r.text and "Postal code" in r.text and "Search by name" in r.text
        assert json.loads(parse(r.text).json_blob or "{}")["unknownNumber"] == "Unknown caller"
        assert r.cookies.get("lang") == "en"
        again = client.get("/")  # the cookie keeps English
        assert '<html lang="en">' in again.text

    def test_given_unknown_language_then_japanese(self, client: TestClient) -> None:
        assert '<html lang="ja">' in client.get("/?lang=xx").text

    def test_every_label_has_its_input(self, client: TestClient) -> None:
        html = client.get("/").text
        ids = set(re.findall(r'<(?:input|select|textarea)[^>]*\sid="([^"]+)"', html))
        labelled = set(re.findall(r'<label for="([^"]+)"', html))
        assert ids and ids <= labelled

    def test_given_phone_in_url_then_escaped_into_the_box(self, client: TestClient) -> None:
        r = client.get("/", params={"phone": '"><script>alert(1)</script>'})
        assert "<script>alert(1)" not in r.text
        assert "&lt;script&gt;" in r.text or "&#34;&gt;&lt;script" in r.text

    def test_security_headers_allow_only_our_origin(self, client: TestClient) -> None:
        csp = client.get("/").headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'self'" in csp


class TestAssets:
    def test_no_external_urls_in_script_or_link_tags(self, client: TestClient) -> None:
        for lang in ("ja", "en"):
            urls = parse(client.get(f"/?lang={lang}").text).urls
            assert urls, "the page loads its stylesheet and script"
            for url in urls:
                assert not url.startswith(("http://", "https://", "//")), url
                assert url.startswith("/static/")

    def test_static_assets_are_served(self, client: TestClient) -> None:
        for url in parse(client.get("/").text).urls:
            r = client.get(url)
            assert r.status_code == 200, url
            assert r.content

    def test_stylesheet_and_script_load_nothing_external(self, client: TestClient) -> None:
        for url in ("/static/app.css", "/static/customers.js"):
            body = client.get(url).text
            assert not re.search(r"https?://", body), url
            assert "@import" not in body and "innerHTML" not in body and "insertAdjacentHTML" not in body


class TestStrings:
    def test_every_script_string_has_english(self) -> None:
        english = js_strings("en")
        assert set(english) == set(JS_STRINGS)
        for key, text in english.items():
            if not key.startswith("err."):  # API messages are English already
                assert text.strip() or key == "years", key
                assert not re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", text), key

    def test_template_texts_are_translated(self, client: TestClient) -> None:
        html = client.get("/?lang=en").text
        visible = re.sub(r"<script.*?</script>", "", html, flags=re.S)
        leftovers = {m for m in re.findall(r"[\u3040-\u30ff\u4e00-\u9fff]+", visible)}
        assert leftovers <= {"架", "日本語"}, leftovers
        assert MESSAGES["en"]["顧客マスター"] == "Customer master"


class TestOneKit:
    """Every page's script uses the web kit (static/lib.js, static/events.js) instead of a copy of its own."""

    STATIC = Path(__file__).parent.parent / "src" / "kakehashi" / "web" / "static"
    # Not page scripts on the kit: the kit itself, the JsSIP wrapper and Swagger UI's interceptor (a classic script).
    OUTSIDE = frozenset({"lib.js", "events.js", "softphone.js", "apidocs.js"})

    def scripts(self) -> dict[str, str]:
        return {p.name: p.read_text(encoding="utf-8") for p in self.STATIC.glob("*.js") if p.name not in self.OUTSIDE}

    def test_page_scripts_import_the_kit_and_keep_no_copies(self) -> None:
        scripts = self.scripts()
        assert {"customers.js", "desk.js", "routing.js", "wallboard.js"} <= set(scripts)
        for name, source in scripts.items():
            assert 'from "/static/lib.js"' in source, name
            assert "new WebSocket" not in source, name  # the stream: static/events.js
            assert "X-CSRF-Token" not in source and "csrf-token" not in source, name  # api() sends it
            assert not re.search(r"function (h|el|api|status|elapsed|duration)\(", source), name
            assert "/3600" not in source.replace(" ", ""), name  # durations: lib.js's duration()

    def test_pages_that_follow_the_stream_use_the_one_client(self) -> None:
        scripts = self.scripts()
        for name in ("desk.js", "routing.js", "wallboard.js"):
            assert "connectEvents(" in scripts[name], name
