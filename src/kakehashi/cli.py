"""The ``kakehashi`` command."""

from __future__ import annotations

import contextlib
import getpass
import json
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from kakehashi.audit.cli import audit_app
from kakehashi.auth.cli import tenant_app, token_app, user_app
from kakehashi.campaigns.cli import campaign_app
from kakehashi.kit.clitools import database
from kakehashi.kit.config import Settings, get_settings
from kakehashi.privacy.cli import privacy_app

app = typer.Typer(help="Kakehashi (架け橋) CTI contact-center platform.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
import_app = typer.Typer(help="Import data from CSV / XLSX.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks (print JSON).", no_args_is_help=True)
#: ``kakehashi bench dialer``'s modes (``kakehashi.bench.dialer.MODES``, not imported before the command runs).
DIALER_MODES = "progressive,adapt_average,adapt_hard_limit,adapt_tapered,predictive"
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(bench_app, name="bench")
app.add_typer(user_app, name="user")
app.add_typer(tenant_app, name="tenant")
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")
app.add_typer(privacy_app, name="privacy")
app.add_typer(campaign_app, name="campaign")
console = Console(stderr=True)


_database = database


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from kakehashi.kit import migrate

    with _database() as engine:
        migrate.upgrade(engine, revision)
        console.print(f"[green]database at {revision}[/] ({engine.url.render_as_string(hide_password=True)})")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION."""
    from kakehashi.kit import migrate

    with _database() as engine:
        migrate.downgrade(engine, revision)


@db_app.command("revision")
def db_revision(message: Annotated[str, typer.Option("-m", "--message")]) -> None:
    """Autogenerate a migration from the models (developers)."""
    from kakehashi.kit import migrate

    with _database() as engine:
        migrate.revision(engine, message)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Serve the web UI and API (migrations must be applied)."""
    import uvicorn

    from kakehashi.app import create_app

    settings = get_settings()
    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port)


@app.command()
def demo(
    customers: Annotated[int, typer.Option(help="demo customers to generate")] = 2000,
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="prepare only")] = False,
    telephony: Annotated[
        str, typer.Option(help="sim: simulated calls; sip: a private Kamailio + rtpengine for real softphones")
    ] = "sim",
) -> None:
    """Migrate, seed demo data (once) and serve the web UI on http://127.0.0.1:8000 with simulated inbound calls
    (KAKEHASHI_DEMO_TRAFFIC_PER_HOUR, default 120; 0 turns them off), or with real SIP (--telephony sip)."""
    import uvicorn

    from kakehashi.app import create_app
    from kakehashi.demo import campaigns as campaign_demo
    from kakehashi.demo import customers as demo_data
    from kakehashi.demo import routing as routing_demo
    from kakehashi.demo.traffic import DEMO_CALLS_PER_HOUR
    from kakehashi.demo.users import DEMO_USERS, ensure_demo_users
    from kakehashi.kit import migrate

    settings = get_settings()
    with _database() as engine:
        migrate.upgrade(engine)
        demo_data.ensure_demo_data(engine, settings, customers=customers, console=console)
        path, logins = ensure_demo_users(engine, settings)
        routing_demo.ensure_demo_routing(engine, settings, console=console)
        campaign_demo.ensure(engine, settings, console=console)
    table = Table("user", "role", "password", title=f"demo logins (kept in {path})")
    for (username, role, _display), password in zip(DEMO_USERS, logins.values(), strict=True):
        table.add_row(username, role.value, password)
    console.print(table)
    if no_serve:
        return
    if "demo_traffic_per_hour" not in settings.model_fields_set:
        settings = settings.model_copy(update={"demo_traffic_per_hour": DEMO_CALLS_PER_HOUR})
    rate = settings.demo_traffic_per_hour
    if rate > 0 and settings.telephony_driver == "sim":
        console.print(f"simulated callers: {rate:g} calls/hour (KAKEHASHI_DEMO_TRAFFIC_PER_HOUR=0 turns them off)")
    if telephony not in ("sim", "sip"):
        raise typer.BadParameter("sim or sip", param_hint="--telephony")
    with contextlib.ExitStack() as running:
        if telephony == "sip":
            settings = _start_sip_lab(settings, running)
        console.print(f"[bold green]Kakehashi demo[/] → http://{host or settings.host}:{port or settings.port}/")
        uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port)


