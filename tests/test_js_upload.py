"""The web kit's ``upload()`` (static/lib.js) in chromium: a multipart form sent through XMLHttpRequest with the
session's CSRF token, its progress reported up to 1 while the bytes go out, the answer as ``api()`` gives it
(``{ok, status, body}``), 401 → the login page, no network → status 0 with the ``networkError`` string. The campaign
page's list upload is built on it (tests/test_browser_campaigns.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import pytest
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from kakehashi.web.render import STATIC_DIR
from test_js_kit import PAGE
from web_server import serving

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.skipif(os.environ.get("KAKEHASHI_SKIP_BROWSER") == "1", reason="KAKEHASHI_SKIP_BROWSER=1")

BIG = 3 * 1024 * 1024  # large enough for the browser to report the upload in several steps


def upload_app() -> FastAPI:
    app = FastAPI()

    @app.get("/kit", response_class=HTMLResponse)
    def kit() -> str:
        return PAGE

    @app.get("/login", response_class=HTMLResponse)
    def login() -> str:
        return "<!doctype html><title>login</title>"

    @app.post("/files", status_code=201)
    async def files(request: Request, file: Annotated[UploadFile, File()], name: Annotated[str, Form()]) -> Any:
        content = await file.read()
        return {"csrf": request.headers.get("x-csrf-token"), "name": name, "filename": file.filename,
                "size": len(content)}  # fmt: skip

    @app.post("/refused")
    def refused() -> JSONResponse:
        return JSONResponse({"title": "Validation failed", "errors": [{"field": "file", "message": "no"}]},
                            status_code=422, media_type="application/problem+json")  # fmt: skip

    @app.post("/gone")
    def gone() -> JSONResponse:
        return JSONResponse({"detail": "log in"}, status_code=401)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


@pytest.fixture(scope="module")
def kit_url() -> Iterator[str]:
    with serving(upload_app()) as url:
        yield url


@pytest.fixture
def page(browser: Browser, kit_url: str) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{kit_url}/kit")
    yield page
    context.close()


SEND = """async ([path, size]) => {
  const { upload } = await import("/static/lib.js");
  const form = new FormData();
  form.append("file", new File([new Uint8Array(size)], "list.csv", { type: "text/csv" }));
  form.append("name", "秋のリスト");
  const steps = [];
  const answer = await upload(path, form, { onProgress: (f) => steps.push(f) });
  return { ...answer, steps };
}"""


def test_a_form_goes_out_with_the_csrf_token_and_its_progress(page: Page) -> None:
    found = page.evaluate(SEND, ["/files", BIG])
    assert found["ok"] is True and found["status"] == 201
    assert found["body"] == {"csrf": "tok-123", "name": "秋のリスト", "filename": "list.csv", "size": BIG}
    steps = found["steps"]
    assert steps and steps[-1] == 1 and all(0 <= s <= 1 for s in steps)
    assert steps == sorted(steps)  # the bar only moves forward


def test_a_refusal_comes_back_as_problem_details(page: Page) -> None:
    found = page.evaluate(SEND, ["/refused", 10])
    assert found["ok"] is False and found["status"] == 422
    assert found["body"]["errors"] == [{"field": "file", "message": "no"}]


def test_an_ended_session_goes_to_the_login_and_no_network_is_status_0(page: Page, kit_url: str) -> None:
    with page.expect_navigation(url=f"{kit_url}/login?next=%2Fkit"):
        page.evaluate("""async () => {
          const { upload } = await import("/static/lib.js");
          upload("/gone", new FormData());
        }""")
    page.goto(f"{kit_url}/kit")
    found = page.evaluate(SEND, ["http://127.0.0.1:9/nowhere", 10])  # a closed port: the request errors
    assert found["ok"] is False and found["status"] == 0 and found["body"] == {"detail": "offline"}
