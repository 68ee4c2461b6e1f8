"""Reconciliation results in the journal database, and the detailed report as CSV or JSON.

A run is stored in the tables of journal schema v3 (``reconcile_runs``, ``reconcile_lines``,
``reconcile_allocations``, ``deployment_mappings``, ``calibrated_rates``) so the CLI and the dashboard can show it
later, and the journaled Azure calls it covered get ``invoice_cost_usd``: their tokens at the invoice-calibrated
rates (``cost_usd`` stays the list price).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Context, Decimal
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..journal import Journal
from ..pricing.rates import COMPONENTS, split_tokens, tidy
from ..usage import Usage
from .reconcile import ReconcileResult, account_of_host

__all__ = ["GROUPINGS", "REPORT_FIELDS", "latest_run", "list_vs_invoice", "recost_events", "store_run", "write_report"]

_CTX = Context(prec=60)
_MILLION = Decimal(1_000_000)
_NANO = Decimal("1e9")

#: Columns of the CSV report, one row per line (allocations as a JSON list in the last column).
REPORT_FIELDS = (
    "day", "account_name", "account_id", "meter_name", "model", "version", "direction", "deployment_type", "unit",
    "currency", "invoice_quantity", "invoice_cost", "invoice_cost_usd", "journal_tokens", "journal_quantity",
    "journal_cost_usd", "variance_usd", "variance_pct", "quantity_variance_pct", "status", "note", "meter_ids",
    "allocations",
)  # fmt: skip

_EVENTS_SQL = """
SELECT id, resource, substr(started_at, 1, 10), deployment,
       COALESCE(input_tokens, 0), COALESCE(output_tokens, 0), COALESCE(cached_input_tokens, 0),
       COALESCE(reasoning_tokens, 0), COALESCE(audio_input_tokens, 0), COALESCE(audio_output_tokens, 0),
       COALESCE(cache_write_tokens, 0), COALESCE(image_input_tokens, 0), COALESCE(cached_audio_input_tokens, 0)
FROM events
WHERE provider = 'azure_openai' AND started_at >= ? AND started_at < ? AND status != 'blocked'
  AND COALESCE(cache_hit, 0) = 0 AND input_tokens IS NOT NULL
"""


def store_run(journal: Journal, result: ReconcileResult) -> int:
    """Persist ``result`` and re-cost the journaled calls it covers; returns how many events were re-costed."""
    with journal.store.transaction() as conn:
        conn.execute(
            "INSERT INTO reconcile_runs (id, created_at, source, period_from, period_to, account, currency, summary) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (result.run_id, result.created_at.isoformat().replace("+00:00", "Z"), result.source,
             _day(result.period_from), _day(result.period_to), result.account,
             ",".join(sorted(result.currencies)) or None, json.dumps(result.summary())))
        conn.executemany(
            "INSERT INTO reconcile_lines (run_id, day, account_id, account_name, meter_name, meter_id, model, "
            "version, direction, deployment_type, unit, currency, invoice_quantity, invoice_cost, invoice_cost_usd, "
            "journal_tokens, journal_quantity, journal_cost_usd, variance_usd, variance_pct, quantity_variance_pct, "
            "status, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(result.run_id, d["day"], d["account_id"], d["account_name"], d["meter_name"],
              ",".join(d["meter_ids"]) or None, d["model"], d["version"], d["direction"], d["deployment_type"],
              d["unit"], d["currency"], d["invoice_quantity"], d["invoice_cost"], d["invoice_cost_usd"],
              d["journal_tokens"], d["journal_quantity"], d["journal_cost_usd"], d["variance_usd"],
              _pct(d["variance_pct"]), _pct(d["quantity_variance_pct"]), d["status"], d["note"] or None)
             for d in (line.to_json() for line in result.lines)])
        conn.executemany(
            "INSERT INTO reconcile_allocations (run_id, day, account_id, meter_name, deployment, session_id, tokens, "
            "share, cost_usd, basis) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(result.run_id, line.day.isoformat(), line.account_id or line.account_name, line.meter_name,
              a.deployment, a.session_id, a.tokens, _num(a.share), _num(a.cost_usd), a.basis)
             for line in result.lines for a in line.allocations])
        now = result.created_at.isoformat().replace("+00:00", "Z")
        conn.executemany(
            "INSERT INTO deployment_mappings (account_id, deployment, model, version, deployment_type, evidence, "
            "run_id, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, deployment) DO UPDATE SET "
            "model = excluded.model, version = excluded.version, deployment_type = excluded.deployment_type, "
            "evidence = excluded.evidence, run_id = excluded.run_id, updated_at = excluded.updated_at",
            [(m.account, m.deployment, m.model, m.version, m.deployment_type, m.evidence, result.run_id, now)
             for m in result.mappings])
        conn.executemany(
            "INSERT INTO calibrated_rates (account_id, deployment, direction, day, usd_per_million, "
            "list_usd_per_million, run_id) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, deployment, "
            "direction, day) DO UPDATE SET usd_per_million = excluded.usd_per_million, "
            "list_usd_per_million = excluded.list_usd_per_million, run_id = excluded.run_id",
            [(acct, dep, direction, day.isoformat(), _num(rate), _num(listed), result.run_id)
             for (acct, dep, direction, day), (rate, listed) in result.rates.items()])
        return recost_events(conn, result)


def recost_events(conn: Any, result: ReconcileResult) -> int:
    """Set ``invoice_cost_usd`` on every journaled call with a calibrated rate for any of its directions: those
    directions at the calibrated rate, the others at the journal's own rate."""
    if result.period_from is None or result.period_to is None or not result.rates:
        return 0
    calibrated = {key: rate for key, (rate, _) in result.rates.items()}
    covered = {(acct, dep, day) for acct, dep, _, day in calibrated}
    updates: list[tuple[str, int, str, str]] = []
    rows = conn.execute(_EVENTS_SQL, (result.period_from.isoformat(),
                                      (result.period_to + timedelta(days=1)).isoformat()))
    for event_id, host, day_text, deployment, *counts in rows:
        acct = account_of_host(host, result.accounts)
        day = date.fromisoformat(day_text)
        dep = deployment or ""
        if acct is None or (acct, dep, day) not in covered:
            continue
        inp, out, cached, reasoning, audio_in, audio_out, write, image, cached_audio = counts
        split = split_tokens(Usage(input_tokens=inp, output_tokens=out, cached_input_tokens=cached,
                                   reasoning_tokens=reasoning, audio_input_tokens=audio_in,
                                   audio_output_tokens=audio_out, cache_write_tokens=write,
                                   image_input_tokens=image, cached_audio_input_tokens=cached_audio))
        total = Decimal(0)
        for direction, tokens in zip(COMPONENTS, split, strict=True):
            if not tokens:
                continue
            key = (acct, dep, direction, day)
            rate = calibrated.get(key)
            if rate is None:
                rate = result.list_rates.get(key)
            if rate is None:
                break  # a direction with no rate at all: leave the call without an invoice cost
            total = _CTX.add(total, _CTX.divide(_CTX.multiply(Decimal(tokens), rate), _MILLION))
        else:
            cost = tidy(total)
            updates.append((format(cost, "f"), int(_CTX.multiply(cost, _NANO)), result.run_id, event_id))
    conn.executemany("UPDATE events SET invoice_cost_usd = ?, invoice_cost_nanousd = ?, invoice_run_id = ? "
                     "WHERE id = ?", updates)
    return len(updates)


