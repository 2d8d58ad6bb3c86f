"""Domain errors and their RFC 9457 problem-details rendering."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of errors a service raises; the API turns them into problem details."""

    status = 400
    type_ = "about:blank"
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}
        self.extra = extra

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type_,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class NotFound(DomainError):
    status = 404
    type_ = "/problems/not-found"
    title = "Not found"


class ValidationFailed(DomainError):
    """Input is wrong; ``errors`` lists ``{"field": ..., "message": ...}`` per field."""

    status = 422
    type_ = "/problems/validation"
    title = "Validation failed"


class Conflict(DomainError):
    status = 409
    type_ = "/problems/conflict"
    title = "Conflict"


class Unauthorized(DomainError):
    """No valid credentials: log in (web) or send ``Authorization: Bearer …`` (API)."""

    status = 401
    type_ = "/problems/unauthorized"
    title = "Authentication required"

    def __init__(self, detail: str = "log in or send a bearer token", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="kakehashi"'})
        super().__init__(detail, **kw)


class Forbidden(DomainError):
    status = 403
    type_ = "/problems/forbidden"
    title = "Forbidden"


class TooManyAttempts(DomainError):
    status = 429
    type_ = "/problems/too-many-attempts"
    title = "Too many attempts"


def field_error(field: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"field": field, "message": message, **extra}


def unavailable(field: str, noun: str = "name") -> Conflict:
    """A value unique across every tenant (not only the caller's) is taken: a 409 that names the field but
    neither repeats the value nor says that another tenant uses it (docs/security.md, global names)."""
    return Conflict(f"this {noun} cannot be used; choose another", errors=[field_error(field, "cannot be used")])
