"""Login: lockout against brute force, web sessions with CSRF, no session fixation, tokens, passwords."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from conftest import TEST_PASSWORD, MakeUser
from kakehashi.audit.models import AuditEvent
from kakehashi.auth import service as auth
from kakehashi.auth.guard import SESSION_COOKIE
from kakehashi.auth.models import User
from kakehashi.auth.passwords import password_problems, verify_password
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
