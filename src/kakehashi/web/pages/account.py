"""Signing in and out and changing one's password: ``/login``, ``/logout``, ``/account/password``.

Before login the form's CSRF token is a double-submit cookie (a login form cannot be posted from another site
either); once logged in, the session's own token.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from kakehashi.auth import login as logins
from kakehashi.auth import service as auth
from kakehashi.auth.guard import PUBLIC, SESSION_COOKIE, Identity, PageActor, client_origin, login_policy
from kakehashi.auth.models import User
from kakehashi.kit.api import SessionDep
from kakehashi.kit.context import Role
from kakehashi.kit.errors import ValidationFailed
from kakehashi.web.i18n import pick_language, translator
from kakehashi.web.render import form_csrf_ok, render_page

LOGIN_CSRF_COOKIE = "kkh_login_csrf"

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only our own paths: ``//evil.example`` or ``https://…`` would make the login an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/login", response_class=HTMLResponse, dependencies=[PUBLIC])
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return _login_form(request, next_url=_safe_next(next))


def _login_form(
    request: Request, *, next_url: str, error: str | None = None, username: str = "", status_code: int = 200
) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = render_page(
        request,
        "login.html",
        status_code=status_code,
        login_csrf=token,
        next_url=next_url,
        error=error,
        username=username,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=request.app.state.settings.cookie_secure,
        path="/login",
    )
    return response


@router.post("/login", response_class=HTMLResponse, dependencies=[PUBLIC])
async def login(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=60)],
    password: Annotated[str, Form(max_length=256)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    """Check the password (with lockout and rate limits, the hash outside any transaction: ``auth.login``) and
    start a fresh session; any earlier session cookie is replaced."""
    t = translator(pick_language(request))
    target = _safe_next(next)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), csrf_token.encode()):
        error = t("フォームの有効期限が切れました。もう一度お試しください")
        return await run_in_threadpool(_login_form, request, next_url=target, error=error, username=username,
                                       status_code=403)  # fmt: skip
    outcome = await logins.attempt(request, session, username, password)
    if outcome.user is None:
        if outcome.retry_after is not None:
            wait = f"{outcome.retry_after} {t('秒後に再試行できます')}"
            why = {"busy": "ログインが混み合っています", "rate_limited": "ログインの試行が多すぎます"}
            reason = why.get(outcome.reason or "", "ログインの失敗が続いたため、しばらくお待ちください")
            code = 503 if outcome.reason == "busy" else 429
            page = await run_in_threadpool(_login_form, request, next_url=target, error=f"{t(reason)} ({wait})",
                                           username=username, status_code=code)  # fmt: skip
            page.headers["Retry-After"] = str(outcome.retry_after)
            return page
        error = t("ユーザー名またはパスワードが違います")
        return await run_in_threadpool(_login_form, request, next_url=target, error=error, username=username,
                                       status_code=401)  # fmt: skip
    return await run_in_threadpool(_signed_in, request, session, outcome.user, target)


def _signed_in(request: Request, session: Session, user: User, target: str) -> Response:
    """A fresh session for the user who just proved their password (the browser's previous one ends)."""
    settings = request.app.state.settings
    policy = login_policy(settings)
    old = request.cookies.get(SESSION_COOKIE)
    if old:  # whatever session the browser had ends here
        previous = auth.resolve_session(session, old, policy=policy)
        if previous:
            auth.end_session(previous[1])
    secret, _web = auth.start_session(
        session,
        user,
        origin=client_origin(request),
        user_agent=request.headers.get("user-agent"),
        policy=policy,
    )
    if target == "/" and user.role == Role.OPERATOR.value:
        target = "/desk"  # an operator's day starts at the agent desktop
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(policy.session_max_age.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout", dependencies=[PUBLIC])
def logout(request: Request, session: SessionDep, csrf_token: Annotated[str, Form(max_length=100)] = "") -> Response:
    """End the session (a cross-site form cannot log you out either: the token is checked)."""
    secret = request.cookies.get(SESSION_COOKIE)
    live = auth.resolve_session(session, secret, policy=login_policy(request.app.state.settings)) if secret else None
    if live is not None:
        if not hmac.compare_digest(csrf_token.encode(), live[1].csrf_token.encode()):
            return Response("CSRF token missing or wrong", status_code=403, media_type="text/plain")
        auth.end_session(live[1])
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/account/password", response_class=HTMLResponse)
def password_page(request: Request, _: PageActor) -> HTMLResponse:
    return render_page(request, "password.html")


@router.post("/account/password", response_class=HTMLResponse)
def change_password(
    request: Request,
    session: SessionDep,
    actor: PageActor,
    current_password: Annotated[str, Form(max_length=256)],
    new_password: Annotated[str, Form(max_length=256)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> HTMLResponse:
    if not form_csrf_ok(request, csrf_token):
        return render_page(request, "password.html", status_code=403, errors=["CSRF token missing or wrong"])
    identity: Identity = request.state.identity
    try:
        auth.change_password(
            session,
            identity.user,
            current_password,
            new_password,
            actor=actor,
            keep_session_id=identity.web_session.id if identity.web_session else None,
        )
    except ValidationFailed as exc:
        return render_page(
            request, "password.html", status_code=422, errors=[e["message"] for e in exc.errors] or [exc.detail]
        )
    return render_page(request, "password.html", done=True)
