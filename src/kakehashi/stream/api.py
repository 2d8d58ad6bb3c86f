"""``GET /api/v1/events`` (WebSocket): live call and agent events for the caller's tenant and role."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from kakehashi.auth.guard import actor_for, identify, same_origin, websocket_access
from kakehashi.kit.context import STAFF, Actor
from kakehashi.kit.db import unit_of_work
from kakehashi.kit.events import Event
from kakehashi.stream import service
from kakehashi.stream.journal import journal

router = APIRouter(prefix="/api/v1", tags=["events"])
ALLOWED = STAFF

# Close codes (RFC 6455 private range): the client can tell "log in again" from "not for you".
UNAUTHENTICATED, FORBIDDEN = 4401, 4403


@router.websocket("/events")
@websocket_access(*ALLOWED)
async def events(websocket: WebSocket, last_event_id: int | None = None) -> None:
    """Authenticated by the session cookie (same origin only) or ``Authorization: Bearer``; an operator
    receives their own calls' events, with the screen pop when their phone starts ringing. Every event
    has an ``id``; reconnect with ``?last_event_id=`` to get what was missed (or a ``resync``)."""
    factory = websocket.app.state.session_factory

    def who() -> tuple[Actor | None, int]:
        with unit_of_work(factory) as session:
            identity = identify(websocket, session)
            if identity is None:
                return None, UNAUTHENTICATED
            if identity.web_session is not None and not same_origin(websocket):
                return None, FORBIDDEN
            actor = actor_for(websocket, session, identity)
            return (actor, 0) if actor.role in ALLOWED else (None, FORBIDDEN)

    actor, refusal = await run_in_threadpool(who)
    if actor is None:
        await websocket.close(code=refusal)
        return
    await websocket.accept()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[int, Event]] = asyncio.Queue()

    def on_event(event_id: int, event: Event) -> None:  # runs in whichever thread committed the event
        if service.visible(actor, event):
            loop.call_soon_threadsafe(queue.put_nowait, (event_id, event))

    replay, complete, stop = journal().follow(last_event_id, on_event)
    reader = asyncio.create_task(_until_closed(websocket))
    try:
        await websocket.send_json(
            {"type": "hello", "user": actor.username, "role": str(actor.role), "tenant_id": actor.tenant_id}
        )
        if not complete:  # what the client missed is no longer held: it must fetch fresh state
            await websocket.send_json({"type": "resync"})
        for event_id, event in replay:
            if service.visible(actor, event):
                queue.put_nowait((event_id, event))
        while not reader.done():
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            event_id, event = getter.result()
            out = {"id": event_id, **service.message(event)}
            if service.pops_up(actor, event):
                out["screen_pop"] = await run_in_threadpool(service.screen_pop_for, factory, actor, event)
            await websocket.send_json(out)
    except WebSocketDisconnect:
        pass
    finally:
        stop()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def _until_closed(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, to notice when it goes away."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
