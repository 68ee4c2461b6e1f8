"""How each Azure deployment type's per-token price relates to the Global list price genai-prices carries.

Source: /work/shared/azure-billing/PRICING.md, §1 "Global vs Data Zone vs Regional (Standard)" and §2 "Batch,
cached input, priority processing, long context" (Azure Retail Prices API dumps of 2025-08 and 2026-07):

* Global Standard = 1.00 × Global, the same in every region; genai-prices matches it exactly (§4).
* Data Zone Standard = 1.10 × Global in US and EU data zones (1.20 APAC, ~1.375 US Gov).
* Regional ("Standard") = 1.10 × Global in US regions, 1.21 in Sweden/France/UK/Japan East…, 1.32 in
  North/West Europe and South-East Asia; the multiple can differ by model even within one region.
* Global Batch = 0.50 × Global Standard; Data Zone Batch = 0.50 × Data Zone = 0.55 × Global.
* Older models (gpt-35-turbo, gpt-4, gpt-4-turbo, ada and 3-series embeddings) carry no Data Zone / Regional
  premium: their Regional price equals Global.
* Provisioned (PTU) deployments are billed per PTU-hour, so a call's marginal cost is zero (§3).

The defaults below are the US/EU figures; a deployment elsewhere should override them (``Pricer(
deployment_multipliers=...)``) or, better, give that deployment its exact rates in ``price_overrides``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType

from tokenid.errors import ConfigError
from tokenid.pricing.deployments import DEPLOYMENT_TYPES, normalize_deployment_type
from tokenid.pricing.rates import to_decimal

__all__ = [
    "BATCH_MULTIPLIER",
    "BATCH_TYPES",
    "DEFAULT_DEPLOYMENT_MULTIPLIERS",
    "FLEX_MULTIPLIER",
    "NO_PREMIUM_EQUIVALENT",
    "NO_PREMIUM_MODELS",
    "PRIORITY_MULTIPLIERS",
    "parse_deployment_multipliers",
    "parse_model_set",
    "service_tier_multiplier",
]

#: Deployment type -> factor applied to the Global list price (PRICING.md §1-§2; US/EU regions).
#: "provisioned" has no entry: it is never priced per token.
DEFAULT_DEPLOYMENT_MULTIPLIERS: Mapping[str, Decimal] = MappingProxyType(
    {
        "global": Decimal("1"),
        "data_zone": Decimal("1.10"),
        "regional": Decimal("1.10"),
        "global_batch": Decimal("0.50"),
        "data_zone_batch": Decimal("0.55"),
    }
)

#: Models (unversioned canonical names; every version matches) Azure sells without a Data Zone / Regional
#: premium (PRICING.md §1 caveats). Their premium types are priced like the Global equivalent below.
NO_PREMIUM_MODELS: frozenset[str] = frozenset(
    {
        "gpt-3.5-turbo",
        "gpt-3.5-turbo-16k",
        "gpt-3.5-turbo-instruct",
        "gpt-4",
        "gpt-4-32k",
        "gpt-4-turbo",
        "gpt-4-1106-preview",
        "gpt-4-0125-preview",
        "gpt-4-vision-preview",
        "text-embedding-ada-002",
        "text-embedding-3-small",
        "text-embedding-3-large",
    }
)

#: For a :data:`NO_PREMIUM_MODELS` model: deployment type -> the type whose multiplier it gets instead.
NO_PREMIUM_EQUIVALENT: Mapping[str, str] = MappingProxyType(
    {"data_zone": "global", "regional": "global", "data_zone_batch": "global_batch"}
)


def parse_deployment_multipliers(
    value: Mapping[str, object] | None, *, key: str = "deployment_multipliers"
) -> dict[str, Decimal]:
    """The default multipliers with ``value``'s entries (type spelling -> number >= 0) laid over them."""
    result = dict(DEFAULT_DEPLOYMENT_MULTIPLIERS)
    if value is None:
        return result
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} must be a mapping of deployment type to multiplier, e.g. {{'regional': '1.21'}}")
    priced = ", ".join(repr(t) for t in DEPLOYMENT_TYPES if t != "provisioned")
    for raw_type, raw_factor in value.items():
        kind = normalize_deployment_type(raw_type, f"{key}[{raw_type!r}]")
        if kind == "provisioned":
            raise ConfigError(
                f"{key}[{raw_type!r}]: provisioned deployments are not priced per token; give the deployment "
                f"per-token rates in price_overrides instead. Types with a multiplier: {priced}"
            )
        result[kind] = to_decimal(raw_factor, f"{key}[{raw_type!r}]")
    return result


