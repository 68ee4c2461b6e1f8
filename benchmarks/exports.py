"""Reading Cost Management exports: 1,000,000-row exports, streamed and aggregated per (account, day, meter).

Run:  .venv/bin/python benchmarks/exports.py [--rows 1000000] [--formats ea,focus-1.2] [--no-parquet]
Target (issue #6): a 1,000,000-row export in under 30 s and under 500 MB RSS on this machine.

Exports come from the test suite's generator (tests/azure/export_gen.py: real meter names, the EXPORTS.md §6 traps,
about 16% other-service rows), written by one child process and read by another, so that the reader's peak RSS
(``resource.getrusage``) is its own. The reading child checks that the Decimal sum of the kept costs equals the
generator's exactly.
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


def read(path: str, expect: str) -> None:
    """Child: read one export, aggregate like the reconciler will, print figures as JSON."""
    from tokenid.azure.exports import read_export

    before = _rss_mb()
    started = time.perf_counter()
    lines, summary = read_export(path)
    cells: dict[tuple[str, object, str], list[Decimal]] = {}
    total = Decimal(0)
    for line in lines:
        cell = cells.get((line.account_id, line.day, line.meter_name))
        if cell is None:
            cell = cells[(line.account_id, line.day, line.meter_name)] = [Decimal(0), Decimal(0)]
        cell[0] += line.quantity
        cell[1] += line.cost
        total += line.cost
    elapsed = time.perf_counter() - started
    print(json.dumps({
        "rows_read": summary.rows_read, "rows_kept": summary.rows_kept, "cells": len(cells),
        "issues": summary.rows_malformed + summary.files_malformed, "elapsed": elapsed,
        "rss_before_mb": before, "peak_rss_mb": _rss_mb(), "exact": total == Decimal(expect),
    }))


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
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--formats", default="ea,focus-1.2", help="CSV formats to write (export_gen.FORMATS)")
    parser.add_argument("--no-parquet", action="store_true", help="skip the FOCUS 1.2 Parquet export")
    parser.add_argument("--generate", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--read", help=argparse.SUPPRESS)
    parser.add_argument("--expect", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generate(*args.generate, rows=args.rows)
        return
    if args.read:
        read(args.read, args.expect)
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
            result = _child("--read", path, "--expect", made["openai_cost"])
            size = Path(path).stat().st_size / 2**20
            ok = result["elapsed"] < TARGET_SECONDS and result["peak_rss_mb"] < TARGET_RSS_MB and result["exact"]
            rate = result["rows_read"] / result["elapsed"]
            print(f"{fmt:<10} {container:<7} {result['rows_read']:>9,} rows ({size:,.0f} MiB, generated in "
                  f"{made['seconds']:.0f} s): read in {result['elapsed']:5.1f} s = {rate:>7,.0f} rows/s, "
                  f"peak RSS {result['peak_rss_mb']:.0f} MB (interpreter + imports "
                  f"{result['rss_before_mb']:.0f} MB), {result['rows_kept']:,} kept into {result['cells']:,} "
                  f"account×day×meter cells, Decimal sum exact: {'yes' if result['exact'] else 'NO'}, "
                  f"issues: {result['issues']}  [{'OK' if ok else 'MISSED'}: target < {TARGET_SECONDS:.0f} s, "
                  f"< {TARGET_RSS_MB:.0f} MB]", flush=True)


if __name__ == "__main__":
    main()
