"""FastAPI glue shared by every domain: the request transaction, the actor, problem details."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, TypeAdapter
from sqlalchemy import text
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from kakehashi.kit.context import Actor
from kakehashi.kit.errors import DomainError
from kakehashi.kit.headers import SECURITY_HEADERS
from kakehashi.kit.masking import full_context

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


#: Called as ``hook(request, exc)`` after a request's transaction was rolled back (e.g. to audit a refusal
#: in a transaction of its own). Registered on ``app.state.after_rollback``.
AfterRollback = Callable[[Request, BaseException], None]


def db_session(request: Request) -> Iterator[Session]:
    """One request = one transaction: commit once at the end, roll back on any error."""
    session: Session = request.app.state.session_factory()
    try:
        yield session
        if request.method in _READS and session.in_transaction():
            relax_commit(session)
        session.commit()
    except BaseException as exc:
        session.rollback()
        for hook in getattr(request.app.state, "after_rollback", ()):
            try:
                hook(request, exc)
            except Exception:
                log.exception("after-rollback hook failed on %s %s", request.method, request.url.path)
        raise
    finally:
        session.close()


_READS = frozenset({"GET", "HEAD"})


def relax_commit(session: Session) -> None:
    """Let PostgreSQL commit this transaction without waiting for its WAL flush.

    For reads: all they write is bookkeeping — audit rows of what was shown, a session's last-seen time.
    That wait was ~40 % of a screen pop. A database crash can lose the last fraction of a second of
    such rows (never corrupt anything); changes (POST/PATCH/…) keep the full guarantee. ADR 0009.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_ASYNC_COMMIT)


_ASYNC_COMMIT = text("SET LOCAL synchronous_commit TO OFF")


def end_transaction_early(session: Session) -> None:
    """Commit what the request has written so far, before handing work to a component that writes in its own
    transactions and is waited for (the call controller). SQLite has a single writer: a lock this request
    still held would make that component wait for it while the request waits for the component."""
    session.commit()


def respond(payload: Any, actor: Actor, *, status_code: int = 200) -> Response:
    """Serialize once, with personal fields masked unless the actor may see them (``kit.masking``)."""
    context = full_context(actor.sees_personal_data)
    if isinstance(payload, BaseModel):
        body = payload.model_dump_json(context=context)
    else:
        body = _ANY.dump_json(payload, context=context).decode()
    return Response(content=body, status_code=status_code, media_type="application/json")


_ANY: TypeAdapter[Any] = TypeAdapter(Any)


# scope="function": the transaction commits *before* the response is sent. With the default
# ("request") FastAPI runs the code after ``yield`` once the client already has its 201, so a client
# could read data not yet committed, and a failed commit would go unreported.
SessionDep = Annotated[Session, Depends(db_session, scope="function")]

#: Row ids in paths and queries: a number the databases can hold (a bigger one is a 422, not a 500).
MAX_ID = 2**63 - 1
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
#: Paging beyond this is a search that should be narrowed (and a huge OFFSET is a cheap DoS).
MAX_OFFSET = 1_000_000


def _problem(status: int, title: str, detail: str, instance: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, "instance": instance}
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def problem_response(exc: DomainError, instance: str) -> JSONResponse:
    """A domain error as an RFC 9457 response (for routes that must return an error, not raise it)."""
    return JSONResponse(exc.problem(instance), status_code=exc.status, media_type=PROBLEM_JSON, headers=exc.headers)


def install_problem_handlers(app: FastAPI) -> None:
    """Every API error leaves as RFC 9457 problem details."""

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        return problem_response(exc, request.url.path)

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
        response = _problem(500, "Internal error", "the request failed; nothing was saved", request.url.path)
        # Starlette sends this one from its outermost middleware, outside SecurityHeadersMiddleware.
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _problem(exc.status_code, str(exc.detail), str(exc.detail), request.url.path)
