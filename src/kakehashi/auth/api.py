"""Login for integrations (bearer tokens), the caller's own account, and user administration."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from kakehashi.audit import service as audit
from kakehashi.auth import login, service
from kakehashi.auth.guard import PUBLIC, AdminActor, AnyRoleActor, Identity
from kakehashi.auth.schemas import (
    Me,
    NewToken,
    PasswordChange,
    TokenCreate,
    TokenOut,
    TokenRequest,
    UserCreate,
    UserOut,
    UserUpdate,
)
from kakehashi.kit.api import IdPath, SessionDep, problem_response
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.errors import DomainError, Forbidden, TooManyAttempts, Unauthorized

router = APIRouter(prefix="/api/v1", tags=["auth"])


def identity_of(request: Request) -> Identity:
    identity: Identity = request.state.identity
    return identity


class LoginBusy(DomainError):
    """Every password-hashing slot is taken (a login flood): try again shortly."""

    status = 503
    type_ = "/problems/login-busy"
    title = "Busy"


def login_refused(outcome: service.LoginOutcome, instance: str) -> JSONResponse:
    """401, 429 or 503 as a problem document — returned, not raised, so the failure count is committed."""
    err: DomainError
    if outcome.retry_after is None:
        err = Unauthorized("wrong user name or password")
    elif outcome.reason == "busy":
        err = LoginBusy(
            "the server is checking too many logins; try again shortly",
            headers={"Retry-After": str(outcome.retry_after)},
        )
    else:
        what = "failed logins" if outcome.reason == "locked" else "login attempts"
        err = TooManyAttempts(
            f"too many {what}; try again in {outcome.retry_after} s",
            headers={"Retry-After": str(outcome.retry_after)},
            reason=outcome.reason,
        )
    return problem_response(err, instance)


@router.post(
    "/auth/token",
    response_model=NewToken,
    status_code=status.HTTP_201_CREATED,
    dependencies=[PUBLIC],
    responses={
        401: {"description": "wrong credentials"},
        429: {"description": "locked after failures, or too many attempts (Retry-After)"},
        503: {"description": "too many logins being checked at once (Retry-After)"},
    },
)
async def issue_token(request: Request, session: SessionDep, body: TokenRequest) -> Response:
    """Exchange a user name and password for a bearer token (integrations, scripts)."""
    outcome = await login.attempt(request, session, body.username, body.password)
    if outcome.user is None:
        return login_refused(outcome, request.url.path)
    ttl = timedelta(hours=body.ttl_hours) if body.ttl_hours else None
    secret, token = await run_in_threadpool(service.issue_token, session, outcome.user, body.name, ttl=ttl)
    out = NewToken(token=secret, id=token.id, name=token.name, expires_at=token.expires_at)
    return Response(out.model_dump_json(), status_code=201, media_type="application/json")


@router.get("/auth/me", response_model=Me)
def me(request: Request, actor: AnyRoleActor) -> Me:
    identity = identity_of(request)
    return Me(
        user=UserOut.model_validate(identity.user),
        acting_tenant_id=actor.tenant_id,
        sees_personal_data=actor.sees_personal_data,
        auth="session" if identity.web_session else "token",
    )


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(request: Request, session: SessionDep, _: AnyRoleActor) -> Response:
    """End the web session or revoke the bearer token this request came with."""
    identity = identity_of(request)
    if identity.web_session is not None:
        service.end_session(identity.web_session)
    if identity.token is not None:
        service.revoke_token(session, identity.user, identity.token.id)
    return Response(status_code=204)


@router.post("/auth/password", status_code=status.HTTP_204_NO_CONTENT)
def change_password(request: Request, session: SessionDep, actor: AnyRoleActor, body: PasswordChange) -> Response:
    """Change your own password; your other web sessions end and your other tokens are revoked."""
    identity = identity_of(request)
    service.change_password(
        session,
        identity.user,
        body.current_password,
        body.new_password,
        actor=actor,
        keep_session_id=identity.web_session.id if identity.web_session else None,
        keep_token_id=identity.token.id if identity.token else None,
    )
    return Response(status_code=204)


@router.get("/auth/tokens", response_model=list[TokenOut])
def my_tokens(request: Request, session: SessionDep, _: AnyRoleActor) -> list[TokenOut]:
    return [TokenOut.model_validate(t) for t in service.tokens_of(session, identity_of(request).user)]


@router.post("/auth/tokens", response_model=NewToken, status_code=status.HTTP_201_CREATED)
def create_token(request: Request, session: SessionDep, _: AnyRoleActor, body: TokenCreate) -> NewToken:
    ttl = timedelta(hours=body.ttl_hours) if body.ttl_hours else None
    secret, token = service.issue_token(session, identity_of(request).user, body.name, ttl=ttl)
    return NewToken(token=secret, id=token.id, name=token.name, expires_at=token.expires_at)


@router.delete("/auth/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(request: Request, session: SessionDep, actor: AnyRoleActor, token_id: IdPath) -> Response:
    token = service.revoke_token(session, identity_of(request).user, token_id)
    audit.record(session, actor, "token.revoke", resource="api_token", resource_id=token.id,
                 detail={"user_id": actor.user_id, "name": token.name})  # fmt: skip
    return Response(status_code=204)


@router.get("/users", response_model=list[UserOut], tags=["users"])
def list_users(session: SessionDep, actor: AdminActor) -> list[UserOut]:
    """Users of the tenant you act in."""
    return [UserOut.model_validate(u) for u in service.users_visible_to(session, actor)]


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED, tags=["users"])
def create_user(request: Request, session: SessionDep, actor: AdminActor, body: UserCreate) -> UserOut:
    """A user in the tenant you act in; center-wide admins may create other center-wide admins."""
    if body.center_wide and (identity_of(request).user.tenant_id is not None or body.role is not Role.ADMIN):
        raise Forbidden("only a center-wide admin can create center-wide admins")
    user = service.create_user(
        session,
        username=body.username,
        password=body.password,
        role=body.role,
        tenant_id=None if body.center_wide else actor.tenant_id,
        display_name=body.display_name,
    )
    _audit_user(session, actor, "user.create", user.id, body.role)
    return UserOut.model_validate(user)


@router.patch("/users/{user_id}", response_model=UserOut, tags=["users"])
def update_user(session: SessionDep, actor: AdminActor, user_id: IdPath, body: UserUpdate) -> UserOut:
    """Change role, display name, active flag, or set a new password (ends the user's sessions)."""
    user = service.update_user(
        session,
        actor,
        user_id,
        role=body.role,
        active=body.active,
        display_name=body.display_name,
        new_password=body.new_password,
    )
    return UserOut.model_validate(user)


def _audit_user(session: Session, actor: Actor, action: str, user_id: int, role: Role) -> None:
    audit.record(session, actor, action, resource="user", resource_id=user_id, detail={"role": role.value})


@router.get("/users/{user_id}/tokens", response_model=list[TokenOut], tags=["users"])
def user_tokens(session: SessionDep, actor: AdminActor, user_id: IdPath) -> list[TokenOut]:
    """A user's API tokens (live, expired and revoked), of the tenant you act in. Audited."""
    return [TokenOut.model_validate(t) for t in service.tokens_of_user(session, actor, user_id)]


@router.delete("/users/{user_id}/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["users"])
def revoke_user_token(session: SessionDep, actor: AdminActor, user_id: IdPath, token_id: IdPath) -> Response:
    """Revoke one of a user's tokens (of the tenant you act in). Audited."""
    service.revoke_user_token(session, actor, user_id, token_id)
    return Response(status_code=204)