#: groupings of :func:`list_vs_invoice` besides ``tag:NAME``
GROUPINGS: dict[str, str] = {
    "session": "COALESCE(session_id, '(none)')",
    "deployment": "COALESCE(deployment, '(none)')",
    "model": "COALESCE(canonical_model, model_served, '(unknown)')",
    "day": "substr(started_at, 1, 10)",
}


def list_vs_invoice(journal: Journal, by: str, run_id: str) -> list[dict[str, Any]]:
    """List-price and invoice-calibrated cost of the calls run ``run_id`` re-costed, grouped by ``session``,
    ``deployment``, ``model``, ``day`` or ``tag:NAME`` (the value of tag NAME)."""
    params: list[Any] = []
    if by.startswith("tag:") and by[4:]:
        key = f"COALESCE({journal.store.json_text('tags')}, '(none)')"
        params.append(by[4:])
    elif by in GROUPINGS:
        key = GROUPINGS[by]
    else:
        raise ConfigError(f"unknown grouping {by!r}; accepted: {', '.join(GROUPINGS)}, tag:NAME")
    rows = journal.store.query(
        f"SELECT {key} AS key, COUNT(*) AS calls, SUM(cost_nanousd) AS list_nanos, "
        f"SUM(invoice_cost_nanousd) AS invoice_nanos FROM events WHERE invoice_run_id = ? "
        f"GROUP BY 1 ORDER BY 4 DESC", [*params, run_id])
    out = []
    for row in rows:
        listed = None if row["list_nanos"] is None else Decimal(row["list_nanos"]).scaleb(-9)
        invoice = Decimal(row["invoice_nanos"] or 0).scaleb(-9)
        out.append({"key": row["key"], "calls": row["calls"], "list_usd": listed, "invoice_usd": invoice,
                    "difference_usd": None if listed is None else invoice - listed})
    return out


def latest_run(journal: Journal) -> dict[str, Any] | None:
    """The newest stored run (its row, ``summary`` decoded), or None."""
    rows = journal.store.query("SELECT * FROM reconcile_runs ORDER BY created_at DESC, id DESC LIMIT 1")
    if not rows:
        return None
    run = dict(rows[0])
    run["summary"] = json.loads(run["summary"]) if run.get("summary") else None
    return run


def write_report(result: ReconcileResult, path: str | Path, fmt: str | None = None) -> Path:
    """Write the detailed report: ``csv`` (a row per line) or ``json`` (the summary and every line with its
    allocations). ``fmt`` defaults to the file's suffix."""
    target = Path(path)
    kind = (fmt or target.suffix.lstrip(".") or "csv").lower()
    if kind not in ("csv", "json"):
        raise ConfigError(f"report format must be 'csv' or 'json'; got {kind!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    if kind == "json":
        doc = {"summary": result.summary(), "lines": [line.to_json() for line in result.lines],
               "mappings": [dataclasses.asdict(m) for m in result.mappings]}
        target.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        return target
    with open(target, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=REPORT_FIELDS)
        writer.writeheader()
        for row in _csv_rows(result):
            writer.writerow(row)
    return target


def _csv_rows(result: ReconcileResult) -> Iterator[dict[str, Any]]:
    for line in result.lines:
        d = line.to_json()
        d["meter_ids"] = " ".join(d["meter_ids"])
        d["allocations"] = json.dumps(d["allocations"])
        yield {k: "" if d.get(k) is None else d[k] for k in REPORT_FIELDS}


def _num(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _pct(text: str | None) -> float | None:
    # a percentage, stored as REAL so the dashboard can sort and filter on it; money stays decimal text
    return None if text is None else float(text)


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()
