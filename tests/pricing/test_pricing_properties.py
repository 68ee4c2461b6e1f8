"""Property tests: no double counting, monotonic cost, cache discounts, non-negative exact Decimal money."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenid.pricing import DEPLOYMENT_TYPES, Pricer, Rates
from tokenid.usage import Usage

D = Decimal
PROFILE = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
PRICED_TYPES = [t for t in DEPLOYMENT_TYPES if t != "provisioned"]
# Multiples of the Global price stated in /work/shared/azure-billing/PRICING.md §1-§2 (US/EU regions)
PRICING_MD_FACTORS = {
    "global": D("1"),
    "data_zone": D("1.10"),
    "regional": D("1.10"),
    "global_batch": D("0.50"),
    "data_zone_batch": D("0.55"),
}

money = st.decimals(min_value=0, max_value=200, places=4, allow_nan=False, allow_infinity=False)
maybe_money = st.none() | money


@st.composite
def rate_cards(draw: st.DrawFn) -> Rates:
    return Rates(
        input=draw(money),
        output=draw(money),
        cached_input=draw(maybe_money),
        cache_write=draw(maybe_money),
        audio_input=draw(maybe_money),
        audio_output=draw(maybe_money),
        image_input=draw(maybe_money),
    )


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    """Valid usages whose input subsets are disjoint: cached + write + audio + image <= input."""
    count = st.integers(min_value=0, max_value=5_000_000)
    text, cached, write, audio, image = (draw(count) for _ in range(5))
    output, audio_out = draw(count), draw(count)
    reasoning = draw(st.integers(min_value=0, max_value=output))
    return Usage(
        input_tokens=text + cached + write + audio + image,
        cached_input_tokens=cached,
        cache_write_tokens=write,
        audio_input_tokens=audio,
        image_input_tokens=image,
        output_tokens=output + audio_out,
        audio_output_tokens=audio_out,
        reasoning_tokens=min(reasoning, output + audio_out),
    )


def expected_cost(rates: Rates, u: Usage) -> Decimal:
    """The cost computed from the rule, independently of the engine: each token once, at its own rate."""

    def rate(value: Decimal | None, fallback: Decimal | None) -> Decimal:
        chosen = value if value is not None else fallback
        assert chosen is not None
        return chosen

    uncached_text = u.input_tokens - u.cached_input_tokens - u.cache_write_tokens
    uncached_text -= u.audio_input_tokens + u.image_input_tokens
    total = (
        uncached_text * rate(rates.input, None)
        + u.cached_input_tokens * rate(rates.cached_input, rates.input)
        + u.cache_write_tokens * rate(rates.cache_write, rates.input)
        + u.audio_input_tokens * rate(rates.audio_input, rates.input)
        + u.image_input_tokens * rate(rates.image_input, rates.input)
        + (u.output_tokens - u.audio_output_tokens) * rate(rates.output, None)
        + u.audio_output_tokens * rate(rates.audio_output, rates.output)
    )
    return total / D(1_000_000)


def priced(rates: Rates, usage: Usage, kind: str = "global") -> Decimal:
    pricer = Pricer(deployments={"d": {"model": "m", "type": kind}}, overrides={"model:m": rates})
    result = pricer.price(provider="azure_openai", usage=usage, model_served=None, model_requested="d", deployment="d")
    assert result.cost_usd is not None, result.unpriced_reason
    return result.cost_usd


@PROFILE
@given(rate_cards(), usages(), st.sampled_from(PRICED_TYPES))
def test_cost_is_the_sum_of_independent_components(rates: Rates, usage: Usage, kind: str) -> None:
    cost = priced(rates, usage, kind)
    assert cost == expected_cost(rates, usage) * PRICING_MD_FACTORS[kind]


@PROFILE
@given(rate_cards(), usages(), st.sampled_from(PRICED_TYPES))
def test_cost_is_a_non_negative_decimal(rates: Rates, usage: Usage, kind: str) -> None:
    cost = priced(rates, usage, kind)
    assert isinstance(cost, Decimal)
    assert cost >= 0


FIELDS_WITH_PARENT = {
    # adding tokens of this kind also adds them to the total they are part of
    "input_tokens": None,
    "output_tokens": None,
    "cached_input_tokens": "input_tokens",
    "cache_write_tokens": "input_tokens",
    "audio_input_tokens": "input_tokens",
    "image_input_tokens": "input_tokens",
    "audio_output_tokens": "output_tokens",
    "reasoning_tokens": "output_tokens",
}


@PROFILE
@given(rate_cards(), usages(), st.sampled_from(sorted(FIELDS_WITH_PARENT)), st.integers(0, 2_000_000))
def test_more_tokens_never_cost_less(rates: Rates, usage: Usage, field: str, extra: int) -> None:
    grown = {field: getattr(usage, field) + extra}
    parent = FIELDS_WITH_PARENT[field]
    if parent is not None:
        grown[parent] = getattr(usage, parent) + extra
    assert priced(rates, replace(usage, **grown)) >= priced(rates, usage)


@PROFILE
@given(rate_cards(), usages(), st.integers(0, 2_000_000))
def test_reasoning_tokens_inside_output_are_not_billed_again(rates: Rates, usage: Usage, extra: int) -> None:
    more_reasoning = replace(usage, reasoning_tokens=min(usage.reasoning_tokens + extra, usage.output_tokens))
    assert priced(rates, more_reasoning) == priced(rates, usage)


@PROFILE
@given(rate_cards(), usages(), st.integers(0, 5_000_000), st.data())
def test_caching_never_raises_cost_when_cached_rate_is_not_above_input(
    rates: Rates, usage: Usage, moved: int, data: st.DataObject
) -> None:
    assert rates.input is not None
    cached_rate = data.draw(st.decimals(min_value=0, max_value=rates.input, places=4), label="cached rate")
    rates = replace(rates, cached_input=cached_rate)
    uncached_text = (
        usage.input_tokens
        - usage.cached_input_tokens
        - usage.cache_write_tokens
        - usage.audio_input_tokens
        - usage.image_input_tokens
    )
    moved = min(moved, uncached_text)
    more_cached = replace(usage, cached_input_tokens=usage.cached_input_tokens + moved)
    assert priced(rates, more_cached) <= priced(rates, usage)


@PROFILE
@given(usages(), st.sampled_from(["gpt-4o", "gpt-4o-mini", "gpt-4.1", "o3-mini", "gpt-5", "gpt-realtime"]))
def test_list_prices_are_non_negative_decimals(usage: Usage, model: str) -> None:
    result = Pricer().price(provider="openai", usage=usage, model_served=model, model_requested=None, deployment=None)
    assert isinstance(result.cost_usd, Decimal)
    assert result.cost_usd >= 0


# targets priced from a plan after their first call: Azure deployments (retail meters, types, batch, an override),
# OpenAI models (a service tier, a long-context tier, a model whose list price is dated)
_PLAN_TARGETS = [
    dict(provider="azure_openai", deployment="chat", model_requested="chat", model_served="gpt-4o-2024-08-06",
         region="swedencentral"),
    dict(provider="azure_openai", deployment="mini-dz", model_requested="mini-dz", model_served=None, region="eastus2"),
    dict(provider="azure_openai", deployment="mini-dz", model_requested="mini-dz", model_served=None, batch=True),
    dict(provider="azure_openai", deployment="negotiated", model_requested="negotiated", model_served="gpt-4o"),
    dict(provider="openai", deployment=None, model_requested="gpt-4.1", model_served="gpt-4.1-2025-04-14",
         service_tier="priority"),
    dict(provider="openai", deployment=None, model_requested="gpt-5.4", model_served="gpt-5.4"),
    dict(provider="openai", deployment=None, model_requested="o3", model_served="o3-2025-04-16"),
]
_PLAN_PRICER_ARGS = dict(
    deployments={"chat": {"model": "gpt-4o", "version": "2024-08-06", "type": "global"},
                 "mini-dz": {"model": "gpt-4o-mini", "version": "2024-07-18", "type": "data_zone"},
                 "negotiated": "gpt-4o"},
    overrides={"deployment:negotiated": {"input": "2", "output": "8"}},
)
token_counts = st.integers(min_value=0, max_value=400_000)


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    inp, out = draw(token_counts), draw(st.integers(min_value=0, max_value=50_000))
    return Usage(input_tokens=inp, output_tokens=out, cached_input_tokens=draw(st.integers(0, inp)),
                 reasoning_tokens=draw(st.integers(0, out)), audio_input_tokens=draw(st.sampled_from([0, inp // 3])))


@PROFILE
@given(st.lists(st.tuples(st.sampled_from(range(len(_PLAN_TARGETS))), usages()), min_size=2, max_size=12),
       st.sampled_from([None, "2025-06-01T12:00:00+00:00", "2026-11-30T23:59:59+00:00"]))
def test_a_priced_target_prices_its_next_calls_exactly_as_a_first_call(
        calls: list[tuple[int, Usage]], when: str | None) -> None:
    from datetime import datetime

    at = datetime.fromisoformat(when) if when else None
    reused = Pricer(**_PLAN_PRICER_ARGS)  # type: ignore[arg-type]
    for index, usage in calls:
        target = _PLAN_TARGETS[index]
        fresh = Pricer(**_PLAN_PRICER_ARGS).price(usage=usage, at=at, **target)  # type: ignore[arg-type]
        assert reused.price(usage=usage, at=at, **target) == fresh  # type: ignore[arg-type]
