"""A campaign's call lists over the API: the load report and the lists with their counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kakehashi.campaigns.schemas import ScrubReason
from kakehashi.kit.masking import PhoneText

#: The simulator's outcomes a list may give probabilities for (they sum to 1).
SIM_OUTCOMES = ("answer", "busy", "no_answer", "answering_machine", "invalid")


class BadRow(BaseModel):
    """One problem of one row that was not loaded: the spreadsheet row number (the header is row 1), the
    file's column header and field it concerns (empty when the row as a whole), and what is wrong."""

    row: int
    column: str
    field: str
    message: str


class ScrubbedRow(BaseModel):
    """A valid row whose number is not called: its row, the number (masked as the API masks numbers) and why."""

    row: int
    phone: PhoneText
    reason: ScrubReason


class ListCustomers(BaseModel):
    """What the rows did to the customer master (as a customer import counts it)."""

    created: int
    updated: int
    merged: int
    skipped: int


class ListReport(BaseModel):
    """What a load did. ``rows_total`` = ``rows_loaded`` + ``rows_scrubbed`` + ``rows_bad`` + ``rows_not_loaded``."""

    list_id: int
    campaign_id: int
    name: str
    filename: str | None
    source_id: int
    strict: bool
    encoding: str | None
    columns: dict[str, str]
    ignored_columns: list[str]
    rows_total: int
    rows_loaded: int
    rows_scrubbed: int
    rows_bad: int
    #: ``strict`` and some row was bad: nothing was loaded, these valid rows neither.
    rows_not_loaded: int
    customers: ListCustomers
    bad_rows: list[BadRow]
    scrubbed_rows: list[ScrubbedRow]
    sim_outcomes: dict[str, float] | None
    seconds: float


class ListOut(BaseModel):
    """A list of a campaign with the counts of its load (the stored summary; the per-row report is the upload's
    answer only)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    campaign_id: int
    name: str
    source_id: int | None
    segment_id: int | None
    filename: str | None
    created_by: str
    created_at: datetime
    rows_total: int
    rows_loaded: int
    rows_bad: int
    rows_scrubbed: int
    sim_outcomes: dict[str, Any] | None = Field(default=None)
