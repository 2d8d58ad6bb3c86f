"""The call state machine: which state may follow which. Every change is persisted with its time."""

from __future__ import annotations

from enum import StrEnum


class CallState(StrEnum):
    OFFERED = "offered"
    IVR = "ivr"
    QUEUED = "queued"
    RINGING = "ringing"  # an agent's phone rings
    CONNECTED = "connected"
    WRAP_UP = "wrap_up"  # 後処理: the line is free, the agent finishes notes
    ENDED = "ended"
    ABANDONED = "abandoned"
    FAILED = "failed"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    TRANSFERRED = "transferred"
    # Deflected (the caller did not wait for an agent, by choice or by the queue's rules): the line is still
    # up while the caller leaves a message or hears the callback confirmation; the CDR comes at hang-up.
    VOICEMAIL = "voicemail"
    CALLBACK = "callback"


FINAL = frozenset(
    {CallState.ENDED, CallState.ABANDONED, CallState.FAILED, CallState.BUSY, CallState.NO_ANSWER, CallState.TRANSFERRED}
)
_UNANSWERED_ENDS = {CallState.ABANDONED, CallState.FAILED, CallState.BUSY, CallState.NO_ANSWER}
DEFLECTED = frozenset({CallState.VOICEMAIL, CallState.CALLBACK})

ALLOWED: dict[CallState, frozenset[CallState]] = {
    CallState.OFFERED: frozenset(
        {CallState.IVR, CallState.QUEUED, CallState.RINGING, CallState.CONNECTED, *_UNANSWERED_ENDS}
    ),
    CallState.IVR: frozenset(
        {CallState.QUEUED, CallState.RINGING, CallState.ENDED, CallState.TRANSFERRED, *_UNANSWERED_ENDS, *DEFLECTED}
    ),
    # Queued again: an overflow to another queue keeps the caller's place.
    CallState.QUEUED: frozenset(
        {CallState.QUEUED, CallState.RINGING, CallState.ABANDONED, CallState.ENDED, CallState.TRANSFERRED, *DEFLECTED}
    ),
    # A missed agent sends the call back to the queue (or to the next agent).
    CallState.RINGING: frozenset(
        {CallState.CONNECTED, CallState.QUEUED, CallState.RINGING, CallState.ABANDONED, CallState.NO_ANSWER}
    ),
    # Connected again: an attended transfer hands the caller to the consulted agent.
    CallState.CONNECTED: frozenset(
        {
            CallState.CONNECTED,
            CallState.WRAP_UP,
            CallState.ENDED,
            CallState.TRANSFERRED,
            CallState.QUEUED,
            CallState.RINGING,
        }
    ),
    CallState.WRAP_UP: frozenset({CallState.ENDED}),
}
# A system failure (a lost line, a restart) can end a call in any state.
ALLOWED = {state: targets | {CallState.FAILED} for state, targets in ALLOWED.items()}
ALLOWED[CallState.WRAP_UP] = frozenset({CallState.ENDED})  # the conversation is over: only the notes remain
for _deflected in DEFLECTED:
    ALLOWED[_deflected] = frozenset({CallState.FAILED})


class IllegalTransition(ValueError):
    pass


def check(current: CallState, new: CallState) -> None:
    """Raise :class:`IllegalTransition` unless ``new`` may follow ``current``."""
    if new not in ALLOWED.get(current, frozenset()):
        raise IllegalTransition(f"a call cannot go from {current.value} to {new.value}")
