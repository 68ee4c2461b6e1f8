"""Pricing: what an OpenAI / Azure OpenAI call cost, from genai-prices list prices, overrides and Azure deployments.

Entry point is :class:`Pricer`; ``Pricer.price(...)`` returns a :class:`PriceResult` with an exact ``Decimal``
cost (or ``None`` and a reason). The tables (aliases, default versions, deployment-type multipliers) are data
and can be extended through the ``Pricer`` constructor.
"""

from __future__ import annotations

from tokenid.pricing.deployments import (
    DEFAULT_DEPLOYMENT_TYPE,
    DEPLOYMENT_TYPE_ALIASES,
    DEPLOYMENT_TYPES,
    DeploymentSpec,
    normalize_deployment_type,
    parse_deployments,
)
from tokenid.pricing.engine import PROVIDERS, PROVISIONED_SOURCE, RESOLVED_BY, Pricer, PriceResult
from tokenid.pricing.explain import PriceExplanation, format_usd
from tokenid.pricing.models import DEFAULT_ALIASES, DEFAULT_VERSIONS, ModelNames, canonical_model, parse_aliases
from tokenid.pricing.multipliers import (
    DEFAULT_DEPLOYMENT_MULTIPLIERS,
    NO_PREMIUM_EQUIVALENT,
    NO_PREMIUM_MODELS,
    parse_deployment_multipliers,
)
from tokenid.pricing.rates import (
    COMPONENTS,
    RATE_FIELDS,
    ComponentCost,
    MissingRateError,
    Rates,
    TieredRates,
    component_costs,
    parse_price_overrides,
    price_tokens,
    split_tokens,
)

__all__ = [
    "COMPONENTS",
    "DEFAULT_ALIASES",
    "DEFAULT_DEPLOYMENT_MULTIPLIERS",
    "DEFAULT_DEPLOYMENT_TYPE",
    "DEFAULT_VERSIONS",
    "DEPLOYMENT_TYPES",
    "DEPLOYMENT_TYPE_ALIASES",
    "NO_PREMIUM_EQUIVALENT",
    "NO_PREMIUM_MODELS",
    "PROVIDERS",
    "PROVISIONED_SOURCE",
    "RATE_FIELDS",
    "RESOLVED_BY",
    "ComponentCost",
    "DeploymentSpec",
    "MissingRateError",
    "ModelNames",
    "PriceExplanation",
    "PriceResult",
    "Pricer",
    "Rates",
    "TieredRates",
    "canonical_model",
    "component_costs",
    "format_usd",
    "normalize_deployment_type",
    "parse_aliases",
    "parse_deployment_multipliers",
    "parse_deployments",
    "parse_price_overrides",
    "price_tokens",
    "split_tokens",
]
