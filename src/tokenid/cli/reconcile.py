"""``tokenid reconcile``: an Azure Cost Management export (or the Query API) beside the journal."""

from __future__ import annotations

import json
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..azure.exports import ReadSummary, read_export
from ..azure.reconcile import ReconcileResult, reconcile
from ..azure.reconcile_store import GROUPINGS, list_vs_invoice, store_run, write_report
from ..errors import TokenIDError

_ORDER = {"variance": 0, "invoice_only": 1, "journal_only": 2, "unknown_meter": 3, "capacity": 4, "matched": 5}


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values or []:
        key, sep, val = value.partition("=")
        if not sep or not key.strip() or not val.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint=option)
        out[key.strip()] = val.strip()
    return out


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"expected a date such as 2025-03-01, got {value!r}", param_hint=option) from None


def _money(value: Decimal | None) -> str:
    if value is None:
        return "—"
    return f"${value:,.2f}" if abs(value) >= 1 else f"${value:.6f}".rstrip("0").rstrip(".")


def _pct(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:+.2f}%"


def print_result(result: ReconcileResult, console: Console, *, limit: int) -> None:
    """The summary, the lines that need a look first, learned mappings and read issues."""
    totals = result.totals()
    counts = result.counts()
    period = f"{result.period_from} … {result.period_to}" if result.period_from else "(no days)"
    console.print(f"[bold]Reconciliation[/bold] {result.run_id} — {period}, tolerance ±{result.tolerance_pct}%")
    console.print(f"  invoice {_money(totals['invoice_usd'])} · journal {_money(totals['journal_usd'])} · "
                  f"variance {_money(totals['variance_usd'])}"
                  + (f" · not converted to USD: {totals['invoice_unconverted']} "
                     f"{','.join(sorted(result.currencies))}" if totals["invoice_unconverted"] else ""))
    console.print("  lines: " + " · ".join(f"{n} {status}" for status, n in counts.items() if n) or "  no lines")
    read = result.read
    if read is not None:
        console.print(f"  export: {len(read.files)} file(s), {read.rows_read:,} rows read, {read.rows_kept:,} kept, "
                      f"{read.rows_filtered_out:,} filtered out, {read.rows_malformed:,} malformed, "
                      f"{read.files_malformed} unreadable file(s), {read.warnings} warning(s)")
    if result.accounts_not_journaled and result.accounts_not_billed:
        console.print(f"  [yellow]The invoice's accounts ({', '.join(result.accounts_not_journaled)}) have nothing "
                      f"journaled, and the journal's ({', '.join(result.accounts_not_billed)}) are not on the "
                      "invoice: map endpoint hosts to accounts with --account-map HOST=ACCOUNT.[/yellow]")
    table = Table(title="Lines (those needing a look first)", title_justify="left", header_style="bold")
    for name, justify in (("day", "left"), ("account", "left"), ("meter", "left"), ("invoice", "right"),
                          ("journal", "right"), ("variance", "right"), ("qty var.", "right"), ("status", "left"),
                          ("note", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    ordered = sorted(result.lines, key=lambda ln: (_ORDER.get(ln.status, 9), ln.day, ln.meter_name))
    for line in ordered[:limit]:
        invoice = _money(line.invoice_cost_usd) if line.invoice_cost_usd is not None or line.invoice_cost is None \
            else f"{line.invoice_cost} {line.currency}"
        table.add_row(str(line.day), line.account_name, line.meter_name, invoice, _money(line.journal_cost_usd),
                      _pct(line.variance_pct), _pct(line.quantity_variance_pct), line.status, line.note)
    if not result.lines:
        table.add_row("(no Azure OpenAI lines in the export)", *[""] * 8)
    console.print(table)
    if len(ordered) > limit:
        console.print(f"  … {len(ordered) - limit} more line(s) in the report")
    changed = [m for m in result.mappings if m.changed]
    if changed:
        mapped = Table(title="Deployments the invoice bills differently from the journal", title_justify="left",
                       header_style="bold")
        for name in ("account", "deployment", "model", "journal type", "invoice type", "evidence"):
            mapped.add_column(name, overflow="fold")
        for m in changed:
            mapped.add_row(m.account, m.deployment, f"{m.model} {m.version or ''}".strip(),
                           str(m.journal_deployment_type), m.deployment_type, m.evidence)
        console.print(mapped)
        snippet = {m.deployment: {"model": m.model, **({"version": m.version} if m.version else {}),
                                  "type": m.deployment_type} for m in changed}
        console.print("  Put these in the client's deployments map so list prices match from now on:")
        console.print("  deployments=" + json.dumps(snippet), highlight=False, soft_wrap=True)
    if read is not None and read.issues:
        console.print("[bold]Export issues[/bold] (first 10):")
        for issue in read.issues[:10]:
            console.print(f"  {issue}", highlight=False, soft_wrap=True)


def reconcile_command(
    export: Annotated[Path | None, typer.Argument(
        help="A Cost Management export: a CSV/CSV.gz/Parquet file, or a folder of export runs with manifest.json.",
        show_default=False)] = None,
    journal: Annotated[str | None, typer.Option(
        "--journal", "-j", help="Journal path (default: $TOKENID_JOURNAL or the per-user journal).")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="First day (UTC, inclusive), e.g. 2025-03-01.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Last day (UTC, inclusive).")] = None,
    account: Annotated[str | None, typer.Option(help="Only this account (name or ResourceId).")] = None,
    account_map: Annotated[list[str] | None, typer.Option(
        "--account-map", help="HOST=ACCOUNT for endpoints not named ACCOUNT.openai.azure.com (repeatable).")] = None,
    capacity: Annotated[list[str] | None, typer.Option(
        "--capacity", help="DEPLOYMENT=PTUS: allocate PTU hours by capacity (repeatable).")] = None,
    fx: Annotated[list[str] | None, typer.Option(
        "--fx", help="CURRENCY=RATE (units per USD) for rows with no USD cost or exchange rate (repeatable).")] = None,
    tolerance: Annotated[str, typer.Option(help="Variance (%) within which a line is matched.")] = "0.5",
    focus_cost: Annotated[str, typer.Option(
        help="FOCUS exports: 'billed' (BilledCost, the invoice) or 'effective' (EffectiveCost, amortized).")] =
        "billed",
    query: Annotated[str | None, typer.Option(
        "--query", help="Read the Cost Management Query API for this scope instead of an export, e.g. "
                        "subscriptions/<id> (needs tokenid[azure] and Azure credentials).")] = None,
    cost_type: Annotated[str, typer.Option(help="--query: ActualCost or AmortizedCost.")] = "ActualCost",
    management_url: Annotated[str, typer.Option(
        help="--query: the Azure Resource Manager endpoint (sovereign clouds).")] = "https://management.azure.com",
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Detailed report file, .csv or .json (default: reconcile-<run>.csv here).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    lines: Annotated[int, typer.Option(min=0, help="How many lines to print.")] = 30,
    by: Annotated[str, typer.Option(
        help="After saving: list vs invoice cost of the re-costed calls by these groupings (comma-separated: "
             "session, deployment, model, day, tag:NAME; empty for none).")] = "deployment",
    store: Annotated[bool, typer.Option(
        help="Save the run in the journal (for the dashboard) and re-cost the calls it covers.")] = True,
    fail_on_variance: Annotated[bool, typer.Option(
        help="Exit with status 1 when any line is variance, invoice_only or journal_only.")] = False,
) -> None:
    """Match journaled Azure OpenAI costs to the invoice per account, day and meter: variance per line, each
    line split across deployments and sessions, invoice-calibrated rates, capacity costs allocated."""
    from . import _open

    start, end = _day(from_, "--from"), _day(to, "--to")
    if (export is None) == (query is None):
        raise typer.BadParameter("give an export path or --query SCOPE (one of them)", param_hint="EXPORT")
    if focus_cost not in ("billed", "effective"):
        raise typer.BadParameter("expected 'billed' or 'effective'", param_hint="--focus-cost")
    groupings = [g.strip() for g in by.split(",") if g.strip()]
    bad = [g for g in groupings if g not in GROUPINGS and not (g.startswith("tag:") and len(g) > 4)]
    if bad:
        raise typer.BadParameter(f"unknown grouping {bad[0]!r}; accepted: {', '.join(GROUPINGS)}, tag:NAME",
                                 param_hint="--by")
    j = _open(journal)
    summary: ReadSummary | None
    cost_lines: Any
    try:
        if export is not None:
            cost_lines, summary = read_export(export, start=start, end=end, account=account,
                                              focus_cost=focus_cost)  # type: ignore[arg-type]
            source = str(export)
        else:
            cost_lines, summary, source = _query(str(query), start, end, cost_type, management_url)
        result = reconcile(cost_lines, j, start=start, end=end, account=account,
                           accounts=_pairs(account_map, "--account-map"), capacities=_pairs(capacity, "--capacity"),
                           fx=_pairs(fx, "--fx"), tolerance_pct=tolerance, read=summary, source=source)
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="EXPORT") from exc
    except TokenIDError as exc:
        raise typer.BadParameter(str(exc)) from exc
    report = write_report(result, output or Path(f"reconcile-{result.run_id}.csv"))
    recosted = store_run(j, result) if store else 0
    if json_output:
        sys.stdout.write(json.dumps({**result.summary(), "report": str(report), "events_recosted": recosted}) + "\n")
    else:
        console = Console()
        print_result(result, console, limit=lines)
        if store:
            for grouping in groupings:
                console.print(_list_vs_invoice_table(grouping, list_vs_invoice(j, grouping, result.run_id)))
        console.print(f"Report: {report}" + (f" · {recosted:,} journaled calls re-costed at invoice rates, run "
                                             f"saved in {j.location}" if store else " · not saved (--no-store)"),
                      highlight=False, soft_wrap=True)
    counts = result.counts()
    if fail_on_variance and (counts["variance"] or counts["invoice_only"] or counts["journal_only"]):
        raise typer.Exit(1)


def _list_vs_invoice_table(grouping: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"List vs invoice cost by {grouping}", title_justify="left", header_style="bold")
    for name, justify in ((grouping, "left"), ("calls", "right"), ("list", "right"), ("invoice", "right"),
                          ("difference", "right")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for r in rows:
        table.add_row(str(r["key"]), f"{r['calls']:,}", _money(r["list_usd"]), _money(r["invoice_usd"]),
                      _money(r["difference_usd"]))
    if not rows:
        table.add_row("(no journaled call was re-costed)", "", "", "", "")
    return table


def _query(scope: str, start: date | None, end: date | None, cost_type: str,
           base_url: str) -> tuple[Any, ReadSummary, str]:
    if start is None or end is None:
        raise typer.BadParameter("--query needs --from and --to", param_hint="--query")
    from ..azure.costquery import query_cost_lines

    summary = ReadSummary(path=f"query:{scope}")
    lines: Any = query_cost_lines(scope, start, end, base_url=base_url, cost_type=cost_type, summary=summary)
    return lines, summary, f"query:{scope}"


__all__ = ["print_result", "reconcile_command"]
