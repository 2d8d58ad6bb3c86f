"""Loading a call list (CSV UTF-8 / Shift_JIS, XLSX) into a campaign (issue 17, docs/user-guide/campaigns.md).

The file goes through the customer importer (``customers.importer``): the same reading, column mapping,
normalization, per-row errors with their column, spreadsheet caps and APPI source record as a customer import,
in the same batches (one transaction per batch; ``strict``: one for the file). Each row's customer is matched by
phone or created there; in that same transaction (the importer's ``after_write`` hook) every row written is
scrubbed (:func:`campaigns.service.scrub`: do-not-contact, outbound-excluded, refusals, the DNC list, numbers
already in the campaign or earlier in the file) and the others become leads in bulk. Nothing is dropped silently:
the report lists every bad row (row, column, message) and every scrubbed row (row, number, reason).

This module commits only where the importer's batching does, plus the list's own row before (so that leads can
refer to it) and its counts after.
"""

from __future__ import annotations

import csv
import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from kakehashi.audit import service as audit
from kakehashi.campaigns import service as campaigns
from kakehashi.campaigns.lists_repository import CampaignListRepository
from kakehashi.campaigns.lists_schemas import (
    SIM_OUTCOMES,
    BadRow,
    ListCustomers,
    ListReport,
    ScrubbedRow,
)
from kakehashi.campaigns.models import CampaignList
from kakehashi.campaigns.repository import CampaignRepository
from kakehashi.customers import importer
from kakehashi.customers import service as customers
from kakehashi.customers.importer import ImportSetupError, ParsedRow, XlsxLimits
from kakehashi.customers.importer.mapping import resolve_columns
from kakehashi.customers.importer.report import WARNING
from kakehashi.kit.clock import business_today
from kakehashi.kit.context import Actor
from kakehashi.kit.db import unit_of_work
from kakehashi.kit.errors import Conflict, NotFound, ValidationFailed, field_error
from kakehashi.privacy import service as privacy
from kakehashi.privacy.schemas import SourceCreate
from kakehashi.tenants import service as tenants

#: Reasons a row's customer blocks its every number (the person, not the number).
_PERSON_REASONS = ("do_not_contact", "outbound_excluded")
#: How far the outcome probabilities may sum from 1.
SIM_TOLERANCE = 0.001


def bilingual(field: str, code: str, english: str, japanese: str) -> dict[str, Any]:
    """A per-field problem in both languages: ``message`` (English), ``message_ja`` and a stable ``code``."""
    return field_error(field, english, code=code, message_ja=japanese)


# -- options checked before anything is written


def check_sim_outcomes(raw: Mapping[str, Any] | None) -> dict[str, float] | None:
    """The simulator's outcome mix of a list: known outcomes only, each a probability, summing to 1 (±0.001).
    Missing outcomes count 0; all five are stored."""
    if raw is None:
        return None
    errors = []
    mix: dict[str, float] = dict.fromkeys(SIM_OUTCOMES, 0.0)
    for key, value in raw.items():
        where = f"sim_outcomes.{key}"
        if key not in SIM_OUTCOMES:
            errors.append(
                bilingual(
                    where,
                    "list.sim_outcomes.unknown",
                    f"unknown outcome (use {', '.join(SIM_OUTCOMES)})",
                    f"不明な結果です（{', '.join(SIM_OUTCOMES)} のいずれか）",
                )
            )
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1 or math.isnan(value):
            errors.append(
                bilingual(
                    where,
                    "list.sim_outcomes.probability",
                    "a probability between 0 and 1",
                    "0 以上 1 以下の確率を指定してください",
                )
            )
            continue
        mix[key] = float(value)
    if not errors and abs(sum(mix.values()) - 1) > SIM_TOLERANCE:
        errors.append(
            bilingual(
                "sim_outcomes",
                "list.sim_outcomes.sum",
                f"the probabilities sum to {sum(mix.values()):.3f}, not 1",
                f"確率の合計が {sum(mix.values()):.3f} です（1 にしてください）",
            )
        )
    if errors:
        raise ValidationFailed("the outcome mix is not valid", errors=errors)
    return mix


