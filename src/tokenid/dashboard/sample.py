"""Synthetic journal rows: realistic traffic for the dashboard's benchmark, tests and screenshots.

Deterministic for a seed. Costs are integer nano-dollars from fixed per-token prices, so tests can
derive every expected figure from the rows they generated.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..journal.schema import COLUMNS, MIGRATIONS

__all__ = ["PRICES_NANOUSD", "ReadyRows", "legacy_journal", "sample_rows"]

# deployment -> (provider, model, nano-dollars per input token, per output token)
PRICES_NANOUSD: dict[str, tuple[str, str, int, int]] = {
    "gpt-4o": ("azure_openai", "gpt-4o-2024-08-06", 2500, 10000),
    "gpt-4o-mini": ("azure_openai", "gpt-4o-mini-2024-07-18", 150, 600),
    "o3-mini": ("azure_openai", "o3-mini-2025-01-31", 1100, 4400),
    "": ("openai", "gpt-4.1-2025-04-14", 2000, 8000),
}
_TEAMS = ("support", "search", "analytics", "growth")
_FEATURES = ("chat", "summaries", "triage", "rag")
_INDEX = {name: i for i, name in enumerate(COLUMNS)}
_NANO = Decimal("1e-9")


def sample_rows(count: int, *, seed: int = 7, start: datetime | None = None, hours: int = 24 * 30,
                sessions: int = 1000, id_prefix: str = "s") -> Iterator[tuple[Any, ...]]:
    """``count`` journal rows spread over ``hours`` from ``start`` across ``sessions`` sessions, in time order.

    Sessions are short-lived, like conversations or jobs: session n is active around the n-th slice of the
    time span, interleaved with a few neighbours.
    """
    rnd = random.Random(seed)
    begin = start or datetime(2026, 10, 1, tzinfo=timezone.utc)
    step = hours * 3600 / max(count, 1)
    deployments = list(PRICES_NANOUSD)
    weights = [2, 6, 1, 1]
    template: list[Any] = [None] * len(COLUMNS)
    for i in range(count):
        at = begin + timedelta(seconds=i * step)
        deployment = rnd.choices(deployments, weights)[0]
        provider, model, p_in, p_out = PRICES_NANOUSD[deployment]
        roll = rnd.random()
        status = "ok" if roll < 0.94 else "error" if roll < 0.97 else "blocked" if roll < 0.985 else "aborted"
        stream = rnd.random() < 0.4
        input_tokens = 0 if status == "blocked" else rnd.randint(20, 4000)
        output_tokens = 0 if status in ("blocked", "error") else rnd.randint(5, 900)
        cached = input_tokens // 2 if rnd.random() < 0.2 else 0
        nanos = input_tokens * p_in + output_tokens * p_out
        latency = None if status == "blocked" else round(rnd.uniform(120, 4000), 1)
        enforcement: list[dict[str, Any]] | None = None
        if status == "blocked":
            enforcement = [{"rule": "team-daily", "type": "budget", "action": "block",
                            "reason": "budget team-daily exceeded"}]
        elif rnd.random() < 0.02:
            enforcement = [{"rule": "no-4o", "type": "model_ceiling", "action": "rewrite", "from": "gpt-4o",
                            "to": "gpt-4o-mini", "reason": "gpt-4o is above the ceiling"}]
        near = i * sessions // max(count, 1) + rnd.randint(-2, 2)
        session = f"sess-{min(max(near, 0), sessions - 1):05d}"
        row = list(template)
        values = {
            "id": f"{id_prefix}{int(at.timestamp() * 1e6):016x}{i:012x}",
            "started_at": at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "ended_at": at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "latency_ms": latency,
            "ttft_ms": round(latency * 0.3, 1) if stream and latency else None,
            "session_id": session,
            "tags": json.dumps({"team": _TEAMS[int(session[-2:]) % 4],
                                "feature": rnd.choice(_FEATURES)}),
            "provider": provider,
            "endpoint": "chat.completions",
            "deployment": deployment or None,
            "model_requested": model.rsplit("-", 3)[0],
            "model_served": model,
            "canonical_model": model,
            "input_tokens": input_tokens,
            "cached_input_tokens": cached,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
            "usage_source": "estimated" if status == "aborted" else "reported",
            "cost_usd": str(Decimal(nanos) * _NANO) if status != "blocked" else None,
            "cost_nanousd": nanos if status != "blocked" else None,
            "status": status,
            "http_status": {"ok": 200, "error": 429, "blocked": None, "aborted": 200}[status],
            "error_type": "RateLimitError" if status == "error" else None,
            "enforcement": json.dumps(enforcement) if enforcement else None,
            "stream": int(stream),
            "cache_hit": 0,
        }
        for name, value in values.items():
            row[_INDEX[name]] = value
        yield tuple(row)


class ReadyRows:
    """A journal item that is already a row, or a list of rows (a fan-out item): what the writer stores as is."""

    __slots__ = ("rows",)

    def __init__(self, rows: tuple[Any, ...] | list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def to_row(self) -> tuple[Any, ...] | list[tuple[Any, ...]]:
        return self.rows

    def fallback_row(self, error: BaseException) -> tuple[Any, ...]:
        raise error


def legacy_journal(path: Path, rows: list[tuple[Any, ...]], version: int = 3) -> None:
    """A journal file at an older schema ``version`` holding ``rows``, as an older TokenID left it."""
    conn = sqlite3.connect(path)
    try:
        for step in MIGRATIONS[:version]:
            for statement in step:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {int(version)}")
        conn.executemany(f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                         rows)
        conn.commit()
    finally:
        conn.close()