def parse_model_set(value: Iterable[str] | None, *, key: str = "no_premium_models") -> frozenset[str]:
    """A set of model names (as given, lower-cased); None means :data:`NO_PREMIUM_MODELS`."""
    if value is None:
        return NO_PREMIUM_MODELS
    if isinstance(value, str | Mapping):
        raise ConfigError(f"{key} must be a list of model names such as ['gpt-4', 'gpt-35-turbo']")
    names = set()
    for name in value:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{key} must contain non-empty model names; got {name!r}")
        names.add(name.strip().lower())
    return frozenset(names)


#: OpenAI Batch API: half the synchronous price for every model (openai.com/api/pricing, "Batch" column).
BATCH_MULTIPLIER = Decimal("0.5")
#: Azure deployment type -> the type a Batch API job on it is billed as (PRICING.md §2).
BATCH_TYPES: Mapping[str, str] = MappingProxyType(
    {"global": "global_batch", "data_zone": "data_zone_batch", "regional": "global_batch",
     "global_batch": "global_batch", "data_zone_batch": "data_zone_batch"}
)

#: ``service_tier="flex"``: half the standard price (openai.com/api/pricing, "Flex" column: o3, o4-mini, gpt-5.x).
FLEX_MULTIPLIER = Decimal("0.5")
#: ``service_tier="priority"``: model family (unversioned, longest prefix wins) -> factor on the standard price.
#: Azure ``pp`` meters (PRICING.md §2): 1.75x gpt-4.1 and 4.1-mini, 1.8x gpt-5-mini, 2.0x GPT-5/5.1/5.2/5.4/5.6.
#: OpenAI priority column (openai.com/api/pricing, 2025): gpt-4o $4.25/$17 (1.7x), gpt-4o-mini $0.25/$1
#: (5/3x), gpt-4.1-nano $0.20/$0.80 (2x), o3 $3.50/$14 (1.75x), o4-mini $2/$8 (20/11x).
PRIORITY_MULTIPLIERS: Mapping[str, Decimal] = MappingProxyType(
    {
        "gpt-4o": Decimal("1.7"),
        "gpt-4o-mini": Decimal(5) / Decimal(3),
        "gpt-4.1": Decimal("1.75"),
        "gpt-4.1-mini": Decimal("1.75"),
        "gpt-4.1-nano": Decimal("2"),
        "o3": Decimal("1.75"),
        "o4-mini": Decimal(20) / Decimal(11),
        "gpt-5": Decimal("2"),
        "gpt-5-mini": Decimal("1.8"),
    }
)
_NO_PRIORITY = ("gpt-5-nano",)  # not sold with priority processing
_PRIORITY_PREFIXES = sorted(PRIORITY_MULTIPLIERS, key=len, reverse=True)


def service_tier_multiplier(service_tier: str | None, model: str) -> Decimal | None:
    """Factor a response's ``service_tier`` puts on ``model``'s price: 1 for default tiers, None when unknown."""
    if service_tier in (None, "", "default", "auto", "standard", "scale"):
        return Decimal(1)
    if service_tier == "flex":
        return FLEX_MULTIPLIER
    if service_tier == "priority":
        if any(model == n or model.startswith(n + "-") for n in _NO_PRIORITY):
            return None
        for prefix in _PRIORITY_PREFIXES:
            if model == prefix or model.startswith(prefix + "-") or model.startswith(prefix + "."):
                # gpt-5.1, gpt-5.2 ... share GPT-5's factor; a longer known prefix (gpt-5-mini) wins first
                return PRIORITY_MULTIPLIERS[prefix]
        return None
    return None
