"""FastAPI glue shared by every domain: the request transaction, the actor, problem details."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from kakehashi.kit.context import Actor
from kakehashi.kit.errors import DomainError

PROBLEM_JSON = "application/problem+json"


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

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _problem(exc.status_code, str(exc.detail), str(exc.detail), request.url.path)
