"""``/api/v1/campaigns/segments``: target extraction (ターゲット抽出). Supervisors and admins save segments, count
them (live while editing) and run them into a campaign. Included in the app before the campaigns' router, whose
``/{campaign_id}`` would otherwise take ``/segments``."""

from __future__ import annotations

import threading
import time
from collections import deque

from fastapi import APIRouter, Response

from kakehashi.auth.guard import ManagerActor
from kakehashi.campaigns import segments
from kakehashi.campaigns.segment_schemas import (
    Criteria,
    RunIn,
    SegmentCount,
    SegmentIn,
    SegmentOut,
    SegmentRun,
    SegmentUpdate,
)
from kakehashi.kit.api import IdPath, SessionDep, respond
from kakehashi.kit.context import Actor
from kakehashi.kit.db import utcnow
from kakehashi.kit.errors import TooManyAttempts

router = APIRouter(prefix="/api/v1/campaigns/segments", tags=["segments"])

#: The live count: at most this many counts per user in the window (the page sends one per pause in typing).
COUNTS_PER_WINDOW = 20
COUNT_WINDOW_S = 10.0


class _CountLimiter:
    """Counts per (tenant, user) in a sliding window, in this process: an editor's burst passes, a loop does not."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[int, str], deque[float]] = {}

    def check(self, actor: Actor) -> None:
        now = time.monotonic()
        with self._lock:
            seen = self._seen.setdefault((actor.tenant_id, actor.username), deque())
            while seen and now - seen[0] > COUNT_WINDOW_S:
                seen.popleft()
            if len(seen) >= COUNTS_PER_WINDOW:
                wait = max(1, int(COUNT_WINDOW_S - (now - seen[0])) + 1)
                raise TooManyAttempts("too many counts: wait a moment", headers={"Retry-After": str(wait)})
            seen.append(now)
            if len(self._seen) > 10_000:  # forget idle users
                self._seen = {k: v for k, v in self._seen.items() if v and now - v[-1] <= COUNT_WINDOW_S}


limiter = _CountLimiter()


@router.get("", response_model=list[SegmentOut])
def list_segments(session: SessionDep, actor: ManagerActor) -> Response:
    return respond([SegmentOut.model_validate(s) for s in segments.list_segments(session, actor)], actor)


@router.post("", response_model=SegmentOut, status_code=201)
def create_segment(session: SessionDep, actor: ManagerActor, body: SegmentIn) -> Response:
    """Save a criteria, optionally with its campaign and a weekly schedule (Japan time)."""
    segment = segments.create_segment(session, actor, body, utcnow())
    return respond(SegmentOut.model_validate(segment), actor, status_code=201)


@router.post("/count", response_model=SegmentCount)
def count_criteria(session: SessionDep, actor: ManagerActor, body: Criteria) -> Response:
    """How many customers a criteria selects, how many could be called, and why the others not (the live count
    of the editor; limited to 20 per 10 s per user, 429 beyond)."""
    limiter.check(actor)
    return respond(segments.count(session, actor, body, utcnow()), actor)


@router.get("/{segment_id}", response_model=SegmentOut)
def get_segment(session: SessionDep, actor: ManagerActor, segment_id: IdPath) -> Response:
    return respond(SegmentOut.model_validate(segments.get_segment(session, actor, segment_id)), actor)


@router.patch("/{segment_id}", response_model=SegmentOut)
def update_segment(session: SessionDep, actor: ManagerActor, segment_id: IdPath, body: SegmentUpdate) -> Response:
    segment = segments.update_segment(session, actor, segment_id, body, utcnow())
    return respond(SegmentOut.model_validate(segment), actor)


@router.delete("/{segment_id}", status_code=204)
def delete_segment(session: SessionDep, actor: ManagerActor, segment_id: IdPath) -> Response:
    segments.delete_segment(session, actor, segment_id)
    return Response(status_code=204)


@router.get("/{segment_id}/count", response_model=SegmentCount)
def count_segment(session: SessionDep, actor: ManagerActor, segment_id: IdPath) -> Response:
    limiter.check(actor)
    return respond(segments.count_segment(session, actor, segment_id, utcnow()), actor)


@router.post("/{segment_id}/run", response_model=SegmentRun)
def run_segment(session: SessionDep, actor: ManagerActor, segment_id: IdPath, body: RunIn | None = None) -> Response:
    """Add the segment's customers not yet in the campaign as leads (their main number); every customer left out
    comes back with the reason, those already in the campaign are counted."""
    campaign_id = body.campaign_id if body is not None else None
    return respond(segments.run_segment(session, actor, segment_id, utcnow(), campaign_id=campaign_id), actor)
