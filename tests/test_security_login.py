"""Login: lockout against brute force, web sessions with CSRF, no session fixation, tokens, passwords."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from conftest import TEST_PASSWORD, MakeUser
from kakehashi.app import create_app
from kakehashi.audit.models import AuditEvent
from kakehashi.auth import service as auth
from kakehashi.auth.guard import SESSION_COOKIE
from kakehashi.auth.limits import HashGate, LoginLimits, RateLimiter
from kakehashi.auth.models import NAME_WIDE, LoginThrottle, User
from kakehashi.auth.passwords import password_problems, verify_password
from kakehashi.kit.config import Settings
from kakehashi.kit.context import Role
from kakehashi.kit.db import utcnow

POLICY = auth.LoginPolicy(max_failures=5, lockout_seconds=30, lockout_max_seconds=900)


def web_login(client: TestClient, username: str, password: str = TEST_PASSWORD, next_url: str = "/") -> str:
    """Log in through the form like a browser; returns the page's CSRF token for API calls."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    r = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token.group(1), "next": next_url},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    home = client.get("/")
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', home.text)
    assert found
    return found.group(1)


class TestLockout:
    def test_given_five_failures_then_locked_even_with_the_right_password(
        self, app_client: TestClient, make_user: MakeUser, session: Session
    ) -> None:
        user = make_user(Role.OPERATOR)
        for _ in range(5):
            r = app_client.post("/api/v1/auth/token", json={"username": user.username, "password": "wrong-guess"})
            assert r.status_code == 401
        r = app_client.post("/api/v1/auth/token", json={"username": user.username, "password": TEST_PASSWORD})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        outcomes = [e.outcome for e in session.query(AuditEvent).filter_by(action="login", username=user.username)]
        assert outcomes == ["failed"] * 5 + ["locked"]

    def test_unknown_names_lock_the_same_way(self, app_client: TestClient) -> None:
        """So the lockout does not tell an attacker which names exist."""
        codes = [
            app_client.post("/api/v1/auth/token", json={"username": "nobody", "password": "x"}).status_code
            for _ in range(6)
        ]
        assert codes == [401] * 5 + [429]

    def test_lockout_doubles_then_expires(self, session: Session, make_user: MakeUser) -> None:
        user = make_user(Role.OPERATOR)
        now = utcnow()
        for _ in range(5):
            assert auth.check_login(session, user.username, "bad", origin="t", policy=POLICY, now=now).user is None
        locked = auth.check_login(session, user.username, TEST_PASSWORD, origin="t", policy=POLICY, now=now)
        assert locked.user is None and locked.retry_after == 30
        later = now + timedelta(seconds=31)
        assert auth.check_login(session, user.username, "bad", origin="t", policy=POLICY, now=later).retry_after is None
        relocked = auth.check_login(session, user.username, TEST_PASSWORD, origin="t", policy=POLICY, now=later)
        assert relocked.retry_after == 60  # the sixth failure doubled the wait
        much_later = later + timedelta(seconds=61)
        ok = auth.check_login(session, user.username, TEST_PASSWORD, origin="t", policy=POLICY, now=much_later)
        assert ok.user is not None and ok.user.id == user.id
        again = auth.check_login(session, user.username, "bad", origin="t", policy=POLICY, now=much_later)
        assert again.retry_after is None  # success reset the count

    def test_admin_password_reset_unlocks(self, client: TestClient, session: Session, make_user: MakeUser) -> None:
        user = make_user(Role.OPERATOR)
        for _ in range(6):
            auth.check_login(session, user.username, "bad", origin="t", policy=POLICY)
        r = client.patch(f"/api/v1/users/{user.id}", json={"new_password": "a-brand-new-passphrase"})
        assert r.status_code == 200
        session.expire_all()  # the app changed the row in its own session
        assert auth.check_login(session, user.username, "a-brand-new-passphrase", origin="t", policy=POLICY).user

    def test_inactive_user_cannot_log_in(self, app_client: TestClient, make_user: MakeUser, session: Session) -> None:
        user = make_user(Role.OPERATOR)
        user.active = False
        session.flush()
        r = app_client.post("/api/v1/auth/token", json={"username": user.username, "password": TEST_PASSWORD})
        assert r.status_code == 401


