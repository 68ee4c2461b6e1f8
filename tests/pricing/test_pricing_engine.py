"""Pricer: model resolution, rate precedence, Azure deployment types, unpriced reasons, time, caching."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import genai_prices
import pytest
from genai_prices import calc_price
from genai_prices import types as gp
from genai_prices.data_snapshot import DataSnapshot, set_custom_snapshot

from tokenid.errors import ConfigError
from tokenid.pricing import (
    DEFAULT_DEPLOYMENT_MULTIPLIERS,
    PROVISIONED_SOURCE,
    Pricer,
    PriceResult,
    Rates,
)
from tokenid.usage import Usage


def ListPricer(**kwargs: Any) -> Pricer:
    """A Pricer on list prices x deployment-type factors (the Azure retail list is tested in test_pricing_azure)."""
    return Pricer(azure_retail=False, **kwargs)

D = Decimal
LIST = f"genai-prices {genai_prices.__version__}"
USAGE = Usage(input_tokens=1_000_000, output_tokens=200_000, cached_input_tokens=250_000, reasoning_tokens=50_000)


def azure(pricer: Pricer, deployment: str | None, served: str | None = None, **kw: Any) -> PriceResult:
    kw.setdefault("usage", USAGE)
    kw.setdefault("model_requested", deployment)
    return pricer.price(provider="azure_openai", deployment=deployment, model_served=served, **kw)


def openai(pricer: Pricer, served: str | None, requested: str | None = None, **kw: Any) -> PriceResult:
    kw.setdefault("usage", USAGE)
    return pricer.price(provider="openai", deployment=None, model_served=served, model_requested=requested, **kw)


def oracle(model: str, usage: Usage, provider_id: str = "openai", at: datetime | None = None) -> Decimal:
    """genai-prices' own calculation, for usages it accepts (no audio/image overlap)."""
    gp_usage = genai_prices.Usage(
        input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, cache_read_tokens=usage.cached_input_tokens
    )
    return calc_price(gp_usage, model, provider_id=provider_id, genai_request_timestamp=at).total_price


# -- resolution ----------------------------------------------------------------------------------------------


def test_deployment_map_beats_the_served_model() -> None:
    pricer = ListPricer(deployments={"prod": {"model": "gpt-4o", "version": "2024-05-13"}})
    result = azure(pricer, "prod", served="gpt-4o-mini-2024-07-18")
    assert (result.canonical_model, result.resolved_by) == ("gpt-4o-2024-05-13", "deployment_map")
    assert result.cost_usd == oracle("gpt-4o-2024-05-13", USAGE)


def test_version_joins_the_model_name() -> None:
    pricer = ListPricer(
        deployments={
            "old": {"model": "gpt-35-turbo", "version": "0613"},
            "turbo": {"model": "gpt-4", "version": "turbo-2024-04-09"},
            "emb": {"model": "text-embedding-ada-002", "version": "2"},  # not a name suffix: model alone
        }
    )
    assert azure(pricer, "old").canonical_model == "gpt-3.5-turbo-0613"
    assert azure(pricer, "old").cost_usd == oracle("gpt-3.5-turbo-0613", USAGE)
    assert azure(pricer, "turbo").canonical_model == "gpt-4-turbo-2024-04-09"
    emb = azure(pricer, "emb", usage=Usage(input_tokens=1000))
    assert emb.canonical_model == "text-embedding-ada-002"
    assert emb.cost_usd == D("0.0001")


def test_azure_uses_the_served_model_when_the_deployment_is_unmapped() -> None:
    result = azure(ListPricer(), "my-prod-4o", served="gpt-4o-2024-11-20")
    assert (result.canonical_model, result.resolved_by) == ("gpt-4o-2024-11-20", "response_model")
    assert result.deployment_type == "global"


def test_azure_guesses_from_the_deployment_name_only_as_last_resort() -> None:
    result = azure(ListPricer(), "gpt-4o-mini")
    assert (result.canonical_model, result.resolved_by) == ("gpt-4o-mini-2024-07-18", "deployment_name_guess")
    assert result.cost_usd is not None


def test_azure_never_takes_the_requested_model_as_a_model_name_when_better_sources_exist() -> None:
    # on Azure model_requested is the deployment name; the served model wins
    result = azure(ListPricer(), "gpt-4o", served="gpt-4o-mini-2024-07-18", model_requested="gpt-4o")
    assert result.resolved_by == "response_model"
    assert result.canonical_model == "gpt-4o-mini-2024-07-18"


