"""Shared by the dashboard tests: a journal of synthetic traffic written through the real writer (to a SQLite file
or a PostgreSQL schema), the app over it, and figures derived from the events in Python. (Not a conftest.py:
tests/conftest.py owns that module name.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from tokenid import Journal
from tokenid.dashboard.sample import ReadyRows, sample_rows
from tokenid.journal.postgres import psycopg_sql

NOW = datetime(2026, 10, 4, 12, 30, tzinfo=timezone.utc)  # the sample traffic runs 2026-10-01 00:00 .. 10-04 00:00
COUNT = 2400


@dataclass
class Traffic:
    path: Path | str  # a SQLite file or a postgresql:// URL
    journal: Journal
    events: list[dict[str, Any]]

    def where(self, pred: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        return [e for e in self.events if pred(e)]


def cost(events: list[dict[str, Any]]) -> Decimal:
    return sum((Decimal(e["cost_usd"]) for e in events if e["cost_usd"] is not None), Decimal(0))


def model_of(e: dict[str, Any]) -> str:
    return str(e["canonical_model"] or e["model_served"] or e["model_requested"] or "")


def tokens(events: list[dict[str, Any]]) -> int:
    return sum((e["input_tokens"] or 0) + (e["output_tokens"] or 0) for e in events)


def sql(path: Path | str, statement: str, params: tuple[Any, ...] = ()) -> None:
    """Run one write statement (``?`` placeholders) on the journal behind the writer's back, as other tools do."""
    if isinstance(path, str):
        with psycopg.connect(path, autocommit=True) as pg:
            pg.execute(psycopg_sql(statement), params)
        return
    conn = sqlite3.connect(path)
    conn.execute(statement, params)
    conn.commit()
    conn.close()


def build_traffic(path: Path | str) -> Traffic:
    """COUNT synthetic calls over three days, through the writer in batches and one fan-out item."""
    journal = Journal(path, batch_size=700)
    rows = list(sample_rows(COUNT, hours=72, sessions=30, seed=42))
    for row in rows[:2000]:
        journal.record(ReadyRows(row))
    journal.record(ReadyRows(rows[2000:]))
    journal.flush()
    return Traffic(path, journal, journal.events())
