"""The web kit's JavaScript in chromium: static/lib.js (element helper, duration, API client with the CSRF token)
and static/events.js, the one event-stream client every page uses (resume with ``last_event_id`` after a dropped
socket, backoff that grows with jitter, 4401 → the login page, 4403 → stop).

The modules are served by a bare app (static files and one blank page), so each behaviour is checked on its own:
the stream client gets a fake WebSocket, timer and random source, and the test drives it step by step.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import pytest
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from kakehashi.web.render import STATIC_DIR
from web_server import serving

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.skipif(os.environ.get("KAKEHASHI_SKIP_BROWSER") == "1", reason="KAKEHASHI_SKIP_BROWSER=1")

PAGE = """<!doctype html><html><head><meta charset="utf-8"><meta name="csrf-token" content="tok-123"></head>
<body><p id="status"></p><script type="application/json" id="strings">{"networkError": "offline"}</script></body>
</html>"""


def kit_app() -> FastAPI:
    """The static files and a page to load them in; ``/echo`` answers what the client sent."""
    app = FastAPI()

    @app.get("/kit", response_class=HTMLResponse)
    def kit() -> str:
        return PAGE

    @app.get("/login", response_class=HTMLResponse)
    def login() -> str:
        return "<!doctype html><title>login</title>"

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, Any]:
        return {
            "csrf": request.headers.get("x-csrf-token"),
            "type": request.headers.get("content-type"),
            "body": json.loads(await request.body()),
        }

    @app.api_route("/gone", methods=["GET", "POST"])
    def gone() -> JSONResponse:
        return JSONResponse({"detail": "log in"}, status_code=401)

    @app.post("/files", status_code=201)
    async def files(request: Request, file: Annotated[UploadFile, File()], name: Annotated[str, Form()]) -> Any:
        content = await file.read()
        return {"csrf": request.headers.get("x-csrf-token"), "name": name, "filename": file.filename,
                "size": len(content)}  # fmt: skip

    @app.post("/refused")
    def refused() -> JSONResponse:
        return JSONResponse({"title": "Validation failed", "errors": [{"field": "file", "message": "no"}]},
                            status_code=422, media_type="application/problem+json")  # fmt: skip

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


@pytest.fixture(scope="module")
def kit_url() -> Iterator[str]:
    with serving(kit_app()) as url:
        yield url


@pytest.fixture
def page(browser: Browser, kit_url: str) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{kit_url}/kit")
    yield page
    context.close()


# A fake WebSocket, timer and random source for events.js; ``run(steps)`` drives them.
HARNESS = """
  const { connectEvents } = await import("/static/events.js");
  const sockets = [], timers = [], left = [], seen = [], live = [], hellos = [];
  let resyncs = 0;
  class FakeSocket {
    constructor(url) { this.url = url; this.on = {}; sockets.push(this); }
    addEventListener(type, fn) { (this.on[type] ||= []).push(fn); }
    emit(type, event) { for (const fn of this.on[type] || []) fn(event); }
    send(message) { this.emit("message", { data: JSON.stringify(message) }); }
    drop(code = 1006) { this.emit("close", { code }); }
    close() { this.drop(1000); }
  }
  const randoms = RANDOMS;
  let r = 0;
  const stream = connectEvents({
    WebSocket: FakeSocket,
    setTimeout: (fn, ms) => timers.push({ fn, ms }),
    random: () => randoms[r++ % randoms.length],
    leave: (url) => left.push(url),
    onEvent: (e) => seen.push(e.id),
    onResync: () => { resyncs += 1; },
    onHello: (h) => hellos.push(h.resumed),
    onLive: (on) => live.push(on),
    initialDelay: 1000,
    maxDelay: 8000,
  });
  const last = () => sockets[sockets.length - 1];
  const fire = () => timers.shift().fn();
