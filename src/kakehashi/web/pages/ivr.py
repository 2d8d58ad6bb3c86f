"""IVR flows: ``/ivr`` and ``/ivr/{id}`` — supervisors read them, admins save new versions.

A refused save comes back as the same page with every problem next to the text as typed; each problem is
rendered in the page's language from its code (``ivr.problems``, ``web/strings/ivr.py``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from kakehashi.auth.guard import Access
from kakehashi.ivr import service as ivr
from kakehashi.ivr.flow import Flow
from kakehashi.ivr.problems import problem
from kakehashi.ivr.schemas import FlowCreate, VersionCreate
from kakehashi.ivr.templates import MINIMAL_EXAMPLE
from kakehashi.kit.api import IdPath, SessionDep
from kakehashi.kit.clock import BUSINESS_TZ
from kakehashi.kit.context import MANAGERS, Actor, Role
from kakehashi.kit.errors import Conflict, ValidationFailed, field_error
from kakehashi.web.i18n import pick_language, problem_text, translator
from kakehashi.web.render import form_csrf_ok, render_page

router = APIRouter(include_in_schema=False)

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
        found = problem("definition", "json_invalid", reason=exc.msg, line=exc.lineno, column=exc.colno)
    except RecursionError:
        found = problem("definition", "json_too_deep")
    else:
        if isinstance(value, dict):
            return value
        found = problem("definition", "flow_not_object")
    raise ValidationFailed(found["message"], errors=[found])


def _problems(exc: ValidationFailed | Conflict) -> list[dict[str, Any]]:
    return exc.errors or [field_error("", exc.detail)]


def _in_language(request: Request, errors: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The flow's problems in the page's language, rendered from their codes; ``original``: the service's English
    words when translated (the API and the user guide use them)."""
    lang = pick_language(request)
    shown = []
    for error in errors or []:
        message = str(error.get("message", ""))
        text = problem_text(lang, error)
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
    if not form_csrf_ok(request, csrf_token):
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

    if not form_csrf_ok(request, csrf_token):
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
