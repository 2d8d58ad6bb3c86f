"""Deflections (ADR 0012): a caller who does not wait for an agent leaves a message or asks for a callback.

Voicemail: a prompt, then the message is recorded until the caller hangs up (or ``MAX_MESSAGE_S``).
Callbacks (折り返し): the caller keeps their place in the queue; when an agent is free for them we hold the agent
and dial the customer, up to ``CALLBACK_MAX_ATTEMPTS`` times ``CALLBACK_RETRY_S`` apart. Pending callbacks are
reloaded from the database after a restart (``add_callback``).
"""

from __future__ import annotations

from datetime import datetime

from kakehashi.routing.control_base import ControllerBase
from kakehashi.routing.engine import Waiting
from kakehashi.routing.live_types import (
    CALLBACK_CONFIRMED,
    CALLBACK_MAX_ATTEMPTS,
    CALLBACK_RETRY_S,
    MAX_MESSAGE_S,
    VOICEMAIL_PROMPT,
    LiveCall,
)
from kakehashi.telephony.port import RecordingState


class Deflections(ControllerBase):
    """Voicemail and callbacks: the call controller's deflections."""

    def add_callback(
        self, tenant_id: int, key: str, queue: str, number: str, priority: int, place_at: datetime, attempts: int,
        caller_id: str = "",
    ) -> None:  # fmt: skip
        """A pending callback from the database (after a restart), at its old place; ``caller_id`` is the
        number the customer will see (the one they had dialled)."""
        if caller_id:
            self._callback_caller_id[key] = caller_id
        self._run(
            lambda: self._offer_callback(tenant_id, key, queue, number, priority, None, place_at.timestamp(), attempts)
        )

    def _request_callback(
        self, call: LiveCall, queue: str, priority: int, *, place: int | None, since: float | None
    ) -> None:
        """The caller hangs up and keeps their place: the callback waits in the queue like a caller."""
        engine = self.engine(call.tenant_id)
        if not engine.has_queue(queue):
            self._voicemail(call, queue)
            return
        call.stage, call.queue = "deflected", queue
        call.generation += 1
        key = f"cb-{call.ref}"
        now = self.clock.now()
        since_s = self._secs() if since is None else since
        place_at = datetime.fromtimestamp(since_s, tz=now.tzinfo) if since is not None else now
        self.listener.deflected(call.tenant_id, call.ref, "callback", queue, call.ani, now)
        self.listener.callback_requested(call.tenant_id, key, call.ref, queue, call.ani, priority, place_at, now)
        self.driver.play(call.ref, CALLBACK_CONFIRMED)
        self.driver.hangup(call.ref)
        if call.route is not None:  # we call back from the number they called, so they know who it is
            self._callback_caller_id[key] = call.route.callback_caller_id
        self._offer_callback(call.tenant_id, key, queue, call.ani, priority, place, since_s, attempts=0)

    def _offer_callback(
        self, tenant_id: int, key: str, queue: str, number: str, priority: int, place: int | None, since: float,
        attempts: int,
    ) -> None:  # fmt: skip
        engine = self.engine(tenant_id)
        info = {"number": number, "attempts": attempts}
        found = self._timed(
            lambda: engine.offer(
                key, queue, self._secs(), priority=priority, place=place, since=since, kind="callback", info=info
            )
        )
        waiting = engine.waiting(key)
        if waiting is not None:
            self._callbacks[key] = waiting
        self._dispatch(tenant_id, [found] if found else [])
        self._queue_changed(tenant_id, queue)

    def _dial_callback(self, tenant_id: int, waiting: Waiting, agent: str) -> None:
        """An agent is free for a callback: they are held while we dial the customer."""
        route_caller_id = self._callback_caller_id.get(waiting.ref, "")
        attempts = int(waiting.info.get("attempts", 0)) + 1
        waiting.info["attempts"] = attempts
        ref = self.driver.originate(str(waiting.info["number"]), caller_id=route_caller_id, tenant_id=tenant_id)
        leg = LiveCall(tenant_id, ref, str(waiting.info["number"]), stage="dialing", engine_ref=waiting.ref)
        leg.queue, leg.agent = waiting.queue, agent
        self._calls[ref] = leg
        self._by_engine_ref[waiting.ref] = leg
        self.listener.callback_attempt(tenant_id, waiting.ref, "dialing", agent, ref, self.clock.now())

    def _callback_answered(self, call: LiveCall) -> None:
        call.stage = "ringing"
        call.generation += 1
        assert call.agent is not None
        self.driver.route_to_agent(call.ref, call.agent)
        timeout = self.engine(call.tenant_id).rules(call.queue or "").ring_timeout_s
        self._later(call, timeout, lambda: self._missed(call))

    def _callback_leg_failed(self, call: LiveCall, stage: str) -> None:
        engine = self.engine(call.tenant_id)
        waiting = engine.remove(call.engine_ref)
        self._by_engine_ref.pop(call.engine_ref, None)
        agents, assignments = engine.ring_ended(call.engine_ref, self._secs(), missed=False)
        for agent in agents:
            self._agent_changed(call.tenant_id, agent)
        self._dispatch(call.tenant_id, assignments)
        if waiting is None:
            return
        attempts = int(waiting.info.get("attempts", 1))
        now = self.clock.now()
        if attempts >= CALLBACK_MAX_ATTEMPTS:
            self._callbacks.pop(call.engine_ref, None)
            self.listener.callback_attempt(call.tenant_id, call.engine_ref, "failed", None, call.ref, now)
            return
        self.listener.callback_attempt(call.tenant_id, call.engine_ref, "pending", None, call.ref, now)
        key, queue, number = waiting.ref, waiting.queue, str(waiting.info["number"])
        self.clock.call_later(
            CALLBACK_RETRY_S,
            lambda: self._run(
                lambda: self._offer_callback(
                    call.tenant_id, key, queue, number, waiting.priority, waiting.place, waiting.since, attempts
                )
            ),
        )

    def _voicemail(self, call: LiveCall, queue: str | None) -> None:
        call.stage, call.queue = "deflected", queue or call.queue
        call.generation += 1
        self.listener.deflected(call.tenant_id, call.ref, "voicemail", call.queue, call.ani, self.clock.now())
        self.driver.play(call.ref, VOICEMAIL_PROMPT)
        self.driver.record(call.ref, RecordingState.STARTED)
        generation = call.generation
        self.clock.call_later(
            MAX_MESSAGE_S,
            lambda: self._run(lambda: self._end_message(call) if call.generation == generation else None),
        )

    def _end_message(self, call: LiveCall) -> None:
        if call.stage == "deflected":
            call.stage = "done"
            self.driver.hangup(call.ref)