def _start_sip_lab(settings: Settings, running: contextlib.ExitStack) -> Settings:
    """Kamailio + rtpengine on 127.0.0.1 for the demo (docs/telephony.md), with the browser softphone's
    WebSocket listener; stopped when the demo stops."""
    from pydantic import SecretStr

    from kakehashi.telephony.drivers.sip.lab import SipStack

    # The browser softphone's secret: the one configured, else a new one for this run (Kamailio and the app
    # share it; agents' browsers get short-lived credentials from GET /api/v1/softphone).
    secret = settings.softphone_secret.get_secret_value() if settings.softphone_secret else None
    stack = running.enter_context(SipStack(settings.data_dir / "sip", softphone_secret=secret,
                                           cti_engine=settings.sip_engine))  # fmt: skip
    console.print(f"SIP: register softphones at [bold]127.0.0.1:{stack.sip_port}[/] as an agent's name "
                  f"(e.g. operator), call the demo numbers (sip:0120555010@127.0.0.1:{stack.sip_port}); "
                  f"browser softphones connect to {stack.ws_url}")  # fmt: skip
    return settings.model_copy(update={"telephony_driver": "sip", "sip_proxy": f"127.0.0.1:{stack.sip_port}",
                                       "sip_media_port": stack.cti_port, "demo_traffic_per_hour": 0,
                                       "softphone_ws_url": stack.ws_url,
                                       "softphone_secret": SecretStr(stack.softphone_secret),
                                       "softphone_domain": stack.softphone_domain,
                                       "sip_rtpengine_ng": f"127.0.0.1:{stack.ng_port}",
                                       "sip_recording_spool": stack.recording_dir,
                                       "sip_dtmf_port": stack.dtmf_log_port or settings.sip_dtmf_port})  # fmt: skip


@app.command()
def seed(
    customers: Annotated[int, typer.Option(help="how many customers to generate")] = 1000,
    seed_value: Annotated[int, typer.Option("--seed", help="random seed (reproducible data)")] = 1,
    tenant: Annotated[str | None, typer.Option(help="tenant code")] = None,
    start: Annotated[
        int | None, typer.Option(help="first synthetic person index (default: the tenant's customer count)")
    ] = None,
) -> None:
    """Generate realistic Japanese customers with phones, orders, complaints, custom fields."""
    from kakehashi.demo import seed as seeding

    settings = get_settings()
    with _database() as engine:
        result = seeding.seed(engine, customers, tenant_code=tenant or settings.default_tenant, seed=seed_value,
                              progress=True, start=start, console=console)  # fmt: skip
    typer.echo(json.dumps(result.as_dict(), ensure_ascii=False))


@import_app.command("customers")
def import_customers(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    mapping: Annotated[
        list[str] | None,
        typer.Option("--map", help="column mapping SOURCE=field (e.g. --map 電話番号=phone; FAX=- ignores)"),
    ] = None,
    encoding: Annotated[str | None, typer.Option(help="CSV encoding (default: detect UTF-8 / CP932)")] = None,
    sheet: Annotated[str | None, typer.Option(help="XLSX sheet name (default: the first)")] = None,
    on_duplicate: Annotated[str, typer.Option(help="update | skip | error")] = "update",
    batch_size: Annotated[int, typer.Option(help="rows written per transaction")] = 1000,
    strict: Annotated[
        bool, typer.Option("--strict", help="all or nothing for the whole file: write no row if any row fails")
    ] = False,
    errors_out: Annotated[Path | None, typer.Option("--errors", help="per-row error report (CSV)")] = None,
    tenant: Annotated[str | None, typer.Option(help="tenant code")] = None,
    workers: Annotated[
        int | None, typer.Option(help="worker processes parsing rows (0: none; default: one per CPU for big files)")
    ] = None,
    source: Annotated[
        int | None, typer.Option(help="id of the list's source record (kakehashi privacy source-add)")
    ] = None,
    provider: Annotated[str | None, typer.Option(help="or record the source here: provider (提供元)")] = None,
    method: Annotated[str | None, typer.Option(help="how the provider obtained the data (取得の経緯)")] = None,
    received: Annotated[str | None, typer.Option(help="date the list was received (default: today)")] = None,
) -> None:
    """Import customers from CSV (UTF-8 or Shift_JIS/CP932) or XLSX. Guide: docs/import.md.

    Every list needs its source (APPI third-party provision record): ``--source ID``, or ``--provider`` and
    ``--method`` (and ``--received``) to record one now with the file's columns as its items.
    """
    from kakehashi.customers import importer
    from kakehashi.privacy.cli import resolve_import_source

    settings = get_settings()
    try:
        with _database() as engine:
            source_id = resolve_import_source(
                engine, file, tenant=tenant, source=source, provider=provider, method=method, received=received,
                encoding=encoding, sheet=sheet,
            )  # fmt: skip
            report = importer.import_file(
                engine,
                file,
                tenant_code=tenant or settings.default_tenant,
                mapping=importer.parse_mapping(mapping or []),
                encoding=encoding,
                sheet=sheet,
                on_duplicate=on_duplicate,
                batch_size=batch_size,
                errors_path=errors_out,
                progress=True,
                region=settings.default_region,
                workers=workers,
                source_id=source_id,
                by=f"cli:{getpass.getuser()}",
                strict=strict,
            )
    except importer.ImportSetupError as exc:
        console.print(f"[red]cannot import:[/] {exc}")
        raise typer.Exit(code=2) from None
    typer.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    if report.failed_rows:
        console.print(f"[yellow]{report.failed_rows} row(s) failed[/]; see {report.errors_path}")
        raise typer.Exit(code=1)


