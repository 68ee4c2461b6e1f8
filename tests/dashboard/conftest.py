"""A journal of synthetic traffic, written through the real writer, and the dashboard app over it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tokenid import Journal
from tokenid.dashboard import create_app
from tokenid.dashboard.sample import ReadyRows, sample_rows

NOW = datetime(2026, 10, 4, 12, 30, tzinfo=timezone.utc)  # the sample traffic runs 2026-10-01 00:00 .. 10-04 00:00
COUNT = 2400


@dataclass
class Traffic:
    path: Path
    journal: Journal
    events: list[dict[str, Any]]

    def where(self, pred: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        return [e for e in self.events if pred(e)]

    def reload(self) -> None:
        self.journal.flush()
        self.events = self.journal.events()


def cost(events: list[dict[str, Any]]) -> Decimal:
    return sum((Decimal(e["cost_usd"]) for e in events if e["cost_usd"] is not None), Decimal(0))


def model_of(e: dict[str, Any]) -> str:
    return str(e["canonical_model"] or e["model_served"] or e["model_requested"] or "")


def tokens(events: list[dict[str, Any]]) -> int:
    return sum((e["input_tokens"] or 0) + (e["output_tokens"] or 0) for e in events)


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traffic]:
    path = tmp_path_factory.mktemp("dash") / "journal.db"
    journal = Journal(path, batch_size=700)
    rows = list(sample_rows(COUNT, hours=72, sessions=30, seed=42))
    for row in rows[:2000]:
        journal.record(ReadyRows(row))
    journal.record(ReadyRows(rows[2000:]))  # a fan-out item
    journal.flush()
    t = Traffic(path, journal, journal.events())
    yield t
    journal.close()


@pytest.fixture(scope="module")
def client(traffic: Traffic) -> Iterator[TestClient]:
    app = create_app(traffic.path, now=lambda: NOW)
    with TestClient(app, base_url="http://127.0.0.1:8050") as c:
        yield c


def sql(path: Path, statement: str, params: tuple[Any, ...] = ()) -> None:
    conn = sqlite3.connect(path)
    conn.execute(statement, params)
    conn.commit()
    conn.close()
