"""The route guard: who is calling, in which tenant, and may they use this route.

Every route declares its roles with one of the ``*Actor`` aliases below (or ``PUBLIC``); the app refuses
to start if a route has no declaration (``check_routes``), and tests walk the route table too.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi import routing as fastapi_routing
from fastapi.routing import APIRoute, APIWebSocketRoute
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from kakehashi.auth import service
from kakehashi.auth.masking import sees_personal_data
from kakehashi.auth.models import ApiToken, User, WebSession
from kakehashi.kit.api import SessionDep
from kakehashi.kit.config import Settings
from kakehashi.kit.context import ALL_ROLES, MANAGERS, STAFF, Actor, Role
from kakehashi.kit.errors import DomainError, Forbidden, Unauthorized
from kakehashi.tenants import service as tenants

WsEndpoint = Callable[..., Awaitable[None]]
SESSION_COOKIE = "kkh_session"
CSRF_HEADER = "X-CSRF-Token"
TENANT_HEADER = "X-Kakehashi-Tenant"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRedirect(DomainError):
    """A page asked for without a login goes to the login page (303), not to a JSON 401."""

    status = 303
    type_ = "/problems/login-required"
    title = "Login required"


def login_policy(settings: Settings) -> service.LoginPolicy:
    return service.LoginPolicy(
        max_failures=settings.login_max_failures,
        lockout_seconds=settings.lockout_seconds,
        lockout_max_seconds=settings.lockout_max_seconds,
        name_max_failures=settings.login_name_max_failures,
        session_idle=timedelta(minutes=settings.session_idle_minutes),
        session_max_age=timedelta(hours=settings.session_max_hours),
    )


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified caller: the user and how they proved it (a web session or an API token)."""

    user: User
    web_session: WebSession | None = None
    token: ApiToken | None = None


def client_origin(request: HTTPConnection) -> str:
    return (request.client.host if request.client else "unknown")[:64]


def identify(request: HTTPConnection, session: Session) -> Identity | None:
    """The user behind a bearer token or a session cookie; None when there is neither or it is not valid."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return None
        found = service.resolve_token(session, secret.strip())
        return Identity(found[0], token=found[1]) if found else None
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        live = service.resolve_session(session, cookie, policy=login_policy(request.app.state.settings))
        return Identity(live[0], web_session=live[1]) if live else None
    return None


def _acting_tenant(request: HTTPConnection, session: Session, identity: Identity) -> int:
    """Tenant users act in their own tenant; center-wide admins in the one they picked (header or session)."""
    user = identity.user
    code = request.headers.get(TENANT_HEADER)
    if user.tenant_id is not None:
        if code and (tenant := tenants.get_by_code(session, code)) is not None and tenant.id == user.tenant_id:
            return user.tenant_id
        if code:
            raise Forbidden("you can only act in your own tenant")
        return user.tenant_id
    if code:
        tenant = tenants.get_by_code(session, code)
        if tenant is None:
            raise Forbidden(f"unknown tenant '{code[:40]}'")
        return tenant.id
    if identity.web_session is not None and identity.web_session.acting_tenant_id is not None:
        return identity.web_session.acting_tenant_id
    return int(request.app.state.default_tenant_id)


def _check_csrf(request: Request, identity: Identity) -> None:
    """Cookie-authenticated changes must echo the session's CSRF token (bearer tokens are not ambient)."""
    if identity.web_session is None or request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), identity.web_session.csrf_token.encode()):
        raise Forbidden("missing or wrong CSRF token", code="csrf")


def actor_for(conn: HTTPConnection, session: Session, identity: Identity) -> Actor:
    """The ``Actor`` of a verified caller: tenant to act in, role, masking right, origin and route."""
    tenant_id = _acting_tenant(conn, session, identity)
    role = Role(identity.user.role)
    # Only a client viewer's view depends on the tenant's choice: no tenant read for the others.
    tenant = tenants.get_by_id(session, tenant_id) if role is Role.CLIENT_VIEWER else None
    route = conn.scope.get("route")
    method = conn.scope.get("method", "WS")
    return Actor(
        tenant_id=tenant_id,
        username=identity.user.username,
        user_id=identity.user.id,
        role=role,
        origin=client_origin(conn),
        route=f"{method} {getattr(route, 'path', conn.url.path)}",
        sees_personal_data=sees_personal_data(
            role, tenant_allows_clients=bool(tenant and tenant.client_sees_personal_data)
        ),
    )


