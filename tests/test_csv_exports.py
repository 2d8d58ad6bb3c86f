"""Every CSV the product writes is formula-safe (CSV injection): a text cell that starts with ``= + - @``, a tab
or a carriage return leaves with a leading ``'``; numbers stay numbers. Every CSV route is called with a planted
formula (a result code, an agent's and a queue's name), and no module writes CSV except through kit.export."""

from __future__ import annotations

import csv
import inspect
import io
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from conftest import ClientAs
from kakehashi.audit import service as audit
from kakehashi.audit.repository import AuditFilter
from kakehashi.auth.guard import api_routes
from kakehashi.customers.importer.parsing import RowError
from kakehashi.customers.importer.report import ErrorReport
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.export import FORMULA_STARTS, csv_bytes, csv_cell
from test_metrics import add_agent, add_cdr, add_queue, add_span, jst

FORMULA = '=HYPERLINK("http://evil.example","y")'
SRC = Path(__file__).resolve().parents[1] / "src" / "kakehashi"


def rows_of(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def assert_formula_safe(cells: list[list[str]]) -> None:
    live = [cell for row in cells for cell in row
            if cell.startswith(FORMULA_STARTS) and not re.fullmatch(r"[+-]?[0-9]+(\.[0-9]+)?", cell)]  # fmt: skip
    assert live == [], live


# -- the cell rule --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [FORMULA, "+1+2", "-2-3", "@SUM(A1)", "\t=1", "\r=1", "+cmd|' /C calc'!A0", "-5e3"])
def test_text_that_would_start_a_formula_gets_a_quote(text: str) -> None:
    assert csv_cell(text) == "'" + text
    assert rows_of(csv_bytes(["col"], [[text]])) == [["col"], ["'" + text]]


@pytest.mark.parametrize("value", [-5, -2.5, Decimal("-1.50"), 0, 3])
def test_numbers_stay_numbers_even_negative(value: Any) -> None:
    assert csv_cell(value) == value
    assert rows_of(csv_bytes(["n"], [[value]]))[1] == [str(value)]


@pytest.mark.parametrize(
    "text", ["山田 花子", "受注", "a=b", "03-1234-5678", "", "'quoted", "+81312345678", "-5", "-1.50"]
)
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert csv_cell(text) == text


def test_the_header_is_neutralised_too() -> None:
    assert rows_of(csv_bytes([FORMULA], []))[0] == ["'" + FORMULA]


# -- every CSV route --------------------------------------------------------------------------------------------

MONTH = "2026-10"
WINDOW = {"since": "2026-10-23T23:00:00", "until": "2026-10-24T01:00:00", "interval": "hour"}
PLAN = {"aht_s": 240, "patience_s": 120, "start": "2026-12-01T09:00:00+09:00", "calls_per_hour": [360, 720]}

#: Every CSV route: (method, path) → (query, JSON body, whether the planted formula is in its rows).
CSV_ROUTES: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any] | None, bool]] = {
    ("GET", "/api/v1/cdrs.csv"): ({}, None, True),
    ("GET", "/api/v1/cdrs/costs.csv"): ({"month": MONTH, "group": "agent"}, None, True),
    ("GET", "/api/v1/reports/queues.csv"): (WINDOW, None, True),
    ("GET", "/api/v1/reports/agents.csv"): (WINDOW, None, True),
    # Numbers and times only: nothing typed by anyone can reach it (still written by kit.export).
    ("POST", "/api/v1/staffing/plan.csv"): ({}, PLAN, False),
}
#: CSV routes whose planted-formula test lives beside their data (a path id this module's fixture has no row for).
CHECKED_ELSEWHERE = {
    # the campaign's results: test_campaign_results.py::test_the_csv_is_formula_safe_and_ends_with_the_total
    ("GET", "/api/v1/campaigns/{campaign_id}/results.csv"),
    # the do-not-call list: test_campaign_compliance.py::test_import_and_export_over_http_formula_safe_and_audited
    ("GET", "/api/v1/campaigns/dnc.csv"),
}


