"""Weighted loadbalancing over simulator regions: the share of calls follows the weights."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from regions import azure_target, events, fault, routed
from regions import regions as regions_fixture

from tokenid import Journal
from tokenid.routing import Router, parse_routing
from tokenid.simulator import Simulator

regions = regions_fixture


def test_order_follows_the_weights_exactly_in_distribution() -> None:
    config = parse_routing({"strategy": "loadbalance", "targets": [
        {"name": n, "azure_endpoint": "https://x.openai.azure.com", "api_version": "2024-10-21", "weight": w,
         "auth": {"type": "api_key", "api_key": "k"}} for n, w in (("a", 6), ("b", 3), ("c", 1), ("standby", 0))]},
        azure_client=True)
    router = Router(config, rng=random.Random(7))
    assert config.root is not None
    firsts = Counter(router._order(config.root)[0].name for _ in range(20_000))
    # binomial sd at n=20000 is under 0.004: 0.02 is five of them
    assert firsts["a"] / 20_000 == pytest.approx(0.6, abs=0.02)
    assert firsts["b"] / 20_000 == pytest.approx(0.3, abs=0.02)
    assert firsts["c"] / 20_000 == pytest.approx(0.1, abs=0.02)
    assert firsts["standby"] == 0  # weight 0: only ever tried when the others fail
    assert all(router._order(config.root)[-1].name == "standby" for _ in range(100))


def test_calls_spread_over_regions_by_weight(regions: dict[str, Simulator], tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    client = routed(journal, {"strategy": "loadbalance", "targets": [
        azure_target("sweden", regions["swedencentral"], weight=3),
        azure_target("eastus2", regions["eastus2"], weight=1),
    ]})
    n = 300
    for _ in range(n):
        client.embeddings.create(model="text-embedding-3-small", input="hi")
    client.close()
    rows = events(journal)
    assert len(rows) == n
    served = Counter(row["route"]["served_by"] for row in rows)
    regions_seen = Counter(row["region"] for row in rows)
    # p=0.75, n=300: sd 0.025; 0.1 is four of them
    assert served["sweden"] / n == pytest.approx(0.75, abs=0.1)
    assert regions_seen["Sweden Central"] == served["sweden"]
    assert regions_seen["East US 2"] == served["eastus2"]
    assert all(row["status"] == "ok" and row["attempts"] == 1 for row in rows)
    assert {row["route"]["strategy"] for row in rows} == {"loadbalance"}


def test_a_failing_region_is_failed_over_within_the_group(regions: dict[str, Simulator], tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    client = routed(journal, {"strategy": "loadbalance", "breaker": False, "targets": [
        azure_target("sweden", regions["swedencentral"], weight=1, headers=fault("503")),
        azure_target("eastus2", regions["eastus2"], weight=1),
    ]})
    for _ in range(40):
        client.embeddings.create(model="text-embedding-3-small", input="hi")
    client.close()
    rows = events(journal)
    assert all(row["status"] == "ok" and row["route"]["served_by"] == "eastus2" for row in rows)
    first_tries = Counter(row["route"]["attempts"][0]["target"] for row in rows)
    assert first_tries["sweden"] > 5 and first_tries["eastus2"] > 5  # both were picked first, by weight
    failed_over = [row for row in rows if row["route"]["attempts"][0]["target"] == "sweden"]
    for row in failed_over:
        assert row["attempts"] == 2
        assert row["route"]["fallbacks"] == [{"group": "routing", "from": "sweden", "to": "eastus2",
                                              "reason": "status 503"}]


def test_without_failover_a_loadbalance_group_raises_its_pick(regions: dict[str, Simulator], tmp_path: Path) -> None:
    import openai

    journal = Journal(tmp_path / "j.db")
    client = routed(journal, {"strategy": "loadbalance", "failover": False, "breaker": False, "targets": [
        azure_target("sweden", regions["swedencentral"], weight=1, headers=fault("503")),
        azure_target("eastus2", regions["eastus2"], weight=1),
    ]})
    outcomes = Counter()
    for _ in range(30):
        try:
            client.embeddings.create(model="text-embedding-3-small", input="hi")
            outcomes["ok"] += 1
        except openai.InternalServerError:
            outcomes["503"] += 1
    client.close()
    assert outcomes["ok"] > 3 and outcomes["503"] > 3
    assert all(row["attempts"] == 1 for row in events(journal))


def test_many_threads_share_one_routed_client(regions: dict[str, Simulator], tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    journal = Journal(tmp_path / "j.db")
    client = routed(journal, {"strategy": "loadbalance", "targets": [
        azure_target("sweden", regions["swedencentral"], weight=1, headers=fault("503")),
        azure_target("eastus2", regions["eastus2"], weight=1),
        azure_target("france", regions["francecentral"], weight=1),
    ], "breaker": {"failures": 3, "cooldown_s": 60}, "retry": {"attempts": 1}})

    def call(_: int) -> str:
        return client.embeddings.create(model="text-embedding-3-small", input="hi").model

    with ThreadPoolExecutor(8) as pool:
        served = list(pool.map(call, range(160)))
    client.close()
    assert len(served) == 160
    rows = events(journal)
    assert len(rows) == 160 and all(r["status"] == "ok" for r in rows)
    sweden_sends = sum(1 for r in rows for a in r["route"]["attempts"] if a["target"] == "sweden" and "outcome" in a)
    assert 3 <= sweden_sends <= 3 + 8  # opened after 3 failures; at most the calls already in flight got through
    by = Counter(r["route"]["served_by"] for r in rows)
    assert by["sweden"] == 0 and by["eastus2"] > 40 and by["france"] > 40
