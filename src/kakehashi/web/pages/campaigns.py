"""Outbound campaigns in the browser: ``/campaigns`` (the list with start / pause / stop), the editor
``/campaigns/new`` and ``/campaigns/{id}`` (with the call-list upload) and ``/campaigns/dnc`` (the do-not-call list
and the Art.17 refusals).

The pages are rendered here; every change goes through ``/api/v1/campaigns…`` from ``static/campaigns.js`` (the
API's problem details are shown beside their fields, in the page's language). Supervisors and admins manage;
client viewers may read their tenant's campaigns (the API lets them), so they see the list without its buttons.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from kakehashi.agents import service as agents
from kakehashi.auth.guard import Access
from kakehashi.campaigns import service as campaigns
from kakehashi.campaigns.schemas import AmdSettings, CampaignOut, PredictiveSettings, RetryDelays, RetryRules
from kakehashi.dispositions import service as dispositions
from kakehashi.kit.api import IdPath, SessionDep
from kakehashi.kit.clock import BUSINESS_TZ
from kakehashi.kit.context import MANAGERS, Actor, Role
from kakehashi.kit.phone import national_form
from kakehashi.privacy import service as privacy
from kakehashi.routing import service as routing
from kakehashi.telephony import amd as amd_detector
from kakehashi.web.i18n import pick_language
from kakehashi.web.render import render_page

router = APIRouter(include_in_schema=False)

ManagerPage = Annotated[Actor, Depends(Access(MANAGERS, page=True))]
#: The list: whoever may read campaigns over the API except operators, who work them from the desk.
ReaderPage = Annotated[Actor, Depends(Access(MANAGERS | {Role.CLIENT_VIEWER}, page=True))]

KINDS = ("appointment", "research", "marketing", "sales")
DIAL_MODES = ("preview", "progressive", "predictive")
#: What a detected answering machine gets (``AmdSettings.action``).
AMD_ACTIONS = ("drop", "message", "agent")


def _amd_params() -> tuple[tuple[str, int, int, int | None, int | None], ...]:
    """The detector's parameters (Asterisk app_amd's; in ms but the word count and the threshold) as the editor
    offers them under 詳細設定: name, Asterisk's default, the set tuned for Japanese answers
    (``telephony.amd.AmdSettings.stock`` / ``japanese``), and the API's bounds."""
    stock, japanese = amd_detector.AmdSettings.stock(), amd_detector.AmdSettings.japanese()
    found = []
    for name, info in AmdSettings.model_fields.items():
        if name in ("enabled", "action", "machine_message", "false_machine_rate"):
            continue
        low = next((int(m.ge) for m in info.metadata if getattr(m, "ge", None) is not None), None)
        high = next((int(m.le) for m in info.metadata if getattr(m, "le", None) is not None), None)
        default = int(info.default)
        found.append((name, int(getattr(stock, name, default)), int(getattr(japanese, name, default)), low, high))
    return tuple(found)


AMD_PARAMS = _amd_params()
FLAGS = ("human", "contact", "success", "refusal", "dnc", "callback", "unworkable", "final")
RETRY_OUTCOMES = tuple(RetryDelays.model_fields)
SCOPES = ("company", "product_line")
#: The newest list-source records (APPI) offered for a new list; an older one is picked by its id over the API.
SOURCES_SHOWN = 50


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns_page(request: Request, session: SessionDep, actor: ReaderPage) -> HTMLResponse:
    """The tenant's campaigns; supervisors and admins also get start / pause / stop and "new campaign"."""
    return render_page(
        request,
        "campaigns.html",
        campaigns=campaigns.list_campaigns(session, actor),
        can_edit=actor.role in MANAGERS,
        shown_number=national_form,
    )


@router.get("/campaigns/new", response_class=HTMLResponse)
def new_campaign_page(request: Request, session: SessionDep, actor: ManagerPage) -> HTMLResponse:
    """An empty editor with the API's defaults; saving creates the campaign in draft."""
    return _editor(request, session, actor, None)


@router.get("/campaigns/dnc", response_class=HTMLResponse)
def dnc_page(request: Request, actor: ManagerPage) -> HTMLResponse:
    """The center's do-not-call list and the refusals (Art.17). The numbers are loaded by the script from the API,
    whose reads are audited; lifting a refusal is for admins."""
    return render_page(request, "campaigns_dnc.html", is_admin=actor.role is Role.ADMIN)


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(request: Request, session: SessionDep, actor: ManagerPage, campaign_id: IdPath) -> HTMLResponse:
    """One campaign's settings to edit, its call lists and the upload of a new one (another tenant's id: 404)."""
    return _editor(request, session, actor, campaign_id)


def _defaults(actor: Actor) -> dict[str, Any]:
    """A new campaign as the API would create it from the required fields alone."""
    return {
        "id": None,
        "name": "",
        "kind": "sales",
        "caller_id": "",
        "dial_mode": "preview",
        "status": "draft",
        "goal": None,
        "owner": actor.username,
        "opening_statement": "",
        "windows": [],
        "holidays_off": True,
        "night_reason": None,
        "retry_rules": RetryRules().model_dump(),
        "agents": [],
        "queues": [],
        "result_codes": [],
        "ring_timeout_s": 30,
        "preview_autodial_s": None,
        "product_line": None,
        "refusal_scope": "company",
        "predictive": PredictiveSettings().model_dump(),
        "amd": AmdSettings().model_dump(),
    }


def _result_rows(session: Session, actor: Actor, chosen: list[dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    """One row per result code the campaign may use: the tenant's active dispositions in their order, then any
    code the campaign still has that was retired since (shown so that saving does not drop it unseen)."""
    mine = {c["code"]: c for c in chosen}
    rows = []
    for d in dispositions.list_dispositions(session, actor):
        label = (d.label_en or d.code) if lang == "en" else d.code
        rows.append({"code": d.code, "label": label, "used": d.code in mine, "flags": mine.get(d.code, {}),
                     "retired": False})  # fmt: skip
    listed = {r["code"] for r in rows}
    for code, flags in mine.items():
        if code not in listed:
            rows.append({"code": code, "label": code, "used": True, "flags": flags, "retired": True})
    return rows


def _editor(request: Request, session: Session, actor: Actor, campaign_id: int | None) -> HTMLResponse:
    if campaign_id is None:
        campaign = _defaults(actor)
    else:
        campaign = CampaignOut.model_validate(campaigns.get_campaign(session, actor, campaign_id)).model_dump(
            mode="json"
        )
        campaign["caller_id"] = national_form(campaign["caller_id"])
    sources = privacy.list_sources(session, actor, limit=SOURCES_SHOWN)[0] if campaign_id is not None else []
    windows: dict[int, list[dict[str, str]]] = {day: [] for day in range(7)}
    for window in campaign["windows"]:
        windows[int(window["weekday"])].append(window)
    return render_page(
        request,
        "campaign_edit.html",
        campaign=campaign,
        windows=windows,
        agents=[(a.name, a.display_name) for a in agents.list_agents(session, actor)],
        queues=[(q.name, q.label or q.name) for q in routing.list_queues(session, actor)],
        result_rows=_result_rows(session, actor, campaign["result_codes"], pick_language(request)),
        sources=sources,
        is_admin=actor.role is Role.ADMIN,
        kinds=KINDS,
        dial_modes=DIAL_MODES,
        amd_actions=AMD_ACTIONS,
        amd_params=AMD_PARAMS,
        flags=FLAGS,
        retry_outcomes=RETRY_OUTCOMES,
        scopes=SCOPES,
        tz=BUSINESS_TZ,
    )