@dataclass(frozen=True)
class SourceSpec:
    """Where the list came from (APPI 第三者提供に係る記録): an existing record, or one recorded with the load
    (``provider`` and ``method``; ``received`` defaults to today, ``items`` to the file's column headers)."""

    source_id: int | None = None
    provider: str | None = None
    method: str | None = None
    received: date | None = None
    items: list[str] | None = None

    @property
    def new(self) -> bool:
        return self.source_id is None


def _source_id(session: Session, actor: Actor, spec: SourceSpec, headers: list[str]) -> int:
    if spec.source_id is not None:
        return privacy.get_source(session, actor, spec.source_id)[0].id
    if not (spec.provider or "").strip() or not (spec.method or "").strip():
        raise ValidationFailed(
            "say where the list came from (APPI)",
            errors=[
                bilingual(
                    "source_id",
                    "list.source.required",
                    "give source_id, or provider and method to record the list's source",
                    "リストの取得元（source_id、または提供元 provider と取得の経緯 method）を指定してください",
                ),
            ],
        )
    data = SourceCreate(
        provider_name=spec.provider or "",
        acquisition_method=spec.method or "",
        received_on=spec.received or business_today(),
        items=(spec.items or [h for h in headers if h.strip()][:100]) or ["(no header)"],
    )
    return privacy.record_source(session, actor, data).id


def _setup_problem(exc: ImportSetupError) -> ValidationFailed:
    return ValidationFailed(
        f"the file cannot be loaded: {exc}",
        errors=[bilingual("file", "list.file.unusable", str(exc), f"ファイルを読み込めません: {exc}")],
    )


# -- the load


@dataclass
class _Part:
    """What the hook did in one committed part of a batch."""

    loaded: int = 0
    scrubbed: list[tuple[int, str, str]] = field(default_factory=list)


class _LeadWriter:
    """The importer's ``after_write`` hook: in the batch's transaction, scrub the rows' numbers and insert a lead
    per remaining row (its first number), linked to the row's customer and the list."""

    #: Rows written after which the tables' statistics are refreshed, then at 4×, 16×… that (see
    #: ``CampaignListRepository.refresh_statistics``): a handful of ``ANALYZE``s a load.
    ANALYZE_FIRST = 2000

    def __init__(self, actor: Actor, campaign_id: int, list_id: int) -> None:
        self.actor, self.campaign_id, self.list_id = actor, campaign_id, list_id
        self.written = 0
        self.analyze_at = self.ANALYZE_FIRST

    def __call__(self, session: Session, rows: list[ParsedRow]) -> _Part:
        actor = self.actor
        campaign = campaigns.get_campaign(session, actor, self.campaign_id)
        rows = [r for r in rows if r.phones]  # the importer refuses a row without a number; kept safe all the same
        firsts = list(dict.fromkeys(r.phones[0].e164 for r in rows))
        # Written, every number of a row is its customer's; only a skipped row's new first number (on_duplicate
        # "skip" adds no number) has no owner, and then the customer is found by the row's other numbers.
        owners = customers.phone_owners(session, actor, firsts)
        others = [p.e164 for r in rows if r.phones[0].e164 not in owners for p in r.phones[1:]]
        if others:
            owners.update(customers.phone_owners(session, actor, others))
        # Numbers already leads of the campaign (earlier lists, earlier batches of this file) come back "duplicate";
        # the customer's do-not-contact and outbound-excluded flags come with the first number (the customer's).
        reasons = campaigns.scrub(session, actor, campaign, firsts)
        if others:
            reasons.update(
                {p: r for p, r in customers.contact_blocks(session, actor, others).items() if p not in reasons}
            )
        part = _Part()
        leads: list[dict[str, Any]] = []
        taken: set[str] = set()
        for row in rows:
            phone = row.phones[0].e164
            reason = reasons.get(phone)
            if reason is None and phone not in owners:
                reason = next((reasons[p.e164] for p in row.phones[1:] if reasons.get(p.e164) in _PERSON_REASONS), None)
            if reason is None and phone in taken:
                reason = "duplicate"  # a second row of the same number in this batch
            if reason is not None:
                part.scrubbed.append((row.row, phone, reason))
                continue
            taken.add(phone)
            customer_id = owners.get(phone) or next((owners[p.e164] for p in row.phones[1:] if p.e164 in owners), None)
            leads.append(
                {
                    "campaign_id": campaign.id,
                    "customer_id": customer_id,
                    "list_id": self.list_id,
                    "phone": phone,
                    "status": "new",
                    "attempts": 0,
                    "attempts_today": 0,
                }
            )
        CampaignRepository(session, actor.tenant_id).insert_leads(leads)
        part.loaded = len(leads)
        self.written += len(rows)
        if self.written >= self.analyze_at:
            self.analyze_at *= 4
            CampaignListRepository(session, actor.tenant_id).refresh_statistics()
        return part


