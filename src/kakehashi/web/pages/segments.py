"""Target extraction in the browser: ``/segments`` — the saved segments, the criteria editor with a live count
(``static/segments.js`` posts ``/api/v1/campaigns/segments/count`` after each pause in editing), saving with a
campaign and a weekly schedule, and "add to campaign" with its report.

Supervisors and admins (the API's roles). The page is rendered with what the editor offers — the tenant's
custom fields, result codes and campaigns — and everything else goes through ``/api/v1/campaigns/segments``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from kakehashi.auth.guard import Access
from kakehashi.campaigns import segments
from kakehashi.campaigns import service as campaigns
from kakehashi.campaigns.segment_schemas import SegmentOut
from kakehashi.customers import service as customers
from kakehashi.dispositions import service as dispositions
from kakehashi.kit.api import SessionDep
from kakehashi.kit.context import MANAGERS, Actor
from kakehashi.web.render import render_page

router = APIRouter(include_in_schema=False)

ManagerPage = Annotated[Actor, Depends(Access(MANAGERS, page=True))]
GENDERS = ("female", "male", "other", "unknown")
#: Japan's 47 prefectures, in the usual (JIS) order: the editor's choices.
PREFECTURES = [
    "北海道",
    "青森県",
    "岩手県",
    "宮城県",
    "秋田県",
    "山形県",
    "福島県",
    "茨城県",
    "栃木県",
    "群馬県",
    "埼玉県",
    "千葉県",
    "東京都",
    "神奈川県",
    "新潟県",
    "富山県",
    "石川県",
    "福井県",
    "山梨県",
    "長野県",
    "岐阜県",
    "静岡県",
    "愛知県",
    "三重県",
    "滋賀県",
    "京都府",
    "大阪府",
    "兵庫県",
    "奈良県",
    "和歌山県",
    "鳥取県",
    "島根県",
    "岡山県",
    "広島県",
    "山口県",
    "徳島県",
    "香川県",
    "愛媛県",
    "高知県",
    "福岡県",
    "佐賀県",
    "長崎県",
    "熊本県",
    "大分県",
    "宮崎県",
    "鹿児島県",
    "沖縄県",
]


@router.get("/segments", response_class=HTMLResponse)
def segments_page(request: Request, session: SessionDep, actor: ManagerPage) -> HTMLResponse:
    """The segments page: the list, the editor and the runs (data for the script as JSON, read as text)."""
    fields: list[dict[str, Any]] = [
        {"key": f.key, "label": f.label, "type": f.type, "choices": f.choices or []}
        for f in customers.list_custom_fields(session, actor)
        if f.active
    ]
    codes = [d.code for d in dispositions.list_dispositions(session, actor)]
    found = campaigns.list_campaigns(session, actor)
    return render_page(
        request,
        "segments.html",
        segments=[SegmentOut.model_validate(s).model_dump(mode="json") for s in segments.list_segments(session, actor)],
        campaigns=[{"id": c.id, "name": c.name, "status": c.status} for c in found],
        custom_fields=fields,
        result_codes=codes,
        genders=GENDERS,
        prefectures=PREFECTURES,
    )
