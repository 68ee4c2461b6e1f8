"""Circuit breakers: open after N failures, skip the target, half-open probe after the cooldown."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from regions import MSG, azure_target, events, fault, routed
from regions import regions as regions_fixture

from tokenid import Journal, NoHealthyTarget
from tokenid.routing import BreakerPolicy, CircuitBreaker
from tokenid.simulator import Simulator

regions = regions_fixture


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_transitions(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    breaker = CircuitBreaker("t", BreakerPolicy(failures=3, cooldown_s=10), clock=clock)
    assert breaker.state == "closed"
    breaker.failure("status 503")
    breaker.failure("status 503")
    breaker.success()  # a success resets the count
    for _ in range(2):
        breaker.failure("status 503")
    assert breaker.state == "closed" and breaker.allow()
    breaker.failure("status 503")
    assert breaker.state == "open" and not breaker.allow()
    assert breaker.retry_in() == 10
    clock.now += 9.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.state == "half_open"
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one at a time
    breaker.failure("timeout")
    assert breaker.state == "open" and breaker.retry_in() == 10
    clock.now += 10
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.allow() and breaker.allow()
    assert [t.state for t in breaker.transitions] == ["open", "half_open", "open", "half_open", "closed"]
    assert breaker.transitions[0].reason == "3 failures in a row, last: status 503"
    assert breaker.transitions[2].reason == "probe failed: timeout"
    opened = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [r.getMessage() for r in opened] == [
        "tokenid: circuit breaker of routing target 't' is open (3 failures in a row, last: status 503)",
        "tokenid: circuit breaker of routing target 't' is open (probe failed: timeout)"]


def test_breaker_through_the_client(regions: dict[str, Simulator], tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    # sweden fails its first 3 requests, then recovers
    client = routed(journal, {"strategy": "fallback", "targets": [
        azure_target("sweden", regions["swedencentral"], headers=fault("503", times=3)),
        azure_target("eastus2", regions["eastus2"]),
    ], "breaker": {"failures": 2, "cooldown_s": 0.5}, "retry": {"attempts": 1}})
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o", messages=MSG)
    router = client._tokenid.router
    assert router.breakers["sweden"].state == "open"
    time.sleep(0.6)
    client.chat.completions.create(model="gpt-4o", messages=MSG)  # the probe: fails (3rd failure), re-opens
    assert router.breakers["sweden"].state == "open"
    time.sleep(0.6)
    client.chat.completions.create(model="gpt-4o", messages=MSG)  # the probe succeeds: closed
    assert router.breakers["sweden"].state == "closed"
    client.close()
    rows = events(journal)
    routes = [[(a["target"], a.get("outcome") or a.get("skipped"), a.get("breaker")) for a in r["route"]["attempts"]]
              for r in rows]
    assert routes == [
        [("sweden", "status 503", "closed"), ("eastus2", "ok", "closed")],
        [("sweden", "status 503", "open"), ("eastus2", "ok", "closed")],
        [("eastus2", "ok", "closed")] if routes[2][0][0] == "eastus2" else [("sweden", "breaker open", None),
                                                                            ("eastus2", "ok", "closed")],
        [("sweden", "status 503", "open"), ("eastus2", "ok", "closed")],
        [("sweden", "ok", "closed")],
    ]
    assert all(r["status"] == "ok" for r in rows)
    assert [t.state for t in router.breakers["sweden"].transitions] == [
        "open", "half_open", "open", "half_open", "closed"]
    health = {h["target"]: h for h in client.routing_health()}
    assert health["sweden"]["state"] == "closed" and health["sweden"]["retry_in_s"] == 0
    assert [t[1] for t in health["sweden"]["transitions"]] == ["open", "half_open", "open", "half_open", "closed"]
    assert health["sweden"]["transitions"][0][2] == "2 failures in a row, last: status 503"
    assert health["eastus2"] == {"target": "eastus2", "state": "closed", "retry_in_s": 0.0, "transitions": []}


def test_every_breaker_open_fails_fast(regions: dict[str, Simulator], tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    client = routed(journal, {"targets": [azure_target("sweden", regions["swedencentral"], headers=fault("503"))],
                              "breaker": {"failures": 1, "cooldown_s": 60}, "retry": {"attempts": 1}})
    with pytest.raises(Exception, match="overloaded"):
        client.chat.completions.create(model="gpt-4o", messages=MSG)
    started = time.perf_counter()
    opened = r"every target's circuit breaker is open \(sweden\); the first may be probed in (59|60)\.\ds"
    with pytest.raises(NoHealthyTarget, match=opened):
        client.chat.completions.create(model="gpt-4o", messages=MSG)
    assert time.perf_counter() - started < 0.5
    client.close()
    first, second = events(journal)
    assert first["status"] == "error" and first["http_status"] == 503
    assert second["status"] == "error" and second["error_type"] == "NoHealthyTarget" and second["attempts"] == 0
    assert second["route"]["attempts"] == [{**second["route"]["attempts"][0], "target": "sweden",
                                            "skipped": "breaker open"}]


def test_loadbalance_steers_around_an_open_breaker(regions: dict[str, Simulator], tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    client = routed(journal, {"strategy": "loadbalance", "targets": [
        azure_target("sweden", regions["swedencentral"], headers=fault("503")),
        azure_target("eastus2", regions["eastus2"]),
    ], "breaker": {"failures": 1, "cooldown_s": 60}, "retry": {"attempts": 1}})
    for _ in range(30):
        client.chat.completions.create(model="gpt-4o", messages=MSG)
    client.close()
    rows = events(journal)
    tried_sweden = [r for r in rows if any(a["target"] == "sweden" for a in r["route"]["attempts"])]
    assert len(tried_sweden) == 1  # once open, sweden is never picked first nor sent to again
    assert all(r["route"]["served_by"] == "eastus2" for r in rows)


def test_a_cancelled_probe_frees_the_probe_slot() -> None:
    from tokenid.routing import RouteLog, Router, Send, parse_routing

    config = parse_routing({"targets": [{"name": "t", "azure_endpoint": "https://t.openai.azure.com",
                                         "api_version": "2024-10-21", "auth": {"type": "api_key", "api_key": "k"}}],
                            "breaker": {"failures": 1, "cooldown_s": 10}}, azure_client=True)
    router = Router(config)
    clock = Clock()
    breaker = router.breakers["t"] = CircuitBreaker("t", config.breaker, clock=clock)  # type: ignore[arg-type]
    breaker.failure("status 503")
    clock.now += 10
    log = RouteLog("fallback")
    steps = router.steps(log, attempts=1)
    assert next(steps) == Send(config.targets()[0])  # the probe is out
    assert not breaker.allow()  # nobody else may probe meanwhile
    steps.close()  # the caller was cancelled
    assert breaker.allow()  # the next caller probes
    assert log.attempts[0]["outcome"] == "abandoned"