@bench_app.command("screenpop")
def bench_screenpop(
    customers: Annotated[int, typer.Option(help="customers in the database (seeded if fewer)")] = 10000,
    lookups: Annotated[int, typer.Option(help="screen pops to time")] = 2000,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON only")] = False,
    http: Annotated[bool, typer.Option("--http/--no-http", help="also time over HTTP (uvicorn)")] = True,
) -> None:
    """Screen-pop latency (service layer and HTTP) against the bare indexed SQL lookup."""
    from kakehashi.bench import screenpop

    result = screenpop.run(customers=customers, lookups=lookups, console=None if json_out else console, http=http)
    typer.echo(json.dumps(result, ensure_ascii=False))


@bench_app.command("import")
def bench_import(
    rows: Annotated[int, typer.Option(help="rows in the generated CSV")] = 10000,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON only")] = False,
) -> None:
    """Import throughput against the same rows COPYd into the same indexed tables (ratio_floor) and a raw COPY."""
    from kakehashi.bench import importing

    result = importing.run(rows=rows, console=None if json_out else console)
    typer.echo(json.dumps(result, ensure_ascii=False))


@bench_app.command("campaign")
def bench_campaign(
    leads: Annotated[int, typer.Option(help="rows in the generated call list", min=1)] = 100_000,
    agents: Annotated[int, typer.Option(help="agents reserving leads at once", min=1, max=200)] = 50,
    reservations: Annotated[int, typer.Option(help="leads handed out in the reservation loop", min=1)] = 10_000,
    talk_ms: Annotated[
        float, typer.Option(help="each agent's time on the call between reservation and outcome (0: tight loop)", min=0)
    ] = 0.0,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON only")] = False,
) -> None:
    """A call list loaded into a campaign (rows/s, against the same rows COPYd into the same indexed tables), then
    agents reserving its leads in a loop (reservations/s, p99 ms). PostgreSQL only (KAKEHASHI_BENCH_PG_URL)."""
    from kakehashi.bench import campaign

    try:
        result = campaign.run(leads=leads, agents=agents, reservations=reservations, talk_ms=talk_ms,
                              console=None if json_out else console)  # fmt: skip
    except campaign.PostgresOnly as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    typer.echo(json.dumps(result, ensure_ascii=False))


