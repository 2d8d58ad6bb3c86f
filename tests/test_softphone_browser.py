"""The browser softphone in a real browser: Chromium (Debian's, headless, Playwright) registers to Kamailio over
SIP-over-WebSocket with credentials the app issued, and takes a real call from a baresip customer through the
CTI, with WebRTC media bridged by rtpengine to plain RTP.

The app runs in uvicorn (a thread, its own database: the SIP driver's threads write calls while the test reads
them) with ``telephony_driver=sip`` on a private lab stack (``kakehashi.telephony.drivers.sip.lab``). Chromium
uses a fake microphone that plays a tone (``--use-file-for-fake-audio-capture``) and allows loopback ICE
candidates. The page is a fixture (tests/fixtures/softphone.html) served on the app's origin with the app's
Content-Security-Policy (plus Kamailio's WebSocket origin in ``connect-src``, as a page running the softphone
needs); :class:`BrowserPhone` drives ``/static/softphone.js`` in it and can be pointed at any page that
exposes its ``Softphone`` as ``window.softphone``. Waits are on conditions with time-outs, never sleeps.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine, select

from conftest import BACKENDS, PG_URL
from kakehashi.app import create_app
from kakehashi.auth import service as auth
from kakehashi.calls.models import Call
from kakehashi.kit import migrate
from kakehashi.kit.config import Settings
from kakehashi.kit.context import Role
from kakehashi.kit.db import make_engine, make_session_factory, unit_of_work
from kakehashi.kit.dbadmin import recreate_database
from kakehashi.telephony.api import ephemeral_credential, websocket_origin
from kakehashi.telephony.drivers.sip.lab import Audio, LabError, Phone, SipStack, write_tone_wav
from kakehashi.tenants import repository as tenants
from kakehashi.web.pages import CONTENT_SECURITY_POLICY

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

pytestmark = [
    pytest.mark.browser,
    pytest.mark.sip,
    pytest.mark.skipif(os.environ.get("KAKEHASHI_SKIP_BROWSER") == "1", reason="KAKEHASHI_SKIP_BROWSER=1"),
]

T = TypeVar("T")
CHROMIUM = os.environ.get("KAKEHASHI_CHROMIUM", "/usr/bin/chromium")
FIXTURE = Path(__file__).parent / "fixtures" / "softphone.html"
FIXTURE_PATH = "/softphone-fixture"
AGENT, PASSWORD = "agent1", "softphone-test-passphrase"
CENTER_NUMBER, CUSTOMER, DESK_CUSTOMER = "0120444444", "0312345678", "0312345679"
CUSTOMER_HZ, BROWSER_HZ = 440.0, 1000.0
WAIT_S = 20.0
#: Straight to the queue: no prompts to render, the agent's phone rings at once.
QUEUE_FLOW = {"start": "orders", "nodes": {"orders": {"type": "queue", "queue": "orders"}}}
#: The tone reaches the browser as it is: no echo cancellation, noise suppression or gain control on it.
RAW_AUDIO = {"echoCancellation": False, "noiseSuppression": False, "autoGainControl": False}


def eventually(check: Callable[[], T | None], timeout: float = WAIT_S, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.05)


# ---- the page driver ---------------------------------------------------------------------------------


_RECORD_EVENTS = """(name) => {
    const events = ((window.softphoneEvents ??= {})[name] = []);
    for (const type of ["registered", "renewed", "unregistered", "failed", "incoming", "connected", "ended"]) {
        window[name].addEventListener(type, (e) => events.push({ type, detail: e.detail }));
    }
}"""

_AUDIO_STATS = """async (phone) => {
    const pc = phone.peerConnection;
    if (!pc) return null;
    const out = { inbound: null, outbound: null };
    (await pc.getStats()).forEach((s) => {
        if (s.kind !== "audio") return;
        if (s.type === "inbound-rtp") out.inbound = { packets: s.packetsReceived, bytes: s.bytesReceived,
                                                      level: s.audioLevel ?? 0, energy: s.totalAudioEnergy ?? 0 };
        if (s.type === "outbound-rtp") out.outbound = { packets: s.packetsSent, bytes: s.bytesSent };
    });
    return out;
}"""


class BrowserPhone:
    """Drives a ``Softphone`` (``/static/softphone.js``) in a page: ``window[name]`` is the phone, its events are
    recorded in ``window.softphoneEvents[name]``. ``create`` makes one on the fixture page; a page that makes its own
    (the agent desktop) only needs ``attach``."""

    def __init__(self, page: Page, name: str = "softphone") -> None:
        self.page = page
        self.name = name
        self.seen = 0  # events already returned by wait_for

    @classmethod
    def create(
        cls,
        page: Page,
        config: dict[str, Any] | None = None,
        name: str = "softphone",
        *,
        renew: bool = False,
        register_expires: int | None = None,
    ) -> BrowserPhone:
        """A phone from ``Softphone.fromServer()`` (the signed-in agent's credentials, renewed from the server), or
        from ``config`` (renewed from the server only with ``renew``)."""
        made = page.evaluate(
            """async ({ config, name, audio, renew, registerExpires }) => {
                const { Softphone, fetchSoftphoneConfig } = await import("/static/softphone.js");
                const options = { audioConstraints: audio, audio: document.getElementById("remote"), registerExpires };
                if (renew) options.renew = fetchSoftphoneConfig;
                const phone = config ? new Softphone(config, options) : await Softphone.fromServer(options);
                window[name] = phone;
                return phone !== null;
            }""",
            {"config": config, "name": name, "audio": RAW_AUDIO, "renew": renew, "registerExpires": register_expires},
        )
        assert made, "GET /api/v1/softphone: no softphone configured"
        return cls.attach(page, name)

    @classmethod
    def attach(cls, page: Page, name: str = "softphone") -> BrowserPhone:
        phone = cls(page, name)
        page.evaluate(_RECORD_EVENTS, name)
        return phone

    def call(self, method: str, *args: Any) -> Any:
        return self.page.evaluate("([name, method, args]) => window[name][method](...args)", [self.name, method, args])

    def config(self) -> dict[str, Any]:
        result: dict[str, Any] = self.page.evaluate("(name) => window[name].config", self.name)
        return result

    def start(self) -> None:
        self.call("start")

    def property(self, name: str) -> Any:
        return self.page.evaluate("([phone, name]) => window[phone][name]", [self.name, name])

    def events(self) -> list[dict[str, Any]]:
        """Every event so far: ``{type, detail}``."""
        events: list[dict[str, Any]] = self.page.evaluate("(name) => window.softphoneEvents[name]", self.name)
        return events

    def wait_for(self, *types: str, timeout: float = WAIT_S) -> dict[str, Any]:
        """The next recorded event of one of ``types`` (each event is returned once)."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events()
            for index in range(self.seen, len(events)):
                if events[index]["type"] in types:
                    self.seen = index + 1
                    return events[index]
            if time.monotonic() > deadline:
                raise AssertionError(f"no {'/'.join(types)} event within {timeout:g} s; events: {events}")
            self.page.wait_for_timeout(50)  # let the page's event loop run between polls

    def audio_stats(self) -> dict[str, Any] | None:
        stats: dict[str, Any] | None = self.page.evaluate(f"(name) => ({_AUDIO_STATS})(window[name])", self.name)
        return stats


# ---- the center: lab stack, app with the SIP driver, browser --------------------------------------------


@dataclass
class Center:
    stack: SipStack
    settings: Settings
    engine: Engine
    base_url: str
    token: str  # the agent's bearer token (API calls outside the browser)

    def call(self, **where: Any) -> Call | None:
        with make_session_factory(self.engine)() as s:
            return s.scalars(select(Call).filter_by(**where).order_by(Call.id.desc())).first()

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.request(method, self.base_url + path, headers=headers, timeout=10, **kw)


def _database(backend: str, tmp: Path) -> tuple[Engine, str]:
    if backend == "sqlite":
        url = f"sqlite:///{tmp / 'softphone.db'}"
    else:
        url = PG_URL.rsplit("/", 1)[0] + f"/kakehashi_softphone_{os.getpid()}"
        recreate_database(url)
    engine = make_engine(url)
    migrate.upgrade(engine)
    return engine, url


def _serve(settings: Settings, engine: Engine) -> tuple[str, Callable[[], None]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings, engine=engine), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    eventually(lambda: server.started or not thread.is_alive(), timeout=60, what="uvicorn to start")
    if not server.started:
        pytest.fail("uvicorn did not start (see the log above)")

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()

    return f"http://127.0.0.1:{sock.getsockname()[1]}", stop


def _configure(base_url: str) -> str:
    """Agent, queue, flow and number through the API as an admin; the agent's bearer token."""
    with httpx.Client(base_url=base_url, timeout=10) as api:
        admin = api.post("/api/v1/auth/token", json={"username": "sp-admin", "password": PASSWORD}).json()["token"]
        api.headers["Authorization"] = f"Bearer {admin}"

        def ok(r: httpx.Response) -> Any:
            assert r.status_code < 300, r.text
            return r.json()

        ok(api.post("/api/v1/agents", json={"name": AGENT, "display_name": "佐藤 ブラウザ"}))
        queue = ok(api.post("/api/v1/queues", json={"name": "orders", "label": "注文", "ring_timeout_s": 30}))
        ok(api.put(f"/api/v1/queues/{queue['id']}/members", json={"members": {AGENT: 1}}))
        ok(api.post("/api/v1/ivr/flows", json={"name": "main", "definition": QUEUE_FLOW}))
        ok(api.post("/api/v1/inbound-numbers", json={"number": "0120-444-444", "flow": "main"}))
        token: str = ok(api.post("/api/v1/auth/token", json={"username": AGENT, "password": PASSWORD}))["token"]
        return token


@pytest.fixture(scope="module", params=BACKENDS)
def center(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Center]:
    tmp = tmp_path_factory.mktemp(f"softphone-{request.param}")
    engine, url = _database(request.param, tmp)
    with unit_of_work(make_session_factory(engine)) as session:
        home = tenants.get_or_create(session, "center", "コールセンター")
        auth.create_user(session, username="sp-admin", password=PASSWORD, role=Role.ADMIN, tenant_id=home.id)
        auth.create_user(session, username=AGENT, password=PASSWORD, role=Role.OPERATOR, tenant_id=home.id)
    try:
        from sip_world import ENGINE

        workers = 1 if ENGINE == "rtpengine" else 2
        with SipStack(tmp / "lab", cti_workers=workers, rtp_port_count=200, cti_engine=ENGINE) as stack:
            settings = Settings(
                data_dir=tmp / "data", database_url=url, default_tenant="center", telephony_driver="sip",
                sip_proxy=f"127.0.0.1:{stack.sip_port}", sip_media_port=stack.cti_port, sip_workers=workers,
                softphone_ws_url=stack.ws_url, softphone_secret=stack.softphone_secret,
                softphone_domain=stack.softphone_domain, sip_engine=ENGINE,
                sip_rtpengine_ng=f"127.0.0.1:{stack.ng_port}", sip_recording_spool=stack.recording_dir,
                sip_dtmf_port=stack.dtmf_log_port or 22230,
            )  # fmt: skip
            base_url, stop = _serve(settings, engine)
            try:
                yield Center(stack, settings, engine, base_url, _configure(base_url))
            finally:
                stop()
    finally:
        engine.dispose()
        if request.param != "sqlite":
            recreate_database(url, create=False)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: .venv/bin/pip install -e '.[dev]' (or KAKEHASHI_SKIP_BROWSER=1)")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium not found at {CHROMIUM}: run scripts/services as root (or KAKEHASHI_SKIP_BROWSER=1)")
    # The fake microphone plays this tone (looped): the customer must hear it.
    tone = write_tone_wav(tmp_path_factory.mktemp("mic") / "mic.wav", BROWSER_HZ, seconds=10, rate=48_000)
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--use-fake-ui-for-media-stream",  # grant the microphone without asking
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={tone}",
        "--allow-loopback-in-peer-connection",  # ICE candidates on 127.0.0.1, where rtpengine is
        # Real addresses in ICE candidates, not *.local names; and no Local Network Access check: a page that
        # Playwright fulfils has no server address, so Chromium takes it for a public page reaching loopback.
        "--disable-features=WebRtcHideLocalIpsWithMdns,LocalNetworkAccessChecks",
        "--autoplay-policy=no-user-gesture-required",
    ]
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, center: Center) -> Iterator[Page]:
    """The agent logged in (through the login form), on the fixture page of the app's origin."""
    from playwright.sync_api import expect

    context = browser.new_context(base_url=center.base_url, locale="ja-JP")
    context.set_default_timeout(WAIT_S * 1000)
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: (
            errors.append(f"{msg.text} at {msg.location} on {page.url}")
            if "Content Security Policy" in msg.text
            else None
        ),
    )
    page.goto("/login")
    page.locator("#username").fill(AGENT)
    page.locator("#password").fill(PASSWORD)
    page.locator("#password").press("Enter")
    expect(page).not_to_have_url(re.compile(r"/login"))
    # What a page running the softphone must send: the app's policy, plus Kamailio's WebSocket in connect-src.
    origin = websocket_origin(center.settings)
    assert origin == center.stack.ws_url
    csp = CONTENT_SECURITY_POLICY.replace("connect-src 'self'", f"connect-src 'self' {origin}")

    def fixture(route: Route) -> None:
        route.fulfill(status=200, body=FIXTURE.read_text(), content_type="text/html; charset=utf-8",
                      headers={"Content-Security-Policy": csp})  # fmt: skip

    page.route(center.base_url + FIXTURE_PATH, fixture)
    page.goto(FIXTURE_PATH)
    yield page
    # Unregistered and disconnected before the page goes (no reconnection attempt while it closes).
    page.evaluate("() => Promise.all(['softphone', 'intruder', 'probe'].map((name) => window[name]?.stop()))")
    context.close()
    assert errors == [], errors