"""


def run(page: Page, scenario: str, randoms: list[float] | None = None) -> Any:
    harness = HARNESS.replace("RANDOMS", json.dumps(randoms or [0.5]))
    return page.evaluate(f"async () => {{ {harness}\n{scenario} }}")


def test_the_stream_resumes_after_the_last_event_id_when_the_socket_drops(page: Page) -> None:
    found = run(
        page,
        """
        last().send({ type: "hello" });
        last().send({ type: "event", id: 5, name: "call.offered" });
        last().send({ type: "event", id: 7, name: "call.answered" });
        last().drop();                      // the network went away
        const waiting = timers.length;
        fire();                             // the backoff ends: a new socket
        last().send({ type: "hello" });
        last().send({ type: "event", id: 8, name: "call.ended" });  // what the server replays
        last().send({ type: "resync" });
        return { urls: sockets.map((s) => new URL(s.url).search), waiting, seen, hellos, live, resyncs,
                 lastEventId: stream.lastEventId, path: new URL(sockets[0].url).pathname,
                 scheme: new URL(sockets[0].url).protocol };
        """,
    )
    assert found["urls"] == ["", "?last_event_id=7"]
    assert (found["path"], found["scheme"]) == ("/api/v1/events", "ws:")
    assert found["waiting"] == 1 and found["seen"] == [5, 7, 8] and found["lastEventId"] == 8
    assert found["hellos"] == [False, True]  # the page refetches only when there was nothing to resume from
    assert found["live"] == [True, False, True] and found["resyncs"] == 1


def test_a_logged_out_stream_goes_to_the_login_and_a_forbidden_one_stops(page: Page) -> None:
    found = run(
        page,
        """
        last().send({ type: "hello" });
        last().drop(4401);
        const loggedOut = { left: [...left], timers: timers.length, sockets: sockets.length };
        const again = connectEvents({ WebSocket: FakeSocket, setTimeout: (fn, ms) => timers.push({ fn, ms }),
                                      leave: (url) => left.push(url) });
        last().drop(4403);
        return { loggedOut, forbidden: { left: left.length, timers: timers.length, sockets: sockets.length } };
        """,
    )
    assert found["loggedOut"] == {"left": ["/login?next=%2Fkit"], "timers": 0, "sockets": 1}
    assert found["forbidden"] == {"left": 1, "timers": 0, "sockets": 2}  # no retry, no new login trip


def test_the_backoff_grows_with_jitter_up_to_its_cap_and_starts_again_after_hello(page: Page) -> None:
    found = run(
        page,
        """
        const waits = [];
        for (let i = 0; i < 6; i++) { last().drop(); waits.push(timers[0].ms); fire(); }
        last().send({ type: "hello" });     // connected again: the next drop waits little
        last().drop();
        waits.push(timers[0].ms);
        return waits;
        """,
        randoms=[0, 1, 0.5, 0.25, 0.75, 0, 1],
    )
    # delay × (0.75 + random/2) for delays 1000, 2000, 4000, 8000 (the cap), 8000, 8000, then 1000 after hello
    assert found == [750, 2500, 4000, 7000, 9000, 6000, 1250]


def test_duration_and_the_element_helper(page: Page) -> None:
    found = page.evaluate(
        """async () => {
        const { duration, h } = await import("/static/lib.js");
        const p = h("p", { class: "x", "aria-hidden": true, dataset: { agent: "a1" }, title: "t" },
                    "<b>not markup</b>", 3, null, false, h("span", {}, "in"));
        const box = h("input", { type: "checkbox", checked: true, disabled: false, "data-line": 2 });
        const label = h("label", { for: "box" }, "box");
        return {
          durations: [0, 59.9, 65, 600, 3723, -5].map(duration),
          html: p.outerHTML, checked: box.checked, disabled: box.disabled, line: box.dataset.line,
          labelFor: label.htmlFor,
        };
    }"""
    )
    assert found["durations"] == ["0:00", "0:59", "1:05", "10:00", "1:02:03", "0:00"]
    assert found["html"] == (
        '<p class="x" aria-hidden="true" data-agent="a1" title="t">&lt;b&gt;not markup&lt;/b&gt;3<span>in</span></p>'
    )
    assert (found["checked"], found["disabled"], found["line"], found["labelFor"]) == (True, False, "2", "box")


def test_the_api_client_sends_the_csrf_token_and_json_and_a_401_goes_to_the_login(page: Page, kit_url: str) -> None:
    found = page.evaluate(
        """async () => {
        const { api, problem, status } = await import("/static/lib.js");
        const posted = await api("/echo", { method: "POST", body: { a: 1 } });
        const encoded = await api("/echo", { method: "POST", body: JSON.stringify({ b: 2 }) });
        const offline = await api("http://127.0.0.1:9/nowhere");
        status("saved", "ok");
        const shown = document.getElementById("status").className;
        status("");
        return { posted, encoded, offline, shown, hidden: document.getElementById("status").className,
                 problem: problem({ errors: [{ message: "first" }], detail: "d" }, 422) };
    }"""
    )
    assert found["posted"] == {
        "ok": True,
        "status": 200,
        "body": {"csrf": "tok-123", "type": "application/json", "body": {"a": 1}},
    }
    assert found["encoded"]["body"]["body"] == {"b": 2}
    assert found["offline"] == {"ok": False, "status": 0, "body": {"detail": "offline"}}
    assert (found["shown"], found["hidden"].strip(), found["problem"]) == ("status ok", "status", "first")
    page.evaluate("""async () => { const { api } = await import("/static/lib.js"); api("/gone"); }""")
    page.wait_for_url(f"{kit_url}/login?next=%2Fkit")


# -- upload(): a multipart form through XMLHttpRequest with the session's CSRF token, its progress reported up to 1
# while the bytes go out, the answer as api() gives it, 401 → the login page, no network → status 0 with the
# ``networkError`` string. The campaign page's list upload is built on it (tests/test_browser_campaigns.py).

BIG = 3 * 1024 * 1024  # large enough for the browser to report the upload in several steps
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