@bench_app.command("dialer")
def bench_dialer(
    agents: Annotated[int, typer.Option(help="simulated agents working the campaign", min=1, max=1000)] = 50,
    hours: Annotated[float, typer.Option(help="hours of work a day, from 09:00 Japan time", min=0.1, max=11)] = 8.0,
    days: Annotated[int, typer.Option(help="simulated days", min=1, max=30)] = 1,
    seed: Annotated[int, typer.Option(help="random seed (runs are reproducible)")] = 7,
    modes: Annotated[str, typer.Option(help="comma-separated modes (default: all five)")] = DIALER_MODES,
    sweep: Annotated[str, typer.Option(help="abandon targets for the predictive curve, e.g. 0.01,0.02,0.03,0.05")] = "",
    chart: Annotated[Path | None, typer.Option(help="write the sweep's curve as PNG here")] = None,
    adapt_limits: Annotated[
        str, typer.Option(help="also run ADAPT with these drop limits, e.g. 0.02,0.01 (its default is 0.03)")
    ] = "",
    jobs: Annotated[
        int, typer.Option(help="runs in parallel processes (each mode has its own database)", min=1, max=16)
    ] = 1,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON only")] = False,
) -> None:
    """Progressive, VICIdial's ADAPT (average, hard limit, tapered) and Kakehashi's predictive pacing on one seeded
    simulation through the real campaign code: talk minutes per agent-hour, occupancy, abandon rates (issue 19)."""
    from kakehashi.bench import dialer

    chosen = tuple(m.strip() for m in modes.split(",") if m.strip())
    unknown = [m for m in chosen if m not in dialer.MODES]
    if unknown:
        raise typer.BadParameter(f"unknown: {', '.join(unknown)}", param_hint="--modes")
    try:
        targets = tuple(float(t) for t in sweep.split(",") if t.strip())
    except ValueError:
        raise typer.BadParameter("numbers between 0.001 and 0.05", param_hint="--sweep") from None
    try:
        limits = tuple(float(t) for t in adapt_limits.split(",") if t.strip())
    except ValueError:
        raise typer.BadParameter("numbers between 0.001 and 0.05", param_hint="--adapt-limits") from None
    tuned = sum(1 for limit in limits if limit != 0.03) * sum(1 for m in chosen if m.startswith("adapt_"))
    total = (len(chosen) + len(targets) + tuned) * days * hours * 3600
    with Progress(console=console, disable=json_out, transient=True) as progress:
        task = progress.add_task("simulated hours", total=total)
        result = dialer.run(agents=agents, hours=hours, days=days, seed=seed, modes=chosen, sweep=targets,
                            adapt_limits=limits, progress=lambda s: progress.advance(task, s), jobs=jobs)  # fmt: skip
    if chart is not None and result.get("sweep"):
        dialer.write_chart(result, chart)
    typer.echo(json.dumps(result, ensure_ascii=False))


@bench_app.command("calls")
def bench_calls(
    hours: Annotated[float, typer.Option(help="simulated hours of traffic")] = 1.0,
    calls_per_hour: Annotated[float, typer.Option(help="base arrival rate (a 20x TV spike is added)")] = 600,
    agents: Annotated[int, typer.Option(help="simulated agents")] = 40,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON only")] = False,
) -> None:
    """Simulated traffic on a virtual clock through the real call pipeline into the configured database."""
    from kakehashi.bench import calls

    with _database() as engine:
        result = calls.run(engine, hours=hours, calls_per_hour=calls_per_hour, agents=agents)
    typer.echo(json.dumps(result, ensure_ascii=False))


@bench_app.command("acd")
def bench_acd(
    agents: Annotated[int, typer.Option(help="agents in the steady scenario")] = 500,
    queues: Annotated[int, typer.Option(help="queues in the steady scenario (each agent in three)")] = 50,
    calls: Annotated[int, typer.Option(help="calls in the steady scenario")] = 20_000,
    spike_calls: Annotated[int, typer.Option(help="calls in the 30-minute TV spike")] = 10_000,
    spike_agents: Annotated[int, typer.Option(help="agents during the TV spike")] = 300,
    seed: Annotated[int, typer.Option(help="random seed (runs are reproducible)")] = 1,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON only")] = False,
) -> None:
    """Routing decisions (p50/p99), calls per second, fairness (Gini) and a TV spike against Erlang A."""
    from kakehashi.bench import acd

    with console.status("routing simulated calls…", spinner="dots") if not json_out else nullcontext():
        result = acd.run(agents=agents, queues=queues, calls=calls, spike_calls=spike_calls,
                         spike_agents=spike_agents, seed=seed)  # fmt: skip
    typer.echo(json.dumps(result, ensure_ascii=False))


@bench_app.command("amd")
def bench_amd(
    samples: Annotated[
        int, typer.Option(help="synthetic calls (40 % people, 40 % machines, the rest silence and noise)", min=4)
    ] = 400,
    seed: Annotated[int, typer.Option(help="random seed (runs are reproducible)")] = 1,
    background: Annotated[
        str, typer.Option(help="the line's background noise: low (-70…-50 dBFS) or noisy (-50…-36 dBFS)")
    ] = "low",
    json_out: Annotated[bool, typer.Option("--json", help="print JSON only")] = False,
) -> None:
    """Answering-machine detection on synthetic Japanese answers and 留守番電話 greetings (Open JTalk, 8 kHz,
    μ-law): accuracy per class, the false-machine rate (people hung up on) and the decision time, for app_amd's
    stock settings and the Japanese set (issue 19)."""
    from kakehashi.bench import amd

    if background not in amd.BACKGROUNDS:
        raise typer.BadParameter(f"one of {', '.join(amd.BACKGROUNDS)}", param_hint="--background")
    result = amd.run(samples=samples, seed=seed, console=None if json_out else console, background=background)
    typer.echo(json.dumps(result, ensure_ascii=False))