# ---- tests -----------------------------------------------------------------------------------------------


def test_the_browser_registers_with_the_credentials_the_app_issued_and_nobody_registers_without(
    page: Page, center: Center
) -> None:
    phone = BrowserPhone.create(page)
    config = phone.config()
    assert config["uri"] == f"sip:{AGENT}@127.0.0.1" and config["ws_url"] == center.stack.ws_url
    phone.start()
    assert phone.wait_for("registered", "failed")["type"] == "registered"
    contacts = eventually(lambda: center.stack.registered_contacts(AGENT), what="agent1 in Kamailio's location")
    assert any("transport=ws" in contact for contact in contacts), contacts

    refusals = {
        "a wrong password": {**config, "password": "d3JvbmcgcGFzc3dvcmQ="},
        "an expired credential": {**config, **_credential(center, AGENT, expires_in=-60)},
        "a credential for another agent": {**config, **_credential(center, "agent2", expires_in=600)},
        "a name on another agent's credential": {**config, "uri": "sip:agent2@127.0.0.1"},
    }
    for why, bad in refusals.items():
        intruder = BrowserPhone.create(page, bad, name="intruder")
        intruder.start()
        failed = intruder.wait_for("registered", "failed")
        assert failed["type"] == "failed", f"{why}: {failed}"
        assert failed["detail"]["code"] in (401, 403), f"{why}: {failed}"
        intruder.call("stop")
    assert "agent2" not in center.stack.kamcmd("ul.dump")


