"""Web pages. Japanese first; ``?lang=en`` or the ``lang`` cookie switches to English.

Pages are server-rendered with Jinja2 (autoescaped) and one local ES module; every asset is a
file under ``static/`` (no CDN, no web fonts), which the Content-Security-Policy enforces.
Forms carry a CSRF token: the session's own token once logged in; before login a double-submit
cookie (a login form cannot be posted from another site either).
"""

from __future__ import annotations

import hmac
import json
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from kakehashi import __version__
from kakehashi.agents import service as agents
from kakehashi.analytics import service as analytics
from kakehashi.auth import login as logins
from kakehashi.auth import service as auth
from kakehashi.auth.guard import PUBLIC, SESSION_COOKIE, Access, Identity, PageActor, client_origin, login_policy
from kakehashi.auth.models import User
from kakehashi.dispositions import service as dispositions
from kakehashi.ivr import service as ivr
from kakehashi.ivr.flow import Flow
from kakehashi.ivr.schemas import FlowCreate, VersionCreate
from kakehashi.ivr.templates import MINIMAL_EXAMPLE
from kakehashi.kit.api import IdPath, SessionDep, end_transaction_early
from kakehashi.kit.clock import BUSINESS_TZ
from kakehashi.kit.context import MANAGERS, STAFF, Actor, Role
from kakehashi.kit.db import utcnow
from kakehashi.kit.errors import Conflict, ValidationFailed, field_error
from kakehashi.kit.masking import mask_phone
from kakehashi.kit.phone import national_form
from kakehashi.routing import service as routing
from kakehashi.telephony.api import softphone_configured, websocket_origin
from kakehashi.web.i18n import LANGUAGE_NAMES, js_strings, pick_language, problem_text, translator

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
LOGIN_CSRF_COOKIE = "kkh_login_csrf"

router = APIRouter(include_in_schema=False)

# Only our own origin: even a stored <script> that slipped through could not run or call out.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def render_page(request: Request, name: str, status_code: int = 200, **context: object) -> HTMLResponse:
    """A template with what every page needs (language, strings, user, CSRF token) and the security headers."""
    lang = pick_language(request)
    identity: Identity | None = getattr(request.state, "identity", None)
    response = templates.TemplateResponse(
        request,
        name,
        {
            "lang": lang,
            "t": translator(lang),
            "languages": LANGUAGE_NAMES,
            "strings": js_strings(lang),
            "version": __version__,
            "user": identity.user if identity else None,
            "csrf_token": identity.web_session.csrf_token if identity and identity.web_session else "",
            "next_url": "",
            **context,
        },
        status_code=status_code,
    )
    response.headers.update(SECURITY_HEADERS)
    if request.query_params.get("lang") == lang:
        response.set_cookie("lang", lang, max_age=365 * 24 * 3600, samesite="lax", httponly=True)
    return response


def _safe_next(target: str | None) -> str:
    """Only our own paths: ``//evil.example`` or ``https://…`` would make the login an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _form_csrf_ok(request: Request, sent: str) -> bool:
    identity: Identity | None = getattr(request.state, "identity", None)
    expected = identity.web_session.csrf_token if identity and identity.web_session else ""
    return bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


@router.get("/", response_class=HTMLResponse)
def home(request: Request, _: PageActor) -> HTMLResponse:
    """The customer master: phone lookup → customer card; unknown caller → fast new-customer entry."""
    return render_page(request, "customers.html", phone=request.query_params.get("phone", "")[:40])


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
    if not _form_csrf_ok(request, csrf_token):
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


# --- The agent desktop ------------------------------------------------------------------------------------

StaffPage = Annotated[Actor, Depends(Access(STAFF, page=True))]


@router.get("/desk", response_class=HTMLResponse)
def desk_page(request: Request, session: SessionDep, actor: StaffPage) -> HTMLResponse:
    """The agent desktop: state, the call with its controls and the customer's card, fast entry, wrap-up."""
    agent = agents.own_agent(session, actor)
    aux_codes = agents.aux_codes(session, actor)
    labels = {q.name: q.label or q.name for q in routing.list_queues(session, actor)}
    telephony = request.app.state.telephony
    joined: list[str] = []
    if telephony is not None and agent is not None:
        name = agent.name
        end_transaction_early(session)  # the controller may load the tenant in its own transaction (one writer)
        joined = telephony.controller.queues_of(actor.tenant_id, name)
    response = render_page(
        request,
        "desk.html",
        phone="",
        agent=agent,
        queues=[labels.get(queue, queue) for queue in joined],
        aux_codes=aux_codes,
        dispositions=dispositions.list_dispositions(session, actor),
        softphone=agent is not None and softphone_configured(request.app.state.settings),
    )
    softphone = websocket_origin(request.app.state.settings)
    if softphone:  # the browser softphone talks SIP over Kamailio's WebSocket, another origin than ours
        policy = CONTENT_SECURITY_POLICY.replace("connect-src 'self'", f"connect-src 'self' {softphone}")
        response.headers["Content-Security-Policy"] = policy
    return response