@bench_app.command("sip")
def bench_sip(
    concurrent: Annotated[int, typer.Option(help="calls up at once")] = 10,
    seconds: Annotated[float, typer.Option(help="how long new calls keep coming")] = 20.0,
    call_seconds: Annotated[float, typer.Option(help="length of each call")] = 10.0,
    workers: Annotated[int | None, typer.Option(help="media workers (default: ceil(concurrent / 2) + spares)")] = None,
    ack_delay_ms: Annotated[
        int, typer.Option(help="the customers' ACK comes this late (a slow far end); under 500", min=0, max=499)
    ] = 0,
    bare: Annotated[
        bool, typer.Option("--bare/--no-bare", help="then the same calls without the CTI (cpu_ratio_vs_bare)")
    ] = True,
    engine: Annotated[
        str,
        typer.Option(help="the CTI's SIP engine: rtpengine (the media plane, the default) or pjsip (media workers)"),
    ] = "rtpengine",
    prompt_s: Annotated[
        float, typer.Option("--prompt-s", help="each caller first hears a greeting this long (prompts at scale)", min=0)
    ] = 0.0,
    dtmf: Annotated[
        bool, typer.Option("--dtmf", help='each caller keys "1" (RFC 4733) after the greeting; the key rings the agent')
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON only")] = False,
) -> None:
    """Real SIP calls (sipp → Kamailio → rtpengine → media workers, recorded → a sipp agent): setup, CPU,
    memory; then the same calls over the bare path (sipp → Kamailio → rtpengine → sipp) to compare."""
    from kakehashi.bench import sip

    with console.status(f"{concurrent} SIP calls…", spinner="dots") if not json_out else nullcontext():
        result = sip.run(concurrent=concurrent, seconds=seconds, call_s=call_seconds, workers=workers,
                         ack_delay_ms=ack_delay_ms, bare=bare, engine=engine, prompt_s=prompt_s,
                         dtmf=dtmf)  # fmt: skip
    typer.echo(json.dumps(result, ensure_ascii=False))


@bench_app.command("desk")
def bench_desk(
    calls: Annotated[int, typer.Option(help="calls offered one after another", min=1)] = 100,
    postgres: Annotated[
        bool, typer.Option("--postgres", help="on PostgreSQL (a database of its own, dropped after), not SQLite")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON only")] = False,
) -> None:
    """call.offered → the caller's card drawn on the agent desktop (the app, chromium, loopback): p50/p99."""
    from kakehashi.bench import desk_pop

    database_url = desk_pop.POSTGRES_URL if postgres else None
    with console.status(f"{calls} screen pops in the browser…", spinner="dots") if not json_out else nullcontext():
        result = desk_pop.run(calls=calls, database_url=database_url)
    typer.echo(json.dumps(result, ensure_ascii=False))


@bench_app.command("login-flood")
def bench_login_flood(
    threads: Annotated[int, typer.Option(help="parallel anonymous clients posting logins", min=1, max=200)] = 40,
    seconds: Annotated[float, typer.Option(help="how long the flood lasts", min=1)] = 20.0,
    addresses: Annotated[
        int | None, typer.Option(help="loopback source addresses the clients use (default: one each)", min=1)
    ] = None,
    postgres: Annotated[
        bool, typer.Option("--postgres", help="on PostgreSQL (a database of its own, dropped after), not SQLite")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON only")] = False,
) -> None:
    """Anonymous logins flood the app while simulated calls run: a signed-in supervisor's reads (p50/p99 against
    a baseline without the flood), the flood's answers, every call recorded (issue 15, ADR 0018)."""
    from kakehashi.bench import login_flood

    database_url = login_flood.POSTGRES_URL if postgres else None
    with console.status(f"{threads} clients flooding the login…", spinner="dots") if not json_out else nullcontext():
        result = login_flood.run(threads=threads, seconds=seconds, addresses=addresses, database_url=database_url)
    typer.echo(json.dumps(result, ensure_ascii=False))


def main() -> None:
    app()