def test_the_browser_renews_its_credential_from_the_app_before_it_expires(page: Page, center: Center) -> None:
    """A credential that expires in 8 s, registrations of 10 s (JsSIP re-registers 5 s before the end): the first
    re-registration fetches a new credential, and registrations after the old one expired still succeed."""
    short = {**BrowserPhone.create(page, name="probe").config(), **_credential(center, AGENT, expires_in=8)}
    old_expiry = int(short["authorization_user"].split(":")[0])
    phone = BrowserPhone.create(page, short, renew=True, register_expires=10)
    phone.start()
    first = phone.wait_for("registered", "failed")
    assert first["type"] == "registered" and first["detail"]["expiresAt"] == short["expires_at"]
    renewed = phone.wait_for("renewed", "failed")
    assert renewed["type"] == "renewed", renewed
    fresh = phone.config()
    assert fresh["authorization_user"] != short["authorization_user"]
    assert renewed["detail"]["expiresAt"] == fresh["expires_at"] > short["expires_at"]

    def registered_after_the_old_credential_expired() -> bool:
        dump = center.stack.kamcmd("ul.lookup", "location", AGENT)
        return any(int(stamp) > old_expiry for stamp in re.findall(r"Last-Modified: (\d+)", dump))

    eventually(registered_after_the_old_credential_expired, what="a REGISTER accepted after the old credential expired")
    assert phone.property("registered") is True
    assert [e for e in phone.events() if e["type"] == "failed"] == []