def load_list(
    factory: sessionmaker[Session],
    actor: Actor,
    campaign_id: int,
    path: Path,
    *,
    source: SourceSpec,
    name: str | None = None,
    filename: str | None = None,
    strict: bool = False,
    mapping: dict[str, str] | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
    on_duplicate: str = "update",
    sim_outcomes: Mapping[str, Any] | None = None,
    progress: bool = False,
    workers: int | None = None,
    batch_size: int = 1000,
    limits: XlsxLimits | None = None,
    errors_path: Path | None = None,
    region: str = "JP",
) -> ListReport:
    """Load the file at ``path`` into the campaign as a new list; return the report.

    Raises a :class:`~kakehashi.kit.errors.DomainError` (nothing loaded, no list kept) when the campaign, the
    source, the options or the file as a whole are unusable. ``filename``: the name the user gave the file (an
    upload is stored under a temporary one). ``workers``: the importer's parsing processes (0 in a server).
    ``errors_path``: also keep the importer's per-row error CSV there.
    """
    mix = check_sim_outcomes(sim_outcomes)
    filename = (filename or path.name)[-255:]
    list_name = (name or "").strip() or Path(filename).stem or filename
    if len(list_name) > 200:
        raise ValidationFailed(
            "the name is too long",
            errors=[bilingual("name", "list.name.too_long", "at most 200 characters", "200 文字以内にしてください")],
        )
    try:  # the file and its columns first: an unusable file leaves no list and no source record behind
        table = importer.open_table(path, encoding=encoding, sheet=sheet, limits=limits)
    except ImportSetupError as exc:
        raise _setup_problem(exc) from None
    headers = list(table.headers)
    table.close()
    with unit_of_work(factory) as session:
        defs = {d.key: d for d in customers.list_custom_fields(session, actor)}
        try:
            resolve_columns(headers, mapping or {}, defs)
        except ImportSetupError as exc:
            raise _setup_problem(exc) from None
        campaign = campaigns.get_campaign(session, actor, campaign_id)
        if campaign.status == "stopped":
            raise Conflict(
                "a stopped campaign takes no more leads",
                errors=[
                    bilingual(
                        "campaign_id",
                        "list.campaign.stopped",
                        "the campaign is stopped",
                        "キャンペーンは終了しています",
                    )
                ],
            )
        tenant = tenants.get_by_id(session, actor.tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {actor.tenant_id} not found")
        tenant_code = tenant.code
        source_id = _source_id(session, actor, source, headers)
        row = CampaignListRepository(session, actor.tenant_id).add(
            CampaignList(
                campaign_id=campaign.id,
                name=list_name,
                source_id=source_id,
                filename=filename,
                created_by=actor.username[:100],
                sim_outcomes=mix,
            )
        )
        list_id = row.id
    with tempfile.TemporaryDirectory(prefix="kakehashi-list-") as scratch:
        try:
            report = importer.import_customers(
                factory,
                path,
                tenant_code=tenant_code,
                mapping=mapping,
                encoding=encoding,
                sheet=sheet,
                on_duplicate=on_duplicate,
                batch_size=batch_size,
                errors_path=errors_path or Path(scratch) / "errors.csv",
                progress=progress,
                region=region,
                workers=workers,
                source_id=source_id,
                strict=strict,
                limits=limits,
                actor=actor,
                after_write=_LeadWriter(actor, campaign.id, list_id),
            )
        except ImportSetupError as exc:
            with unit_of_work(factory) as session:
                CampaignListRepository(session, actor.tenant_id).remove(list_id)
            raise _setup_problem(exc) from None
        bad_rows = _bad_rows(report.errors_path)
    rejected = strict and report.failed_rows > 0
    parts: list[_Part] = [] if rejected else report.extras
    scrubbed = sorted((s for part in parts for s in part.scrubbed), key=lambda s: s[0])
    loaded = sum(part.loaded for part in parts)
    result = ListReport(
        list_id=list_id,
        campaign_id=campaign.id,
        name=list_name,
        filename=filename,
        source_id=source_id,
        strict=strict,
        encoding=report.encoding,
        columns=report.columns,
        ignored_columns=report.ignored_columns,
        rows_total=report.total_rows,
        rows_loaded=loaded,
        rows_scrubbed=len(scrubbed),
        rows_bad=report.failed_rows,
        rows_not_loaded=report.not_imported,
        customers=ListCustomers(
            created=report.inserted, updated=report.updated, merged=report.merged, skipped=report.skipped
        ),
        bad_rows=bad_rows,
        scrubbed_rows=[
            ScrubbedRow.model_validate({"row": r, "phone": phone, "reason": why}) for r, phone, why in scrubbed
        ],
        sim_outcomes=mix,
        seconds=round(report.seconds, 3),
    )
    with unit_of_work(factory) as session:
        stored = CampaignListRepository(session, actor.tenant_id).get(campaign.id, list_id)
        assert stored is not None  # made above, never deleted but on a setup error
        stored.rows_total, stored.rows_loaded = result.rows_total, result.rows_loaded
        stored.rows_bad, stored.rows_scrubbed = result.rows_bad, result.rows_scrubbed
        session.flush()
        audit.record(
            session,
            actor,
            "campaign.list.load",
            resource="campaign_list",
            resource_id=list_id,
            detail={
                "campaign_id": campaign.id,
                "file": filename,
                "source_id": source_id,
                "strict": strict,
                "rows": result.rows_total,
                "loaded": loaded,
                "scrubbed": len(scrubbed),
                "bad": report.failed_rows,
            },
        )
    return result


def _bad_rows(errors_path: str | None) -> list[BadRow]:
    """Every error of the importer's per-row report (its warnings left out: those rows were loaded)."""
    if errors_path is None:
        return []
    rows: list[BadRow] = []
    with Path(errors_path).open(encoding="utf-8-sig", newline="") as fh:
        for line in csv.DictReader(fh):
            message = line["message"]
            if message.startswith(WARNING):
                continue
            rows.append(
                BadRow(row=int(line["row"]), column=_cell(line["column"]), field=line["field"], message=message)
            )
    return rows


def _cell(text: str) -> str:
    """A header as the formula-safe CSV wrote it (``'=…`` → ``=…``)."""
    return text[1:] if text[:1] == "'" and text[1:2] in ("=", "+", "-", "@", "\t", "\r") else text


# -- reading lists


def list_lists(session: Session, actor: Actor, campaign_id: int) -> list[CampaignList]:
    """The campaign's lists with the counts of their loads (no personal data)."""
    campaign = campaigns.get_campaign(session, actor, campaign_id)
    return CampaignListRepository(session, actor.tenant_id).of_campaign(campaign.id)


def get_list(session: Session, actor: Actor, campaign_id: int, list_id: int) -> CampaignList:
    campaign = campaigns.get_campaign(session, actor, campaign_id)
    found = CampaignListRepository(session, actor.tenant_id).get(campaign.id, list_id)
    if found is None:
        raise NotFound(f"list {list_id} not found")
    return found
