"""``tokenid dashboard`` as a user runs it (a real process on a real port), and ``tokenid demo``'s way into it."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import psycopg
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from tokenid import Journal
from tokenid.cli import app
from tokenid.dashboard import create_app
from tokenid.dashboard.sample import ReadyRows, sample_rows

from conftest import pg_schema

runner = CliRunner()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    path = tmp_path / "j.db"
    journal = Journal(path)
    journal.record(ReadyRows(list(sample_rows(120, seed=4))))
    journal.close()
    return path


@contextlib.contextmanager
def _serve(args: list[str], env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen([sys.executable, "-m", "tokenid", "dashboard", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200", **(env or {})})
    assert proc.stdout is not None
    first = ""
    deadline = time.monotonic() + 30
    while "Open " not in first and time.monotonic() < deadline:
        first += proc.stdout.readline()
    try:
        yield proc, first
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def _wait_ready(url: str, **kw: object) -> httpx2.Response:
    deadline = time.monotonic() + 20
    while True:
        try:
            return httpx2.get(url, timeout=2, **kw)  # type: ignore[arg-type]
        except httpx2.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_dashboard_serves_on_localhost_by_default(journal_path: Path) -> None:
    port = _port()
    with _serve(["--journal", str(journal_path), "--port", str(port)]) as (proc, out):
        assert f"http://127.0.0.1:{port}/" in out and "?token=" not in out
        meta = _wait_ready(f"http://127.0.0.1:{port}/api/meta")
        assert meta.status_code == 200 and meta.json()["calls"] == 120
        assert proc.poll() is None


def test_dashboard_beyond_loopback_prints_a_token_and_requires_it(journal_path: Path) -> None:
    port = _port()
    with _serve(["--journal", str(journal_path), "--port", str(port), "--host", "0.0.0.0"]) as (_, out):
        token = re.search(r"\?token=([\w-]+)", out)
        assert token is not None, out
        assert _wait_ready(f"http://127.0.0.1:{port}/api/meta").status_code == 401
        ok = httpx2.get(f"http://127.0.0.1:{port}/api/meta", headers={"authorization": f"Bearer {token.group(1)}"})
        assert ok.status_code == 200


def test_dashboard_token_from_the_environment_is_not_printed(journal_path: Path) -> None:
    port, secret = _port(), "env-chosen-token-0123456789"
    with _serve(["--journal", str(journal_path), "--port", str(port), "--host", "0.0.0.0"],
                         env={"TOKENID_DASHBOARD_TOKEN": secret}) as (_, out):
        assert secret not in out and "TOKENID_DASHBOARD_TOKEN" in out
        assert _wait_ready(f"http://127.0.0.1:{port}/api/meta", params={"token": secret}).status_code == 200


@pytest.mark.parametrize(("args", "message"), [
    (["--journal", "/nonexistent/dir/j.db"], "no journal at"),
    (["--journal", "postgresql://postgres@127.0.0.1:1/tokenid"], "cannot open the journal"),
    (["--journal", "EMPTY_SCHEMA"], "no journal at"),  # a database without a journal: not created by the dashboard
])
def test_dashboard_refuses_what_it_cannot_serve(args: list[str], message: str) -> None:
    with pg_schema() as url:
        result = runner.invoke(app, ["dashboard", *(url if a == "EMPTY_SCHEMA" else a for a in args)])
        assert result.exit_code != 0 and message in result.output
        with psycopg.connect(url) as conn:  # nothing was created there
            assert conn.execute("SELECT to_regclass('tokenid_schema')").fetchone() == (None,)


def test_dashboard_serves_a_postgresql_journal(tmp_path: Path) -> None:
    with pg_schema() as url:
        journal = Journal(url)
        journal.record(ReadyRows(list(sample_rows(90, seed=4))))
        journal.close()
        port = _port()
        with _serve(["--journal", url, "--port", str(port)]) as (proc, out):
            assert "TokenID dashboard on postgresql://postgres@127.0.0.1:5432/test" in out
            meta = _wait_ready(f"http://127.0.0.1:{port}/api/meta")
            assert meta.status_code == 200 and meta.json()["calls"] == 90
            assert proc.poll() is None


def test_demo_ends_by_opening_the_dashboard_on_its_journal(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    result = runner.invoke(app, ["demo", "--journal", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith(f"tokenid dashboard --journal {path}")
    events = Journal(path).events()
    with TestClient(create_app(path), base_url="http://127.0.0.1") as client:
        totals = client.get("/api/summary", params={"range": "all"}).json()["totals"]
        assert totals["calls"] == len(events) and totals["blocked"] == 1 and totals["rewritten"] == 1
        budgets = client.get("/api/budgets").json()["rows"]
        assert [b["budget"] for b in budgets] == ["demo-session-tokens"]
        sessions = {r["session_id"] for r in client.get("/api/sessions", params={"range": "all"}).json()["rows"]}
        assert sessions == {"support-bot", "nightly-summaries", "guarded-bot"}
