"""The genai-prices catalogue seen through TokenID's eyes: model lookup and per-token rate cards.

Everything that touches genai-prices lives here, so an upgrade of that library is one file's problem. TokenID uses
genai-prices only to find a model and read its list prices; the arithmetic is TokenID's own (see ``rates.py``)
because ``genai_prices.calc_price`` raises on usages TokenID must still price (cached *and* audio tokens reported
without the cached-audio split) and cannot apply overrides or Azure deployment-type multipliers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

import genai_prices
from genai_prices.data_snapshot import DataSnapshot, get_snapshot
from genai_prices.types import (
    ConditionalPrice,
    ModelInfo,
    ModelPrice,
    StartDateConstraint,
    TieredPrices,
    TimeOfDateConstraint,
)

from tokenid.pricing.rates import Rates, TieredRates

__all__ = [
    "GENAI_PROVIDER_IDS",
    "PRICE_KEY_TO_RATE",
    "SUPPLEMENT_PRICES",
    "CatalogPrice",
    "Constraint",
    "catalog_prices",
    "current_snapshot",
    "find_model",
    "source_label",
]

#: TokenID provider -> genai-prices provider id. genai-prices' "azure" provider prices OpenAI models through its
#: fallback to "openai" (Global list prices) and adds Azure-only entries (e.g. ``ada`` = text-embedding-ada-002).
GENAI_PROVIDER_IDS: Mapping[str, str] = MappingProxyType({"openai": "openai", "azure_openai": "azure"})

#: genai-prices price keys (per million tokens) -> :class:`Rates` field. Other keys (web/file searches, audio
#: hours, characters, output image tokens) price things ``Usage`` does not count and are reported, not used.
PRICE_KEY_TO_RATE: Mapping[str, str] = MappingProxyType(
    {
        "input_mtok": "input",
        "output_mtok": "output",
        "cache_read_mtok": "cached_input",
        "cache_write_mtok": "cache_write",
        "input_audio_mtok": "audio_input",
        "output_audio_mtok": "audio_output",
        "cache_audio_read_mtok": "cached_audio_input",
        "input_image_mtok": "image_input",
        "cache_image_read_mtok": "cached_image_input",
    }
)

#: Token prices genai-prices lacks for some of its models (USD per million; added only where the entry has no such
#: key). Source: OpenAI API pricing page (https://openai.com/api/pricing/, "Audio tokens", 2025): the audio-preview
#: chat models bill audio at their own rates, not at the text rates that would otherwise apply.
SUPPLEMENT_PRICES: Mapping[str, Mapping[str, Decimal]] = MappingProxyType(
    {
        "gpt-4o-audio-preview": {"input_audio_mtok": Decimal("40"), "output_audio_mtok": Decimal("80")},
        "gpt-4o-mini-audio-preview": {"input_audio_mtok": Decimal("10"), "output_audio_mtok": Decimal("20")},
    }
)

Constraint = StartDateConstraint | TimeOfDateConstraint
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class CatalogPrice:
    """One dated price of a catalogue model: ``rates`` is None when it has no per-token price at all.

    ``unit_prices`` holds the non-token prices TokenID can apply (price key -> USD, e.g. ``input_mchars``; see
    ``units.CATALOG_UNIT_KEYS``); ``other_units`` names the keys it cannot.
    """

    constraint: Constraint | None
    rates: TieredRates | None
    other_units: tuple[str, ...]
    unit_prices: Mapping[str, Decimal] = field(default_factory=dict)


def current_snapshot() -> DataSnapshot:
    """The price data genai-prices is using now (bundled, or replaced by its auto-updater)."""
    return get_snapshot()


def source_label(snapshot: DataSnapshot) -> str:
    """``price_source`` text for list prices, e.g. ``genai-prices 0.2.3``."""
    label = f"genai-prices {genai_prices.__version__}"
    if snapshot.from_auto_update:
        label += f" (data {snapshot.timestamp:%Y-%m-%d})"
    return label


def find_model(snapshot: DataSnapshot, name: str, provider: str) -> ModelInfo | None:
    """The catalogue model ``name`` matches under TokenID ``provider``, or None."""
    provider_id = GENAI_PROVIDER_IDS.get(provider, provider)
    try:
        return snapshot.find_provider_model(name, None, provider_id, None)[1]
    except LookupError:
        return None


def catalog_prices(model: ModelInfo) -> tuple[CatalogPrice, ...]:
    """Every dated price of ``model`` in catalogue order (the last active one applies, else the first)."""
    if isinstance(model.prices, ModelPrice):
        conditional = [ConditionalPrice(prices=model.prices)]
    else:
        conditional = list(model.prices)
    extra = SUPPLEMENT_PRICES.get(model.id, {})
    return tuple(_convert(price.constraint, price.prices, extra) for price in conditional)


def _convert(constraint: Constraint | None, price: ModelPrice, extra: Mapping[str, Decimal]) -> CatalogPrice:
    from tokenid.pricing.units import CATALOG_UNIT_KEYS

    token_prices: dict[str, Decimal | TieredPrices] = {}
    unit_prices: dict[str, Decimal] = {}
    others: list[str] = []
    given = {key: value for key, value in vars(price).items() if value is not None}
    for key, value in {**extra, **given}.items():
        if value is None or key.startswith("_"):
            continue
        rate_field = PRICE_KEY_TO_RATE.get(key)
        if rate_field is not None and isinstance(value, Decimal | TieredPrices):
            token_prices[rate_field] = value
        elif key in CATALOG_UNIT_KEYS and isinstance(value, Decimal):
            unit_prices[key] = value
        else:
            others.append(key)
    units = MappingProxyType(unit_prices)
    if not token_prices:
        if not others and not unit_prices:
            # an entry with no prices at all is a free model (moderation, ":free" variants): genuinely $0
            return CatalogPrice(constraint, TieredRates(Rates(input=_ZERO, output=_ZERO)), ())
        return CatalogPrice(constraint, None, tuple(others), units)
    thresholds = sorted(
        {tier.start for value in token_prices.values() if isinstance(value, TieredPrices) for tier in value.tiers}
    )
    base = _rates_at(token_prices, None)
    tiers = tuple((threshold, _rates_at(token_prices, threshold)) for threshold in thresholds)
    return CatalogPrice(constraint, TieredRates(base, tiers), tuple(others), units)


def _rates_at(token_prices: Mapping[str, Decimal | TieredPrices], threshold: int | None) -> Rates:
    """Flat rates for calls whose input exceeds ``threshold`` (None: below every tier)."""
    flat: dict[str, Decimal] = {}
    for rate_field, value in token_prices.items():
        if isinstance(value, Decimal):
            flat[rate_field] = value
            continue
        chosen = value.base
        for tier in sorted(value.tiers, key=lambda t: t.start):
            if threshold is not None and tier.start <= threshold:
                chosen = tier.price
        flat[rate_field] = chosen
    return Rates(**flat)