def _credential(center: Center, user: str, *, expires_in: int) -> dict[str, str]:
    """A credential signed with the stack's secret (as the app makes them), for ``user``."""
    from datetime import UTC, datetime, timedelta

    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=expires_in)
    username, password = ephemeral_credential(center.stack.softphone_secret, user, expires_at)
    return {
        "authorization_user": username,
        "password": password,
        "expires_at": expires_at.isoformat().replace("+00:00", "Z"),
    }


def test_a_customer_call_reaches_the_agents_browser_with_audio_both_ways_and_ends_in_wrap_up(
    page: Page, center: Center
) -> None:
    phone = BrowserPhone.create(page)
    phone.start()
    assert phone.wait_for("registered", "failed")["type"] == "registered"
    available = center.api("POST", "/api/v1/agents/me/state", json={"state": "available"})
    assert available.status_code == 200 and available.json()["state"] == "available", available.text

    customer: Phone = center.stack.phone(CUSTOMER, tone_hz=CUSTOMER_HZ)
    customer.wait_registered()
    customer.dial(CENTER_NUMBER)
    ringing = phone.wait_for("incoming", timeout=30)
    assert ringing["detail"]["number"] == CUSTOMER
    phone.call("answer")
    phone.wait_for("connected")
    call = eventually(lambda: center.call(state="connected"), what="the call connected to the agent")
    assert call.agent == AGENT

    # The browser hears the customer: RTP keeps arriving, with the customer's tone in it.
    first = eventually(lambda: (s := phone.audio_stats()) and s["inbound"] and s["inbound"]["packets"] and s,
                       what="inbound RTP in the browser")  # fmt: skip
    loud = eventually(lambda: (s := phone.audio_stats()) and s["inbound"]["level"] > 0.05
                      and s["inbound"]["packets"] >= first["inbound"]["packets"] + 10 and s,
                      what="more packets with the customer's tone in the browser (audioLevel)")  # fmt: skip
    assert loud["inbound"]["bytes"] > first["inbound"]["bytes"]
    assert loud["outbound"]["packets"] > 0

    # The customer hears the browser's microphone (the fake device's tone), through rtpengine and the CTI.
    eventually(lambda: _tone_heard(customer, BROWSER_HZ), what=f"{BROWSER_HZ:g} Hz at the customer's phone")

    # rtpengine bridged the agent's leg: WebRTC (DTLS-SRTP, ICE) toward the browser, plain RTP toward the CTI.
    legs = [_protocols(center.stack, call_id) for call_id in center.stack.rtpengine_call_ids()]
    assert {"UDP/TLS/RTP/SAVPF": True, "RTP/AVP": True} in legs, legs

    # Hold and take back from the browser (re-INVITEs over the WebSocket): the audio comes back.
    assert phone.call("hold", True) is True and phone.property("onHold") is True
    assert phone.call("hold", False) is True and phone.property("onHold") is False
    before = phone.audio_stats()
    assert before is not None
    eventually(lambda: (s := phone.audio_stats()) and s["inbound"]["packets"] > before["inbound"]["packets"] + 25,
               what="audio after hold")  # fmt: skip

    phone.call("hangup")
    assert phone.wait_for("ended")["detail"]["originator"] == "local"
    customer.wait_for("CALL_CLOSED", timeout=WAIT_S)
    ended = eventually(lambda: center.call(id=call.id, state="wrap_up"), what="the call in wrap-up")
    assert ended.agent == AGENT


