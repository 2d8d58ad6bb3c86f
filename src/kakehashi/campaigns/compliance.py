"""Compliance and lead handling around the call list (issue 17): the DNC list in bulk, refusals by product line,
reservations that outlived their agent, and a number's history across campaigns for the screen pop.

- **DNC import/export** (:func:`import_dnc`, :func:`export_dnc`): a CSV or XLSX with a phone column and an
  optional reason; every valid row is added in one multi-row INSERT per thousand, each bad row is reported
  with its row number and column, numbers already listed (or listed twice in the file) are counted, not
  failed. The export is formula-safe (``kit.export``) and audited: it is personal data.
- **Refusal scope** (特定商取引法 Art.17): a refusal heard in a campaign whose ``refusal_scope`` is
  "product_line" blocks only the campaigns of that product line; any other refusal blocks every campaign of
  the tenant. :func:`refusal_for` answers for one number (a manual dial from the desk: without a campaign,
  any refusal in force blocks). ``service.scrub`` applies the same rule to lists.
- **Stale reservations** (:func:`release_stale`, :func:`release_agent`): a lead reserved and never finished
  (the agent closed the browser) goes back to the queue after ``older_than``; one whose call is still up
  (an attempt without its end) is kept, up to :data:`CALL_LIMIT`.
- **Lead history** (:func:`lead_history`): when a number that is a lead calls in, the screen pop shows its
  campaigns, statuses, attempts and last result.

This module imports no ``campaigns.service`` (which re-exports :func:`refusal_for` and :func:`lead_history`).
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from kakehashi.audit import service as audit
from kakehashi.campaigns.models import Campaign, Lead, Refusal
from kakehashi.campaigns.repository import CampaignRepository, tenants_with_reservations_before
from kakehashi.customers.importer.mapping import ImportSetupError
from kakehashi.customers.importer.reading import SPREADSHEET_SUFFIXES, Cell, cell_text, open_table
from kakehashi.kit.context import Actor
from kakehashi.kit.db import unit_of_work, utcnow
from kakehashi.kit.errors import NotFound, ValidationFailed, field_error
from kakehashi.kit.export import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, Export, csv_bytes, xlsx_bytes
from kakehashi.kit.masking import PhoneText, mask_phone
from kakehashi.kit.phone import InvalidPhone, normalize_phone

#: Header names (compared lower-case, spaces removed) that name the phone column and the reason column.
PHONE_HEADERS = frozenset({"phone", "phonenumber", "tel", "telephone", "number", "e164", "電話番号", "電話", "番号"})
REASON_HEADERS = frozenset({"reason", "note", "理由", "備考", "メモ"})
REASON_MAX = 200  # DncNumber.reason
#: Most bad rows listed in an import's answer (the count is always complete).
BAD_ROWS_SHOWN = 1000
#: Default age after which a reservation without an outcome is freed.
STALE_AFTER = timedelta(minutes=30)
#: A call still up keeps its lead reserved, but not longer than this after the reservation.
CALL_LIMIT = timedelta(hours=4)
#: Leads shown in a screen pop's campaign history.
HISTORY_LIMIT = 10


# -- shapes


class BadRow(BaseModel):
    row: int
    column: str
    problem: str


class DncImported(BaseModel):
    rows: int
    added: int
    duplicates: int
    bad: int
    bad_rows: list[BadRow]


class Released(BaseModel):
    released: int
    lead_ids: list[int]


class LeadHistory(BaseModel):
    """One campaign in which the number is a lead (the screen pop's キャンペーン履歴)."""

    campaign_id: int
    campaign: str
    lead_id: int
    status: str
    attempts: int
    last_result: str | None
    last_attempt_at: datetime | None


class RefusalInForce(BaseModel):
    id: int
    e164: PhoneText
    scope: str
    product_line: str | None
    campaign_id: int | None
    at: datetime


# -- the do-not-call list in bulk


def _key(header: str) -> str:
    return "".join(header.split()).lower().replace("_", "").replace("-", "")


def _columns(headers: list[str]) -> tuple[int, int | None, bool]:
    """(phone column, reason column, whether the first row is data): by the header's name; a file without a
    header row (its first cell already a number) or with one column is read as numbers from its first row."""
    keys = [_key(h) for h in headers]
    phone = next((i for i, k in enumerate(keys) if k in PHONE_HEADERS), None)
    reason = next((i for i, k in enumerate(keys) if k in REASON_HEADERS), None)
    if phone is not None:
        return phone, reason, False
    try:
        normalize_phone(headers[0])
    except InvalidPhone:
        if len(headers) == 1:
            return 0, None, False
        raise ValidationFailed(
            "the file has no phone column",
            errors=[field_error("file", "name a column 電話番号 or phone (and optionally 理由 or reason)")],
        ) from None
    return 0, 1 if len(headers) > 1 else None, True


def import_dnc_file(session: Session, actor: Actor, path: Path, *, filename: str | None = None) -> DncImported:
    """Add every valid number of a CSV or XLSX file to the DNC list (see the module's docstring). Audited once."""
    try:
        table = open_table(path)
    except ImportSetupError as exc:
        raise ValidationFailed("the file cannot be read", errors=[field_error("file", str(exc))]) from None
    try:
        phone_col, reason_col, header_is_data = _columns(table.headers)
        phone_name = "phone" if header_is_data else table.headers[phone_col]
        reason_name = "reason" if header_is_data or reason_col is None else table.headers[reason_col]
        first: list[tuple[int, Sequence[Cell]]] = [(1, table.headers)] if header_is_data else []
        try:
            wanted, bad, total = _read_rows(
                itertools.chain(first, table.rows), phone_col, reason_col, phone_name, reason_name
            )
        except ImportSetupError as exc:
            raise ValidationFailed("the file cannot be read", errors=[field_error("file", str(exc))]) from None
    finally:
        table.close()
    repo = CampaignRepository(session, actor.tenant_id)
    listed = repo.dnc_numbers(list(wanted))
    new = [{"e164": e, "reason": r, "added_by": actor.username} for e, r in wanted.items() if e not in listed]
    repo.insert_dnc(new, utcnow())
    session.flush()
    result = DncImported(
        rows=total,
        added=len(new),
        duplicates=total - len(bad) - len(new),
        bad=len(bad),
        bad_rows=bad[:BAD_ROWS_SHOWN],
    )
    audit.record(
        session,
        actor,
        "campaign.dnc.import",
        resource="dnc",
        detail={"file": filename or path.name, **result.model_dump(exclude={"bad_rows"})},
    )
    return result


def _read_rows(
    rows: Iterable[tuple[int, Sequence[Cell]]],
    phone_col: int,
    reason_col: int | None,
    phone_name: str,
    reason_name: str,
) -> tuple[dict[str, str], list[BadRow], int]:
    """The numbers to add (the first reason of a number wins), the bad rows, and the count of data rows."""
    wanted: dict[str, str] = {}
    bad: list[BadRow] = []
    total = 0
    for number, cells in rows:
        total += 1
        cell = cells[phone_col] if phone_col < len(cells) else None
        raw = cell_text(cell)
        if isinstance(cell, int | float) and not isinstance(cell, bool) and not raw.startswith("0"):
            raw = "0" + raw  # Excel drops the leading 0 of 0312345678 typed as a number
        reason = cell_text(cells[reason_col]).strip() if reason_col is not None and reason_col < len(cells) else ""
        try:
            e164 = normalize_phone(raw)
        except InvalidPhone as exc:
            bad.append(BadRow(row=number, column=phone_name, problem=str(exc)))
            continue
        if len(reason) > REASON_MAX:
            bad.append(BadRow(row=number, column=reason_name, problem=f"longer than {REASON_MAX} characters"))
            continue
        wanted.setdefault(e164, reason)
    return wanted, bad, total


def import_dnc_upload(session: Session, actor: Actor, filename: str, content: bytes) -> DncImported:
    """:func:`import_dnc_file` for an uploaded file, held in a temporary file named like the upload (its suffix
    says CSV or spreadsheet)."""
    suffix = Path(filename or "").suffix.lower()
    if suffix not in (".csv", ".tsv", ".txt", *SPREADSHEET_SUFFIXES):
        raise ValidationFailed("send a CSV or XLSX file", errors=[field_error("file", "a .csv or .xlsx file")])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(content)
        return import_dnc_file(session, actor, path, filename=filename)


DNC_COLUMNS = ("phone", "reason", "added_by", "added_at")


def export_dnc(session: Session, actor: Actor, fmt: Literal["csv", "xlsx"]) -> Export:
    """The DNC list as CSV (UTF-8 with a BOM) or XLSX, formula-safe; numbers masked for an actor who may not see
    personal data. Audited with the row count."""
    rows = CampaignRepository(session, actor.tenant_id).dnc_all()
    show = (lambda e: e) if actor.sees_personal_data else mask_phone
    table = [(show(r.e164), r.reason, r.added_by, r.added_at) for r in rows]
    audit.record(session, actor, "campaign.dnc.export", resource="dnc", detail={"rows": len(rows), "format": fmt})
    if fmt == "xlsx":
        return Export(xlsx_bytes(DNC_COLUMNS, table, title="DNC"), "dnc.xlsx", XLSX_MEDIA_TYPE)
    return Export(csv_bytes(DNC_COLUMNS, table), "dnc.csv", CSV_MEDIA_TYPE)


# -- refusals by scope


def refusal_for(session: Session, actor: Actor, e164: str, campaign: Campaign | None = None) -> Refusal | None:
    """The refusal in force that forbids calling ``e164`` (E.164) in ``campaign``: a company-wide one, or one of
    the campaign's product line. Without a campaign (a manual dial from the desk) any refusal in force blocks —
    the agent cannot know which product the person will be offered."""
    line = campaign.product_line if campaign is not None else None
    return CampaignRepository(session, actor.tenant_id).refusal_in_force(
        e164, product_line=line, every_scope=campaign is None
    )


# -- reservations that outlived their agent


def _system(actor_or_tenant: Actor | int) -> Actor:
    if isinstance(actor_or_tenant, Actor):
        return actor_or_tenant
    return Actor(tenant_id=actor_or_tenant, username="system", origin="job")


def _free(leads: list[Lead], dialled: dict[int, tuple[int, bool]]) -> None:
    """Back to the queue: a personal callback stays one, a lead never tried is new again, else it waits for its
    next try (due now). A dial made during the reservation counts as an attempt (the caps still hold)."""
    for lead in leads:
        count, _ = dialled.get(lead.id, (0, False))
        lead.attempts += count
        if count:
            lead.last_result = "released"
        if lead.callback_agent is not None:
            lead.status = "callback"
        elif lead.attempts == 0:
            lead.status = "new"
        else:
            lead.status = "in_progress"
        lead.reserved_by = lead.reserved_at = None


def release_stale(
    session: Session,
    actor_or_tenant: Actor | int,
    now: datetime,
    older_than: timedelta = STALE_AFTER,
    *,
    campaign_id: int | None = None,
) -> Released:
    """Free the leads reserved longer than ``older_than`` before ``now`` (in one campaign, or all of the tenant),
    except those whose call is still up (kept up to :data:`CALL_LIMIT`). One audit row for the batch.

    For a periodic job pass the tenant's id (the actor is then the system); run it every few minutes."""
    actor = _system(actor_or_tenant)
    repo = CampaignRepository(session, actor.tenant_id)
    if campaign_id is not None and repo.get(campaign_id) is None:
        raise NotFound(f"campaign {campaign_id} not found")
    candidates = repo.reserved_leads(before=now - older_than, campaign_id=campaign_id)
    dialled = _dialled(repo, candidates)
    stale = [
        lead
        for lead in candidates
        if not (dialled.get(lead.id, (0, False))[1] and (lead.reserved_at or now) > now - CALL_LIMIT)
    ]
    return _release(session, actor, stale, dialled, "campaign.leads.release_stale", older_than)


def release_stale_everywhere(factory: sessionmaker[Session], now: datetime, older_than: timedelta = STALE_AFTER) -> int:
    """The periodic job (the app's per-minute check, ``segment_scheduler``): :func:`release_stale` in every tenant
    holding a stale reservation, each tenant in a transaction of its own. Returns the leads freed."""
    with unit_of_work(factory) as session:
        tenant_ids = tenants_with_reservations_before(session, now - older_than)
    freed = 0
    for tenant_id in tenant_ids:
        with unit_of_work(factory) as session:
            freed += release_stale(session, tenant_id, now, older_than).released
    return freed


def release_agent(session: Session, actor: Actor, agent: str) -> Released:
    """Free every lead ``agent`` holds (they logged out). One audit row."""
    repo = CampaignRepository(session, actor.tenant_id)
    leads = repo.reserved_leads(agent=agent)
    return _release(session, actor, leads, _dialled(repo, leads), "campaign.leads.release_agent", None, agent)


def _dialled(repo: CampaignRepository, leads: list[Lead]) -> dict[int, tuple[int, bool]]:
    """Per lead, the attempts started during its reservation and whether one is still open."""
    return repo.attempts_in_reservation([lead.id for lead in leads]) if leads else {}


def _release(
    session: Session,
    actor: Actor,
    leads: list[Lead],
    dialled: dict[int, tuple[int, bool]],
    action: str,
    older_than: timedelta | None,
    agent: str | None = None,
) -> Released:
    if not leads:
        return Released(released=0, lead_ids=[])
    holders = sorted({lead.reserved_by or "" for lead in leads})
    _free(leads, dialled)
    session.flush()
    detail: dict[str, object] = {"leads": [lead.id for lead in leads], "agents": holders}
    if older_than is not None:
        detail["older_than_min"] = older_than.total_seconds() / 60
    if agent is not None:
        detail["agent"] = agent
    audit.record(session, actor, action, resource="lead", detail=detail)
    return Released(released=len(leads), lead_ids=[lead.id for lead in leads])


# -- a number's campaigns (the screen pop)


def lead_history(session: Session, actor: Actor, e164: str, limit: int = HISTORY_LIMIT) -> list[LeadHistory]:
    """The campaigns in which ``e164`` is a lead, newest first: status, attempts, last result and the start of
    the last attempt. Audited when there is any (the rows tie a number to the campaigns that called it)."""
    rows = CampaignRepository(session, actor.tenant_id).lead_history(e164, limit)
    history = [
        LeadHistory(
            campaign_id=row.campaign_id,
            campaign=row.name,
            lead_id=row.id,
            status=row.status,
            attempts=row.attempts,
            last_result=row.last_result,
            last_attempt_at=row.last_at,
        )
        for row in rows
    ]
    if history:
        audit.record(
            session,
            actor,
            "read",
            resource="lead_history",
            customer_id=next((row.customer_id for row in rows if row.customer_id), None),
            detail={"leads": [h.lead_id for h in history]},
        )
    return history
