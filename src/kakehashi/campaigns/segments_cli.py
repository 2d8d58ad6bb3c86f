"""``kakehashi campaign run-segments``: run the scheduled segments that are due (ターゲット抽出), e.g. from cron when
the app is not running its own per-minute check. Registered on ``campaigns.cli``'s ``campaign`` group."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console

from kakehashi.campaigns.segments import run_due_segments
from kakehashi.kit.clitools import database
from kakehashi.kit.db import make_session_factory, utcnow

console = Console(stderr=True)


def run_segments(
    at: Annotated[
        str | None, typer.Option(help="act as if it were this moment (ISO 8601 with offset; default: now)")
    ] = None,
) -> None:
    """Run every scheduled segment due now, each in its own transaction: the customers not yet in its campaign
    are added as leads, scrubbed. Prints one JSON line per run; exit 1 when a run failed (the others stand)."""
    now: datetime = utcnow()
    if at is not None:
        try:
            now = datetime.fromisoformat(at)
        except ValueError:
            raise typer.BadParameter("an ISO 8601 moment, e.g. 2026-12-07T09:00+09:00", param_hint="--at") from None
        if now.tzinfo is None:
            raise typer.BadParameter("give the offset, e.g. +09:00", param_hint="--at")
    with database() as engine:
        runs = run_due_segments(make_session_factory(engine), now)
    for run in runs:
        # Who was left out and why, without their numbers (the shell's output is no place for them).
        shown = run.model_dump(mode="json", exclude={"report": {"scrubbed": {"__all__": {"phone"}}}})
        typer.echo(json.dumps(shown, ensure_ascii=False))
        if run.report is not None:
            console.print(
                f"segment {run.segment_id}: {run.report.added:,} added, {len(run.report.scrubbed):,} scrubbed, "
                f"{run.report.skipped_already_in_campaign:,} already in the campaign"
            )
        else:
            console.print(f"[red]segment {run.segment_id}: {run.error}[/]")
    if not runs:
        console.print("no segment is due")
    if any(run.error for run in runs):
        raise typer.Exit(1)
