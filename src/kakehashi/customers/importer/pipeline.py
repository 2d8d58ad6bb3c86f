"""The import entry points: read → parse (maybe in workers) → batches → report."""

from __future__ import annotations

import gc
import os
import time as clock
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from kakehashi.customers.importer.batches import BatchWriter
from kakehashi.customers.importer.mapping import ON_DUPLICATE, ImportSetupError, resolve_columns
from kakehashi.customers.importer.parsing import ParsedRow, RowParser
from kakehashi.customers.importer.reading import Cell, XlsxLimits, open_table
from kakehashi.customers.importer.report import ErrorReport, ImportReport, account, progress_bar, reject_all
from kakehashi.customers.importer.workers import POOL_MIN_ROWS, parse_stage
from kakehashi.customers.repository import CustomFieldRepository
from kakehashi.kit.context import Actor
from kakehashi.kit.db import make_session_factory
from kakehashi.tenants import service as tenants

#: Called in each batch's transaction after its customers are written, with the rows written (skipped rows
#: included): what it returns is collected, in file order, in :attr:`ImportReport.extras`. Campaign lists use it
#: to add a lead per row in the same transaction as the row's customer.
AfterWrite = Callable[[Session, list[ParsedRow]], Any]

# --- entry points --------------------------------------------------------------------------


def import_customers(
    factory: sessionmaker[Session],
    path: Path,
    *,
    tenant_code: str,
    mapping: dict[str, str] | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
    on_duplicate: str = "update",
    batch_size: int = 1000,
    errors_path: Path | None = None,
    progress: bool = False,
    region: str = "JP",
    workers: int | None = None,
    source_id: int | None = None,
    by: str = "import",
    strict: bool = False,
    limits: XlsxLimits | None = None,
    actor: Actor | None = None,
    after_write: AfterWrite | None = None,
) -> ImportReport:
    """Import customers from ``path`` through ``factory`` (one transaction per batch).

    Raises :class:`ImportSetupError` (nothing written) when the file or options are unusable;
    row problems go to the report and to the error CSV. ``workers``: processes that parse rows
    while this one writes (0: parse in-process; default: CPUs - 1 for files of :data:`POOL_MIN_ROWS`
    rows or more, else 0). Worker processes start by ``forkserver``: a calling script needs the
    usual ``if __name__ == "__main__":`` guard. ``source_id``: the list's third-party provision record
    (``privacy`` domain); each customer written is linked to it. ``by`` names the importer in the audit log.

    By default every valid row is written (in batches of ``batch_size``) and every invalid row is reported;
    ``strict``: the whole file in one transaction, written only if no row fails. ``limits``: the caps a
    spreadsheet must pass before it is loaded (default: from the settings). ``actor``: who imports, in the audit
    log (default: the shell user ``by``); it must act in ``tenant_code``'s tenant. ``after_write``: see
    :data:`AfterWrite` (its results in ``report.extras``; with ``strict``, discarded with the rows if any fails).
    """
    if on_duplicate not in ON_DUPLICATE:
        raise ImportSetupError(f"on_duplicate must be one of {', '.join(ON_DUPLICATE)}")
    if batch_size < 1:
        raise ImportSetupError("batch_size must be at least 1")
    started = clock.perf_counter()
    path = Path(path)
    with factory() as session:
        tenant = tenants.ensure(session, tenant_code)
        defs = CustomFieldRepository(session, tenant.id).by_key()
        for defn in defs.values():
            session.expunge(defn)  # plain values from here on; no lazy loads outside the session
        postgres = session.connection().dialect.name == "postgresql"
        session.commit()
    table = open_table(path, encoding=encoding, sheet=sheet, limits=limits)
    report = ImportReport(file=str(path), tenant=tenant_code, encoding=table.encoding, strict=strict)
    try:
        columns, report.ignored_columns = resolve_columns(table.headers, mapping or {}, defs)
        seen = [c.header for c in columns]
        report.columns = {  # a header used twice (two 電話 columns) is told apart by its position
            (c.header if seen.count(c.header) == 1 else f"{c.header} (column {c.index + 1})"): c.target for c in columns
        }
        parser = RowParser(columns, defs, region, encode_copy=postgres)
        if actor is None:
            actor = Actor(tenant_id=tenant.id, username=by[:60], origin="cli", route="cli import customers")
        elif actor.tenant_id != tenant.id:
            raise ImportSetupError("the importing actor acts in another tenant")
        importer = BatchWriter(
            factory, tenant.id, on_duplicate, defs, columns, path.name, actor=actor, source_id=source_id,
            after_write=after_write,
        )  # fmt: skip
        errors_file = ErrorReport(
            errors_path or path.with_name(f"{path.stem}.errors.csv"), always=errors_path is not None
        )
        if workers is None:  # one per CPU measured best on 2 cores, with the main process and PostgreSQL
            workers = (os.cpu_count() or 1) if (table.total or 0) >= POOL_MIN_ROWS else 0
        report.workers = max(workers, 0)
        phases = report.phases
        chunks = _timed(_chunks(table.rows, batch_size), phases, "read")
        file_session = importer.file_session = factory() if strict else None
        try:
            with (
                _frozen_heap(),
                parse_stage(parser, workers) as parse,
                progress_bar(progress, table.total, path.name) as advance,
            ):
                for parsed in _timed(parse(chunks), phases, "parse"):
                    started_db = clock.perf_counter()
                    result = importer.run_batch(parsed)
                    account(report, parsed, result, errors_file)
                    advance(len(parsed))
                    spent = clock.perf_counter() - started_db
                    phases["database"] += spent
                    report.batch_ms.append(spent * 1000)
            if file_session is not None:
                if report.failed_rows:
                    file_session.rollback()
                    reject_all(report)
                else:
                    importer.publish_pending()
                    file_session.commit()
        finally:
            if file_session is not None:
                file_session.close()
        phases["parse"] -= phases["read"]  # reading happens inside the parse stage's next()
        report.errors_path = errors_file.close()
        if postgres and report.inserted + report.updated >= ANALYZE_MIN_ROWS:
            _analyze(factory)
    finally:
        table.close()
    report.seconds = clock.perf_counter() - started
    return report


