"""Retries: the server's wait honoured (measured), exponential backoff with jitter otherwise."""

from __future__ import annotations

import email.utils
import random
import time
from pathlib import Path

import httpx2
import pytest
from regions import MSG, azure_target, events, fault, routed
from regions import regions as regions_fixture

from tokenid import AsyncJournaledAzureOpenAI, Journal
from tokenid.routing import RetryPolicy, backoff, server_wait
from tokenid.simulator import Simulator

regions = regions_fixture


def test_retry_after_ms_is_honoured(regions: dict[str, Simulator], tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    client = routed(journal, {"targets": [azure_target(
        "sweden", regions["swedencentral"], headers=fault("429", times=1, **{"x-sim-retry-after-ms": "600"}))],
        "retry": {"attempts": 3, "initial_delay_s": 0.001}})
    started = time.perf_counter()
    client.chat.completions.create(model="gpt-4o", messages=MSG)
    elapsed = time.perf_counter() - started
    client.close()
    assert elapsed >= 0.6  # backoff alone would have waited about a millisecond
    assert elapsed < 0.6 + 2.5  # generous for a loaded machine
    [row] = events(journal)
    assert row["attempts"] == 2 and row["status"] == "ok"
    first, second = row["route"]["attempts"]
    assert first["outcome"] == "status 429" and first["wait_s"] == 0.6 and first["wait_from"] == "retry-after-ms"
    assert second["at_ms"] - first["at_ms"] >= 600


async def test_async_sleeps_without_blocking_the_loop(regions: dict[str, Simulator], tmp_path: Path) -> None:
    import asyncio

    journal = Journal(tmp_path / "j.db")
    client = routed(journal, {"targets": [azure_target(
        "sweden", regions["swedencentral"], headers=fault("429", times=1, **{"x-sim-retry-after-ms": "500"}))],
        "retry": {"attempts": 2}}, cls=AsyncJournaledAzureOpenAI)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    await client.chat.completions.create(model="gpt-4o", messages=MSG)
    elapsed = time.perf_counter() - started
    task.cancel()
    await client.close()
    assert 0.5 <= elapsed < 3.0
    assert ticks >= 4  # the loop kept running during the wait


def test_a_wait_longer_than_max_retry_after_falls_over_at_once(regions: dict[str, Simulator], tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    client = routed(journal, {"strategy": "fallback", "targets": [
        azure_target("sweden", regions["swedencentral"], headers=fault("429", **{"x-sim-retry-after-ms": "20000"})),
        azure_target("eastus2", regions["eastus2"]),
    ], "retry": {"attempts": 3, "max_retry_after_s": 5}})
    started = time.perf_counter()
    client.chat.completions.create(model="gpt-4o", messages=MSG)
    assert time.perf_counter() - started < 3.0
    client.close()
    [row] = events(journal)
    assert row["route"]["attempts"][0]["next"] == "not retried: retry-after-ms asks 20.0s > max_retry_after_s"
    assert row["route"]["served_by"] == "eastus2" and row["attempts"] == 2


def test_retries_default_to_the_clients_max_retries(regions: dict[str, Simulator], tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    client = routed(journal, {"targets": [azure_target("sweden", regions["swedencentral"], headers=fault("503"))],
                              "retry": {"initial_delay_s": 0.001, "max_delay_s": 0.002}, "breaker": False},
                    max_retries=3)
    with pytest.raises(Exception, match="overloaded"):
        client.chat.completions.create(model="gpt-4o", messages=MSG)
    client.close()
    [row] = events(journal)
    assert row["attempts"] == 4
    assert [a.get("wait_from") for a in row["route"]["attempts"]] == ["backoff", "backoff", "backoff", None]


def test_server_wait_headers() -> None:
    h = httpx2.Headers
    assert server_wait(h({"retry-after-ms": "250", "retry-after": "1"})) == (0.25, "retry-after-ms")
    assert server_wait(h({"retry-after": "3"})) == (3.0, "retry-after")
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    seconds, source = server_wait(h({"retry-after": date}))  # type: ignore[misc]
    assert source == "retry-after" and 27 <= seconds <= 31
    assert server_wait(h({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1m30s",
                          "x-ratelimit-remaining-tokens": "10", "x-ratelimit-reset-tokens": "2s"})) == (
        90.0, "x-ratelimit-reset-requests")
    assert server_wait(h({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "250ms"})) == (
        0.25, "x-ratelimit-reset-tokens")
    assert server_wait(h({"x-ratelimit-reset-requests": "6ms", "x-ratelimit-reset-tokens": "1.5s"})) == (
        1.5, "x-ratelimit-reset-tokens")
    assert server_wait(h({"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "6ms"})) is None
    assert server_wait(h({"retry-after": "soon"})) is None
    assert server_wait(None) is None


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    policy = RetryPolicy(initial_delay_s=0.5, max_delay_s=8.0, jitter=0.25)
    rng = random.Random(1)
    for retry, base in enumerate([0.5, 1.0, 2.0, 4.0, 8.0, 8.0]):
        waits = [backoff(policy, retry, rng) for _ in range(500)]
        assert min(waits) >= base * 0.75 and max(waits) <= base
        assert max(waits) - min(waits) > base * 0.15  # jitter is really applied


def test_max_elapsed_stops_retries_and_fallbacks(regions: dict[str, Simulator], tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    client = routed(journal, {"strategy": "fallback", "breaker": False, "targets": [
        azure_target("sweden", regions["swedencentral"], headers=fault("slow", **{"x-sim-slow-seconds": "2"}),
                     timeout_s=0.4),
        azure_target("eastus2", regions["eastus2"]),
    ], "retry": {"attempts": 5, "initial_delay_s": 0.05, "max_elapsed_s": 0.6}})
    started = time.perf_counter()
    with pytest.raises(Exception, match="timed out"):
        client.chat.completions.create(model="gpt-4o", messages=MSG)
    elapsed = time.perf_counter() - started
    client.close()
    assert elapsed < 2.5  # two timed-out sends at most, never the 5 x 0.4 s of retries, nor a fallback
    [row] = events(journal)
    attempts = row["route"]["attempts"]
    assert 1 <= len(attempts) <= 2 and {a["target"] for a in attempts} == {"sweden"}
    assert attempts[-1]["next"] == "not retried: max_elapsed_s reached"
    assert row["route"]["fallbacks"] == [{"group": "routing", "from": "sweden", "to": "eastus2", "reason": "timeout",
                                          "not_taken": "max_elapsed_s reached"}]
