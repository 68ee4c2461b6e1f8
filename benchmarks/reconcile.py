"""Reconciling 1,000,000-row Cost Management exports with a journal: read, match, store, re-cost.

Run:  .venv/bin/python benchmarks/reconcile.py [--rows 1000000] [--events 200000] [--formats ea,focus-1.2]
      [--no-parquet]
Target (issue #6): a 1,000,000-row export reconciled in under 30 s and under 500 MB RSS on this machine.

Exports come from the test suite's generator (tests/azure/export_gen.py: real meter names, the EXPORTS.md §6 traps,
about 16% other-service rows), written by one child process; a second child journals ``--events`` Azure calls on
the same accounts and days; a third runs :func:`tokenid.azure.reconcile.reconcile` and ``store_run`` (lines,
allocations, calibrated rates, re-costed calls), so that its peak RSS (``resource.getrusage``) is its own. It checks
that the Decimal sum of the reconciled invoice lines equals the generator's exactly.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

TARGET_SECONDS = 30.0
TARGET_RSS_MB = 500.0


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def read(path: str, expect: str, journal_path: str) -> None:
    """Child: reconcile one export with the journal and store the run, print figures as JSON."""
    from tokenid.azure.exports import read_export
    from tokenid.azure.reconcile import reconcile
    from tokenid.azure.reconcile_store import store_run
    from tokenid.journal import Journal

    journal = Journal(journal_path)
    before = _rss_mb()
    started = time.perf_counter()
    lines, summary = read_export(path)
    result = reconcile(lines, journal, read=summary, source=path)
    matched = time.perf_counter()
    recosted = store_run(journal, result)
    elapsed = time.perf_counter() - started
    total = sum((ln.invoice_cost for ln in result.lines if ln.invoice_cost is not None), Decimal(0))
    print(json.dumps({
        "rows_read": summary.rows_read, "rows_kept": summary.rows_kept, "cells": len(result.lines),
        "by_status": result.counts(), "recosted": recosted, "match_seconds": matched - started,
        "issues": summary.rows_malformed + summary.files_malformed, "elapsed": elapsed,
        "rss_before_mb": before, "peak_rss_mb": _rss_mb(), "exact": total == Decimal(expect),
    }))


def journal_events(path: str, events: int) -> None:
    """Child: journal ``events`` Azure calls spread over the generator's accounts and days (not timed)."""
    import random
    from datetime import timedelta

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "azure"))
    import export_gen as gen

    from tokenid.call import row_tuple
    from tokenid.journal import Journal

    models = [("mini", "gpt-4o-mini-2024-07-18", "0.00000015", "0.0000006"),
              ("4o-0513", "gpt-4o-2024-05-13", "0.000005", "0.000015"),
              ("embed", "text-embedding-3-small", "0.00000002", "0")]
    rng = random.Random(3)
    journal = Journal(path)
    rows = []
    for n in range(events):
        account = gen.ACCOUNTS[n % len(gen.ACCOUNTS)]
        day = gen.date(2025, 3, 1) + timedelta(days=n % 28)
        short, canonical, rate_in, rate_out = models[n % len(models)]
        inp, out = rng.randint(20, 4000), 0 if short == "embed" else rng.randint(1, 800)
        cost = Decimal(inp) * Decimal(rate_in) + Decimal(out) * Decimal(rate_out)
        rows.append(row_tuple({
            "id": f"{n:032x}", "started_at": f"{day.isoformat()}T{n % 24:02d}:00:00.{n % 999999:06d}Z",
            "session_id": f"s{n % 500}", "provider": "azure_openai", "endpoint": "chat.completions",
            "resource": f"{account.name.lower()}.openai.azure.com", "region": account.region_name,
            "deployment": f"dep-{short}", "model_served": canonical, "canonical_model": canonical,
            "deployment_type": "global", "input_tokens": inp, "output_tokens": out, "cached_input_tokens": 0,
            "usage_source": "reported", "status": "ok", "cost_usd": format(cost, "f"),
            "cost_nanousd": int(cost * 1_000_000_000)}))
        if len(rows) == 50_000:
            journal.store.insert(rows)
            rows = []
    if rows:
        journal.store.insert(rows)
    journal.close()
    print(json.dumps({"events": events}))


