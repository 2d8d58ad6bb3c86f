"""Bulk import of customers from CSV (UTF-8 / Shift_JIS) and XLSX (user guide: ``docs/import.md``).

The pipeline, per batch of ``batch_size`` rows:

1. *read* (:mod:`.reading`) and *map* (:mod:`.mapping`) the columns to fields;
2. *parse* (:mod:`.parsing`, pure Python, in worker processes for big files — :mod:`.workers`):
   normalize and validate each row with the API's own helpers;
3. *plan and write* (:mod:`.batches`, one transaction per batch): decide insert / update / merge /
   skip / error per row (rows are keyed by their normalized numbers), then bulk-write the valid rows;
   a batch the database refuses is split until the refused rows are found (``strict``: the whole file
   in one transaction, written only if no row fails);
4. *report* (:mod:`.report`): the JSON report and the per-row error CSV.

:mod:`.pipeline` ties them together.
"""

from kakehashi.customers.importer.mapping import FIELDS, ON_DUPLICATE, Column, ImportSetupError, parse_mapping
from kakehashi.customers.importer.parsing import ParsedRow, PhoneCell, RowError, RowParser, parse_date
from kakehashi.customers.importer.pipeline import import_customers, import_file
from kakehashi.customers.importer.reading import SourceTable, XlsxLimits, detect_encoding, open_table
from kakehashi.customers.importer.report import NOT_IMPORTED, ImportReport
from kakehashi.customers.importer.workers import POOL_MIN_ROWS

__all__ = [
    "FIELDS", "NOT_IMPORTED", "ON_DUPLICATE", "POOL_MIN_ROWS", "Column", "ImportReport", "ImportSetupError",
    "ParsedRow", "PhoneCell", "RowError", "RowParser", "SourceTable", "XlsxLimits", "detect_encoding",
    "import_customers", "import_file", "open_table", "parse_date", "parse_mapping",
]  # fmt: skip
