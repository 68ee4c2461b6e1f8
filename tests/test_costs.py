"""Costs end to end: cached and reasoning tokens, overrides, deployment types, legacy completions."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from tokenid import Journal

from conftest import make_client

LONG_PROMPT = [{"role": "user", "content": "budget " * 1500}]  # >= 1024 tokens: the simulator reports a cache hit
PER_MILLION = Decimal(1_000_000)


def only_row(journal: Journal, session: str) -> dict[str, Any]:
    journal.flush()
    (row,) = journal.events(session_id=session)
    return row


@pytest.mark.parametrize("stream", [False, True])
def test_cached_and_reasoning_tokens_are_journaled_and_priced_once(sim: Any, journal: Journal,
                                                                   stream: bool) -> None:
    session = f"o3-{stream}"
    client = make_client("azure", sim, journal, session_id=session,
                         deployments={"o3-mini": {"model": "o3-mini", "version": "2025-01-31", "type": "global"}})
    if stream:
        chunks = list(client.chat.completions.create(model="o3-mini", messages=LONG_PROMPT, stream=True,
                                                     max_completion_tokens=40))
        usage = chunks[-1].usage
    else:
        usage = client.chat.completions.create(model="o3-mini", messages=LONG_PROMPT,
                                               max_completion_tokens=40).usage
    client.close()
    assert usage is not None and usage.prompt_tokens_details and usage.completion_tokens_details
    cached = usage.prompt_tokens_details.cached_tokens or 0
    reasoning = usage.completion_tokens_details.reasoning_tokens or 0
    assert cached > 0 and reasoning > 0
    row = only_row(journal, session)
    assert (row["input_tokens"], row["cached_input_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (
        usage.prompt_tokens, cached, usage.completion_tokens, reasoning)
    assert row["canonical_model"] == "o3-mini-2025-01-31" and row["model_resolved_by"] == "deployment_map"
    # o3-mini list price per million tokens (genai-prices / OpenAI): input 1.10, cached input 0.55, output 4.40;
    # reasoning tokens are part of the output tokens and are not charged again
    expected = ((usage.prompt_tokens - cached) * Decimal("1.10") + cached * Decimal("0.55")
                + usage.completion_tokens * Decimal("4.40")) / PER_MILLION
    assert Decimal(row["cost_usd"]) == expected


def test_negotiated_rates_override_list_prices(sim: Any, journal: Journal) -> None:
    prices = {"gpt-4o": {"input": "2.00", "cached_input": "1.00", "output": "8.00"},
              "deployment:gpt-4o-mini": {"input": "0.10", "output": "0.40"}}
    client = make_client("azure", sim, journal, prices=prices, session_id="rates")
    big = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hello there"}])
    small = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    client.close()
    journal.flush()
    rows = journal.events(session_id="rates")
    assert big.usage and small.usage
    assert Decimal(rows[0]["cost_usd"]) == (big.usage.prompt_tokens * Decimal("2.00")
                                            + big.usage.completion_tokens * Decimal("8.00")) / PER_MILLION
    assert Decimal(rows[1]["cost_usd"]) == (small.usage.prompt_tokens * Decimal("0.10")
                                            + small.usage.completion_tokens * Decimal("0.40")) / PER_MILLION
    assert rows[0]["price_source"].startswith("override") and rows[1]["price_source"].startswith("override")


def test_deployment_type_changes_the_price(sim: Any, journal: Journal) -> None:
    def cost(kind: str) -> Decimal:
        client = make_client("azure", sim, journal, session_id=kind,
                             deployments={"gpt-4o": {"model": "gpt-4o", "version": "2024-08-06", "type": kind}})
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "same prompt"}])
        client.close()
        row = only_row(journal, kind)
        assert row["deployment_type"] == kind
        return Decimal(row["cost_usd"])

    glob, zone, ptu = cost("global"), cost("data_zone"), cost("provisioned")
    assert zone > glob > 0  # Data Zone carries a premium over Global (shared/azure-billing/PRICING.md)
    assert ptu == 0  # provisioned throughput: capacity cost, no per-token charge


def test_unknown_model_is_unpriced_not_free(journal: Journal) -> None:
    from tokenid.simulator import Simulator

    with Simulator(deployments={"mystery": "mystery-model-1"}) as own:
        client = make_client("azure", own, journal, session_id="unknown", deployments={})
        reply = client.chat.completions.create(model="mystery", messages=[{"role": "user", "content": "hi"}])
        client.close()
    assert reply.model == "mystery-model-1"
    row = only_row(journal, "unknown")
    assert row["input_tokens"] > 0 and row["usage_source"] == "reported"
    assert row["cost_usd"] is None and "mystery" in row["unpriced_reason"]


def test_served_model_is_the_fallback_when_the_map_names_an_unknown_model(sim: Any, journal: Journal) -> None:
    client = make_client("azure", sim, journal, session_id="fallback",
                         deployments={"gpt-4o": {"model": "model-from-the-future", "type": "global"}})
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    client.close()
    row = only_row(journal, "fallback")
    assert row["model_resolved_by"] == "response_model" and row["canonical_model"] == "gpt-4o-2024-08-06"
    assert Decimal(row["cost_usd"]) > 0


@pytest.mark.parametrize("kind", ["azure", "openai", "async_azure"])
def test_legacy_completions_plain_and_stream(sim: Any, journal: Journal, kind: str) -> None:
    client = make_client(kind, sim, journal, session_id=f"completions-{kind}")
    model = "gpt-35-turbo" if kind.endswith("azure") else "gpt-3.5-turbo-instruct"

    async def go_async() -> tuple[Any, list[Any]]:
        plain = await client.completions.create(model=model, prompt="Say something", max_tokens=30)
        stream = await client.completions.create(model=model, prompt="Say something", max_tokens=30, stream=True)
        chunks = [c async for c in stream]
        await client.close()
        return plain, chunks

    if kind.startswith("async"):
        plain, chunks = asyncio.run(go_async())
    else:
        plain = client.completions.create(model=model, prompt="Say something", max_tokens=30)
        chunks = list(client.completions.create(model=model, prompt="Say something", max_tokens=30, stream=True))
        client.close()
    journal.flush()
    rows = journal.events(session_id=f"completions-{kind}")
    assert [r["endpoint"] for r in rows] == ["completions", "completions"]
    assert rows[0]["output_tokens"] == plain.usage.completion_tokens
    assert all(c.choices for c in chunks if not getattr(c, "prompt_filter_results", None))
    assert chunks[-1].usage is not None
    assert rows[1]["usage_source"] == "reported" and rows[1]["stream"] is True
    assert rows[1]["output_tokens"] == chunks[-1].usage.completion_tokens
