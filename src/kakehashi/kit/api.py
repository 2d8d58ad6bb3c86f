"""FastAPI glue shared by every domain: the request transaction, the actor, problem details."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from kakehashi.kit.context import Actor
from kakehashi.kit.errors import DomainError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


def db_session(request: Request) -> Iterator[Session]:
    """One request = one transaction: commit once at the end, roll back on any error."""
    session: Session = request.app.state.session_factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def current_actor(request: Request) -> Actor:
    """The caller. Until login exists (issue 3) every request acts in the default tenant."""
    return Actor(tenant_id=request.app.state.default_tenant_id, username="anonymous")


# scope="function": the transaction commits *before* the response is sent. With the default
# ("request") FastAPI runs the code after ``yield`` once the client already has its 201, so a client
# could read data not yet committed, and a failed commit would go unreported.
SessionDep = Annotated[Session, Depends(db_session, scope="function")]
ActorDep = Annotated[Actor, Depends(current_actor)]


def _problem(status: int, title: str, detail: str, instance: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, "instance": instance}
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def install_problem_handlers(app: FastAPI) -> None:
    """Every API error leaves as RFC 9457 problem details."""

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse(exc.problem(request.url.path), status_code=exc.status, media_type=PROBLEM_JSON)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in err["loc"] if p not in ("body", "query", "path")),
                "message": err["msg"],
                "in": err["loc"][0] if err["loc"] else None,
            }
            for err in exc.errors()
        ]
        return _problem(
            422,
            "Validation failed",
            f"{len(errors)} field(s) are invalid",
            request.url.path,
            type="/problems/validation",
            errors=errors,
        )

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _problem(500, "Internal error", "the request failed; nothing was saved", request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _problem(exc.status_code, str(exc.detail), str(exc.detail), request.url.path)
