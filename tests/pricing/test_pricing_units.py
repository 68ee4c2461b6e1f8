"""Non-token units, batch and service tiers in ``Pricer.price``: images, characters, audio, tools, training."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tokenid.pricing import Pricer, PriceResult
from tokenid.pricing.multipliers import service_tier_multiplier
from tokenid.pricing.units import image_price
from tokenid.usage import Usage

PRICER = Pricer(deployments={
    "dalle": {"model": "dall-e-3", "type": "global"},
    "speech": {"model": "tts", "type": "global"},
    "stt": {"model": "whisper", "type": "global"},
    "eu-mini": {"model": "gpt-4o-mini", "version": "2024-07-18", "type": "data_zone"},
    "mini": {"model": "gpt-4o-mini", "version": "2024-07-18", "type": "global"},
}, azure_retail=False)  # list price x deployment-type factor; retail prices: test_pricing_azure.py
MILLION = Usage(input_tokens=1_000_000, output_tokens=1_000_000)


def openai(model: str, usage: Usage | None = None, *, units: dict[str, object] | None = None,
           batch: bool = False, service_tier: str | None = None) -> PriceResult:
    return PRICER.price(provider="openai", usage=usage, model_served=model, model_requested=model, deployment=None,
                        units=units, batch=batch, service_tier=service_tier)


@pytest.mark.parametrize(("quality", "size", "expected"), [
    ("standard", "1024x1024", "0.040"), (None, None, "0.040"), ("auto", None, "0.040"),
    ("standard", "1792x1024", "0.080"), ("hd", "1024x1024", "0.080"), ("hd", "1024x1792", "0.120"),
])
def test_dalle3_images_cost_per_image_by_size_and_quality(quality: str | None, size: str | None,
                                                          expected: str) -> None:
    units = {"images": 3, "image_quality": quality, "image_size": size}
    result = openai("dall-e-3", units={k: v for k, v in units.items() if v is not None})
    assert result.cost_usd == Decimal(expected) * 3
    assert result.units_cost_usd == result.cost_usd
    assert result.unit_lines[0].unit == "images"


def test_dalle_on_azure_resolves_from_the_deployment_map_without_a_response_model() -> None:
    result = PRICER.price(provider="azure_openai", usage=None, model_served=None, model_requested="dalle",
                          deployment="dalle", units={"images": 1, "image_size": "1024x1024"})
    assert (result.canonical_model, result.cost_usd) == ("dall-e-3", Decimal("0.04"))


def test_an_unknown_image_size_is_unpriced_with_a_reason_not_zero() -> None:
    result = openai("dall-e-3", units={"images": 1, "image_size": "640x480"})
    assert result.cost_usd is None
    assert "images" in result.unpriced_reason
    assert image_price("dall-e-2", None, "256x256") == Decimal("0.016")


def test_tts_per_character_and_whisper_per_second_from_genai_prices() -> None:
    tts = PRICER.price(provider="azure_openai", usage=None, model_served=None, model_requested="speech",
                       deployment="speech", units={"characters": 1000})
    assert tts.cost_usd == Decimal("0.015")  # $15 per 1M characters
    hd = openai("tts-1-hd", units={"characters": 1000})
    assert hd.cost_usd == Decimal("0.03")
    whisper = PRICER.price(provider="azure_openai", usage=None, model_served=None, model_requested="stt",
                           deployment="stt", units={"audio_seconds": 90.5})
    assert whisper.cost_usd == Decimal("0.36") * Decimal("90.5") / 3600
    assert whisper.canonical_model == "whisper-1"


def test_token_billed_audio_models_ignore_descriptive_units() -> None:
    usage = Usage(input_tokens=1000, output_tokens=50, audio_input_tokens=900)
    result = openai("gpt-4o-transcribe", usage, units={"audio_seconds": 12.0})
    # $2.5/M text, $6/M audio input, $10/M output; the seconds only describe the call
    assert result.cost_usd == (Decimal(100) * Decimal("2.5") + 900 * 6 + 50 * 10) / 1_000_000
    assert result.unpriced_units == ()


def test_web_and_file_search_calls_are_added_to_the_tokens() -> None:
    usage = Usage(input_tokens=1000, output_tokens=100)
    plain = openai("gpt-4o", usage)
    tools = openai("gpt-4o", usage, units={"web_search_calls": 2, "file_search_calls": 4})
    assert tools.cost_usd - plain.cost_usd == Decimal("0.02") + Decimal("0.01")
    assert {line.unit for line in tools.unit_lines} == {"web_search_calls", "file_search_calls"}


def test_training_tokens_per_million() -> None:
    result = openai("gpt-4o-mini-2024-07-18", units={"training_tokens": 2_000_000})
    assert result.cost_usd == Decimal(6)
    unknown = openai("gpt-4o-audio-preview", units={"training_tokens": 10})
    assert unknown.cost_usd is None and "training_tokens" in unknown.unpriced_reason


def test_batch_is_half_price_on_openai_and_the_batch_type_on_azure() -> None:
    full = openai("gpt-4o-mini", MILLION)
    half = openai("gpt-4o-mini", MILLION, batch=True)
    assert half.cost_usd * 2 == full.cost_usd
    eu = PRICER.price(provider="azure_openai", usage=MILLION, model_served=None, model_requested="eu-mini",
                      deployment="eu-mini", batch=True)
    assert eu.deployment_type == "data_zone_batch"
    assert eu.cost_usd == full.cost_usd * Decimal("0.55")
    unknown_deployment = PRICER.price(provider="azure_openai", usage=MILLION, model_served="gpt-4o-mini-2024-07-18",
                                      model_requested=None, deployment=None, batch=True)
    assert unknown_deployment.deployment_type == "global_batch"
    assert unknown_deployment.cost_usd == half.cost_usd


def test_service_tiers() -> None:
    standard = openai("gpt-4.1", MILLION, service_tier="default")
    priority = openai("gpt-4.1", MILLION, service_tier="priority")
    flex = openai("o3", MILLION, service_tier="flex")
    assert standard.cost_usd == Decimal(10)
    assert priority.cost_usd == Decimal("17.5")  # $3.50 / $14
    assert flex.cost_usd == Decimal(5)  # $1 / $4
    none = openai("gpt-5-nano", MILLION, service_tier="priority")
    assert none.cost_usd is None and "priority" in none.unpriced_reason
    assert service_tier_multiplier("priority", "gpt-5.1") == Decimal(2)
    assert service_tier_multiplier("priority", "gpt-5-mini") == Decimal("1.8")
    assert service_tier_multiplier("priority", "gpt-4o-mini") == Decimal(5) / Decimal(3)
    assert service_tier_multiplier("mystery", "gpt-4o") is None


def test_explain_shows_unit_lines_and_unit_prices() -> None:
    text = str(PRICER.explain(provider="openai", model_served="dall-e-3", units={"images": 2, "image_quality": "hd"}))
    assert "images" in text and "0.08" in text and "openai.com/api/pricing" in text
    assert "input_mchars" in str(PRICER.explain(provider="openai", model_served="tts-1"))
    batch = str(PRICER.explain(provider="openai", usage=MILLION, model_served="gpt-4o-mini", batch=True))
    assert "batch" in batch and "x 0.5" in batch


def test_audio_preview_models_bill_audio_tokens_at_audio_rates() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, audio_input_tokens=500_000,
                  audio_output_tokens=500_000)
    # gpt-4o-audio-preview: text $2.50 in / $10 out, audio $40 in / $80 out per 1M
    assert openai("gpt-4o-audio-preview", usage).cost_usd == Decimal("1.25") + 20 + 5 + 40
    mini = openai("gpt-4o-mini-audio-preview", Usage(input_tokens=1_000_000, output_tokens=0,
                                                     audio_input_tokens=1_000_000))
    assert mini.cost_usd == Decimal(10)
