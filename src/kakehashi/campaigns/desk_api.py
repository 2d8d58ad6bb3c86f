"""``/api/v1/desk/outbound``: the agent's outbound work on the desk — the campaigns they work, the lead card,
dial (preview) or join (progressive), skip, the opening statement confirmed (特定商取引法 Art.16), the result,
and a manual dial checked against the DNC list and refusals (Art.17). Operators, and supervisors or admins who
take calls themselves; each works only their own card.

Commands that reach the dialer commit the request's transaction first (SQLite has one writer; the dialer writes
in its own transactions)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from kakehashi.auth.guard import StaffActor
from kakehashi.campaigns import attempts
from kakehashi.campaigns.desk_schemas import (
    Card,
    DeskCallback,
    DeskCampaign,
    Dialled,
    JoinIn,
    ManualDialIn,
    OutboundDesk,
    ResultIn,
    SkipIn,
)
from kakehashi.campaigns.live import LiveDialer, dialer, driver_name
from kakehashi.kit.api import SessionDep, end_transaction_early, respond
from kakehashi.kit.context import Actor
from kakehashi.kit.db import utcnow
from kakehashi.kit.errors import Conflict

router = APIRouter(prefix="/api/v1/desk/outbound", tags=["desk"])


def _desk(session: Session, actor: Actor, joined: int | None, reason: str | None = None) -> OutboundDesk:
    campaigns = [DeskCampaign.model_validate(c, from_attributes=True)
                 for c in attempts.campaigns_of(session, actor, actor.username)]  # fmt: skip
    attempt = attempts.current(session, actor, actor.username)
    card = Card.model_validate(attempts.card(session, actor, attempt)) if attempt is not None else None
    callbacks = [DeskCallback.model_validate(c) for c in attempts.my_callbacks(session, actor, actor.username)]
    return OutboundDesk(campaigns=campaigns, joined=joined, card=card, reason=reason, callbacks=callbacks)


def _joined(request: Request, actor: Actor) -> int | None:
    pipeline = request.app.state.telephony
    live: LiveDialer | None = pipeline.dialer if pipeline is not None else None
    return live.joined(actor.tenant_id, actor.username) if live is not None else None


def _open(session: Session, actor: Actor) -> int:
    attempt = attempts.current(session, actor, actor.username)
    if attempt is None:
        raise Conflict("no lead is on your desk")
    return attempt.id


@router.get("", response_model=OutboundDesk)
def outbound_desk(request: Request, session: SessionDep, actor: StaffActor) -> Response:
    """Your campaigns, the one you work now and the lead on your desk (its number is personal data: audited)."""
    return respond(_desk(session, actor, _joined(request, actor)), actor)


@router.post("/join", response_model=OutboundDesk)
def join_campaign(request: Request, session: SessionDep, actor: StaffActor, body: JoinIn) -> Response:
    """Work a campaign: in progressive mode you are dialled for whenever you are available; in preview mode you
    take leads with ``next``."""
    live = dialer(request)
    end_transaction_early(session)
    live.join(actor, actor.username, body.campaign_id)
    return respond(_desk(session, actor, _joined(request, actor)), actor)


@router.post("/leave", response_model=OutboundDesk)
def leave_campaign(request: Request, session: SessionDep, actor: StaffActor) -> Response:
    """Stop working the campaign (a call in progress goes on; no new one is dialled for you)."""
    dialer(request).leave(actor, actor.username)
    return respond(_desk(session, actor, None), actor)


@router.post("/next", response_model=OutboundDesk)
def next_lead(request: Request, session: SessionDep, actor: StaffActor, body: JoinIn) -> Response:
    """Preview: put the next due lead of the campaign on your desk (``card`` null with the ``reason`` when none
    is due now)."""
    opened = attempts.open_next(session, actor, body.campaign_id, actor.username, utcnow())
    return respond(_desk(session, actor, _joined(request, actor), opened.reason), actor)


@router.post("/dial", response_model=OutboundDesk)
def dial_lead(request: Request, session: SessionDep, actor: StaffActor) -> Response:
    """Preview: dial the lead on your desk. Every rule is checked again now (409 with the reason)."""
    live = dialer(request)
    attempt_id = _open(session, actor)
    end_transaction_early(session)
    live.dial(actor, actor.username, attempt_id)
    return respond(_desk(session, actor, _joined(request, actor)), actor)


@router.post("/skip", response_model=OutboundDesk)
def skip_lead(request: Request, session: SessionDep, actor: StaffActor, body: SkipIn) -> Response:
    """Preview: pass the lead without dialing, with the reason; it goes back to the list."""
    attempts.skip(session, actor, _open(session, actor), actor.username, body.reason, utcnow())
    return respond(_desk(session, actor, _joined(request, actor)), actor)


@router.post("/opening", response_model=OutboundDesk)
def confirm_opening(request: Request, session: SessionDep, actor: StaffActor) -> Response:
    """You gave the opening statement (特定商取引法 Art.16) on this call: logged with the time."""
    attempts.confirm_opening(session, actor, _open(session, actor), actor.username, utcnow())
    return respond(_desk(session, actor, _joined(request, actor)), actor)


@router.post("/result", response_model=OutboundDesk)
def save_result(request: Request, session: SessionDep, actor: StaffActor, body: ResultIn) -> Response:
    """Save the call's result code (the campaign's, with its flags); it closes the call's wrap-up. A code that
    says there was a conversation needs the opening confirmed first (422 on ``opening``)."""
    attempts.finish(session, actor, _open(session, actor), actor.username, body.code, utcnow(),
                    driver=driver_name(request), callback_at=body.callback_at,
                    callback_personal=body.callback_personal)  # fmt: skip
    return respond(_desk(session, actor, _joined(request, actor)), actor)


@router.post("/manual", response_model=Dialled)
def manual_dial(request: Request, session: SessionDep, actor: StaffActor, body: ManualDialIn) -> Response:
    """Dial a number by hand. Refused (409) for a number on the DNC list, refused (Art.17), or of a customer
    who asked to stop all use (APPI) or is excluded from outbound calls."""
    live = dialer(request)
    end_transaction_early(session)
    ref = live.dial_manual(actor, actor.username, body.number, body.campaign_id)
    return respond(Dialled(call_ref=ref), actor)
