"""Pricer.explain: the breakdown agrees with price() and says what was assumed or left out."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tokenid.pricing import Pricer, format_usd
from tokenid.usage import Usage


def ListPricer(**kwargs: Any) -> Pricer:
    """A Pricer on list prices x deployment-type factors (the Azure retail list is tested in test_pricing_azure)."""
    return Pricer(azure_retail=False, **kwargs)

D = Decimal
USAGE = Usage(input_tokens=400_000, cached_input_tokens=100_000, output_tokens=50_000, reasoning_tokens=20_000)


def test_components_add_up_to_the_price() -> None:
    pricer = ListPricer(deployments={"eu": {"model": "gpt-4o", "type": "data_zone"}})
    kwargs = {"provider": "azure_openai", "usage": USAGE, "deployment": "eu"}
    explanation = pricer.explain(**kwargs)  # type: ignore[arg-type]
    price = pricer.price(model_served=None, model_requested=None, **kwargs)  # type: ignore[arg-type]
    assert explanation.result == price
    assert price.cost_usd is not None
    assert sum(line.cost_usd for line in explanation.components) == price.cost_usd
    tokens = {line.component: line.tokens for line in explanation.components}
    assert tokens["input"] + tokens["cached_input"] == USAGE.input_tokens
    assert tokens["output"] == USAGE.output_tokens


def test_text_names_model_rates_multiplier_and_exclusions() -> None:
    pricer = ListPricer(deployments={"eu": {"model": "gpt-4o", "type": "data_zone"}})
    text = str(pricer.explain(provider="azure_openai", usage=USAGE, deployment="eu"))
    assert "gpt-4o-2024-08-06" in text
    assert "deployment_map" in text
    assert "data_zone" in text
    assert "1.10" in text
    assert "cached_input" in text
    assert "web_searches_kcount" in text  # per-call tool prices are listed beside the token rates
    price = pricer.price(provider="azure_openai", usage=USAGE, model_served=None, model_requested=None, deployment="eu")
    assert format_usd(price.cost_usd) in text


def test_without_usage_shows_the_rates_for_prices_show() -> None:
    explanation = ListPricer().explain(provider="openai", model_requested="gpt-4.1-mini")
    assert explanation.result.unpriced_reason == "no usage"
    assert explanation.rates is not None and explanation.rates.input is not None
    assert explanation.components == ()
    assert str(explanation.rates.input) in str(explanation)


def test_guess_and_assumed_type_are_flagged() -> None:
    text = str(ListPricer().explain(provider="azure_openai", usage=USAGE, deployment="gpt-4o-mini"))
    assert "guessed from the deployment name" in text
    assert "assumed global" in text


def test_long_context_tier_is_flagged() -> None:
    text = str(ListPricer().explain(provider="openai", model_served="gpt-5.4", usage=Usage(input_tokens=300_000)))
    assert "long-context" in text


def test_unpriced_explanation_carries_the_reason() -> None:
    text = str(ListPricer().explain(provider="openai", model_served="foo", usage=USAGE))
    assert "unknown model 'foo'" in text


def test_format_usd_rounds_for_display_only() -> None:
    assert format_usd(D("0.00000015")) == "$0.000000150"
    assert format_usd(D(0)) == "$0"
    assert format_usd(None) == "-"
