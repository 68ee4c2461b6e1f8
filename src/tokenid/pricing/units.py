"""Prices of what is billed by something other than tokens: images, characters, audio seconds, tool calls, training.

Two sources, both list prices in USD:

* genai-prices, for what it carries as non-token keys of a model's price: ``input_mchars`` (tts-1, tts-1-hd: per
  million characters), ``input_audio_hours`` / ``audio_hours`` (whisper-1: per hour of audio),
  ``web_searches_kcount`` and ``storage_searches_kcount`` (Responses web search and file search: per 1,000 calls).
* The tables below, for what genai-prices lacks: DALL·E images per size and quality and fine-tuning training tokens.
  Source: OpenAI's API pricing page (https://openai.com/api/pricing/, "Image generation" and "Fine-tuning"
  sections, as published in 2025); Azure lists the same per-token training prices (shared/azure-billing/PRICING.md
  §3: gpt-4.1 training $25/1M).

A ``units`` object (see :mod:`tokenid.units`) is priced unit by unit; a unit the model has no price for is
reported back, never priced at zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from tokenid.pricing.models import ModelNames
from tokenid.pricing.rates import _CTX

__all__ = [
    "CATALOG_UNIT_KEYS",
    "IMAGE_PRICES",
    "TRAINING_PRICES_PER_MTOK",
    "UNIT_SOURCE",
    "UnitLine",
    "has_unit_prices",
    "image_price",
    "price_units",
    "units_total",
]

UNIT_SOURCE = "openai.com/api/pricing (2025)"

#: genai-prices price key -> (units key, how many units the price is for).
CATALOG_UNIT_KEYS: Mapping[str, tuple[str, Decimal]] = MappingProxyType(
    {
        "input_mchars": ("characters", Decimal(1_000_000)),
        "input_audio_hours": ("audio_seconds", Decimal(3600)),
        "audio_hours": ("audio_seconds", Decimal(3600)),
        "web_searches_kcount": ("web_search_calls", Decimal(1000)),
        "storage_searches_kcount": ("file_search_calls", Decimal(1000)),
    }
)

_D = Decimal
#: Model -> (quality, size) -> USD per image. DALL·E 2 has one quality ("standard").
IMAGE_PRICES: Mapping[str, Mapping[tuple[str, str], Decimal]] = MappingProxyType(
    {
        "dall-e-3": MappingProxyType(
            {
                ("standard", "1024x1024"): _D("0.040"),
                ("standard", "1024x1792"): _D("0.080"),
                ("standard", "1792x1024"): _D("0.080"),
                ("hd", "1024x1024"): _D("0.080"),
                ("hd", "1024x1792"): _D("0.120"),
                ("hd", "1792x1024"): _D("0.120"),
            }
        ),
        "dall-e-2": MappingProxyType(
            {
                ("standard", "1024x1024"): _D("0.020"),
                ("standard", "512x512"): _D("0.018"),
                ("standard", "256x256"): _D("0.016"),
            }
        ),
    }
)
_IMAGE_DEFAULTS = {"dall-e-3": ("standard", "1024x1024"), "dall-e-2": ("standard", "1024x1024")}

#: Unversioned base model -> USD per million training tokens (epochs included in the count).
TRAINING_PRICES_PER_MTOK: Mapping[str, Decimal] = MappingProxyType(
    {
        "gpt-4o": _D("25"),
        "gpt-4o-mini": _D("3"),
        "gpt-4.1": _D("25"),
        "gpt-4.1-mini": _D("5"),
        "gpt-4.1-nano": _D("1.5"),
        "gpt-3.5-turbo": _D("8"),
        "davinci-002": _D("6"),
        "babbage-002": _D("0.4"),
    }
)
_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class UnitLine:
    """One priced unit of a call: ``quantity`` × ``rate`` (USD per single unit) = ``cost_usd``."""

    unit: str
    quantity: Decimal
    rate: Decimal
    cost_usd: Decimal
    source: str


def _base(model: str) -> str:
    return ModelNames.unversioned(model)


def has_unit_prices(model: str) -> bool:
    """True when TokenID's own tables price ``model`` (canonical name) by some unit."""
    base = _base(model)
    return base in IMAGE_PRICES or model in IMAGE_PRICES


def image_price(model: str, quality: str | None, size: str | None) -> Decimal | None:
    """USD per image of a DALL·E model at ``quality`` and ``size`` (defaults as the API applies them), or None."""
    base = model if model in IMAGE_PRICES else _base(model)
    table = IMAGE_PRICES.get(base)
    if table is None:
        return None
    default_quality, default_size = _IMAGE_DEFAULTS[base]
    q = (quality or default_quality).lower()
    if q == "auto":  # the SDK's default spelling: the API applies the model's default quality
        q = default_quality
    return table.get((q, (size or default_size).lower()))


def _training_price(model: str) -> Decimal | None:
    base = _base(model)
    for name in (base, base.removeprefix("ft:").split(":")[0]):
        if name in TRAINING_PRICES_PER_MTOK:
            return TRAINING_PRICES_PER_MTOK[name]
    return None


def price_units(
    model: str, units: Mapping[str, object], catalog_prices: Mapping[str, Decimal], catalog_source: str
) -> tuple[tuple[UnitLine, ...], tuple[str, ...]]:
    """Price the billable units of a call of ``model``: (priced lines, units nobody has a price for).

    ``catalog_prices`` are genai-prices' non-token prices of the model (price key -> USD), as kept by
    :class:`~tokenid.pricing.catalog.CatalogPrice`. Units that only describe the call (``image_size``, the source
    of a duration) are not units to price and are ignored.
    """
    lines: list[UnitLine] = []
    unpriced: list[str] = []
    per_unit: dict[str, tuple[Decimal, str]] = {}
    for key, price in catalog_prices.items():
        target = CATALOG_UNIT_KEYS.get(key)
        if target is not None and target[0] not in per_unit:
            per_unit[target[0]] = (_CTX.divide(price, target[1]), catalog_source)

    images = units.get("images")
    if isinstance(images, int) and images > 0:
        quality, size = units.get("image_quality"), units.get("image_size")
        rate = image_price(
            model, quality if isinstance(quality, str) else None, size if isinstance(size, str) else None
        )
        if rate is not None:
            per_unit["images"] = (rate, UNIT_SOURCE)
    training = _training_price(model)
    if training is not None:
        per_unit["training_tokens"] = (_CTX.divide(training, _MILLION), UNIT_SOURCE)

    for unit in ("images", "characters", "audio_seconds", "web_search_calls", "file_search_calls", "training_tokens"):
        raw = units.get(unit)
        if not isinstance(raw, int | float) or isinstance(raw, bool) or raw <= 0:
            continue
        found = per_unit.get(unit)
        if found is None:
            unpriced.append(unit)
            continue
        quantity = Decimal(str(raw))
        rate, source = found
        lines.append(UnitLine(unit, quantity, rate, _CTX.multiply(quantity, rate), source))
    return tuple(lines), tuple(unpriced)


def units_total(lines: tuple[UnitLine, ...]) -> Decimal:
    """Sum of the lines' costs (exact)."""
    total = _ZERO
    for line in lines:
        total = _CTX.add(total, line.cost_usd)
    return total