def _tone_heard(phone: Phone, hz: float) -> bool:
    """Whether the last second the phone heard is the ``hz`` tone (±5 %), loud all through."""
    try:
        audio = phone.received_audio()
    except (LabError, OSError):
        return False
    last = Audio(audio.samples[-audio.rate :], audio.rate)
    return audio.seconds >= 1.0 and last.rms() > 0.1 and abs(last.tone_hz() - hz) < hz * 0.05


def _protocols(stack: SipStack, call_id: str) -> dict[str, bool]:
    """The media protocols of an rtpengine call's parties → whether that party's stream carried packets."""
    found: dict[str, bool] = {}
    for tag in stack.rtpengine_query(call_id)["tags"].values():
        for media in tag["medias"]:
            packets = sum(s["stats"]["packets"] for s in media["streams"])
            found[str(media["protocol"])] = found.get(str(media["protocol"]), False) or packets > 0
    return found


def test_the_agent_desktop_answers_a_customer_call_with_its_browser_phone(browser: Browser, center: Center) -> None:
    """The real page: the operator signs in, lands on /desk, whose softphone registers by itself; a baresip
    customer calls, the desk shows the caller and rings, F7 answers in the browser, audio flows both ways, F10
    hangs up and the wrap-up asks for a result."""
    from playwright.sync_api import expect

    context = browser.new_context(base_url=center.base_url, locale="ja-JP", viewport={"width": 1440, "height": 900})
    context.set_default_timeout(WAIT_S * 1000)
    # The fake microphone's steady tone is what the customer must hear: the browser's noise suppression would
    # learn it away, as it should for a real hum. The desk takes its phone's options from this hook.
    context.add_init_script(f"window.kakehashiSoftphoneOptions = {{ audioConstraints: {json.dumps(RAW_AUDIO)} }};")
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.goto("/login")
    page.locator("#username").fill(AGENT)
    page.locator("#password").fill(PASSWORD)
    page.locator("#password").press("Enter")
    expect(page).to_have_url(re.compile(r"/desk$"))
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    expect(page.locator("#phone-status")).to_have_text("ブラウザ電話: 待受中")
    phone = BrowserPhone.attach(page)
    # An earlier test may have left the agent's last call in wrap-up: close it as the agent would.
    for left in center.api("GET", "/api/v1/calls/live").json():
        if left["state"] == "wrap_up":
            closed = center.api("POST", f"/api/v1/calls/{left['call_id']}/wrap-up", json={"disposition": "その他"})
            assert closed.status_code == 200, closed.text
    try:
        page.keyboard.press("F6")
        expect(page.locator("#state-badge")).to_have_attribute("data-state", "available")

        customer: Phone = center.stack.phone(DESK_CUSTOMER, tone_hz=CUSTOMER_HZ)  # its own phone on the stack
        customer.wait_registered()
        customer.dial(CENTER_NUMBER)
        phone.wait_for("incoming", timeout=30)
        expect(page.locator("#call-state")).to_have_text("着信中")
        expect(page.locator("#f-phone0")).to_have_value("03-1234-5679")  # an unknown caller: the blank form
        page.keyboard.press("F7")
        phone.wait_for("connected")
        expect(page.locator("#call-state")).to_have_text("通話中")
        expect(page.locator("#btn-mute")).to_be_enabled()
        eventually(lambda: (s := phone.audio_stats()) and s["inbound"] and s["inbound"]["level"] > 0.05 and s,
                   what="the customer's tone in the desk's browser phone")  # fmt: skip
        eventually(lambda: _tone_heard(customer, BROWSER_HZ), what=f"{BROWSER_HZ:g} Hz at the customer's phone")

        page.keyboard.press("F10")
        customer.wait_for("CALL_CLOSED", timeout=WAIT_S)
        expect(page.locator("#wrap")).to_be_visible()  # the focus stays in the customer form being typed
        expect(page.locator("#state-badge")).to_have_attribute("data-state", "wrap_up")
    finally:
        page.evaluate("() => window.softphone?.stop()")
        context.close()
    assert errors == [], errors
