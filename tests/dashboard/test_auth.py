"""Access: localhost-only without a token, 401 without the token when one is set, and never a journal write."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashtraffic import NOW, Traffic, build_traffic
from starlette.testclient import TestClient

from tokenid import ConfigError, JournalError
from tokenid.dashboard import access_for, create_app, prepare_journal
from tokenid.dashboard.auth import COOKIE, TOKEN_ENV, is_loopback
from tokenid.dashboard.queries import Reader
from tokenid.dashboard.sample import legacy_journal, sample_rows
from tokenid.journal.schema import SCHEMA_VERSION


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traffic]:
    t = build_traffic(tmp_path_factory.mktemp("dash") / "journal.db")
    yield t
    t.journal.close()


TOKEN = "s3cret-token-for-tests-0123456789"


@pytest.fixture
def guarded(traffic: Traffic) -> TestClient:
    return TestClient(create_app(traffic.path, token=TOKEN, now=lambda: NOW), base_url="http://10.1.2.3:8050",
                      follow_redirects=False)


def test_without_the_token_every_request_is_a_401(guarded: TestClient) -> None:
    for path in ("/", "/api/summary", "/api/openapi.json", "/static/app.js", "/api/sessions/x"):
        response = guarded.get(path)
        assert response.status_code == 401, path
        assert "access token" in response.json()["error"] and TOKEN not in response.text
    assert guarded.get("/api/summary", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert guarded.get("/api/summary", params={"token": TOKEN[:-1]}).status_code == 401
    guarded.cookies.set(COOKIE, "nope")
    assert guarded.get("/").status_code == 401


def test_bearer_query_and_cookie_tokens_are_accepted(guarded: TestClient) -> None:
    assert guarded.get("/api/summary", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert guarded.get("/api/summary", params={"token": TOKEN, "range": "all"}).status_code == 200
    visit = guarded.get("/", params={"token": TOKEN, "x": "1"})
    assert visit.status_code == 303 and visit.headers["location"] == "/?x=1"  # the token leaves the address bar
    assert "HttpOnly" in visit.headers["set-cookie"] and "SameSite=Strict" in visit.headers["set-cookie"]
    fresh = TestClient(guarded.app, base_url="http://10.1.2.3:8050", cookies={COOKIE: TOKEN})
    assert fresh.get("/").status_code == 200


def test_the_token_never_reaches_the_log(guarded: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        guarded.get("/api/summary", params={"token": TOKEN})
        guarded.get("/", params={"token": TOKEN})
        guarded.get("/api/calls", params={"token": TOKEN, "kind": "bad"})
    server = [r for r in caplog.records if r.name.startswith(("tokenid", "uvicorn", "starlette"))]
    assert any("/api/summary" in r.getMessage() for r in server)
    assert all(TOKEN not in r.getMessage() for r in server)  # (the test's own HTTP client logs its URLs)


def test_without_a_token_only_localhost_hosts_are_served(traffic: Traffic) -> None:
    app = create_app(traffic.path, now=lambda: NOW)
    for host, status in (("127.0.0.1:8050", 200), ("localhost:8050", 200), ("[::1]:8050", 200),
                         ("evil.example:8050", 403), ("192.168.1.5", 403)):
        response = TestClient(app, base_url=f"http://{host}").get("/api/meta")
        assert response.status_code == status, host


def test_access_rules_for_each_bind_address() -> None:
    assert access_for("127.0.0.1", {}).token is None
    assert access_for("::1", {}).token is None and is_loopback("localhost")
    generated = access_for("0.0.0.0", {})
    assert generated.generated and generated.token and len(generated.token) >= 24
    assert generated.url("0.0.0.0", 8050).endswith(f"?token={generated.token}")
    assert access_for("0.0.0.0", {}).token != generated.token
    chosen = access_for("10.0.0.1", {TOKEN_ENV: TOKEN})
    assert chosen.token == TOKEN and not chosen.generated and TOKEN not in chosen.url("10.0.0.1", 80)
    assert access_for("127.0.0.1", {TOKEN_ENV: TOKEN}).token == TOKEN  # set: required even locally
    with pytest.raises(ConfigError, match="at least 16"):
        access_for("0.0.0.0", {TOKEN_ENV: "short"})


def _digest(path: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))).hexdigest()


def test_the_dashboard_never_writes_to_the_journal(traffic: Traffic) -> None:
    traffic.journal.flush()
    conn = sqlite3.connect(traffic.path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = _digest(traffic.path)
    client = TestClient(create_app(traffic.path, now=lambda: NOW), base_url="http://127.0.0.1")
    for path in ("/api/meta", "/api/summary", "/api/timeseries", "/api/breakdown", "/api/sessions",
                 "/api/sessions/sess-00001", "/api/calls", "/api/enforcement", "/api/budgets", "/api/reconciliation"):
        assert client.get(path, params={} if path in ("/api/meta", "/api/budgets") or "sess-" in path
                          else {"range": "all"}).status_code == 200
    assert _digest(traffic.path) == before
    with pytest.raises(JournalError, match=r"readonly|read-only|query_only|attempt to write"):
        Reader(traffic.path).rows("DELETE FROM events")


def test_an_older_journal_is_upgraded_once_before_serving(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    legacy_journal(path, list(sample_rows(50)))
    with pytest.raises(JournalError, match="needs v4"):
        Reader(path)
    said: list[str] = []
    prepare_journal(path, said.append)
    assert said and "v3 to v" in said[0]
    client = TestClient(create_app(path), base_url="http://127.0.0.1")
    assert client.get("/api/summary", params={"range": "all"}).json()["totals"]["calls"] == 50
    prepare_journal(path, said.append)
    assert len(said) == 1  # already current: nothing to do
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with pytest.raises(JournalError, match="no journal"):
        prepare_journal(tmp_path / "missing.db")
