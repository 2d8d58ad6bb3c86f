"""``/api/v1/campaigns/…/results``: a campaign's results as JSON, CSV and XLSX, and every campaign's summary.

Supervisors, admins and the tenant's client viewers (委託元): the figures are aggregates; for a role that does not
see personal data the agents' names are replaced by ``OP-01``… (``campaigns.results``). Included in the app before
``campaigns.api``, whose ``/{campaign_id}`` would otherwise take ``/results``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from kakehashi.auth.guard import allow
from kakehashi.campaigns import results as service
from kakehashi.campaigns.results_schemas import CampaignResults, CampaignSummary, Grouping
from kakehashi.kit.api import IdPath, SessionDep, respond
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.export import download

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])

#: Who reads results: the floor's managers and the client company's viewers (aggregates, names masked).
ResultsActor = Annotated[Actor, allow(Role.SUPERVISOR, Role.ADMIN, Role.CLIENT_VIEWER)]
By = Annotated[Grouping, Query(description="total, list, segment, agent, hour (Japan hour of day) or day (Japan)")]
Since = Annotated[datetime | None, Query(description="attempts started at or after (no offset: Japan time)")]
Until = Annotated[datetime | None, Query(description="attempts started before (no offset: Japan time)")]


@router.get("/results", response_model=list[CampaignSummary])
def all_results(session: SessionDep, actor: ResultsActor, since: Since = None, until: Until = None) -> Response:
    """Each campaign's total (dials, connects, rates, remaining leads), forecast and goal progress."""
    return respond(service.summaries(session, actor, since=since, until=until), actor)


@router.get("/{campaign_id}/results", response_model=CampaignResults)
def campaign_results(
    session: SessionDep,
    actor: ResultsActor,
    campaign_id: IdPath,
    by: By = "total",
    since: Since = None,
    until: Until = None,
) -> Response:
    """The campaign's figures grouped ``by``, with its total, the forecast to finish and the goal's progress."""
    found = service.campaign_results(session, actor, campaign_id, by, since=since, until=until)
    return respond(found, actor)


@router.get("/{campaign_id}/results.csv", response_class=Response)
def campaign_results_csv(
    session: SessionDep,
    actor: ResultsActor,
    campaign_id: IdPath,
    by: By = "total",
    since: Since = None,
    until: Until = None,
) -> Response:
    """The same rows as CSV (UTF-8 with a BOM, formula-safe), the total last; audited."""
    return download(service.export_results(session, actor, campaign_id, "csv", by, since=since, until=until))


@router.get("/{campaign_id}/results.xlsx", response_class=Response)
def campaign_results_xlsx(
    session: SessionDep,
    actor: ResultsActor,
    campaign_id: IdPath,
    by: By = "total",
    since: Since = None,
    until: Until = None,
) -> Response:
    """The same rows as an XLSX sheet, the total last; audited."""
    return download(service.export_results(session, actor, campaign_id, "xlsx", by, since=since, until=until))
