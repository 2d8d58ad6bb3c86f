"""The media worker's pieces around PJSIP (``media.py`` runs them): a call's legs (``Leg``, PJSIP's ``Dialog`` behind
it), the inbound account, prompt players, a customer's call state, and the event channel to the driver.

Callbacks from PJSIP only queue work for the worker's main loop (``Worker.later``); nothing here decides."""

from __future__ import annotations

import json
import re
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pjsua2 as pj  # type: ignore[import-not-found,import-untyped,unused-ignore]

if TYPE_CHECKING:
    from kakehashi.telephony.drivers.sip.media import Worker

_URI_USER = re.compile(r"sips?:([^@;>]+)@")


def uri_user(uri: str) -> str:
    """The user part of a URI PJSIP has already parsed and printed (``"x" <sip:0312345678@host>``)."""
    found = _URI_USER.search(uri)
    return found.group(1) if found else ""


class _Events:
    """The event channel: the process's original stdout. PJSIP prints to fd 1 from C, so ``main`` moves fd 1
    to stderr and keeps a private copy of the real stdout for the protocol."""

    out: Any = sys.stdout


def emit(event: str, **fields: Any) -> None:
    _Events.out.write(json.dumps({"ev": event, **fields}, ensure_ascii=False) + "\n")
    _Events.out.flush()


class LegGone(Exception):
    """The leg's dialog has ended and PJSIP's side of it is gone."""


class Dialog(pj.Call):  # type: ignore[misc,unused-ignore]
    """PJSIP's side of a leg (a pjsua2 ``Call``). pjsua2's ``~Call()`` unlinks and **hangs up the call in the
    slot this object last had** — by then possibly another call: pjsua reuses its four call slots. So a dialog
    is referenced only by ``Worker.dialogs_alive`` and its ``Leg`` and deleted by ``Worker._sweep`` once its call
    has ended *and* its slot is free, never by whoever happens to drop the last reference to a leg."""

    def __init__(self, leg: Leg, account: pj.Account, call_id: int) -> None:
        super().__init__(account, call_id)
        self.leg = leg
        self.sip_call_id = ""  # its Call-ID: whether the slot it last had is still its own (``holds_slot``)

    def holds_slot(self) -> bool:
        """Whether PJSIP still holds a call slot for this dialog. A hung-up call is reported DISCONNECTED at
        once, but its slot stays taken until its BYE is answered (or times out after 32 s)."""
        try:
            info = self.getInfo()
        except pj.Error:
            return False  # the slot is free
        return bool(self.sip_call_id) and info.callIdString == self.sip_call_id

    def onCallState(self, prm: Any) -> None:  # noqa: N802 - PJSIP's name
        self.leg.on_state(self.getInfo())

    def onCallMediaState(self, prm: Any) -> None:  # noqa: N802
        info = self.getInfo()
        for i, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self.leg.on_media(self.getAudioMedia(i))

    def onDtmfDigit(self, prm: Any) -> None:  # noqa: N802
        self.leg.on_dtmf(prm.digit)


class Leg:
    """One SIP dialog of a call; every callback of its ``Dialog`` is turned into work for the main loop."""

    def __init__(self, worker: Worker, account: pj.Account, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        self.worker = worker
        self.ref = ""
        self.audio: pj.AudioMedia | None = None
        self.dialog: Dialog | None = Dialog(self, account, call_id)
        worker.dialogs_alive.add(self.dialog)

    def _pj(self) -> Dialog:
        if self.dialog is None:
            raise LegGone("the call has ended")
        return self.dialog

    def getInfo(self) -> Any:  # noqa: N802 - pjsua2's names, so the worker reads as before
        return self._pj().getInfo()

    def answer(self, prm: pj.CallOpParam) -> None:
        self._pj().answer(prm)

    def hangup(self, prm: pj.CallOpParam) -> None:
        if self.dialog is not None:
            self.dialog.hangup(prm)

    def makeCall(self, uri: str, prm: pj.CallOpParam) -> None:  # noqa: N802
        dialog = self._pj()
        dialog.makeCall(uri, prm)
        dialog.sip_call_id = dialog.getInfo().callIdString

    def on_state(self, info: Any) -> None:
        state, code = info.state, info.lastStatusCode
        if state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.audio = None  # PJSIP has removed the call's port from the bridge (its number may be reused)
        self.worker.later(lambda: self.worker.leg_state(self, state, code))

    def on_media(self, audio: pj.AudioMedia) -> None:
        self.audio = audio
        self.worker.later(lambda: self.worker.media_ready(self))

    def on_dtmf(self, digit: str) -> None:
        self.worker.later(lambda: self.worker.dtmf(self, digit))


class Player(pj.AudioMediaPlayer):  # type: ignore[misc,unused-ignore]
    def __init__(self, on_end: Callable[[], None]) -> None:
        super().__init__()
        self.on_end = on_end

    def onEof2(self) -> None:  # noqa: N802
        self.on_end()


class Inbound(pj.Account):  # type: ignore[misc,unused-ignore]
    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker

    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802
        leg = Leg(self.worker, self, prm.callId)
        self.worker.incoming(leg)


@dataclass(eq=False)
class CallState:
    """A customer's call: their leg, the agent's leg, what they hear, and the recording."""

    ref: str
    customer: Leg
    inbound: bool
    agent: str | None = None
    agent_leg: Leg | None = None  # the agent who answered
    ringing: dict[str, Leg] = field(default_factory=dict)  # agents whose phones ring (several: ring-all)
    bridged: bool = False
    answered: bool = False
    answer_sent: bool = False  # we answered the caller (IVR, queue): their ACK may still be on its way
    player: Player | None = None
    playlist: deque[tuple[str, bool]] = field(default_factory=deque)  # prompts still to play, in order
    recorder: pj.AudioMediaRecorder | None = None
    recording_paused: bool = False
    on_hold: bool = False
    consult: str | None = None  # the colleague consulted for an attended transfer (the caller holds)
    consult_leg: Leg | None = None
    consult_up: bool = False  # the colleague answered
    consult_bridged: bool = False  # agent ↔ colleague joined
    listeners: dict[str, Leg] = field(default_factory=dict)  # supervisors' phones called to listen (silent)
    listening: set[str] = field(default_factory=set)  # those who answered
    deadline: float | None = None  # an originated call that nobody answers by then is given up
    done: bool = False
    garbage: list[Any] = field(default_factory=list)