def test_openai_prefers_served_over_requested() -> None:
    result = openai(ListPricer(), "gpt-4o-2024-05-13", "gpt-4o")
    assert (result.canonical_model, result.resolved_by) == ("gpt-4o-2024-05-13", "response_model")
    result = openai(ListPricer(), None, "gpt-4o")
    assert (result.canonical_model, result.resolved_by) == ("gpt-4o-2024-08-06", "request_model")


def test_unknown_served_model_falls_back_to_the_next_source() -> None:
    result = openai(ListPricer(), "brand-new-model-x", "gpt-4o-mini")
    assert result.resolved_by == "request_model"


def test_openai_ignores_deployments() -> None:
    pricer = ListPricer(deployments={"gpt-4o": {"model": "gpt-4.1", "type": "regional"}})
    result = pricer.price(
        provider="openai", usage=USAGE, model_served=None, model_requested="gpt-4o", deployment="gpt-4o"
    )
    assert result.canonical_model == "gpt-4o-2024-08-06"
    assert result.deployment_type is None


def test_user_alias_reaches_pricing() -> None:
    pricer = ListPricer(aliases={"house-model": "gpt-4.1-mini"})
    result = openai(pricer, "house-model")
    assert result.canonical_model == "gpt-4.1-mini-2025-04-14"
    assert result.cost_usd == oracle("gpt-4.1-mini", USAGE)


# -- unpriced reasons ----------------------------------------------------------------------------------------


def test_unknown_model_has_no_cost_and_says_why() -> None:
    result = openai(ListPricer(), "foo")
    assert result.cost_usd is None
    assert result.unpriced_reason == "unknown model 'foo'"
    assert result.canonical_model is None


def test_unmapped_deployment_name_reason_points_to_the_map() -> None:
    result = azure(ListPricer(), "my-prod-4o")
    assert result.cost_usd is None
    assert result.unpriced_reason is not None
    assert "my-prod-4o" in result.unpriced_reason and "deployments" in result.unpriced_reason


def test_no_usage_is_unpriced_but_still_resolved() -> None:
    result = openai(ListPricer(), "gpt-4o", usage=None)
    assert (result.cost_usd, result.unpriced_reason) == (None, "no usage")
    assert result.canonical_model == "gpt-4o-2024-08-06"


def test_no_model_names_at_all() -> None:
    result = openai(ListPricer(), None, None)
    assert result.cost_usd is None
    assert result.unpriced_reason is not None and "no model name" in result.unpriced_reason


def test_unknown_provider_does_not_raise() -> None:
    result = ListPricer().price(provider="anthropic", usage=USAGE, model_served="x", model_requested=None,
                                deployment=None)
    assert result.cost_usd is None
    assert result.unpriced_reason is not None and "'anthropic'" in result.unpriced_reason


def test_aliased_model_without_a_catalogue_price() -> None:
    result = openai(ListPricer(aliases={"house": "our-own-model"}), "house")
    assert result.canonical_model == "our-own-model"
    assert result.unpriced_reason == f"no price for our-own-model in {LIST}"


def test_model_priced_by_audio_hours_has_no_token_price() -> None:
    result = openai(ListPricer(), "whisper-1", usage=Usage(input_tokens=10))
    assert result.cost_usd is None
    assert result.unpriced_reason is not None and result.unpriced_reason.startswith("no per-token price for whisper-1")


def test_missing_output_rate_is_unpriced_not_zero() -> None:
    # genai-prices' Azure "davinci" entry (davinci-002) has only an input price
    result = azure(ListPricer(), "d", served="davinci-002", usage=Usage(input_tokens=10, output_tokens=10))
    assert result.cost_usd is None
    assert result.unpriced_reason is not None and "no output price" in result.unpriced_reason


def test_zero_usage_of_a_known_model_costs_exactly_zero() -> None:
    result = openai(ListPricer(), "gpt-4o", usage=Usage())
    assert result.cost_usd == D(0)
    assert result.cost_usd is not None and result.unpriced_reason is None


def test_free_model_costs_zero() -> None:
    result = openai(ListPricer(), "omni-moderation-latest", usage=Usage(input_tokens=500))
    assert result.cost_usd == D(0)


