"""``GET /api/v1/softphone``: what an agent's browser needs to register its softphone to Kamailio.

The browser softphone (``web/static/softphone.js``, JsSIP) speaks SIP over WebSocket to Kamailio, which
lets a WebSocket client register only with *ephemeral credentials* (Kamailio's ``auth_ephemeral``): the
username is ``<expiry unix time>:<agent>``, the password ``base64(HMAC-SHA1(secret, username))``, and the
secret is shared by the app (``KAKEHASHI_SOFTPHONE_SECRET``) and Kamailio only. So the app hands a signed-in
agent a credential for their own agent name, valid for ``softphone_credential_ttl_s``; the page fetches a new
one before it expires. Nothing is stored: a credential cannot be revoked, it expires (ADR 0015).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from kakehashi.agents import service as agents
from kakehashi.audit import service as audit
from kakehashi.auth.guard import StaffActor
from kakehashi.kit.api import SessionDep, respond
from kakehashi.kit.config import Settings
from kakehashi.kit.db import utcnow
from kakehashi.kit.errors import NotFound

router = APIRouter(prefix="/api/v1", tags=["telephony"])


class IceServer(BaseModel):
    """An RTCIceServer for the browser (TURN, with the same ephemeral credential)."""

    urls: list[str]
    username: str
    credential: str


class SoftphoneOut(BaseModel):
    """A JsSIP UA's configuration for the caller's own agent."""

    ws_url: str = Field(description="Kamailio's SIP-over-WebSocket URL.")
    uri: str = Field(description="The agent's SIP URI, sip:<agent>@<domain>.")
    authorization_user: str = Field(description="The ephemeral username: <expiry unix time>:<agent>.")
    password: str = Field(description="base64(HMAC-SHA1(secret, authorization_user)).")
    expires_at: datetime = Field(description="When the credential stops working (UTC); fetch a new one before.")
    display_name: str
    ice_servers: list[IceServer] = Field(default_factory=list, description="TURN servers, when configured.")


def ephemeral_credential(secret: str, user: str, expires_at: datetime) -> tuple[str, str]:
    """``(username, password)`` as Kamailio's ``auth_ephemeral`` (and coturn's ``use-auth-secret``) check them:
    ``<expiry unix time>:<user>`` and ``base64(HMAC-SHA1(secret, username))``."""
    username = f"{int(expires_at.timestamp())}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def softphone_configured(settings: Settings) -> bool:
    """A browser softphone needs Kamailio's WebSocket URL and the shared secret, and a real phone system:
    the simulator rings nobody's browser. Web-only processes (driver ``none``) still issue credentials."""
    return bool(settings.softphone_ws_url and settings.softphone_secret) and settings.telephony_driver != "sim"


def softphone_domain(settings: Settings) -> str:
    return settings.softphone_domain or settings.sip_proxy.rsplit(":", 1)[0]


def websocket_origin(settings: Settings) -> str | None:
    """``ws(s)://host:port`` of Kamailio's WebSocket listener: a page that runs the softphone must allow it in
    its Content-Security-Policy ``connect-src`` (it is another origin than the app's)."""
    url = settings.softphone_ws_url
    if not url or not softphone_configured(settings):
        return None
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


@router.get(
    "/softphone",
    response_model=SoftphoneOut,
    responses={404: {"description": "no browser softphone is configured, or the caller is not an agent"}},
)
def my_softphone(request: Request, session: SessionDep, actor: StaffActor) -> Response:
    """SIP-over-WebSocket settings and a short-lived credential for the caller's own agent (agent name ==
    username). 404 when no browser softphone is configured (simulator) or the caller is not an agent of the
    tenant. Each issue is written to the audit log."""
    settings: Settings = request.app.state.settings
    ws_url, secret = settings.softphone_ws_url, settings.softphone_secret
    if not ws_url or secret is None or not softphone_configured(settings):
        raise NotFound("no browser softphone is configured (KAKEHASHI_SOFTPHONE_WS_URL, KAKEHASHI_SOFTPHONE_SECRET)")
    agent = agents.own_agent(session, actor)
    if agent is None:
        raise NotFound(f"{actor.username} is not an agent in this tenant")
    expires_at = utcnow().replace(microsecond=0) + timedelta(seconds=settings.softphone_credential_ttl_s)
    username, password = ephemeral_credential(secret.get_secret_value(), agent.name, expires_at)
    turn = [IceServer(urls=settings.softphone_turn_urls, username=username, credential=password)]
    audit.record(session, actor, "softphone.credential", resource="agent", resource_id=agent.id,
                 detail={"expires_at": expires_at.isoformat()})  # fmt: skip
    out = SoftphoneOut(
        ws_url=ws_url,
        uri=f"sip:{agent.name}@{softphone_domain(settings)}",
        authorization_user=username,
        password=password,
        expires_at=expires_at.astimezone(UTC),
        display_name=agent.display_name or agent.name,
        ice_servers=turn if settings.softphone_turn_urls else [],
    )
    response = respond(out, actor)
    response.headers["Cache-Control"] = "no-store"
    return response
