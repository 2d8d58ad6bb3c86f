"""``/api/v1/campaigns``: the DNC list in bulk and freeing stale reservations (issue 17; ``compliance.py``).

Included in ``app.py`` before the campaigns' router: ``/dnc.csv`` is not a campaign id.

The contract (the DNC page builds on it; every answer that is not 2xx is an RFC 9457 problem):

``POST /api/v1/campaigns/dnc/import`` — supervisors, admins. ``multipart/form-data`` with one part ``file``: a
CSV (UTF-8 with or without BOM, or CP932 as Excel writes it; comma or tab) or XLSX (first sheet). The phone
column is the one headed 電話番号 / 電話 / 番号 / phone / tel / number / e164 (case and spaces ignored), the
optional reason column 理由 / 備考 / メモ / reason / note; a file of one column, or whose first row is already a
number, is read without a header (then column 2, if any, is the reason). Answer 200::

    {"rows": 5, "added": 3, "duplicates": 1, "bad": 1,
     "bad_rows": [{"row": 4, "column": "電話番号", "problem": "…why, in words…"}]}

``rows`` counts the data rows, ``duplicates`` numbers already on the list or repeated in the file (not errors),
``bad_rows`` the first 1,000 bad rows (``row`` is the file's 1-based row number, the header being row 1).
422 with ``errors[0].field == "file"``: not a CSV/XLSX, unreadable, empty, or no phone column (nothing added).

``GET /api/v1/campaigns/dnc.csv`` and ``GET /api/v1/campaigns/dnc.xlsx`` — supervisors, admins. The list as a
download (``Content-Disposition: attachment``), columns ``phone, reason, added_by, added_at`` (E.164; CSV is UTF-8
with a BOM, cells formula-safe; XLSX times in Japan time). Audited (``campaign.dnc.export``).

``POST /api/v1/campaigns/{campaign_id}/release-stale?older_than_min=30`` — supervisors, admins. Frees the
campaign's leads reserved longer than ``older_than_min`` minutes (1–1440, default 30) whose call is not still
up. Answer ``{"released": 2, "lead_ids": [17, 18]}``; 404 for a campaign not in the tenant.

The existing single-entry routes stay in ``api.py``: ``GET/POST /api/v1/campaigns/dnc``,
``DELETE /api/v1/campaigns/dnc/{dnc_id}``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, File, Query, Response, UploadFile

from kakehashi.auth.guard import ManagerActor
from kakehashi.campaigns import compliance
from kakehashi.campaigns.compliance import DncImported, Released
from kakehashi.kit.api import IdPath, SessionDep, respond
from kakehashi.kit.db import utcnow
from kakehashi.kit.export import download

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])


@router.post("/dnc/import", response_model=DncImported)
def import_dnc(session: SessionDep, actor: ManagerActor, file: Annotated[UploadFile, File()]) -> Response:
    """Add the numbers of a CSV or XLSX file to the do-not-call list; bad rows come back with row and column."""
    content = file.file.read()
    result = compliance.import_dnc_upload(session, actor, file.filename or "", content)
    return respond(result, actor)


@router.get("/dnc.csv", response_class=Response)
def export_dnc_csv(session: SessionDep, actor: ManagerActor) -> Response:
    """The do-not-call list as CSV (UTF-8 with BOM, formula-safe); audited."""
    return download(compliance.export_dnc(session, actor, "csv"))


@router.get("/dnc.xlsx", response_class=Response)
def export_dnc_xlsx(session: SessionDep, actor: ManagerActor) -> Response:
    """The do-not-call list as XLSX; audited."""
    return download(compliance.export_dnc(session, actor, "xlsx"))


@router.post("/{campaign_id}/release-stale", response_model=Released)
def release_stale(
    session: SessionDep,
    actor: ManagerActor,
    campaign_id: IdPath,
    older_than_min: Annotated[int, Query(ge=1, le=1440, description="minutes a reservation may last")] = 30,
) -> Response:
    """Free the campaign's leads reserved and never finished (an agent closed the browser); audited."""
    found = compliance.release_stale(
        session, actor, utcnow(), timedelta(minutes=older_than_min), campaign_id=campaign_id
    )
    return respond(found, actor)
