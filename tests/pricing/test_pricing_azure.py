"""Azure prices from the retail list: deployment type, region, batch, priority, and the fallbacks."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from tokenid.pricing import Pricer
from tokenid.pricing.azure import AzureRates
from tokenid.pricing.retail import RetailPrice, RetailPrices
from tokenid.usage import Usage

AT = datetime(2026, 7, 15, tzinfo=timezone.utc)
MILLION = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
DEPLOYMENTS = {
    "glb": {"model": "gpt-4o", "version": "2024-08-06", "type": "global"},
    "dz": {"model": "gpt-4o", "version": "2024-08-06", "type": "data_zone"},
    "reg": {"model": "gpt-4o", "version": "2024-08-06", "type": "regional"},
    "reg-1120": {"model": "gpt-4o", "version": "2024-11-20", "type": "regional"},
    "mini-dz": {"model": "gpt-4o-mini", "version": "2024-07-18", "type": "data_zone"},
    "41": {"model": "gpt-4.1", "version": "2025-04-14", "type": "global"},
}


def azure(pricer: Pricer, deployment: str, usage: Usage = MILLION, **kwargs: object) -> object:
    return pricer.price(provider="azure_openai", usage=usage, model_served=None, model_requested=deployment,
                        deployment=deployment, at=AT, **kwargs)  # type: ignore[arg-type]


def test_bundled_retail_prices_match_the_published_azure_figures() -> None:
    pricer = Pricer(deployments=DEPLOYMENTS)
    # PRICING.md comparison table (per 1M, eastus2): global 2.5/10, data zone 2.75/11, regional 2.75/11
    glb = pricer.price(provider="azure_openai", usage=MILLION, model_served=None, model_requested="glb",
                       deployment="glb", at=AT)
    assert glb.cost_usd == Decimal("12.5") and glb.price_source.startswith("azure-retail 2026-07-31")  # type: ignore
    assert glb.meters and all("0806" in m for m in glb.meters)
    dz = pricer.price(provider="azure_openai", usage=MILLION, model_served=None, model_requested="dz",
                      deployment="dz", at=AT, region="East US 2")
    assert dz.cost_usd == Decimal("13.75") and dz.multiplier == 1
    cached = pricer.price(provider="azure_openai", usage=Usage(input_tokens=1_000_000, cached_input_tokens=1_000_000),
                          model_served=None, model_requested="dz", deployment="dz", at=AT, region="eastus2")
    assert cached.cost_usd == Decimal("1.375")  # the Data Zone cached meter itself, not 1.1 x 1.25 by assumption


def test_regional_premium_differs_by_model_version_in_one_region() -> None:
    """PRICING.md §1: in swedencentral regional gpt-4o-2024-08-06 is 1.10x but 2024-11-20 is 1.21x."""
    pricer = Pricer(deployments=DEPLOYMENTS)
    usage = Usage(input_tokens=1_000_000)
    r0806 = pricer.price(provider="azure_openai", usage=usage, model_served=None, model_requested="reg",
                         deployment="reg", at=AT, region="swedencentral")
    assert r0806.cost_usd == Decimal("2.75")
    r1120 = pricer.price(provider="azure_openai", usage=usage, model_served=None, model_requested="reg-1120",
                         deployment="reg-1120", at=AT, region="swedencentral")
    if r1120.meters:  # the snapshot has the 1120 regional meter for Sweden
        assert r1120.cost_usd == Decimal("3.025")
    else:  # merged-region rows disagree: the list price x the US/EU factor, never a guessed region
        assert r1120.cost_usd == Decimal("2.75") and r1120.price_source.startswith("genai-prices")


def test_batch_and_priority_use_their_own_meters() -> None:
    pricer = Pricer(deployments=DEPLOYMENTS)
    batch = pricer.price(provider="azure_openai", usage=MILLION, model_served="gpt-4o-mini-2024-07-18",
                         model_requested=None, deployment=None, at=AT, batch=True)
    assert batch.deployment_type == "global_batch" and batch.cost_usd == Decimal("0.375")  # 0.075 + 0.30
    assert any("Batch" in m for m in batch.meters)
    priority = pricer.price(provider="azure_openai", usage=MILLION, model_served=None, model_requested="41",
                            deployment="41", at=AT, service_tier="priority")
    assert priority.cost_usd == Decimal("17.5")  # the pp meters: $3.50 / $14
    assert any(" pp " in f" {m} " for m in priority.meters)


def test_explicit_configuration_beats_the_retail_list() -> None:
    own_factor = Pricer(deployments=DEPLOYMENTS, deployment_multipliers={"data_zone": "1.5"})
    result = own_factor.price(provider="azure_openai", usage=MILLION, model_served=None, model_requested="dz",
                              deployment="dz", at=AT)
    assert result.cost_usd == Decimal("18.75") and not result.meters
    override = Pricer(deployments=DEPLOYMENTS, overrides={"gpt-4o": {"input": 1, "output": 1}})
    assert override.price(provider="azure_openai", usage=MILLION, model_served=None, model_requested="glb",
                          deployment="glb", at=AT).cost_usd == Decimal(2)
    off = Pricer(deployments=DEPLOYMENTS, azure_retail=False)
    assert off.price(provider="azure_openai", usage=MILLION, model_served=None, model_requested="dz",
                     deployment="dz", at=AT).price_source.startswith("genai-prices")  # type: ignore[union-attr]


def test_prices_follow_the_effective_date_and_a_custom_list() -> None:
    def item(price: str, start: date) -> RetailPrice:
        return RetailPrice("gpt-4o-0806-Inp-glbl Tokens", "Azure OpenAI", "", "eastus", "1K", Decimal(price), "USD",
                           start, "test")

    prices = RetailPrices([item("0.003", date(2026, 1, 1)), item("0.002", date(2026, 6, 1))], fetched=date(2026, 7, 1))
    pricer = Pricer(deployments=DEPLOYMENTS, azure_retail=AzureRates(prices))
    usage = Usage(input_tokens=1_000_000)

    def at(day: datetime) -> Decimal | None:
        return pricer.price(provider="azure_openai", usage=usage, model_served=None, model_requested="glb",
                            deployment="glb", at=day, region="East US").cost_usd

    assert at(datetime(2026, 3, 1, tzinfo=timezone.utc)) == Decimal(3)
    assert at(datetime(2026, 6, 2, tzinfo=timezone.utc)) == Decimal(2)
    assert at(datetime(2025, 1, 1, tzinfo=timezone.utc)) == Decimal("2.5")  # before any meter: list price


def test_explain_names_the_meters() -> None:
    text = str(Pricer(deployments=DEPLOYMENTS).explain(provider="azure_openai", usage=MILLION, deployment="dz",
                                                       at=AT, region="eastus2"))
    assert "azure-retail" in text and "Data Zone" in text
