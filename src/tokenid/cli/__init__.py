"""``tokenid`` command line: thin typer commands over the journal's query API."""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.table import Table

from ..errors import TokenIDError
from ..journal import COLUMNS, Journal, default_journal_target, get_journal, queries

app = typer.Typer(
    name="tokenid",
    help="Know and control what every OpenAI / Azure OpenAI call costs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
session_app = typer.Typer(help="One session's calls.", no_args_is_help=True)
app.add_typer(session_app, name="session")


def _register_subcommands() -> None:
    from .meters import meters_app
    from .prices import prices_app
    from .reconcile import reconcile_command

    app.add_typer(meters_app, name="meters")
    app.add_typer(prices_app, name="prices")
    app.command("reconcile")(reconcile_command)


_register_subcommands()



def _console() -> Console:
    # made per command so the terminal width (or $COLUMNS) at run time is used
    return Console()

JournalOpt = Annotated[
    str | None,
    typer.Option("--journal", "-j", help="Journal path (default: $TOKENID_JOURNAL or the per-user journal)."),
]
EXPORT_FIELDS = [c for c in COLUMNS if c != "cost_nanousd"]


def _open(path: str | None) -> Journal:
    target = path or default_journal_target()
    if not target.startswith(("sqlite:", "postgresql:", "postgres:")) and not Path(target).expanduser().exists():
        raise typer.BadParameter(f"no journal at {target}", param_hint="--journal")
    try:
        return get_journal(target)
    except TokenIDError as exc:
        raise typer.BadParameter(str(exc), param_hint="--journal") from exc


def money(value: Decimal | None) -> str:
    """Dollars with enough digits to see sub-cent calls: $0.000412, $12.35."""
    if value is None:
        return "—"
    if value == 0:
        return "$0"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    return f"${value:.6f}".rstrip("0").rstrip(".")


def _int(value: Any) -> str:
    return f"{int(value or 0):,}"


_NOTE_NAMES = {"errors": "err", "blocked": "blocked", "rewritten": "rewritten", "aborted": "aborted",
               "estimated": "est.", "unpriced": "unpriced"}


def _nanos(value: Any) -> str:
    return money(Decimal(int(value or 0)) / 1_000_000_000)


def totals_table(title: str, rows: list[dict[str, Any]], key_label: str) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold", pad_edge=False)
    table.add_column(key_label, overflow="fold", min_width=10)
    optional = [(k, label) for k, label in (("cached_input_tokens", "cached"), ("reasoning_tokens", "reasoning"))
                if any(r.get(k) for r in rows)]
    table.add_column("calls", justify="right")
    table.add_column("input", justify="right")
    for _, label in optional:
        table.add_column(label, justify="right")
    table.add_column("output", justify="right")
    table.add_column("cost", justify="right", style="bold", no_wrap=True, min_width=9)
    table.add_column("notes", overflow="fold")
    for r in rows:
        notes = " · ".join(f"{r[k]} {label}" for k, label in _NOTE_NAMES.items() if r.get(k))
        table.add_row(str(r["key"]), _int(r["calls"]), _int(r["input_tokens"]),
                      *[_int(r[k]) for k, _ in optional], _int(r["output_tokens"]), money(r["cost_usd"]), notes)
    if not rows:
        table.add_row("(no calls journaled)", *[""] * (5 + len(optional)))
    return table


def print_report(journal: Journal, groups: list[str], since: str | None = None, until: str | None = None) -> None:
    for group in groups:
        try:
            rows = queries.totals(journal, group, since=since, until=until)
        except TokenIDError as exc:
            raise typer.BadParameter(str(exc), param_hint="--by") from exc
        _console().print(totals_table(f"Spend by {group}", rows, group))
    overall = queries.totals(journal, "provider", since=since, until=until)
    total = sum((r["cost_usd"] for r in overall if r["cost_usd"] is not None), Decimal(0))
    calls = sum(r["calls"] for r in overall)
    _console().print(f"[bold]Total:[/bold] {calls:,} calls, {money(total)}")


@app.command()
def report(
    journal: JournalOpt = None,
    by: Annotated[str, typer.Option(help="Comma-separated groupings: " + ", ".join(queries.GROUPS))] =
        "session,model,deployment,day",
    since: Annotated[str | None, typer.Option(help="Only calls at or after this UTC date/time (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Only calls before this UTC date/time (ISO 8601).")] = None,
) -> None:
    """Totals by session, model, deployment and day."""
    print_report(_open(journal), [g.strip() for g in by.split(",") if g.strip()], since, until)


@app.command()
def budgets(
    journal: JournalOpt = None,
    config: Annotated[str | None, typer.Option(
        "--config", "-c", help="Enforcement config file (TOML/YAML/JSON); default $TOKENID_ENFORCEMENT.")] = None,
) -> None:
    """Every budget with spent / reserved / limit and when its window resets (shared SQLite counters)."""
    from datetime import datetime, timezone

    from ..enforce import SQLiteCounters, load_config, parse_config

    j = _open(journal)
    try:
        raw = load_config(config)
        rules = parse_config(raw) if raw is not None else None
    except TokenIDError as exc:
        raise typer.BadParameter(str(exc), param_hint="--config") from exc
    counters = SQLiteCounters(j.path)
    rows = counters.snapshot()
    now = datetime.now(timezone.utc)
    table = Table(title="Budgets", title_justify="left", header_style="bold")
    for name, justify in (("budget", "left"), ("scope", "left"), ("window", "left"), ("spent", "right"),
                          ("reserved", "right"), ("limit", "right"), ("used", "right"), ("resets", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    known = {b.name: b for b in rules.budgets} if rules is not None else {}
    shown: set[str] = set()
    for row in rows:
        key = str(row["key"])
        name, _, scope = key.partition("|")
        budget = known.get(name)
        if budget is None:
            table.add_row(name, scope, str(row["bucket"]), _int(row["spent"]), _int(row["reserved"]), "?", "",
                          "(pass --config for limits)")
            continue
        if key in shown:
            continue
        shown.add(key)
        spent, reserved = counters.usage(key, budget.window, now=now)  # sums a rolling window's sub-buckets
        _, reset = budget.window.bucket(now)
        fmt = _nanos if budget.unit == "usd" else _int
        used = (spent + reserved) / budget.limit if budget.limit else 0
        resets = "rolling" if budget.window.kind == "rolling" else (
            reset.strftime("%Y-%m-%d %H:%M UTC") if reset else "never")
        table.add_row(name, scope, str(budget.window), fmt(spent), fmt(reserved), fmt(budget.limit), f"{used:.0%}",
                      resets)
    if not rows:
        table.add_row("(no budget counters in this journal)", "", "", "", "", "", "", "")
    _console().print(table)


@app.command("sessions")
def sessions_cmd(
    journal: JournalOpt = None,
    limit: Annotated[int, typer.Option(min=1, help="How many sessions to list.")] = 50,
) -> None:
    """Sessions, most recent first."""
    rows = queries.sessions(_open(journal), limit=limit)
    table = Table(title="Sessions", title_justify="left", header_style="bold")
    for name, justify in (("session", "left"), ("first call", "left"), ("last call", "left"), ("calls", "right"),
                          ("input tok", "right"), ("output tok", "right"), ("cost", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(r["session_id"], r["first_call"][:19], r["last_call"][:19], _int(r["calls"]),
                      _int(r["input_tokens"]), _int(r["output_tokens"]), money(r["cost_usd"]))
    if not rows:
        table.add_row("(no sessions)", "", "", "", "", "", "")
    _console().print(table)


def events_table(title: str, events: list[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for name, justify in (("time", "left"), ("session", "left"), ("endpoint", "left"), ("deployment/model", "left"),
                          ("in", "right"), ("out", "right"), ("cost", "right"), ("ms", "right"), ("status", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for e in events:
        cost = Decimal(e["cost_usd"]) if e.get("cost_usd") is not None else None
        target = e.get("deployment") or e.get("model_served") or e.get("model_requested") or ""
        if e.get("model_served") and e.get("deployment"):
            target = f"{e['deployment']} → {e['model_served']}"
        status = e["status"]
        if e.get("http_status") and status != "ok":
            status += f" {e['http_status']}"
        if e.get("usage_source") == "estimated":
            status += " (est.)"
        endpoint = e["endpoint"] + (" ⇢" if e.get("stream") else "")
        table.add_row(e["started_at"][11:23], e.get("session_id") or "", endpoint, target,
                      _int(e.get("input_tokens")), _int(e.get("output_tokens")), money(cost),
                      f"{e['latency_ms']:.0f}" if e.get("latency_ms") is not None else "", status)
    return table


@session_app.command("show")
def session_show(session_id: str, journal: JournalOpt = None) -> None:
    """Every call of one session, in order."""
    events = queries.session_events(_open(journal), session_id)
    if not events:
        raise typer.BadParameter(f"no calls journaled for session {session_id!r}", param_hint="SESSION_ID")
    _console().print(events_table(f"Session {session_id}", events))
    total = sum((Decimal(e["cost_usd"]) for e in events if e.get("cost_usd") is not None), Decimal(0))
    _console().print(f"[bold]{len(events)} calls, {money(total)}[/bold]")


@app.command()
def tail(
    journal: JournalOpt = None,
    n: Annotated[int, typer.Option("-n", min=1, help="How many recent calls to show first.")] = 20,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new calls as they arrive.")] = False,
    interval: Annotated[float, typer.Option(help="Polling interval with --follow, seconds.")] = 1.0,
) -> None:
    """The most recent calls; with --follow, new ones as they are journaled."""
    j = _open(journal)
    events = queries.recent(j, limit=n)
    _console().print(events_table("Recent calls", events))
    last = events[-1]["id"] if events else None
    while follow:
        time.sleep(interval)
        new = queries.recent(j, after=last) if last else queries.recent(j, limit=n)
        if new:
            _console().print(events_table("", new))
            last = new[-1]["id"]


@app.command()
def export(
    journal: JournalOpt = None,
    format: Annotated[str, typer.Option("--format", "-f", help="csv or jsonl")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    session: Annotated[str | None, typer.Option(help="Only this session's calls.")] = None,
) -> None:
    """Every journaled event, one per line (jsonl) or row (csv), with the field names of the event schema."""
    if format not in ("csv", "jsonl"):
        raise typer.BadParameter(f"unknown format {format!r}; accepted: csv, jsonl", param_hint="--format")
    j = _open(journal)
    events = j.iter_events("session_id = ?", (session,)) if session else j.iter_events()
    if output is None:
        _write_events(events, format, sys.stdout)
        return
    with open(output, "w", newline="", encoding="utf-8") as out:
        _write_events(events, format, out)


def _write_events(events: Iterable[dict[str, Any]], format: str, out: TextIO) -> None:
    if format == "jsonl":
        for e in events:
            out.write(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n")
        return
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for e in events:
        writer.writerow({k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in e.items()})


@app.command()
def dashboard(
    journal: JournalOpt = None,
    host: Annotated[str, typer.Option(help="Address to bind. Anything but loopback requires an access token.")] =
        "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8050,
    config: Annotated[str | None, typer.Option(
        "--config", "-c", help="Enforcement config (budget limits and windows); default $TOKENID_ENFORCEMENT.")] =
        None,
) -> None:
    """Serve the web dashboard (read-only) over a journal: spend, sessions, enforcement, reconciliation, live tail."""
    from ..dashboard import access_for, prepare_journal, serve
    from ..dashboard.auth import TOKEN_ENV
    from ..enforce import load_config, parse_config
    from ..journal.core import resolve_target
    from ..journal.postgres import redact_url

    try:
        kind, where = resolve_target(journal)
        target: Path | str = Path(where) if kind == "sqlite" else str(where)
        shown = str(target) if kind == "sqlite" else redact_url(str(target))
        raw = load_config(config)
        rules = parse_config(raw).budgets if raw is not None else []
        access = access_for(host)
        prepare_journal(target, say=lambda text: _console().print(text, highlight=False))
    except TokenIDError as exc:
        raise typer.BadParameter(str(exc)) from exc
    console = _console()
    console.print(f"[bold]TokenID dashboard[/bold] on {shown}", highlight=False)
    if access.token is None:
        console.print(f"  Open {access.url(host, port)}  (this machine only; Ctrl-C stops it)", highlight=False)
    elif access.generated:
        console.print(f"  Open {access.url(host, port)}\n  Access token (generated for this run; set {TOKEN_ENV} "
                      f"to choose one): {access.token}", highlight=False, soft_wrap=True)
    else:
        console.print(f"  Open {access.url(host, port)}  (access token from ${TOKEN_ENV}: append ?token=… once, "
                      "or send Authorization: Bearer …)", highlight=False)
    serve(target, host=host, port=port, access=access, budgets=rules)


@app.command()
def simulate(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    deployment: Annotated[list[str] | None, typer.Option(
        help="Deployment as NAME=SERVED_MODEL; repeat for several (default: a built-in set).")] = None,
    region: Annotated[str, typer.Option(help="Value of the x-ms-region header.")] = "swedencentral",
) -> None:
    """Run the local Azure OpenAI + OpenAI simulator until interrupted."""
    from ..simulator import run

    deployments = None
    if deployment:
        deployments = {}
        for item in deployment:
            name, sep, model = item.partition("=")
            if not sep or not name or not model:
                raise typer.BadParameter(f"expected NAME=SERVED_MODEL, got {item!r}", param_hint="--deployment")
            deployments[name] = model
    _console().print(f"Simulator on http://{host}:{port}  (Azure: azure_endpoint=http://{host}:{port}; "
                  f"OpenAI: base_url=http://{host}:{port}/v1). Ctrl-C stops it.")
    run(host, port, deployments, region)


@app.command()
def demo(
    journal: Annotated[str | None, typer.Option(
        "--journal", "-j", help="Journal for the demo (default: a fresh demo journal beside the per-user one).",
    )] = None,
) -> None:
    """Start the simulator, make real calls through JournaledAzureOpenAI, and print the report."""
    from .demo import run_demo

    run_demo(journal)


def _register_health() -> None:
    from .health import health

    app.command("health")(health)


_register_health()


def main() -> None:
    app()