# --- IVR flows: supervisors read them, admins save new versions ------------------------------------------

ManagerPage = Annotated[Actor, Depends(Access(MANAGERS, page=True))]
AdminPage = Annotated[Actor, Depends(Access(frozenset({Role.ADMIN}), page=True))]
#: Characters of flow JSON a form may send (500 nodes with long prompts fit).
FLOW_TEXT_MAX = 400_000
_VERSION = Query(ge=1, le=2**31 - 1)


def _flow_json(text: str) -> dict[str, Any]:
    """The typed JSON as an object, or ``ValidationFailed`` saying where it stops being JSON."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        raise ValidationFailed(problem, errors=[field_error("definition", problem)]) from None
    except RecursionError:
        raise ValidationFailed("nested too deep", errors=[field_error("definition", "nested too deep")]) from None
    if not isinstance(value, dict):
        problem = 'the flow must be a JSON object: {"start": …, "nodes": {…}}'
        raise ValidationFailed(problem, errors=[field_error("definition", problem)])
    return value


def _problems(exc: ValidationFailed | Conflict) -> list[dict[str, Any]]:
    return exc.errors or [field_error("", exc.detail)]


def _in_language(request: Request, errors: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The flow's problems in the page's language; ``original``: the service's English words when translated
    (the API and the user guide use them)."""
    lang = pick_language(request)
    shown = []
    for error in errors or []:
        message = str(error.get("message", ""))
        text = problem_text(lang, message)
        shown.append({**error, "message": text, "original": message if text != message else None})
    return shown


def _csrf_refused(t: Any) -> list[dict[str, Any]]:
    return [field_error("", t("フォームの有効期限が切れました。もう一度お試しください"))]


@router.get("/ivr", response_class=HTMLResponse)
def ivr_flows_page(request: Request, session: SessionDep, actor: ManagerPage) -> HTMLResponse:
    """The tenant's IVR flows; admins also get a form for a new one."""
    return _ivr_list(request, session, actor)


