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
    "DEFAULT_DEPLOYMENT_MULTIPLIERS",
    "NO_PREMIUM_EQUIVALENT",
    "NO_PREMIUM_MODELS",
    "parse_deployment_multipliers",
    "parse_model_set",
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