def websocket_access(*roles: Role) -> Callable[[WsEndpoint], WsEndpoint]:
    """Declare who may open a WebSocket route (checked by :func:`check_routes` like HTTP routes)."""

    def mark(endpoint: WsEndpoint) -> WsEndpoint:
        endpoint.access_roles = frozenset(roles)  # type: ignore[attr-defined]
        return endpoint

    return mark


def same_origin(conn: HTTPConnection) -> bool:
    """A browser opens cross-site WebSockets with our cookies attached (no CORS check happens):
    refuse cookie logins whose page came from another origin."""
    origin = conn.headers.get("origin")
    if not origin:
        return True  # not a browser
    return urlsplit(origin).netloc == conn.headers.get("host", "")


class Access:
    """A FastAPI dependency that admits the named roles and returns the caller as an ``Actor``."""

    def __init__(self, roles: frozenset[Role], *, page: bool = False) -> None:
        self.roles = roles
        self.page = page

    def __call__(self, request: Request, session: SessionDep) -> Actor:
        identity = identify(request, session)
        if identity is None:
            if self.page:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                raise LoginRedirect("log in first", headers={"Location": f"/login?next={_quote(target)}"})
            raise Unauthorized()
        actor = actor_for(request, session, identity)
        request.state.actor = actor
        request.state.identity = identity
        if actor.role not in self.roles:
            raise Forbidden(f"the {identity.user.role} role cannot use this")
        if not self.page:
            _check_csrf(request, identity)
        return actor


class Public:
    """Marks a route as open to anyone (login page, health check). Must be declared like a role set."""

    def __call__(self) -> None:
        return None


def _quote(path: str) -> str:
    return quote(path, safe="/")


def allow(*roles: Role) -> Any:
    return Depends(Access(frozenset(roles)))


#: Role sets used by routes. Reading the alias tells you who may call the route.
AnyRoleActor = Annotated[Actor, allow(*ALL_ROLES)]
StaffActor = Annotated[Actor, allow(*STAFF)]
ManagerActor = Annotated[Actor, allow(*MANAGERS)]
AdminActor = Annotated[Actor, allow(Role.ADMIN)]
PageActor = Annotated[Actor, Depends(Access(ALL_ROLES, page=True))]
PUBLIC = Depends(Public())


def route_access(route: APIRoute) -> Access | Public | None:
    """The access declaration of a route (found anywhere in its dependency tree), or None."""
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Access | Public):
            return dep.call
        stack.extend(dep.dependencies)
    return None


def api_routes(app: FastAPI) -> list[tuple[str, str, APIRoute]]:
    """Every (method, full path, route) of the app, included routers flattened."""
    iter_contexts = getattr(fastapi_routing, "iter_route_contexts", None)
    if iter_contexts is None:  # FastAPI before route contexts: included routes are plain APIRoutes
        pairs = [(r.path, r) for r in app.routes if isinstance(r, APIRoute)]
    else:
        pairs = [(c.path, c.route) for c in iter_contexts(app.routes) if isinstance(c.route, APIRoute)]
    found = {(m, path, id(r)): r for path, r in pairs for m in (r.methods or ()) if m != "HEAD"}
    return sorted(((m, path, r) for (m, path, _), r in found.items()), key=lambda t: (t[1], t[0]))


def websocket_routes(app: FastAPI) -> list[tuple[str, APIWebSocketRoute]]:
    iter_contexts = getattr(fastapi_routing, "iter_route_contexts", None)
    if iter_contexts is None:
        return [(r.path, r) for r in app.routes if isinstance(r, APIWebSocketRoute)]
    return [(c.path, c.route) for c in iter_contexts(app.routes) if isinstance(c.route, APIWebSocketRoute)]


def check_routes(app: FastAPI) -> None:
    """Refuse to start with a route that does not say who may call it."""
    missing = [f"{m} {path}" for m, path, r in api_routes(app) if route_access(r) is None]
    missing += [f"WS {path}" for path, r in websocket_routes(app) if not hasattr(r.endpoint, "access_roles")]
    if missing:
        raise RuntimeError(f"routes without an access declaration: {', '.join(missing)}")
