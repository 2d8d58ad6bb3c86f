"""``/api/v1/campaigns/{campaign_id}/lists``: loading call lists into a campaign (issue 17).

The contract (the upload page is built against it; change both together)
=========================================================================

``POST /api/v1/campaigns/{campaign_id}/lists`` — supervisors and admins. ``multipart/form-data``, body up to
``app.BODY_LIMITS["/api/v1/campaigns/*/lists"]`` (100 MiB; over it: 413 ``/problems/too-large``):

- ``file`` (required): ``.csv`` / ``.txt`` / ``.tsv`` (UTF-8, UTF-8 with BOM, UTF-16 or Shift_JIS/CP932, detected)
  or ``.xlsx`` / ``.xlsm`` / ``.xls`` / ``.xlsb`` / ``.ods`` (first sheet, or ``sheet``); the header row first.
  Columns are recognized as in a customer import (docs/import.md): a phone column and a name column are needed.
- ``name``: the list's name (default: the file's name without its extension), at most 200 characters.
- the APPI source record (第三者提供に係る記録), one of: ``source_id`` (a record of ``/api/v1/privacy/sources``),
  or ``provider`` + ``method`` (+ ``received`` YYYY-MM-DD, default today; + ``items``, comma-separated, default
  the file's column headers) to record one with the load.
- ``strict`` (``true``/``false``, default false): all or nothing — no row is loaded if any row is bad.
- ``sim_outcomes``: JSON object, the simulator's outcome mix for this list's numbers, probabilities for
  ``answer``, ``busy``, ``no_answer``, ``answering_machine``, ``invalid`` (missing ones 0) summing to 1 (±0.001).
- ``map`` (repeatable): a column mapping ``見出し=field`` (``field``: a customer field, ``cf.<key>`` or ``-``).
- ``encoding`` (CSV; default detected), ``sheet`` (spreadsheet), ``on_duplicate`` (``update`` default, ``skip``,
  ``error``: what a row does to a customer already holding its number, as in a customer import).

``201`` with the report (``ListReport``)::

    {"list_id", "campaign_id", "name", "filename", "source_id", "strict", "encoding",
     "columns": {header: field}, "ignored_columns": [header],
     "rows_total", "rows_loaded", "rows_scrubbed", "rows_bad", "rows_not_loaded",
     "customers": {"created", "updated", "merged", "skipped"},
     "bad_rows": [{"row", "column", "field", "message"}],             # every bad row, with its column
     "scrubbed_rows": [{"row", "phone", "reason"}],                   # every scrubbed row; phone masked as
                                                                      # the API masks numbers (client viewers)
     "sim_outcomes": {outcome: p} | null, "seconds"}

``reason`` is ``do_not_contact``, ``outbound_excluded``, ``refused``, ``dnc`` or ``duplicate`` (already in the
campaign, or earlier in the file). Row numbers are the spreadsheet's (the header is row 1).
``rows_total`` = ``rows_loaded`` + ``rows_scrubbed`` + ``rows_bad`` + ``rows_not_loaded`` (the last only when
``strict`` failed). A file with bad rows still answers 201 (its good rows are loaded, unless ``strict``).

Errors are problem details (``application/problem+json``): 404 (no such campaign in the tenant, no such
source), 409 (a stopped campaign), 422 ``/problems/validation`` with ``errors: [{"field", "message", "code",
"message_ja"}]`` — ``field`` one of ``file``, ``name``, ``source_id``, ``received``, ``items``, ``sim_outcomes``
(or ``sim_outcomes.<outcome>``), ``map``, ``on_duplicate``, ``provider_name``/``acquisition_method`` (a source
record refused); ``message`` in English, ``message_ja`` in Japanese, ``code`` stable (``list.file.unusable``,
``list.file.type``, ``list.source.required``, ``list.sim_outcomes.*``…).

``GET /api/v1/campaigns/{campaign_id}/lists`` — any role (client viewers included): the lists, oldest first,
``[ListOut]``: ``{"id", "campaign_id", "name", "source_id", "segment_id", "filename", "created_by",
"created_at", "rows_total", "rows_loaded", "rows_bad", "rows_scrubbed", "sim_outcomes"}``.

``GET /api/v1/campaigns/{campaign_id}/lists/{list_id}`` — any role: one list (``ListOut``), its stored summary.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile

from kakehashi.auth.guard import AnyRoleActor, ManagerActor
from kakehashi.campaigns import lists
from kakehashi.campaigns.lists_schemas import ListOut, ListReport
from kakehashi.customers.importer import ON_DUPLICATE, ImportSetupError, parse_mapping
from kakehashi.customers.importer.reading import SPREADSHEET_SUFFIXES
from kakehashi.kit.api import IdPath, SessionDep, end_transaction_early, respond
from kakehashi.kit.errors import ValidationFailed

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])

#: The largest list upload (bytes): a CSV of several hundred thousand rows, a spreadsheet under its caps.
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
SUFFIXES = (".csv", ".txt", ".tsv", *SPREADSHEET_SUFFIXES)
_ITEM_SEPARATORS = (",", "、", "，")


def _invalid(field: str, code: str, english: str, japanese: str) -> ValidationFailed:
    return ValidationFailed(english, errors=[lists.bilingual(field, code, english, japanese)])


def _sim_outcomes(raw: str | None) -> dict[str, Any] | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise _invalid("sim_outcomes", "list.sim_outcomes.json", "a JSON object of outcome: probability",
                       "結果と確率の JSON オブジェクトを指定してください")  # fmt: skip
    return value


def _received(raw: str | None) -> date | None:
    if raw is None or not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise _invalid("received", "list.source.received", "a date YYYY-MM-DD",
                       "日付を YYYY-MM-DD で指定してください") from None  # fmt: skip


def _items(raw: str | None) -> list[str] | None:
    if raw is None or not raw.strip():
        return None
    for separator in _ITEM_SEPARATORS[1:]:
        raw = raw.replace(separator, ",")
    return [item.strip() for item in raw.split(",") if item.strip()] or None


def _suffix(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    if suffix not in SUFFIXES:
        raise _invalid("file", "list.file.type", f"send a CSV or spreadsheet ({', '.join(SUFFIXES)})",
                       f"CSV または Excel ファイル（{', '.join(SUFFIXES)}）を送ってください")  # fmt: skip
    return suffix


@router.post("/{campaign_id}/lists", response_model=ListReport, status_code=201)
def upload_list(
    request: Request,
    session: SessionDep,
    actor: ManagerActor,
    campaign_id: IdPath,
    file: Annotated[UploadFile, File(description="CSV (UTF-8 / Shift_JIS) or XLSX, the header row first")],
    name: Annotated[str | None, Form(max_length=200)] = None,
    source_id: Annotated[int | None, Form(ge=1, le=2**63 - 1)] = None,
    provider: Annotated[str | None, Form(max_length=200, description="or record the source: provider")] = None,
    method: Annotated[str | None, Form(max_length=2000, description="how the provider obtained the data")] = None,
    received: Annotated[str | None, Form(description="date the list was received, YYYY-MM-DD")] = None,
    items: Annotated[str | None, Form(max_length=4000, description="items received, comma-separated")] = None,
    strict: Annotated[bool, Form(description="all or nothing")] = False,
    sim_outcomes: Annotated[str | None, Form(max_length=2000, description="JSON: outcome → probability")] = None,
    mapping: Annotated[list[str] | None, Form(alias="map", description="column mapping 見出し=field")] = None,
    encoding: Annotated[str | None, Form(max_length=40)] = None,
    sheet: Annotated[str | None, Form(max_length=100)] = None,
    on_duplicate: Annotated[str, Form()] = "update",
) -> Response:
    """Load a call list into the campaign: customers matched by phone or created, every number scrubbed, a lead
    per remaining row; the report lists every bad and every scrubbed row (the contract: this module's doc)."""
    filename = Path(file.filename or "list.csv").name
    suffix = _suffix(filename)
    mix = _sim_outcomes(sim_outcomes)
    if on_duplicate not in ON_DUPLICATE:
        raise _invalid("on_duplicate", "list.on_duplicate", f"one of {', '.join(ON_DUPLICATE)}",
                       f"{', '.join(ON_DUPLICATE)} のいずれかを指定してください")  # fmt: skip
    try:
        columns = parse_mapping(mapping or [])
    except ImportSetupError as exc:
        raise _invalid("map", "list.map", str(exc), f"列の対応付けが正しくありません: {exc}") from None
    source = lists.SourceSpec(
        source_id=source_id, provider=provider, method=method, received=_received(received), items=_items(items)
    )
    # The load writes in transactions of its own (a batch each): this request's must not hold SQLite's lock.
    end_transaction_early(session)
    with tempfile.TemporaryDirectory(prefix="kakehashi-upload-") as scratch:
        path = Path(scratch) / f"list{suffix}"
        with path.open("wb") as out:
            shutil.copyfileobj(file.file, out, 1 << 20)
        report = lists.load_list(
            request.app.state.session_factory, actor, campaign_id, path, source=source, name=name,
            filename=filename, strict=strict, mapping=columns, encoding=encoding, sheet=sheet,
            on_duplicate=on_duplicate, sim_outcomes=mix, workers=0,  # no processes forked from the server
        )  # fmt: skip
    return respond(report, actor, status_code=201)


@router.get("/{campaign_id}/lists", response_model=list[ListOut])
def list_lists(session: SessionDep, actor: AnyRoleActor, campaign_id: IdPath) -> Response:
    """The campaign's lists with the counts of their loads."""
    return respond([ListOut.model_validate(r) for r in lists.list_lists(session, actor, campaign_id)], actor)


@router.get("/{campaign_id}/lists/{list_id}", response_model=ListOut)
def get_list(session: SessionDep, actor: AnyRoleActor, campaign_id: IdPath, list_id: IdPath) -> Response:
    """One list of the campaign and the counts of its load."""
    return respond(ListOut.model_validate(lists.get_list(session, actor, campaign_id, list_id)), actor)
