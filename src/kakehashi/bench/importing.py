"""``kakehashi bench import``: customer import throughput against two floors on the same server.

Generates an N-row CSV of realistic customers (as a Japanese Excel export would have them:
Japanese headers, hyphenated numbers, ``1980/01/02`` dates) and imports it into a scratch
PostgreSQL database with :mod:`kakehashi.customers.importer`. Then:

- the fair floor (``floor_*``, ``ratio_floor``): the rows the import stored — customers, their numbers and
  their links to the list's source — are dumped, the tables emptied, and the same rows ``COPY``d back into
  the same indexed tables (unique keys, foreign keys, WAL) in one transaction: the server's own cost of
  writing them, which no importer can go below;
- the raw floor (``copy_*``, ``ratio``): the very same file ``COPY``d into a table of text columns with no
  index (what a file costs to send, nothing more).

Per-batch database times (``batches_ms``: the first and last five batches, their ratio) show whether a
batch costs more as the tables grow.
"""

from __future__ import annotations

import csv
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from kakehashi.customers import importer
from kakehashi.demo.synthetic import generate_people
from kakehashi.kit import migrate
from kakehashi.kit.clock import business_today
from kakehashi.kit.context import Actor
from kakehashi.kit.db import make_engine, make_session_factory, unit_of_work
from kakehashi.kit.dbadmin import recreate_database
from kakehashi.privacy import service as privacy
from kakehashi.privacy.schemas import SourceCreate
from kakehashi.tenants import service as tenants

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/kakehashi_bench_import"
HEADERS = ("氏名", "フリガナ", "電話番号", "携帯電話", "郵便番号", "都道府県", "市区町村", "町域", "番地",
           "建物名", "生年月日", "性別", "メールアドレス", "ランク")  # fmt: skip
_GENDER = {"male": "男", "female": "女"}


def write_csv(path: Path, rows: int, seed: int = 1) -> None:
    """``rows`` synthetic customers as a UTF-8 (BOM) CSV with the headers of a Japanese export."""
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADERS)
        for p in generate_people(rows, seed=seed):
            fixed = next((x.national for x in p.phones if x.kind != "mobile"), "")
            mobile = next((x.national for x in p.phones if x.kind == "mobile"), "")
            out.writerow(
                (
                    p.name,
                    p.name_kana,
                    fixed,
                    mobile,
                    f"{p.postal_code[:3]}-{p.postal_code[3:]}",
                    p.prefecture,
                    p.city,
                    p.town,
                    p.street,
                    p.building or "",
                    p.birthday.strftime("%Y/%m/%d"),
                    _GENDER.get(p.gender, ""),
                    p.email or "",
                    p.rank,
                )
            )


def _copy_raw(url: str, path: Path) -> float:
    """Seconds to COPY the CSV as is into a fresh table of text columns (committed)."""
    import psycopg

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    columns = ", ".join(f'"{h}" text' for h in HEADERS)
    with psycopg.connect(dsn) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy_scratch")
        conn.execute(f"CREATE TABLE bench_copy_scratch ({columns})")
        conn.commit()
        started = time.perf_counter()
        sql = "COPY bench_copy_scratch FROM STDIN (FORMAT csv, HEADER true)"
        with path.open("rb") as fh, conn.cursor() as cur, cur.copy(sql) as copy:
            while chunk := fh.read(1 << 20):
                copy.write(chunk)  # the BOM lands in the header line, which HEADER skips
        conn.commit()
        seconds = time.perf_counter() - started
        copied = conn.execute("SELECT count(*) FROM bench_copy_scratch").fetchone()
        conn.execute("DROP TABLE bench_copy_scratch")
        conn.commit()
    if copied is None or copied[0] == 0:
        raise RuntimeError("the COPY baseline copied no rows")
    return seconds


_FLOOR_TABLES = ("customers", "customer_phones", "customer_sources")