@pytest.fixture
def planted(client_as: ClientAs, session: Session) -> TestClient:
    """A supervisor's tenant where a queue, an agent (name and display name) and a result code are formulas."""
    supervisor = client_as(Role.SUPERVISOR)
    tenant_id = supervisor.user.tenant_id
    customer = supervisor.post("/api/v1/customers", json={"name": "数式 太郎"}).json()["id"]
    add_queue(session, tenant_id, FORMULA)
    agent = add_agent(session, tenant_id, FORMULA, "available")
    agent.display_name = FORMULA
    add_span(session, agent, "available", jst(23, 23, 30, month=10), jst(24, 0, 30, month=10))
    cdr = add_cdr(session, tenant_id, FORMULA, jst(23, 23, 50, month=10), waited=(10, 0), talk=100, agent=FORMULA)
    cdr.disposition, cdr.customer_id, cdr.cost_yen = FORMULA, customer, Decimal("12.5")
    session.flush()
    return supervisor


def csv_routes(app: Any) -> set[tuple[str, str]]:
    """Routes that answer CSV: a path ending in .csv, or an endpoint whose code writes CSV or asks for it."""
    writes_csv = re.compile(r"CSV_MEDIA_TYPE|text/csv|csv_bytes|csv_writer|\bcsv\.|\"csv\"")
    found = set()
    for method, path, route in api_routes(app):
        if path.endswith(".csv") or writes_csv.search(inspect.getsource(route.endpoint)):
            found.add((method, path))
    return found


def test_every_csv_route_is_checked_here(app_client: TestClient) -> None:
    """A new CSV route fails here until it is added to ``CSV_ROUTES`` (and so to the test below)."""
    assert csv_routes(app_client.app) == set(CSV_ROUTES) | CHECKED_ELSEWHERE


@pytest.mark.parametrize(("method", "path"), sorted(CSV_ROUTES))
def test_a_planted_formula_leaves_every_csv_route_as_text(planted: TestClient, method: str, path: str) -> None:
    params, body, has_formula = CSV_ROUTES[(method, path)]
    r = planted.request(method, path, params=params, json=body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv") and r.content.startswith("\ufeff".encode())
    cells = rows_of(r.content)
    assert len(cells) > 1
    assert_formula_safe(cells)
    if has_formula:
        assert "'" + FORMULA in {cell for row in cells for cell in row}


def test_the_cdr_export_keeps_numbers_as_numbers(planted: TestClient) -> None:
    rows = list(csv.DictReader(io.StringIO(planted.get("/api/v1/cdrs.csv").content.decode("utf-8-sig"))))
    assert [(r["disposition"], r["agent"], r["queue"]) for r in rows] == [("'" + FORMULA,) * 3]
    assert Decimal(rows[0]["talk_seconds"]) == 100 and Decimal(rows[0]["cost_yen"]) == Decimal("12.5")


# -- the CSV files written outside HTTP -------------------------------------------------------------------------


def test_the_audit_export_neutralises_a_planted_user_name(session: Session, actor: Actor) -> None:
    """Anyone can put a name in the audit log: a failed login for a name that does not exist."""
    name = FORMULA.lower()  # user names are kept in lower case
    audit.record_login(session, username=name, origin="198.51.100.7", outcome="failed", tenant_id=actor.tenant_id)
    out = io.StringIO()
    assert audit.write_csv(audit.export_rows(session, actor, AuditFilter(username=name)), out) == 1
    cells = list(csv.reader(io.StringIO(out.getvalue())))
    assert_formula_safe(cells)
    assert cells[1][cells[0].index("username")] == "'" + name


def test_the_import_error_report_neutralises_the_rejected_values(tmp_path: Path) -> None:
    report = ErrorReport(tmp_path / "errors.csv", always=True)
    report.write([RowError(2, "電話", "phones", FORMULA, "not a phone number"), RowError(3, "数", "n", "-5", "x")])
    cells = rows_of(Path(report.close() or "").read_bytes())
    assert_formula_safe(cells)
    assert [row[3] for row in cells[1:]] == ["'" + FORMULA, "-5"]  # a plain number cannot run


# Writers of CSV that are not exports of the product's data.
NOT_EXPORTS = {
    "bench/importing.py",  # writes the synthetic input file the import benchmark then imports
}


def test_no_module_writes_csv_except_through_kit_export() -> None:
    """``csv.writer``/``DictWriter`` only in kit/export.py: a new export cannot bypass the formula-safe writer."""
    writers = re.compile(r"\bcsv\.(writer|DictWriter)\s*\(")
    found = {
        str(path.relative_to(SRC)) for path in SRC.rglob("*.py") if writers.search(path.read_text(encoding="utf-8"))
    }
    assert found - NOT_EXPORTS == {"kit/export.py"}