# -- list prices agree with genai-prices ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    ["gpt-4o", "gpt-4o-2024-05-13", "gpt-4o-mini", "gpt-4.1", "o3-mini", "o1", "gpt-5", "gpt-3.5-turbo-0613"],
)
@pytest.mark.parametrize("provider", ["openai", "azure_openai"])
def test_global_list_price_matches_genai_prices(model: str, provider: str) -> None:
    usage = Usage(input_tokens=123_457, output_tokens=45_679, cached_input_tokens=23_456, reasoning_tokens=9_999)
    pricer = ListPricer()
    result = pricer.price(provider=provider, usage=usage, model_served=model, model_requested=None, deployment="d")
    gp_provider = "openai" if provider == "openai" else "azure"
    assert result.cost_usd == oracle(model, usage, gp_provider)
    assert result.price_source == LIST
    assert isinstance(result.cost_usd, Decimal)


def test_realtime_audio_matches_genai_prices_when_cache_and_audio_are_disjoint() -> None:
    usage = Usage(
        input_tokens=10_000,
        cached_input_tokens=2_000,
        audio_input_tokens=5_000,
        output_tokens=3_000,
        audio_output_tokens=2_500,
    )
    expected = calc_price(
        genai_prices.Usage(
            input_tokens=10_000,
            cache_read_tokens=2_000,
            input_audio_tokens=5_000,
            cache_audio_read_tokens=0,
            output_tokens=3_000,
            output_audio_tokens=2_500,
        ),
        "gpt-4o-realtime-preview",
        provider_id="openai",
    ).total_price
    assert openai(ListPricer(), "gpt-4o-realtime-preview-2024-12-17", usage=usage).cost_usd == expected


def test_long_context_tier_matches_genai_prices() -> None:
    for tokens in (272_000, 272_001):
        usage = Usage(input_tokens=tokens, output_tokens=1000)
        assert openai(ListPricer(), "gpt-5.4", usage=usage).cost_usd == oracle("gpt-5.4", usage)
    below = openai(ListPricer(), "gpt-5.4", usage=Usage(input_tokens=272_000)).cost_usd
    above = openai(ListPricer(), "gpt-5.4", usage=Usage(input_tokens=272_001)).cost_usd
    assert below is not None and above is not None and above > below * 2 - D("0.01")


def test_dated_prices_follow_at() -> None:
    # o3's list price changed on 2025-06-10 in genai-prices' data
    before = datetime(2025, 6, 1, tzinfo=timezone.utc)
    after = datetime(2025, 7, 1, tzinfo=timezone.utc)
    pricer = ListPricer()
    old = openai(pricer, "o3-2025-04-16", at=before).cost_usd
    new = openai(pricer, "o3-2025-04-16", at=after).cost_usd
    assert old == oracle("o3", USAGE, at=before)
    assert new == oracle("o3", USAGE, at=after)
    assert old != new
    naive = openai(pricer, "o3-2025-04-16", at=datetime(2025, 6, 1, 12)).cost_usd  # noqa: DTZ001 - naive means UTC
    assert naive == old


# -- overrides -------------------------------------------------------------------------------------------------


OVERRIDE_DEP = {"input": "1", "output": "1"}
OVERRIDE_MODEL = {"input": "2", "output": "2"}


def test_deployment_override_beats_model_override_beats_list_price() -> None:
    deployments = {"dep-a": {"model": "gpt-4o", "type": "data_zone"}, "dep-b": {"model": "gpt-4o", "type": "data_zone"}}
    pricer = ListPricer(deployments=deployments, overrides={"dep-a": OVERRIDE_DEP, "gpt-4o": OVERRIDE_MODEL})
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)

    a = azure(pricer, "dep-a", usage=usage)
    assert (a.price_source, a.cost_usd, a.multiplier) == ("override:deployment:dep-a", D(2), D(1))

    b = azure(pricer, "dep-b", usage=usage)
    # model override, still subject to the data-zone premium
    assert b.price_source == "override:model:gpt-4o"
    assert b.cost_usd == D(4) * DEFAULT_DEPLOYMENT_MULTIPLIERS["data_zone"]

    listed = azure(ListPricer(deployments=deployments), "dep-b", usage=usage)
    assert listed.price_source == LIST
    assert listed.cost_usd == oracle("gpt-4o", usage) * DEFAULT_DEPLOYMENT_MULTIPLIERS["data_zone"]