class TestWebSession:
    def test_login_sets_a_httponly_samesite_cookie_and_redirects_to_next(
        self, app_client: TestClient, make_user: MakeUser
    ) -> None:
        user = make_user(Role.OPERATOR)
        page = app_client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        r = app_client.post(
            "/login",
            data={"username": user.username, "password": TEST_PASSWORD, "csrf_token": token.group(1), "next": "/?x=1"},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == "/?x=1"
        cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie

    def test_next_cannot_send_the_user_elsewhere(self, app_client: TestClient, make_user: MakeUser) -> None:
        user = make_user(Role.OPERATOR)
        for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
            page = app_client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token
            r = app_client.post(
                "/login",
                data={"username": user.username, "password": TEST_PASSWORD, "csrf_token": token.group(1), "next": evil},
                follow_redirects=False,
            )
            assert r.headers["location"] == "/desk"  # an operator's home; never the evil target

    def test_pages_redirect_to_login_when_logged_out(self, app_client: TestClient) -> None:
        r = app_client.get("/?phone=0312345678", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/%3Fphone%3D0312345678"

    def test_a_login_form_without_its_csrf_cookie_is_refused(self, app_client: TestClient, make_user: MakeUser) -> None:
        user = make_user(Role.OPERATOR)
        r = app_client.post(
            "/login", data={"username": user.username, "password": TEST_PASSWORD, "csrf_token": "forged"}
        )
        assert r.status_code == 403 and SESSION_COOKIE not in r.cookies

    def test_cookie_authenticated_changes_need_the_csrf_header(
        self, app_client: TestClient, make_user: MakeUser
    ) -> None:
        csrf = web_login(app_client, make_user(Role.OPERATOR).username)
        body = {"name": "CSRF 確認"}
        assert app_client.post("/api/v1/customers", json=body).status_code == 403
        assert app_client.post("/api/v1/customers", json=body, headers={"X-CSRF-Token": "wrong"}).status_code == 403
        assert app_client.post("/api/v1/customers", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201
        assert app_client.get("/api/v1/customers").status_code == 200  # reads need no token

    def test_logout_needs_the_token_and_ends_the_session(self, app_client: TestClient, make_user: MakeUser) -> None:
        csrf = web_login(app_client, make_user(Role.OPERATOR).username)
        assert app_client.post("/logout", data={}, follow_redirects=False).status_code == 403
        assert app_client.get("/api/v1/auth/me").status_code == 200
        cookie = app_client.cookies.get(SESSION_COOKIE)
        r = app_client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303
        app_client.cookies.set(SESSION_COOKIE, cookie or "", domain="testserver.local")
        assert app_client.get("/api/v1/auth/me").status_code == 401  # the old cookie is dead server-side

    def test_no_session_fixation(self, app_client: TestClient, make_user: MakeUser, session: Session) -> None:
        """A session id planted before login is never adopted; the login issues a new one."""
        planted = "attacker-chosen-session-id"
        app_client.cookies.set(SESSION_COOKIE, planted, domain="testserver.local")
        web_login(app_client, make_user(Role.OPERATOR).username)
        assert app_client.cookies.get(SESSION_COOKIE) not in (None, planted)
        attacker = TestClient(app_client.app)
        attacker.cookies.set(SESSION_COOKIE, planted)
        assert attacker.get("/api/v1/auth/me").status_code == 401

    def test_a_second_login_ends_the_first_session_of_that_browser(
        self, app_client: TestClient, make_user: MakeUser
    ) -> None:
        user = make_user(Role.OPERATOR)
        web_login(app_client, user.username)
        first = app_client.cookies.get(SESSION_COOKIE)
        web_login(app_client, user.username)
        probe = TestClient(app_client.app)
        probe.cookies.set(SESSION_COOKIE, first or "")
        assert probe.get("/api/v1/auth/me").status_code == 401

    def test_idle_sessions_end(self, session: Session, make_user: MakeUser) -> None:
        user = make_user(Role.OPERATOR)
        secret, _web = auth.start_session(session, user, origin="t", user_agent=None, policy=POLICY)
        assert auth.resolve_session(session, secret, policy=POLICY) is not None
        late = utcnow() + POLICY.session_idle + timedelta(seconds=1)
        assert auth.resolve_session(session, secret, policy=POLICY, now=late) is None
        assert auth.resolve_session(session, secret, policy=POLICY) is None  # revoked, not only expired


class TestTokensAndPasswords:
    def test_token_login_me_and_logout(self, app_client: TestClient, make_user: MakeUser) -> None:
        user = make_user(Role.SUPERVISOR)
        r = app_client.post("/api/v1/auth/token", json={"username": user.username, "password": TEST_PASSWORD})
        assert r.status_code == 201
        token = r.json()["token"]
        assert token.startswith("kkh_")
        headers = {"Authorization": f"Bearer {token}"}
        me = app_client.get("/api/v1/auth/me", headers=headers).json()
        assert me["user"]["role"] == "supervisor" and me["auth"] == "token"
        assert app_client.post("/api/v1/auth/logout", headers=headers).status_code == 204
        assert app_client.get("/api/v1/auth/me", headers=headers).status_code == 401

    def test_only_a_hash_of_the_token_is_stored(self, client: TestClient, session: Session) -> None:
        made = client.post("/api/v1/auth/tokens", json={"name": "crm"}).json()
        listed = client.get("/api/v1/auth/tokens").json()
        assert made["token"] not in str(listed)
        assert all(made["token"] not in (t.secret_hash, t.prefix) for t in session.query(auth.ApiToken))

    @pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer kkh_not-a-real-token", "Bearer nonsense"])
    def test_bad_authorization_headers_get_401(self, app_client: TestClient, header: str) -> None:
        r = app_client.get("/api/v1/customers", headers={"Authorization": header})
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
        assert r.headers["content-type"].startswith("application/problem+json")

    def test_password_change_checks_the_current_one_and_the_rules(self, client_as: object, session: Session) -> None:
        c = client_as(Role.OPERATOR)  # type: ignore[operator]
        r = c.post("/api/v1/auth/password", json={"current_password": "wrong", "new_password": "another-long-one"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "current_password"
        r = c.post("/api/v1/auth/password", json={"current_password": TEST_PASSWORD, "new_password": "short"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "new_password"
        r = c.post(
            "/api/v1/auth/password", json={"current_password": TEST_PASSWORD, "new_password": "another-long-one"}
        )
        assert r.status_code == 204
        session.expire_all()
        user = session.get(User, c.user.id)
        assert user is not None and verify_password(user.password_hash, "another-long-one")

    def test_password_rules(self) -> None:
        assert password_problems("short", "sato") == ["use at least 10 characters"]
        assert "do not put the user name in the password" in password_problems("sato-12345678", "sato")
        assert password_problems("aaaaaaaaaaaa", "x") == ["use more different characters"]
        assert password_problems("a long enough passphrase", "sato") == []

    def test_hashes_are_argon2id_and_only_admins_are_center_wide(self, session: Session) -> None:
        with pytest.raises(auth.ValidationFailed):
            auth.create_user(session, username="hash.check", password="a-long-passphrase", role=Role.OPERATOR,
                             tenant_id=None)  # fmt: skip
        made = auth.create_user(
            session, username="hash.check", password="a-long-passphrase", role=Role.ADMIN, tenant_id=None
        )
        assert made.password_hash.startswith("$argon2id$")


class TestLockoutIsNoWeapon:
    """Issue 15 item 3: failures lock a name at the address they came from; the name-wide lock is slower and
    spares the addresses its user logged in from, so an attacker elsewhere cannot keep the user out."""

    def test_a_lock_holds_only_at_the_address_the_failures_came_from(
        self, session: Session, make_user: MakeUser
    ) -> None:
        admin = make_user(Role.ADMIN)
        for _ in range(5):
            assert auth.check_login(session, admin.username, "guess", origin="203.0.113.9", policy=POLICY).user is None
        locked = auth.check_login(session, admin.username, TEST_PASSWORD, origin="203.0.113.9", policy=POLICY)
        assert locked.user is None and locked.retry_after == 30 and locked.reason == "locked"
        ok = auth.check_login(session, admin.username, TEST_PASSWORD, origin="192.0.2.10", policy=POLICY)
        assert ok.user is not None and ok.user.id == admin.id

    def test_the_name_wide_lock_spares_the_users_known_addresses(self, session: Session, make_user: MakeUser) -> None:
        user = make_user(Role.ADMIN)
        assert auth.check_login(session, user.username, TEST_PASSWORD, origin="192.0.2.10", policy=POLICY).user
        for i in range(POLICY.name_max_failures):  # a botnet: a few guesses from each of many addresses
            origin = f"198.51.100.{i // 4}"
            assert auth.check_login(session, user.username, "guess", origin=origin, policy=POLICY).user is None
        elsewhere = auth.check_login(session, user.username, TEST_PASSWORD, origin="198.51.100.200", policy=POLICY)
        assert elsewhere.user is None and elsewhere.reason == "locked"  # a new address waits
        home = auth.check_login(session, user.username, TEST_PASSWORD, origin="192.0.2.10", policy=POLICY)
        assert home.user is not None  # the user's own address is not locked out
        locked = auth.check_login(session, user.username, TEST_PASSWORD, origin="198.51.100.201", policy=POLICY)
        assert locked.reason == "locked"  # and the attack's lock stays for everyone else

    def test_unknown_names_are_locked_per_address_and_name_wide_the_same_way(self, session: Session) -> None:
        for i in range(POLICY.name_max_failures):
            auth.check_login(session, "nobody.here", "guess", origin=f"198.51.100.{i // 4}", policy=POLICY)
        assert auth.check_login(session, "nobody.here", "x", origin="192.0.2.77", policy=POLICY).reason == "locked"

    def test_parallel_first_failures_for_one_name_count_each_without_an_error(
        self, session: Session, make_user: MakeUser
    ) -> None:
        """The throttle row is inserted once (ON CONFLICT DO NOTHING), then locked and counted."""
        user = make_user(Role.OPERATOR)
        for _ in range(3):
            auth.check_login(session, user.username, "guess", origin="192.0.2.5", policy=POLICY)
        rows = session.query(LoginThrottle).filter_by(username=user.username).all()
        assert {(r.origin, r.failures) for r in rows} == {("192.0.2.5", 3), (NAME_WIDE, 3)}


def limited_app(settings: Settings, session_factory: sessionmaker[Session], **limits: float) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=limits), session_factory=session_factory))


class TestRateLimits:
    """Issue 15 item 2: per source address and per user name, 429 + Retry-After as problem JSON, before any
    hash or database work; a flood is audited once per episode, not per request."""

    def test_an_address_gets_429_with_retry_after_and_one_audit_row(
        self, settings: Settings, session_factory: sessionmaker[Session], session: Session
    ) -> None:
        with limited_app(settings, session_factory, login_attempts_per_address_minute=3) as c:
            codes = [
                c.post("/api/v1/auth/token", json={"username": f"flood-{i}", "password": "x"}).status_code
                for i in range(3)
            ]
            assert codes == [401] * 3
            for i in range(3):  # the first refused by the route (and audited), the others before routing
                r = c.post("/api/v1/auth/token", json={"username": f"more-{i}", "password": "x"})
                assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
                assert r.headers["content-type"].startswith("application/problem+json")
                assert r.json()["reason"] == "rate_limited"
        limited = session.query(AuditEvent).filter_by(action="login", outcome="limited").all()
        assert len(limited) == 1 and limited[0].detail == {
            "limit": "address",
            "retry_after": limited[0].detail["retry_after"],
        }

    def test_successes_give_their_attempt_back(
        self, settings: Settings, session_factory: sessionmaker[Session], make_user: MakeUser
    ) -> None:
        """A whole center behind one NAT address logs in as often as it needs."""
        user = make_user(Role.OPERATOR)
        with limited_app(settings, session_factory, login_attempts_per_address_minute=2) as c:
            for _ in range(6):
                r = c.post("/api/v1/auth/token", json={"username": user.username, "password": TEST_PASSWORD})
                assert r.status_code == 201

    def test_a_name_is_limited_across_addresses_but_not_others(
        self, settings: Settings, session_factory: sessionmaker[Session]
    ) -> None:
        with limited_app(settings, session_factory, login_attempts_per_name_minute=2) as c:
            codes = [c.post("/api/v1/auth/token", json={"username": "target", "password": "x"}).status_code
                     for _ in range(3)]  # fmt: skip
            assert codes == [401, 401, 429]
            assert c.post("/api/v1/auth/token", json={"username": "someone", "password": "x"}).status_code == 401

    def test_the_web_form_is_limited_too(self, settings: Settings, session_factory: sessionmaker[Session]) -> None:
        with limited_app(settings, session_factory, login_attempts_per_address_minute=1) as c:
            page = c.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token
            form = {"username": "x-user", "password": "wrong", "csrf_token": token.group(1)}
            first = c.post("/login", data=form)
            assert first.status_code == 401
            again = re.search(r'name="csrf_token" value="([^"]+)"', first.text)  # the form comes back anew
            assert again
            r = c.post("/login", data={**form, "csrf_token": again.group(1)})
            assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
            r = c.post("/login", data={**form, "csrf_token": again.group(1)})  # now answered before routing
            assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
            assert r.headers["content-type"].startswith("text/plain") and "Too many login attempts" in r.text

    def test_busy_hashing_slots_answer_503_with_retry_after(
        self, settings: Settings, session_factory: sessionmaker[Session]
    ) -> None:
        """The slots bound memory (64 MiB a hash) and CPU; a login that finds them taken does not queue."""
        app = create_app(settings, session_factory=session_factory)
        gate = HashGate(1, max_wait_s=0.05)
        app.state.login_limits = LoginLimits(RateLimiter(0), RateLimiter(0), gate)
        inside, release = threading.Event(), threading.Event()
        holder = threading.Thread(target=gate.run, args=(lambda: (inside.set(), release.wait(30)),))
        holder.start()
        try:
            assert inside.wait(30)
            with TestClient(app) as c:
                r = c.post("/api/v1/auth/token", json={"username": "someone", "password": "x"})
                assert r.status_code == 503 and r.headers["Retry-After"] == "1"
                assert r.headers["content-type"].startswith("application/problem+json")
                page = c.get("/login")
                token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
                assert token
                form = {"username": "someone", "password": "x", "csrf_token": token.group(1)}
                assert c.post("/login", data=form).status_code == 503
        finally:
            release.set()
            holder.join(30)

    def test_the_bucket_refills_at_its_rate(self) -> None:
        now = [0.0]
        limiter = RateLimiter(6, clock=lambda: now[0])  # 6 a minute: one every 10 s
        assert all(limiter.take("a").ok for _ in range(6))
        refused = limiter.take("a")
        assert not refused.ok and refused.retry_after == 10 and refused.first_refusal
        assert not limiter.take("a").first_refusal  # the same episode
        now[0] = 10.0
        assert limiter.take("a").ok and not limiter.take("a").ok
        assert limiter.take("b").ok  # keys are independent

    def test_memory_stays_bounded(self) -> None:
        limiter = RateLimiter(60, max_keys=100)
        for i in range(1000):
            limiter.take(f"name-{i}")
        assert len(limiter._buckets) <= 100


class TestTokensDieWithThePassword:
    """Issue 15 item 5: a password change or reset and a disable revoke the user's tokens and sessions; enabling
    again revives none; admins list and revoke a user's tokens in their tenant; all audited."""

    @staticmethod
    def token(app_client: TestClient, user: User, name: str = "crm") -> dict[str, str]:
        r = app_client.post("/api/v1/auth/token", json={"username": user.username, "password": TEST_PASSWORD,
                                                        "name": name})  # fmt: skip
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    def test_an_own_change_revokes_the_other_tokens_and_sessions(
        self, app_client: TestClient, make_user: MakeUser, session: Session, settings: Settings,
        session_factory: sessionmaker[Session],
    ) -> None:  # fmt: skip
        user = make_user(Role.OPERATOR)
        browser = TestClient(app_client.app)
        web_login(browser, user.username)
        using, other = self.token(app_client, user, "using"), self.token(app_client, user, "other")
        body = {"current_password": TEST_PASSWORD, "new_password": "a-fresh-passphrase-1"}
        assert app_client.post("/api/v1/auth/password", json=body, headers=using).status_code == 204
        assert app_client.get("/api/v1/auth/me", headers=other).status_code == 401
        assert browser.get("/api/v1/auth/me").status_code == 401
        assert app_client.get("/api/v1/auth/me", headers=using).status_code == 200  # the one making the change
        row = session.query(AuditEvent).filter_by(action="user.password_change", user_id=user.id).one()
        assert row.detail == {"sessions_ended": 1, "tokens_revoked": 1}

    def test_a_web_change_revokes_every_token(self, app_client: TestClient, make_user: MakeUser) -> None:
        user = make_user(Role.OPERATOR)
        headers = self.token(app_client, user)
        csrf = web_login(app_client, user.username)
        body = {"current_password": TEST_PASSWORD, "new_password": "a-fresh-passphrase-2", "csrf_token": csrf}
        assert app_client.post("/account/password", data=body).status_code == 200
        assert app_client.get("/api/v1/auth/me", headers=headers).status_code == 401
        assert app_client.get("/api/v1/auth/me").status_code == 200  # the page's own session stays

    def test_an_admin_reset_revokes_tokens(
        self, app_client: TestClient, client: TestClient, make_user: MakeUser, session: Session
    ) -> None:
        user = make_user(Role.OPERATOR)
        headers = self.token(app_client, user)
        r = client.patch(f"/api/v1/users/{user.id}", json={"new_password": "reset-by-the-admin-1"})
        assert r.status_code == 200
        assert app_client.get("/api/v1/auth/me", headers=headers).status_code == 401
        row = session.query(AuditEvent).filter_by(action="user.update", resource_id=user.id).one()
        assert row.detail["password_reset"] is True and row.detail["tokens_revoked"] == 1

    def test_a_shell_reset_revokes_tokens(self, app_client: TestClient, make_user: MakeUser, session: Session) -> None:
        user = make_user(Role.OPERATOR)
        headers = self.token(app_client, user)
        ended = auth.reset_password(session, user, "reset-from-the-shell-1")  # `kakehashi user passwd`
        assert ended == {"sessions_ended": 0, "tokens_revoked": 1}
        assert app_client.get("/api/v1/auth/me", headers=headers).status_code == 401

    def test_disabling_revokes_and_enabling_again_revives_nothing(
        self, app_client: TestClient, client: TestClient, make_user: MakeUser, settings: Settings,
        session_factory: sessionmaker[Session],
    ) -> None:  # fmt: skip
        user = make_user(Role.OPERATOR)
        headers = self.token(app_client, user)
        browser = TestClient(app_client.app)
        web_login(browser, user.username)
        assert client.patch(f"/api/v1/users/{user.id}", json={"active": False}).status_code == 200
        assert client.patch(f"/api/v1/users/{user.id}", json={"active": True}).status_code == 200
        assert app_client.get("/api/v1/auth/me", headers=headers).status_code == 401
        assert browser.get("/api/v1/auth/me").status_code == 401

    def test_admins_list_and_revoke_a_users_tokens_audited(
        self, app_client: TestClient, client: TestClient, make_user: MakeUser, session: Session
    ) -> None:
        user = make_user(Role.OPERATOR)
        headers = self.token(app_client, user, "crm-sync")
        listed = client.get(f"/api/v1/users/{user.id}/tokens")
        assert listed.status_code == 200
        (entry,) = listed.json()
        assert entry["name"] == "crm-sync" and entry["revoked_at"] is None and "token" not in entry
        assert client.delete(f"/api/v1/users/{user.id}/tokens/{entry['id']}").status_code == 204
        assert app_client.get("/api/v1/auth/me", headers=headers).status_code == 401
        assert client.get(f"/api/v1/users/{user.id}/tokens").json()[0]["revoked_at"] is not None
        actions = {e.action for e in session.query(AuditEvent).filter_by(user_id=client.user.id)}  # type: ignore[attr-defined]
        assert {"token.list", "token.revoke"} <= actions
        revoked = session.query(AuditEvent).filter_by(action="token.revoke").one()
        assert revoked.resource_id == entry["id"] and revoked.detail["user_id"] == user.id

    def test_another_tenants_user_and_another_users_token_are_404(
        self, app_client: TestClient, client: TestClient, make_user: MakeUser
    ) -> None:
        foreign = make_user(Role.OPERATOR, "client-b")
        self.token(app_client, foreign)
        assert client.get(f"/api/v1/users/{foreign.id}/tokens").status_code == 404
        mine, theirs = make_user(Role.OPERATOR), make_user(Role.OPERATOR)
        self.token(app_client, theirs)
        owner = TestClient(app_client.app)
        owner.headers.update(self.token(app_client, theirs, "mine"))
        token_id = owner.get("/api/v1/auth/tokens").json()[0]["id"]
        assert client.delete(f"/api/v1/users/{mine.id}/tokens/{token_id}").status_code == 404
        assert client.delete(f"/api/v1/users/{foreign.id}/tokens/{token_id}").status_code == 404
