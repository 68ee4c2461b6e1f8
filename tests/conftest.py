"""Shared fixtures: one real simulator per test run, a fresh SQLite journal per test."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tokenid import (
    AsyncJournaledAzureOpenAI,
    AsyncJournaledOpenAI,
    Journal,
    JournaledAzureOpenAI,
    JournaledOpenAI,
)
from tokenid.journal.postgres import pg_statement
from tokenid.journal.schema import COLUMNS, MIGRATIONS
from tokenid.simulator import Simulator

API_KEY = "sk-test-SECRET-0123456789abcdef"
AZURE_VERSION = "2024-10-21"
DEPLOYMENTS: dict[str, Any] = {
    "gpt-4o": {"model": "gpt-4o", "version": "2024-08-06", "type": "global"},
    "gpt-4o-mini": {"model": "gpt-4o-mini", "version": "2024-07-18", "type": "global"},
    "text-embedding-3-small": {"model": "text-embedding-3-small", "type": "global"},
}


PG_SERVER = "postgresql://postgres@127.0.0.1:5432/test"


@contextlib.contextmanager
def pg_schema() -> Iterator[str]:
    """A journal URL whose tables live in a fresh schema of the machine's PostgreSQL test database (dropped after)."""
    schema = f"tokenid_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_SERVER, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def legacy_pg_journal(url: str, rows: list[tuple[Any, ...]], version: int = 3) -> None:
    """A PostgreSQL journal without the rollups, holding ``rows``: at v3 as TokenID left it before them, or at v4
    as the first PostgreSQL store left it (it recorded v4 and skipped them)."""
    with psycopg.connect(url) as pg:
        for step in MIGRATIONS[:3]:
            for statement in step:
                pg.execute(pg_statement(statement))
        pg.execute("CREATE TABLE tokenid_schema (version BIGINT NOT NULL)")
        pg.execute("INSERT INTO tokenid_schema (version) VALUES (%s)", (version,))
        pg.cursor().executemany(f"INSERT INTO events ({', '.join(COLUMNS)}) "
                                f"VALUES ({', '.join(['%s'] * len(COLUMNS))})", rows)


@pytest.fixture(scope="session")
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "journal.db")
    yield j
    j.close()


def make_client(kind: str, sim: Simulator, journal: Journal, **kw: Any) -> Any:
    """kind: azure | openai | async_azure | async_openai."""
    common: dict[str, Any] = {"api_key": API_KEY, "journal": journal, "max_retries": 0, **kw}
    if kind.endswith("azure"):
        common.setdefault("api_version", AZURE_VERSION)
        common.setdefault("deployments", DEPLOYMENTS)
        cls = AsyncJournaledAzureOpenAI if kind.startswith("async") else JournaledAzureOpenAI
        return cls(azure_endpoint=sim.azure_endpoint, **common)
    cls = AsyncJournaledOpenAI if kind.startswith("async") else JournaledOpenAI
    return cls(base_url=sim.openai_base_url, **common)