def test_unversioned_model_override_covers_every_version_dated_override_only_its_own() -> None:
    pricer = ListPricer(overrides={"gpt-4o": OVERRIDE_MODEL, "gpt-4o-2024-05-13": OVERRIDE_DEP})
    assert openai(pricer, "gpt-4o-2024-11-20").price_source == "override:model:gpt-4o"
    assert openai(pricer, "gpt-4o").price_source == "override:model:gpt-4o"
    assert openai(pricer, "gpt-4o-2024-05-13").price_source == "override:model:gpt-4o-2024-05-13"
    assert openai(pricer, "gpt-4o-mini").price_source == LIST


def test_override_keys_go_through_aliases() -> None:
    pricer = ListPricer(overrides={"gpt-35-turbo": OVERRIDE_MODEL})
    result = azure(pricer, "x", served="gpt-35-turbo")
    assert result.price_source == "override:model:gpt-3.5-turbo"


def test_explicit_prefixes_disambiguate_a_deployment_named_like_a_model() -> None:
    deployments = {"gpt-4o": {"model": "gpt-4o", "type": "regional"}}
    as_model = ListPricer(deployments=deployments, overrides={"model:gpt-4o": OVERRIDE_MODEL})
    as_dep = ListPricer(deployments=deployments, overrides={"deployment:gpt-4o": OVERRIDE_MODEL})
    bare = ListPricer(deployments=deployments, overrides={"gpt-4o": OVERRIDE_MODEL})
    assert azure(as_model, "gpt-4o").price_source == "override:model:gpt-4o"
    assert azure(as_model, "gpt-4o").multiplier == DEFAULT_DEPLOYMENT_MULTIPLIERS["regional"]
    assert azure(as_dep, "gpt-4o").price_source == "override:deployment:gpt-4o"
    assert azure(bare, "gpt-4o").price_source == "override:deployment:gpt-4o"


def test_override_makes_an_unknown_model_priceable() -> None:
    result = openai(ListPricer(overrides={"our-model": OVERRIDE_MODEL}), "our-model", usage=Usage(input_tokens=10**6))
    assert (result.canonical_model, result.cost_usd) == ("our-model", D(2))


def test_deployment_override_prices_an_unresolvable_deployment() -> None:
    result = azure(ListPricer(overrides={"deployment:mystery": OVERRIDE_DEP}), "mystery",
                   usage=Usage(input_tokens=10**6))
    assert result.cost_usd == D(1)
    assert result.price_source == "override:deployment:mystery"


def test_duplicate_override_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="both name model 'gpt-4o'"):
        ListPricer(overrides={"gpt-4o": OVERRIDE_MODEL, "GPT-4o": OVERRIDE_DEP})


# -- Azure deployment types --------------------------------------------------------------------------------------


def _typed(kind: str, model: str = "gpt-4o") -> PriceResult:
    return azure(ListPricer(deployments={"d": {"model": model, "type": kind}}), "d")


@pytest.mark.parametrize(
    ("kind", "factor"),
    [
        ("global", "1"),
        ("data_zone", "1.10"),
        ("regional", "1.10"),
        ("standard", "1.10"),
        ("global_batch", "0.50"),
        ("data_zone_batch", "0.55"),
    ],
)
def test_deployment_type_multipliers(kind: str, factor: str) -> None:
    result = _typed(kind)
    assert result.cost_usd == oracle("gpt-4o", USAGE, "azure") * D(factor)
    assert result.multiplier == D(factor)


def test_batch_is_half_of_global_and_data_zone_batch_half_of_data_zone() -> None:
    g, dz = _typed("global").cost_usd, _typed("data_zone").cost_usd
    gb, dzb = _typed("global_batch").cost_usd, _typed("data_zone_batch").cost_usd
    assert g is not None and dz is not None and gb is not None and dzb is not None
    assert gb * 2 == g
    assert dzb * 2 == dz


@pytest.mark.parametrize("model", ["gpt-35-turbo", "gpt-4", "text-embedding-ada-002"])
def test_older_models_carry_no_premium(model: str) -> None:
    assert _typed("regional", model).cost_usd == _typed("global", model).cost_usd
    assert _typed("data_zone_batch", model).cost_usd == _typed("global_batch", model).cost_usd