def generate(fmt: str, container: str, path: str, rows: int) -> None:
    """Child: write one export with the test suite's generator, print the expected sum as JSON."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "azure"))
    import export_gen as gen

    started = time.perf_counter()
    dataset = gen.dataset_of(fmt, "actual")  # exactly `rows` rows in the file: Actual cost has no unused-RI rows
    made = itertools.islice((r for r in gen.make_rows(2 * rows, seed=1) if r.in_dataset(dataset)), rows)
    written = (gen.write_parquet(Path(path), made, fmt) if container == "parquet"
               else gen.write_csv(Path(path), made, fmt, track_lines=False))
    print(json.dumps({"openai_cost": str(written.openai_cost), "seconds": time.perf_counter() - started}))


def _child(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child {' '.join(args[:3])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=200_000, help="journaled Azure calls to reconcile against")
    parser.add_argument("--formats", default="ea,focus-1.2", help="CSV formats to write (export_gen.FORMATS)")
    parser.add_argument("--no-parquet", action="store_true", help="skip the FOCUS 1.2 Parquet export")
    parser.add_argument("--generate", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--read", help=argparse.SUPPRESS)
    parser.add_argument("--expect", help=argparse.SUPPRESS)
    parser.add_argument("--journal", help=argparse.SUPPRESS)
    parser.add_argument("--make-journal", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generate(*args.generate, rows=args.rows)
        return
    if args.make_journal:
        journal_events(args.make_journal, args.events)
        return
    if args.read:
        read(args.read, args.expect, args.journal)
        return

    jobs = [(fmt, "csv") for fmt in args.formats.split(",") if fmt]
    if not args.no_parquet:
        if importlib.util.find_spec("pyarrow") is None:
            print("pyarrow not installed: Parquet skipped (pip install 'tokenid[azure]')")
        else:
            jobs.append(("focus-1.2", "parquet"))
    # This process stays small and writes nothing itself: a child's getrusage peak starts from its parent's
    # (Linux carries ru_maxrss across fork and exec), so generating here would inflate the readers' figures.
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, container in jobs:
            path = str(Path(tmp) / f"{fmt}.{container}")
            made = _child("--rows", str(args.rows), "--generate", fmt, container, path)
            journal = str(Path(tmp) / f"{fmt}-{container}.db")
            _child("--events", str(args.events), "--make-journal", journal)
            result = _child("--read", path, "--expect", made["openai_cost"], "--journal", journal)
            size = Path(path).stat().st_size / 2**20
            ok = result["elapsed"] < TARGET_SECONDS and result["peak_rss_mb"] < TARGET_RSS_MB and result["exact"]
            rate = result["rows_read"] / result["elapsed"]
            statuses = ", ".join(f"{n:,} {s}" for s, n in result["by_status"].items() if n)
            print(f"{fmt:<10} {container:<7} {result['rows_read']:>9,} rows ({size:,.0f} MiB, generated in "
                  f"{made['seconds']:.0f} s) against {args.events:,} journaled calls: reconciled in "
                  f"{result['elapsed']:5.1f} s (read+match {result['match_seconds']:.1f} s, store+re-cost "
                  f"{result['elapsed'] - result['match_seconds']:.1f} s) = {rate:>7,.0f} rows/s, "
                  f"peak RSS {result['peak_rss_mb']:.0f} MB (interpreter + imports "
                  f"{result['rss_before_mb']:.0f} MB), {result['rows_kept']:,} kept into {result['cells']:,} "
                  f"lines ({statuses}), {result['recosted']:,} calls re-costed, Decimal sum exact: "
                  f"{'yes' if result['exact'] else 'NO'}, issues: {result['issues']}  "
                  f"[{'OK' if ok else 'MISSED'}: target < {TARGET_SECONDS:.0f} s, < {TARGET_RSS_MB:.0f} MB]",
                  flush=True)


if __name__ == "__main__":
    main()