def _copy_floor(url: str) -> tuple[float, int]:
    """(seconds, rows) to COPY the rows the import stored back into the same, emptied, indexed tables."""
    import psycopg

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        dumps: dict[str, bytes] = {}
        for table in _FLOOR_TABLES:
            buf = bytearray()
            with conn.cursor() as cur, cur.copy(f"COPY {table} TO STDOUT") as copy:
                for block in copy:
                    buf += block
            dumps[table] = bytes(buf)
        conn.execute(f"TRUNCATE {', '.join(_FLOOR_TABLES)} CASCADE")
        conn.commit()
        conn.execute("CHECKPOINT")  # the import's dirty pages are not the floor's to write
        started = time.perf_counter()
        for table in _FLOOR_TABLES:
            with conn.cursor() as cur, cur.copy(f"COPY {table} FROM STDIN") as copy:
                copy.write(dumps[table])
        conn.commit()
        seconds = time.perf_counter() - started
        row = conn.execute("SELECT count(*) FROM customers").fetchone()
    return seconds, row[0] if row else 0


def _source(engine: Engine) -> int:
    """The list's source record, as a real import has one: its customers get linked to it (APPI)."""
    with unit_of_work(make_session_factory(engine)) as session:
        tenant = tenants.get_or_create(session, "bench", "bench")
        data = SourceCreate(
            provider_name="ベンチマーク",
            acquisition_method="generated",
            received_on=business_today(),
            items=["氏名", "電話番号"],
        )
        return privacy.record_source(session, Actor(tenant_id=tenant.id, username="bench"), data).id


def run(rows: int = 10000, console: Console | None = None, *, batch_size: int = 1000) -> dict[str, Any]:
    """Generate, import, COPY; return the figures (``ratio`` = import seconds / COPY seconds)."""
    url = os.environ.get("KAKEHASHI_BENCH_PG_URL", DEFAULT_URL)
    say = console.print if console else (lambda *a, **k: None)
    with tempfile.TemporaryDirectory(prefix="kakehashi-bench-") as tmp:
        path = Path(tmp) / "customers.csv"
        started = time.perf_counter()
        write_csv(path, rows)
        say(f"generated {rows:,} rows in {time.perf_counter() - started:.1f} s ({path.stat().st_size >> 10:,} KiB)")
        recreate_database(url)
        engine = make_engine(url)
        migrate.upgrade(engine)
        say(f"importing into {make_url(url).database} …")
        source_id = _source(engine)
        report = importer.import_file(
            engine, path, tenant_code="bench", batch_size=batch_size, progress=console is not None, source_id=source_id
        )
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM customers")).scalar_one()
            numbers = conn.execute(text("SELECT count(*) FROM customer_phones")).scalar_one()
        engine.dispose()
        say(f"imported {report.total_rows:,} rows in {report.seconds:.2f} s; the same rows COPYd into the tables …")
        floor_s, floor_rows = _copy_floor(url)
        if floor_rows != stored:
            raise RuntimeError(f"the floor copied {floor_rows} customers, the import stored {stored}")
        say(f"floor: {floor_s:.2f} s; raw COPY of the file …")
        copy_s = _copy_raw(url, path)
    result: dict[str, Any] = {
        "rows": report.total_rows,
        "seconds": round(report.seconds, 3),
        "rows_per_s": round(report.rows_per_s, 1),
        "copy_seconds": round(copy_s, 3),
        "copy_rows_per_s": round(rows / copy_s, 1),
        "ratio": round(report.seconds / copy_s, 2),
        "floor_seconds": round(floor_s, 3),
        "floor_rows_per_s": round(rows / floor_s, 1),
        "ratio_floor": round(report.seconds / floor_s, 2),
        "batches_ms": report.as_dict()["batches_ms"],
        "inserted": report.inserted,
        "failed": report.failed_rows + report.not_imported,
        "customers_stored": stored,
        "phones_stored": numbers,
        "batch_size": batch_size,
        "workers": report.workers,
        "cpus": os.cpu_count(),
        "phases_s": {k: round(v, 3) for k, v in report.phases.items()},
        "database": make_url(url).render_as_string(hide_password=True),
    }
    say(result)
    return result
