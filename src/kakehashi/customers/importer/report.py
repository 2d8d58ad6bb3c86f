"""What an import did: the JSON report, the per-row error CSV, the progress bar."""

from __future__ import annotations

import io
import statistics
import time as clock
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kakehashi.customers.importer.parsing import ParsedRow, RowError
from kakehashi.kit.export import csv_writer

NOT_IMPORTED = "not imported: --strict and the file had errors"
#: Warnings share the error report, each message starting with this (the row was imported).
WARNING = "warning: "


@dataclass
class ImportReport:
    """What an import did. ``total_rows`` = inserted + updated + merged + skipped + failed + not imported."""

    file: str
    tenant: str
    encoding: str | None = None
    workers: int = 0
    columns: dict[str, str] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    total_rows: int = 0
    inserted: int = 0
    updated: int = 0
    merged: int = 0
    skipped: int = 0
    failed_rows: int = 0
    not_imported: int = 0
    warnings: int = 0
    batches_committed: int = 0
    batches_rejected: int = 0
    strict: bool = False
    seconds: float = 0.0
    errors_path: str | None = None
    first_errors: list[RowError] = field(default_factory=list)
    first_warnings: list[RowError] = field(default_factory=list)
    #: Milliseconds in the database per batch (plan + write + commit), in file order.
    batch_ms: list[float] = field(default_factory=list)
    #: Seconds spent reading the file, parsing/validating rows, and in the database (plan + write).
    phases: dict[str, float] = field(default_factory=lambda: {"read": 0.0, "parse": 0.0, "database": 0.0})
    #: What the ``after_write`` hook returned for each committed part of a batch, in file order (not reported).
    extras: list[Any] = field(default_factory=list)

    @property
    def rows_per_s(self) -> float:
        return self.total_rows / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "tenant": self.tenant,
            "encoding": self.encoding,
            "workers": self.workers,
            "columns": self.columns,
            "ignored_columns": self.ignored_columns,
            "total_rows": self.total_rows,
            "inserted": self.inserted,
            "updated": self.updated,
            "merged": self.merged,
            "skipped": self.skipped,
            "failed_rows": self.failed_rows,
            "not_imported": self.not_imported,
            "warnings": self.warnings,
            "strict": self.strict,
            "batches_committed": self.batches_committed,
            "batches_rejected": self.batches_rejected,
            "batches_ms": batch_summary(self.batch_ms),
            "seconds": round(self.seconds, 3),
            "rows_per_s": round(self.rows_per_s, 1),
            "errors_path": self.errors_path,
            "phases_s": {k: round(v, 3) for k, v in self.phases.items()},
            "first_errors": [e._asdict() for e in self.first_errors],
            "first_warnings": [e._asdict() for e in self.first_warnings],
        }


def batch_summary(batch_ms: list[float]) -> dict[str, float | int | None]:
    """Per-batch database time: the median of the first and of the last tenth of the batches (at least five),
    their ratio, the median and the slowest batch. A flat import has ``last_over_first`` near 1 whatever its
    size; medians over many batches, because single batches jump with the machine's load."""
    if not batch_ms:
        return {"batches": 0, "compared": 0, "first_ms": None, "last_ms": None, "last_over_first": None, "p50_ms": None,
                "max_ms": None}  # fmt: skip
    tenth = max(5, len(batch_ms) // 10)
    first, last = statistics.median(batch_ms[:tenth]), statistics.median(batch_ms[-tenth:])
    return {
        "batches": len(batch_ms),
        "compared": min(tenth, len(batch_ms)),
        "first_ms": round(first, 1),
        "last_ms": round(last, 1),
        "last_over_first": round(last / first, 2) if first else None,
        "p50_ms": round(statistics.median(batch_ms), 1),
        "max_ms": round(max(batch_ms), 1),
    }


@dataclass
class BatchResult:
    errors: list[RowError]
    inserted: int = 0
    updated: int = 0
    merged: int = 0
    skipped: int = 0
    new_ids: list[int] = field(default_factory=list)
    transactions: int = 0  # committed (a batch the database refused is written in parts)
    extras: list[Any] = field(default_factory=list)  # the after_write hook's results, one per committed part


class ErrorReport:
    """The per-row error CSV, opened at the first error (UTF-8 with BOM so Excel reads the kanji)."""

    HEADER = ("row", "column", "field", "value", "message")

    def __init__(self, path: Path, *, always: bool) -> None:
        self.path = path
        self.count = 0
        self._fh: io.TextIOWrapper | None = None
        self._writer: Any = None
        if always:
            self._open()
        elif path.exists():
            path.unlink()  # a report of an earlier run must not be mistaken for this one's

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("w", encoding="utf-8-sig", newline="")
        self._writer = csv_writer(self._fh)  # the rejected values come from the file: formula-safe
        self._writer.writerow(self.HEADER)

    def write(self, errors: Iterable[RowError]) -> None:
        for e in errors:
            if self._writer is None:
                self._open()
            self._writer.writerow((e.row, e.column, e.field, e.value, e.message))
            self.count += 1

    def close(self) -> str | None:
        if self._fh is None:
            return None
        self._fh.close()
        return str(self.path)


def account(report: ImportReport, parsed: list[ParsedRow], result: BatchResult, errors: ErrorReport) -> None:
    """Add one batch to the report: its counts, its bad rows and its warnings (in the error report)."""
    report.total_rows += len(parsed)
    report.inserted += result.inserted
    report.updated += result.updated
    report.merged += result.merged
    report.skipped += result.skipped
    report.failed_rows += len({e.row for e in result.errors})
    report.extras.extend(result.extras)
    if result.transactions:
        report.batches_committed += 1
    else:
        report.batches_rejected += 1
    warnings = [w._replace(message=WARNING + w.message) for r in parsed for w in r.warnings]
    report.warnings += len(warnings)
    room = 20 - len(report.first_warnings)
    if room > 0:
        report.first_warnings.extend(warnings[:room])
    lines = sorted(result.errors + warnings, key=lambda e: e.row)
    errors.write(lines)
    room = 20 - len(report.first_errors)
    if room > 0:
        report.first_errors.extend(result.errors[:room])


def reject_all(report: ImportReport) -> None:
    """``--strict`` and some row failed: nothing was written; every other row counts as not imported."""
    report.not_imported = report.total_rows - report.failed_rows
    report.inserted = report.updated = report.merged = report.skipped = 0
    report.batches_rejected += report.batches_committed
    report.batches_committed = 0


class progress_bar:  # noqa: N801 - used like a function
    """A rich progress bar on stderr, or nothing."""

    def __init__(self, enabled: bool, total: int | None, label: str) -> None:
        self.enabled, self.total, self.label = enabled, total, label
        self._progress: Any = None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda n: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} rows/s"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self._progress.start()
        task = self._progress.add_task(self.label, total=max((self.total or 1) - 1, 1), rate="-")
        started = clock.perf_counter()
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            rate = done / max(clock.perf_counter() - started, 1e-9)
            self._progress.update(task, advance=n, rate=f"{rate:,.0f}")

        return advance

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