def test_multipliers_are_overridable() -> None:
    pricer = ListPricer(
        deployments={"se": {"model": "gpt-4o", "type": "regional"}}, deployment_multipliers={"Standard": "1.21"}
    )
    assert azure(pricer, "se").cost_usd == oracle("gpt-4o", USAGE, "azure") * D("1.21")


def test_multiplier_table_validation() -> None:
    with pytest.raises(ConfigError, match="provisioned"):
        ListPricer(deployment_multipliers={"provisioned": "0.3"})
    with pytest.raises(ConfigError, match=r"deployment_multipliers\['regional'\]"):
        ListPricer(deployment_multipliers={"regional": "-1"})
    with pytest.raises(ConfigError, match=r"deployment_multipliers\['eu'\]"):
        ListPricer(deployment_multipliers={"eu": "1.2"})


def test_provisioned_costs_zero_even_without_usage_or_known_model() -> None:
    pricer = ListPricer(
        deployments={
            "ptu": {"model": "gpt-4o", "type": "ProvisionedManaged"},
            "ptu-x": {"model": "house-model", "type": "provisioned"},
        }
    )
    for deployment, usage in (("ptu", USAGE), ("ptu", None), ("ptu-x", USAGE)):
        result = azure(pricer, deployment, usage=usage)
        assert result.cost_usd == D(0)
        assert result.price_source == PROVISIONED_SOURCE
        assert result.deployment_type == "provisioned"
        assert result.unpriced_reason is None


def test_provisioned_deployment_override_wins() -> None:
    pricer = ListPricer(deployments={"ptu": {"model": "gpt-4o", "type": "provisioned"}},
                        overrides={"ptu": OVERRIDE_DEP})
    result = azure(pricer, "ptu", usage=Usage(input_tokens=10**6))
    assert (result.cost_usd, result.price_source) == (D(1), "override:deployment:ptu")


def test_default_deployment_type_applies_to_unmapped_deployments() -> None:
    result = azure(ListPricer(default_deployment_type="DataZoneStandard"), "x", served="gpt-4o")
    assert result.deployment_type == "data_zone"
    assert result.multiplier == DEFAULT_DEPLOYMENT_MULTIPLIERS["data_zone"]


# -- caching, threads, data refresh ------------------------------------------------------------------------------


def test_concurrent_pricing_matches_sequential() -> None:
    pricer = ListPricer(
        deployments={f"dep{i}": {"model": "gpt-4o-mini", "type": "data_zone"} for i in range(20)}, cache_size=8
    )
    jobs = [(f"dep{i % 20}", Usage(input_tokens=i * 7, output_tokens=i)) for i in range(2000)]
    expected = [
        azure(ListPricer(deployments={d: {"model": "gpt-4o-mini", "type": "data_zone"}}), d, usage=u) for d, u in jobs
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda job: azure(pricer, job[0], usage=job[1]), jobs))
    assert got == expected


@pytest.fixture
def custom_snapshot() -> Iterator[None]:
    model = gp.ModelInfo(
        id="gpt-4o",
        match=gp.ClauseEquals(equals="gpt-4o-2024-08-06"),
        prices=gp.ModelPrice(input_mtok=D(100), output_mtok=D(300)),
    )
    provider = gp.Provider(id="openai", name="OpenAI", api_pattern="x", models=[model])
    set_custom_snapshot(DataSnapshot(providers=[provider], from_auto_update=True))
    try:
        yield
    finally:
        set_custom_snapshot(None)


def test_new_genai_prices_data_invalidates_the_cache(request: pytest.FixtureRequest) -> None:
    pricer = ListPricer()
    usage = Usage(input_tokens=10**6)
    assert openai(pricer, "gpt-4o", usage=usage).cost_usd == D("2.5")
    request.getfixturevalue("custom_snapshot")
    updated = openai(pricer, "gpt-4o", usage=usage)
    assert updated.cost_usd == D(100)
    assert updated.price_source is not None and updated.price_source.startswith(f"{LIST} (data ")


def test_rates_are_reported_before_the_multiplier() -> None:
    result = _typed("data_zone")
    assert result.rates == Rates(input=D("2.5"), output=D(10), cached_input=D("1.25"))
