"""Rates, price overrides, token bucketing and the exact cost arithmetic."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenid.errors import ConfigError
from tokenid.pricing import (
    COMPONENTS,
    MissingRateError,
    Rates,
    TieredRates,
    component_costs,
    parse_price_overrides,
    price_tokens,
    split_tokens,
)
from tokenid.pricing.rates import _split_modalities, tidy
from tokenid.usage import Usage

D = Decimal


def _buckets(usage: Usage) -> dict[str, int]:
    return dict(zip(COMPONENTS, split_tokens(usage), strict=True))


# -- overrides -----------------------------------------------------------------------------------------------


def test_override_values_accept_str_int_decimal_and_float() -> None:
    parsed = parse_price_overrides(
        {"gpt-4o": {"input": "2.00", "cached_input": 1, "output": D("8.5"), "audio_input": 0.1}}
    )
    rates = parsed["gpt-4o"]
    assert rates.input == D("2.00")
    assert rates.cached_input == D(1)
    assert rates.output == D("8.5")
    # via str(): exactly 0.1, not the binary expansion of the float
    assert rates.audio_input == D("0.1")
    assert all(isinstance(getattr(rates, name), Decimal | type(None)) for name in ("input", "output", "cache_write"))


def test_override_none_leaves_rate_unset_and_rates_instance_passes_through() -> None:
    given = Rates(input=D(1), output=D(2))
    parsed = parse_price_overrides({"a": {"input": "1", "output": None}, "b": given})
    assert parsed["a"].output is None
    assert parsed["b"] is given


@pytest.mark.parametrize("bad", ["-1", -1, -0.5, D("-0.01"), "NaN", "inf", float("nan"), "two", True, [1], None])
def test_bad_input_value_names_the_key(bad: object) -> None:
    with pytest.raises(ConfigError) as err:
        parse_price_overrides({"gpt-4o": {"input": bad, "output": "8"}})
    assert "price_overrides['gpt-4o'].input" in str(err.value)


def test_unknown_rate_key_lists_accepted_rates() -> None:
    with pytest.raises(ConfigError) as err:
        parse_price_overrides({"gpt-4o": {"input": "1", "cached": "0.5"}})
    message = str(err.value)
    assert "price_overrides['gpt-4o'].cached" in message
    assert "'cached_input'" in message and "'output'" in message


def test_override_needs_a_mapping_and_a_name() -> None:
    with pytest.raises(ConfigError, match=r"price_overrides\['gpt-4o'\] must be a mapping"):
        parse_price_overrides({"gpt-4o": "2.50"})
    with pytest.raises(ConfigError, match="price_overrides must be a mapping"):
        parse_price_overrides([("gpt-4o", {})])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="names must be non-empty"):
        parse_price_overrides({"": {"input": "1"}})
    with pytest.raises(ConfigError, match="a name is required after 'deployment:'"):
        parse_price_overrides({"deployment: ": {"input": "1"}})
    assert parse_price_overrides(None) == {}


def test_caller_chooses_the_config_key_name() -> None:
    with pytest.raises(ConfigError, match=r"prices\['x'\]\.output"):
        parse_price_overrides({"x": {"input": "1", "output": "-2"}}, key="prices")


def test_rates_reject_non_decimal_and_negative_values() -> None:
    with pytest.raises(ConfigError, match=r"Rates\.input"):
        Rates(input=D(-1))
    with pytest.raises(ConfigError, match=r"Rates\.output"):
        Rates(input=D(1), output=2.5)  # type: ignore[arg-type]


# -- fallbacks and bucketing -----------------------------------------------------------------------------


def test_missing_rates_fall_back_to_the_general_rate() -> None:
    eff = Rates(input=D(3), output=D(12)).effective
    assert eff["cached_input"] == eff["cache_write"] == eff["audio_input"] == eff["image_input"] == D(3)
    assert eff["cached_audio_input"] == eff["cached_image_input"] == D(3)
    assert eff["audio_output"] == D(12)

    eff = Rates(input=D(3), output=D(12), cached_input=D(1), audio_input=D(40), image_input=D(10)).effective
    # no published cache discount for audio/image: those cached tokens pay the modality rate
    assert eff["cached_audio_input"] == D(40)
    assert eff["cached_image_input"] == D(10)
    eff = Rates(input=D(3), cached_input=D(1)).effective
    assert eff["cached_audio_input"] == D(1)


def test_buckets_partition_input_and_output() -> None:
    usage = Usage(
        input_tokens=1000,
        cached_input_tokens=300,
        cache_write_tokens=50,
        audio_input_tokens=200,
        image_input_tokens=100,
        output_tokens=400,
        reasoning_tokens=150,
        audio_output_tokens=120,
    )
    b = _buckets(usage)
    assert b == {
        "input": 1000 - 300 - 50 - 200 - 100,
        "cached_input": 300,
        "cache_write": 50,
        "audio_input": 200,
        "cached_audio_input": 0,
        "image_input": 100,
        "cached_image_input": 0,
        "output": 400 - 120,  # reasoning stays inside output, billed once
        "audio_output": 120,
    }


def test_cache_overlapping_audio_is_counted_once() -> None:
    # 100 text + 900 audio tokens, 300 cached: at most 100 of the cached can be text
    b = _buckets(Usage(input_tokens=1000, audio_input_tokens=900, cached_input_tokens=300))
    assert b["input"] == 0
    assert b["cached_input"] == 100
    assert b["cached_audio_input"] == 200
    assert b["audio_input"] == 700
    assert sum(b[name] for name in COMPONENTS if name not in ("output", "audio_output")) == 1000


def test_malformed_subsets_are_clipped_to_their_parent() -> None:
    b = _buckets(Usage(input_tokens=10, cached_input_tokens=50, output_tokens=5, audio_output_tokens=9))
    assert b["cached_input"] == 10 and b["input"] == 0
    assert b["audio_output"] == 5 and b["output"] == 0
    assert all(v >= 0 for v in _buckets(Usage(input_tokens=-5, output_tokens=-1, cached_input_tokens=-3)).values())


# -- arithmetic --------------------------------------------------------------------------------------------


def test_cost_worked_example() -> None:
    rates = Rates(input=D("2.00"), cached_input=D("1.00"), output=D("8.00"))
    usage = Usage(input_tokens=1000, cached_input_tokens=400, output_tokens=300, reasoning_tokens=100)
    # 600 uncached x $2/M + 400 cached x $1/M + 300 output x $8/M = $0.0012 + $0.0004 + $0.0024
    assert price_tokens(rates, split_tokens(usage)) == D("0.0040")


def test_cost_is_exact_for_sub_micro_dollar_calls() -> None:
    rates = Rates(input=D("0.15"), output=D("0.6"))
    cost = price_tokens(rates, split_tokens(Usage(input_tokens=1)))
    assert cost == D("0.00000015")
    assert isinstance(cost, Decimal)


def test_missing_rate_for_used_tokens_raises() -> None:
    with pytest.raises(MissingRateError) as err:
        price_tokens(Rates(input=D(1)), split_tokens(Usage(input_tokens=5, output_tokens=1)))
    assert err.value.component == "output"
    # an input-only card is fine when there is no output
    assert price_tokens(Rates(input=D(1)), split_tokens(Usage(input_tokens=5))) == D("0.000005")


def test_component_costs_sum_to_the_total_with_a_multiplier() -> None:
    rates = Rates(input=D("2.5"), cached_input=D("1.25"), output=D(10), audio_output=D(80))
    usage = Usage(input_tokens=12345, cached_input_tokens=2048, output_tokens=999, audio_output_tokens=333)
    lines = component_costs(rates, usage, D("1.10"))
    assert [line.component for line in lines] == list(COMPONENTS)
    assert sum(line.cost_usd for line in lines) == price_tokens(rates, split_tokens(usage)) * D("1.10")


def test_tiers_apply_above_the_threshold_only() -> None:
    base, high = Rates(input=D(1), output=D(2)), Rates(input=D(2), output=D(3))
    tiered = TieredRates(base, ((1000, high),))
    assert tiered.for_input(0) is base
    assert tiered.for_input(1000) is base
    assert tiered.for_input(1001) is high


def test_scaled_multiplies_every_set_rate() -> None:
    scaled = Rates(input=D("2.5"), output=D(10)).scaled(D("1.1"))
    assert (scaled.input, scaled.output, scaled.cached_input) == (D("2.75"), D("11.0"), None)


@pytest.mark.parametrize(("raw", "text"), [("13.4750000", "13.475"), ("0E-9", "0"), ("1E+2", "100"), ("7", "7")])
def test_tidy_keeps_value_and_drops_trailing_zeros(raw: str, text: str) -> None:
    assert str(tidy(D(raw))) == text
    assert tidy(D(raw)) == D(raw)


_COUNT = st.integers(-5, 10_000)


@given(inp=_COUNT, cached=_COUNT, out=_COUNT, reasoning=_COUNT, total=st.none() | _COUNT)
def test_a_text_only_call_splits_as_the_general_split_would(inp: int, cached: int, out: int, reasoning: int,
                                                             total: int | None) -> None:
    # split_tokens has a short path for calls without audio, image or cache-write tokens: it must agree with the
    # general split on every such call, malformed counts (negative, cached above input) included
    usage = Usage(input_tokens=inp, cached_input_tokens=cached, output_tokens=out, reasoning_tokens=reasoning,
                  total_tokens=total)
    assert split_tokens(usage) == _split_modalities(usage)
