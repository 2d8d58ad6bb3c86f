"""Web pages, one module per page; Japanese first, ``?lang=en`` or the ``lang`` cookie switches to English.

``router`` gathers them in the order they were declared before the split (``/``, the account pages, ``/desk``,
``/ivr``, ``/routing``), then ``/campaigns``. What every page shares (templates, security headers,
``render_page``) is in :mod:`kakehashi.web.render`; ``/wallboard`` and ``/docs`` have their own modules beside this
package.
"""

from __future__ import annotations

from fastapi import APIRouter

from kakehashi.web.pages import account, campaigns, customers, desk, ivr, routing, segments
from kakehashi.web.render import CONTENT_SECURITY_POLICY, SECURITY_HEADERS, STATIC_DIR, render_page, templates

router = APIRouter(include_in_schema=False)
for _page in (customers, account, desk, ivr, routing, campaigns, segments):
    router.include_router(_page.router)

__all__ = ["CONTENT_SECURITY_POLICY", "SECURITY_HEADERS", "STATIC_DIR", "render_page", "router", "templates"]