def _ivr_list(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    form: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render_page(
        request,
        "ivr.html",
        status_code=status_code,
        flows=ivr.list_flows(session, actor),
        can_edit=actor.role is Role.ADMIN,
        form=form or {"name": "", "definition": ivr.pretty_json(MINIMAL_EXAMPLE)},
        errors=_in_language(request, errors),
        tz=BUSINESS_TZ,
    )


@router.post("/ivr", response_class=HTMLResponse)
def ivr_create_page(
    request: Request,
    session: SessionDep,
    actor: AdminPage,
    name: Annotated[str, Form(max_length=100)],
    definition: Annotated[str, Form(max_length=FLOW_TEXT_MAX)],
    comment: Annotated[str, Form(max_length=500)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """A new flow; when refused, the page comes back with every problem and the text as typed."""
    form = {"name": name, "definition": definition, "comment": comment}
    if not _form_csrf_ok(request, csrf_token):
        t = translator(pick_language(request))
        return _ivr_list(request, session, actor, form=form, errors=_csrf_refused(t), status_code=403)
    try:
        body = FlowCreate(name=name, definition=_flow_json(definition), comment=comment)
        saved = ivr.create_flow(session, actor, body)
    except (ValidationFailed, Conflict) as exc:
        return _ivr_list(request, session, actor, form=form, errors=_problems(exc), status_code=exc.status)
    return RedirectResponse(f"/ivr/{saved.flow.id}?saved={saved.version.version}", status_code=303)


@router.get("/ivr/{flow_id}", response_class=HTMLResponse)
def ivr_flow_page(
    request: Request,
    session: SessionDep,
    actor: ManagerPage,
    flow_id: IdPath,
    version: Annotated[int | None, _VERSION] = None,
    saved: Annotated[int | None, _VERSION] = None,
) -> HTMLResponse:
    """One flow as an outline (``?version=`` shows an older one), its versions, and the JSON to edit."""
    return _ivr_flow(request, session, actor, flow_id, shown=version, saved=saved)


def _ivr_flow(
    request: Request,
    session: Session,
    actor: Actor,
    flow_id: int,
    *,
    shown: int | None = None,
    saved: int | None = None,
    text: str | None = None,
    comment: str = "",
    base_version: int | None = None,
    errors: list[dict[str, Any]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    current = ivr.get_flow(session, actor, flow_id)  # another tenant's id: 404
    row = ivr.get_version(session, actor, flow_id, shown) if shown else current.version
    return render_page(
        request,
        "ivr.html",
        status_code=status_code,
        flow=current.flow,
        shown=row,
        rows=ivr.outline(Flow.model_validate(row.definition)),
        versions=ivr.list_versions(session, actor, flow_id),
        text=ivr.pretty_json(row.definition) if text is None else text,
        comment=comment,
        base_version=base_version or current.flow.current_version,
        can_edit=actor.role is Role.ADMIN,
        errors=_in_language(request, errors),
        saved=saved,
        tz=BUSINESS_TZ,
    )


@router.post("/ivr/{flow_id}", response_class=HTMLResponse)
def ivr_save_page(
    request: Request,
    session: SessionDep,
    actor: AdminPage,
    flow_id: IdPath,
    definition: Annotated[str, Form(max_length=FLOW_TEXT_MAX)],
    comment: Annotated[str, Form(max_length=500)] = "",
    base_version: Annotated[int | None, Form(ge=1, le=2**31 - 1)] = None,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Save the JSON as a new version. Refused: the same page with every problem next to the text as typed."""

    def again(errors: list[dict[str, Any]], status_code: int, base: int | None = base_version) -> HTMLResponse:
        return _ivr_flow(
            request,
            session,
            actor,
            flow_id,
            text=definition,
            comment=comment,
            base_version=base,
            errors=errors,
            status_code=status_code,
        )

    if not _form_csrf_ok(request, csrf_token):
        return again(_csrf_refused(translator(pick_language(request))), 403)
    try:
        body = VersionCreate(definition=_flow_json(definition), comment=comment, base_version=base_version)
        saved = ivr.save_version(session, actor, flow_id, body)
    except ValidationFailed as exc:
        return again(_problems(exc), 422)
    except Conflict as exc:
        # Someone saved meanwhile: the outline shows their version, this text is kept; saving again is a choice.
        return again(_problems(exc), 409, base=None)
    return RedirectResponse(f"/ivr/{flow_id}?saved={saved.version.version}", status_code=303)


# --- Inbound routing: queues, agents, numbers, callbacks and voicemail, live ---------------------------------

#: Rows of the personal lists on /routing (the newest matter; the API lists more).
CALLBACKS_SHOWN = 50
VOICEMAILS_SHOWN = 20


def _elapsed(seconds: float | None) -> str:
    """``65`` → ``1:05``; an hour or more → ``1:02:03``."""
    if seconds is None:
        return ""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _number_shown(actor: Actor, e164: str | None) -> str:
    """A caller's number, masked for roles that do not see personal data (``auth.masking``)."""
    if not e164:
        return ""
    return national_form(e164) if actor.sees_personal_data else mask_phone(national_form(e164))


def _routing_live(session: Session, actor: Actor) -> dict[str, Any]:
    """What moves with the calls: each queue now (analytics' real-time figures) and each agent's state."""
    now = utcnow()
    queues = routing.list_queues(session, actor)
    return {
        "now": now,
        "queues": [(q, analytics.queue_snapshot(session, actor.tenant_id, q.name, now)) for q in queues],
        "agents": agents.list_agents(session, actor),
        "aux": {c.code: c.label for c in agents.aux_codes(session, actor)},
        "elapsed": _elapsed,
        "age": lambda at: (now - at).total_seconds(),
        "since": lambda seconds: (now - timedelta(seconds=seconds)).isoformat(),  # for the script's clock
    }


@router.get("/routing", response_class=HTMLResponse)
def routing_page(request: Request, session: SessionDep, actor: ManagerPage) -> HTMLResponse:
    """Supervisors' view of inbound routing: queues and agents (kept current by the page's script), the numbers
    and what answers them, callbacks to make and the latest voicemail (an audited read of callers' numbers)."""
    # The audited reads first: their audit rows make this transaction a writer early, which SQLite needs while
    # the call pipeline writes too (a transaction that reads long and writes late fails with "database is locked").
    waiting = [cb for cb in routing.callbacks(session, actor, CALLBACKS_SHOWN) if cb.status in ("pending", "dialing")]
    messages = routing.voicemails(session, actor, VOICEMAILS_SHOWN)
    flows = {f.name: f.id for f in ivr.list_flows(session, actor)}
    numbers = [(n, national_form(n.number_e164)) for n in routing.list_numbers(session, actor)]  # the center's own
    traffic = getattr(request.app.state, "demo_traffic", None)
    return render_page(
        request,
        "routing.html",
        **_routing_live(session, actor),
        numbers=numbers,
        flows=flows,
        callbacks=[(cb, _number_shown(actor, cb.number_e164)) for cb in waiting],
        voicemails=[(vm, _number_shown(actor, vm.number_e164)) for vm in messages],
        demo_rate=None if traffic is None or traffic.stopped else traffic.options.calls_per_hour,
        tz=BUSINESS_TZ,
    )


@router.get("/routing/live", response_class=HTMLResponse)
def routing_live_part(request: Request, session: SessionDep, actor: ManagerPage) -> HTMLResponse:
    """The queues and agents of /routing alone (no personal data), which the page's script swaps in."""
    return render_page(request, "_routing_live.html", **_routing_live(session, actor), tz=BUSINESS_TZ)
