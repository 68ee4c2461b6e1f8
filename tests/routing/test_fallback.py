"""Ordered fallback across regions and to OpenAI: order, conditions, timeouts, and what the event says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest
from regions import MSG, azure_target, events, fault, routed
from regions import regions as regions_fixture

from tokenid import AsyncJournaledAzureOpenAI, Journal, JournaledOpenAI
from tokenid.simulator import Simulator

regions = regions_fixture


def openai_target(sim: Simulator, **kw: Any) -> dict[str, Any]:
    return {"name": "openai", "provider": "openai", "base_url": sim.openai_base_url,
            "auth": {"type": "api_key", "api_key": "sk-openai-SECRET"},
            "override_params": {"model": "gpt-4o-mini-2024-07-18"}, **kw}


def chain(regions: dict[str, Simulator], **faults: dict[str, str]) -> dict[str, Any]:
    return {"strategy": "fallback", "breaker": False, "targets": [
        azure_target("sweden", regions["swedencentral"], headers=faults.get("sweden", {})),
        azure_target("eastus2", regions["eastus2"], headers=faults.get("eastus2", {})),
        openai_target(regions["francecentral"]),
    ]}


def test_fallback_order_and_the_reason_of_each_step(regions: dict[str, Simulator], tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    client = routed(journal, chain(regions, sweden=fault("503"), eastus2=fault("429", **{
        "x-sim-retry-after-ms": "10"})), session_id="fb")
    resp = client.chat.completions.create(model="gpt-4o", messages=MSG)
    client.close()
    assert resp.model == "gpt-4o-mini-2024-07-18"  # override_params on the OpenAI target
    [row] = events(journal)
    assert row["status"] == "ok" and row["http_status"] == 200
    assert row["attempts"] == 3
    assert row["provider"] == "openai"  # who served it, priced as such
    assert row["model_requested"] == "gpt-4o" and row["model_served"] == "gpt-4o-mini-2024-07-18"
    assert row["deployment"] is None and row["api_version"] is None
    assert row["cost_usd"] is not None and float(row["cost_usd"]) > 0
    route = row["route"]
    assert route["strategy"] == "fallback" and route["served_by"] == "openai"
    assert [(a["target"], a["outcome"]) for a in route["attempts"]] == [
        ("sweden", "status 503"), ("eastus2", "status 429"), ("openai", "ok")]
    assert route["fallbacks"] == [
        {"group": "routing", "from": "sweden", "to": "eastus2", "reason": "status 503"},
        {"group": "routing", "from": "eastus2", "to": "openai", "reason": "status 429"},
    ]


def test_the_first_healthy_target_serves_and_later_ones_are_not_tried(regions: dict[str, Simulator],
                                                                      tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    client = routed(journal, chain(regions, sweden=fault("500")))
    client.chat.completions.create(model="gpt-4o", messages=MSG)
    client.close()
    [row] = events(journal)
    assert [a["target"] for a in row["route"]["attempts"]] == ["sweden", "eastus2"]
    assert row["region"] == "East US 2" and row["deployment"] == "gpt-4o" and row["provider"] == "azure_openai"
    assert row["api_version"] == "2024-10-21"


def test_a_status_outside_on_status_is_raised_not_failed_over(regions: dict[str, Simulator], tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    config = chain(regions, sweden=fault("content_filter"))
    client = routed(journal, config)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o", messages=MSG)
    config["on_status"] = [400, 503]  # now a 400 falls over too
    other = routed(journal, config)
    other.chat.completions.create(model="gpt-4o", messages=MSG)
    client.close()
    other.close()
    first, second = events(journal)
    assert first["status"] == "error" and first["http_status"] == 400 and first["attempts"] == 1
    assert first["error_type"] == "BadRequestError"
    assert first["route"]["attempts"] == [{**first["route"]["attempts"][0], "target": "sweden",
                                           "outcome": "status 400"}]
    assert second["status"] == "ok" and second["route"]["served_by"] == "eastus2"


def test_a_timeout_falls_over(regions: dict[str, Simulator], tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    config = chain(regions, sweden=fault("slow", **{"x-sim-slow-seconds": "3"}))
    config["targets"][0]["timeout_s"] = 0.3
    client = routed(journal, config)
    client.chat.completions.create(model="gpt-4o", messages=MSG)
    client.close()
    [row] = events(journal)
    assert row["route"]["attempts"][0]["outcome"] == "timeout"
    assert row["route"]["attempts"][0]["error"] == "APITimeoutError"
    assert 250 <= row["route"]["attempts"][0]["ms"] < 2500
    assert row["route"]["fallbacks"][0]["reason"] == "timeout"
    assert row["route"]["served_by"] == "eastus2"


def test_every_target_failing_raises_the_last_error_and_journals_it(regions: dict[str, Simulator],
                                                                    tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    config = chain(regions, sweden=fault("503"), eastus2=fault("503"))
    config["targets"][2]["headers"] = fault("500")
    client = routed(journal, config)
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="gpt-4o", messages=MSG)
    client.close()
    assert err.value.status_code == 500
    [row] = events(journal)
    assert row["status"] == "error" and row["http_status"] == 500 and row["attempts"] == 3
    assert [a["outcome"] for a in row["route"]["attempts"]] == ["status 503", "status 503", "status 500"]


def test_nested_loadbalance_then_fallback_streams(regions: dict[str, Simulator], tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    client = routed(journal, {"strategy": "fallback", "breaker": False, "targets": [
        {"strategy": "loadbalance", "name": "eu", "targets": [
            azure_target("sweden", regions["swedencentral"], headers=fault("503")),
            azure_target("france", regions["francecentral"], headers=fault("503")),
        ]},
        azure_target("eastus2", regions["eastus2"]),
    ]})
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MSG, stream=True))
    client.close()
    assert chunks[-1].usage is not None
    [row] = events(journal)
    assert row["status"] == "ok" and row["stream"] is True and row["usage_source"] == "reported"
    assert row["attempts"] == 3 and row["route"]["served_by"] == "eastus2"
    assert {a["target"] for a in row["route"]["attempts"][:2]} == {"sweden", "france"}
    assert row["route"]["fallbacks"][-1] == {"group": "routing", "from": "eu", "to": "eastus2",
                                             "reason": "status 503"}


async def test_async_client_falls_back_the_same_way(regions: dict[str, Simulator], tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    client = routed(journal, chain(regions, sweden=fault("503")), cls=AsyncJournaledAzureOpenAI)
    resp = await client.chat.completions.create(model="gpt-4o", messages=MSG)
    await client.close()
    assert resp.choices[0].message.content
    [row] = events(journal)
    assert [a["target"] for a in row["route"]["attempts"]] == ["sweden", "eastus2"]
    assert row["region"] == "East US 2"


def test_an_openai_client_can_fall_back_to_azure(regions: dict[str, Simulator], tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    client = routed(journal, {"strategy": "fallback", "targets": [
        openai_target(regions["swedencentral"], headers=fault("503"), override_params={}),
        azure_target("eastus2", regions["eastus2"], deployment={"gpt-4o-2024-08-06": "gpt-4o"}),
    ]}, cls=JournaledOpenAI)
    client.chat.completions.create(model="gpt-4o-2024-08-06", messages=MSG)
    client.close()
    [row] = events(journal)
    assert row["provider"] == "azure_openai" and row["deployment"] == "gpt-4o" and row["region"] == "East US 2"