#: After writing this many rows, PostgreSQL's statistics of the tables are refreshed (``ANALYZE``): a freshly
#: loaded table otherwise keeps the planner's guesses (see :func:`_analyze`).
ANALYZE_MIN_ROWS = 10_000


def _analyze(factory: sessionmaker[Session]) -> None:
    """``ANALYZE`` the tables an import fills, so that the next queries (and the next import) are planned
    on their real sizes rather than on an empty table's guesses. A few hundred ms at 1M customers."""
    with factory() as session:
        session.execute(text("ANALYZE customers, customer_phones, customer_sources"))
        session.commit()


@contextmanager
def _frozen_heap() -> Iterator[None]:
    """The objects alive now (modules, schemas, SQLAlchemy's tables: ~170k) left out of the cyclic garbage
    collector while the file is imported, in this process and in the parsing workers forked from it.

    Every batch allocates tens of thousands of containers (parsed rows, plans), so the collector runs
    often, and each of its full passes walked the whole heap (~90 ms): 40 % of the main process's CPU on a
    100k-row import (``gc.callbacks``, 0.66 of 1.58 CPU-s at 30k rows; 0.16 frozen). Garbage is still freed
    by reference counting, and cycles made during the import are still collected; afterwards everything is
    back under the collector (``gc.unfreeze``). The youngest generation is also collected every 20,000
    allocations instead of 700 (a batch's rows are garbage as a whole once written): the main process's
    collector time at 100k rows 0.43–0.45 → 0.06–0.18 s. Both settings are restored afterwards.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(20_000, 20, 10)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _timed(items: Iterator[Any], phases: dict[str, float], phase: str) -> Iterator[Any]:
    """``items``, adding the time spent producing each one to ``phases[phase]``."""
    while True:
        started = clock.perf_counter()
        item = next(items, None)
        phases[phase] += clock.perf_counter() - started
        if item is None:
            return
        yield item


def _chunks(rows: Iterator[tuple[int, Sequence[Cell]]], size: int) -> Iterator[list[tuple[int, Sequence[Cell]]]]:
    chunk: list[tuple[int, Sequence[Cell]]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def import_file(engine: Engine, path: Path, **options: Any) -> ImportReport:
    """:func:`import_customers` on ``engine`` (the CLI entry point); see it for the options."""
    return import_customers(make_session_factory(engine), path, **options)
