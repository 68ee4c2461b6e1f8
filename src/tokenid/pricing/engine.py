"""The pricer: resolves which model a call ran on and what its tokens cost, cheaply enough to run per call.

Resolution (which model, which rates, which deployment-type multiplier) depends only on provider, deployment and
model names, so it is cached per ``(provider, deployment, served model, requested model)``; each call then does
integer bucketing and a handful of exact ``Decimal`` multiplications. ``price()`` never raises for data it is
given: a call that cannot be priced gets ``cost_usd=None`` and an ``unpriced_reason``.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from decimal import Decimal
from functools import lru_cache

from genai_prices.data_snapshot import DataSnapshot

from tokenid.errors import ConfigError
from tokenid.pricing import catalog
from tokenid.pricing.azure import AzureRates, RetailRates
from tokenid.pricing.catalog import CatalogPrice
from tokenid.pricing.deployments import (
    DEFAULT_DEPLOYMENT_TYPE,
    DeploymentSpec,
    normalize_deployment_type,
    parse_deployments,
)
from tokenid.pricing.explain import PriceExplanation, build_notes
from tokenid.pricing.models import ModelNames
from tokenid.pricing.multipliers import (
    BATCH_MULTIPLIER,
    BATCH_TYPES,
    NO_PREMIUM_EQUIVALENT,
    parse_deployment_multipliers,
    parse_model_set,
    service_tier_multiplier,
)
from tokenid.pricing.rates import (
    _CTX,
    RATE_FIELDS,
    ComponentCost,
    MissingRateError,
    Rates,
    TieredRates,
    component_costs,
    parse_price_overrides,
    price_tokens,
    split_tokens,
    tidy,
)
from tokenid.pricing.retail import RetailPrices
from tokenid.pricing.units import UnitLine, has_unit_prices, price_units, units_total
from tokenid.usage import Usage

log = logging.getLogger("tokenid")

__all__ = ["PROVIDERS", "PROVISIONED_SOURCE", "RESOLVED_BY", "PriceResult", "Pricer"]

#: Providers ``price()`` understands.
PROVIDERS: tuple[str, ...] = ("openai", "azure_openai")
#: Values of ``PriceResult.resolved_by``, most to least trustworthy.
RESOLVED_BY: tuple[str, ...] = ("deployment_map", "response_model", "request_model", "deployment_name_guess")
#: ``price_source`` of a call on a provisioned (PTU) deployment.
PROVISIONED_SOURCE = "provisioned: capacity cost, not per token"

_ONE = Decimal(1)
_ZERO = Decimal(0)
# units billed on top of tokens (a model priced by tokens may still owe these)
_ADDITIVE_UNITS = frozenset({"web_search_calls", "file_search_calls"})


@dataclass(frozen=True, slots=True)
class PriceResult:
    """The priced cost of one call, and how it was arrived at.

    ``cost_usd`` is exact (never rounded) and None when the call could not be priced, in which case
    ``unpriced_reason`` says why; Decimal 0 means the call genuinely cost nothing at the margin (zero tokens,
    a free model, a provisioned deployment). ``multiplier`` is the factor applied to ``rates`` (list or override
    rates per million tokens, before the factor): deployment type, batch and service tier together.
    ``unit_lines`` price non-token units (images, characters, audio seconds, tool calls, training tokens); their
    sum is ``units_cost_usd`` and is part of ``cost_usd``. ``unpriced_units`` names units no price was found for.
    """

    cost_usd: Decimal | None
    canonical_model: str | None
    deployment_type: str | None
    resolved_by: str | None
    price_source: str | None
    unpriced_reason: str | None = None
    multiplier: Decimal | None = None
    rates: Rates | None = None
    unit_lines: tuple[UnitLine, ...] = ()
    units_cost_usd: Decimal | None = None
    unpriced_units: tuple[str, ...] = ()
    #: Azure retail meters whose prices were used (then ``rates`` are the effective rates and ``multiplier``
    #: only the service-tier factor)
    meters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Match:
    canonical: str
    resolved_by: str
    catalog_model: str | None
    catalog_prices: tuple[CatalogPrice, ...]
    override: tuple[str, Rates] | None


@dataclass(frozen=True, slots=True)
class _Resolution:
    """Everything about a call's price that does not depend on its token counts or time."""

    canonical_model: str | None
    resolved_by: str | None
    deployment_type: str | None
    price_source: str | None
    multiplier: Decimal | None
    prices: tuple[CatalogPrice, ...] = ()
    fixed_cost: Decimal | None = None
    reason: str | None = None
    catalog_model: str | None = None
    in_deployment_map: bool = False
    #: "deployment" or "model" when the user's price_overrides supplied the rates
    override: str | None = None


def _select(prices: tuple[CatalogPrice, ...], at: datetime | None) -> CatalogPrice:
    """The dated price in effect at ``at`` (now when None; naive means UTC), as genai-prices chooses it."""
    if len(prices) == 1:
        return prices[0]
    when = at if at is not None else datetime.now(tz=timezone.utc)
    for price in reversed(prices):
        if price.constraint is None or price.constraint.active(when):
            return price
    return prices[0]


def _fixed(rates: Rates) -> tuple[CatalogPrice, ...]:
    return (CatalogPrice(None, TieredRates(rates), ()),)


@dataclass(frozen=True, slots=True)
class _Plan:
    """How a token-billed call was priced (rates, factor, the rest of the result), reused for the next call to the
    same target on the same day, so that pricing it is only the token arithmetic. Valid while the price data is
    ``snapshot`` and the prompt stays within the first long-context tier (``max_input``)."""

    snapshot: DataSnapshot
    max_input: int
    result: PriceResult  # the first call's: its rates and multiplier price the next ones

    def price(self, usage: Usage) -> PriceResult:
        r = self.result
        assert r.rates is not None
        cost = price_tokens(r.rates, split_tokens(usage))
        if r.multiplier is not None and r.multiplier != _ONE:
            cost = _CTX.multiply(cost, r.multiplier)
        return PriceResult(tidy(cost), r.canonical_model, r.deployment_type, r.resolved_by, r.price_source, None,
                           r.multiplier, r.rates, (), None, r.unpriced_units, r.meters)


class Pricer:
    """Prices journaled OpenAI / Azure OpenAI calls from genai-prices list prices, overrides and deployment types.

    Precedence of rates: an override for the Azure deployment name (used as given: no multiplier), then an
    override for the model (an unversioned name covers every version), then the genai-prices list price.
    Model overrides and list prices get the deployment-type multiplier (see ``multipliers.py``); a provisioned
    deployment costs 0 per call unless its deployment name has an override. Immutable and thread-safe.
    """

    def __init__(
        self,
        deployments: Mapping[str, DeploymentSpec | str | Mapping[str, object]] | None = None,
        overrides: Mapping[str, Rates | Mapping[str, object]] | None = None,
        aliases: Mapping[str, str] | None = None,
        *,
        deployment_multipliers: Mapping[str, object] | None = None,
        no_premium_models: Iterable[str] | None = None,
        default_deployment_type: str = DEFAULT_DEPLOYMENT_TYPE,
        cache_size: int = 4096,
        azure_retail: AzureRates | RetailPrices | bool = True,
    ) -> None:
        self._deployments = parse_deployments(deployments)
        self._names = ModelNames(aliases)
        self._deployment_overrides, self._model_overrides = self._split_overrides(parse_price_overrides(overrides))
        self._multipliers = parse_deployment_multipliers(deployment_multipliers)
        # types whose multiplier the user set: their factor is used, not the retail list
        self._own_multipliers = frozenset(
            normalize_deployment_type(t, "deployment_multipliers") for t in (deployment_multipliers or {}))
        self._azure: AzureRates | None
        if azure_retail is True:
            self._azure = _default_azure_rates()
        elif isinstance(azure_retail, RetailPrices):
            self._azure = AzureRates(azure_retail)
        elif isinstance(azure_retail, AzureRates):
            self._azure = azure_retail
        else:
            self._azure = None
        self._retail = lru_cache(maxsize=max(cache_size, 1))(self._retail_uncached)
        self._no_premium = frozenset(self._names.spell(name)[0] for name in parse_model_set(no_premium_models))
        self._default_type = normalize_deployment_type(default_deployment_type, "default_deployment_type")
        self._lock = threading.Lock()
        self._snapshot: DataSnapshot = catalog.current_snapshot()
        self._resolve = lru_cache(maxsize=max(cache_size, 1))(self._resolve_uncached)
        self._plans: dict[tuple[object, ...], _Plan] = {}
        self._plans_max = max(cache_size, 1)

    # -- configuration -------------------------------------------------------------------------------------

    def _split_overrides(
        self, parsed: Mapping[str, Rates]
    ) -> tuple[dict[str, tuple[str, Rates]], dict[str, tuple[str, Rates]]]:
        """Sort overrides into deployment-name and model keys; explicit ``deployment:``/``model:`` beat bare."""
        deployments: dict[str, tuple[str, Rates]] = {}
        models: dict[str, tuple[str, Rates]] = {}
        origin: dict[str, str] = {}
        bare: list[tuple[str, Rates]] = []
        for key, rates in parsed.items():
            prefix, sep, rest = key.partition(":")
            if sep and prefix == "deployment":
                name = rest.strip()
                deployments[name] = (f"override:deployment:{name}", rates)
            elif sep and prefix == "model":
                model = self._names.spell(rest)[0]
                if model in origin:
                    raise _duplicate(origin[model], key, model)
                origin[model] = key
                models[model] = (f"override:model:{model}", rates)
            else:
                bare.append((key, rates))
        for key, rates in bare:
            deployments.setdefault(key, (f"override:deployment:{key}", rates))
            model = self._names.spell(key)[0]
            if model in origin and not origin[model].startswith("model:"):
                raise _duplicate(origin[model], key, model)
            origin.setdefault(model, key)
            models.setdefault(model, (f"override:model:{model}", rates))
        return deployments, models

    # -- resolution (cached) -------------------------------------------------------------------------------

    def canonical_model(self, name: str, provider: str = "openai") -> str | None:
        """The canonical name of model ``name`` under this pricer's aliases and overrides, or None if unknown."""
        match = self._match(name, "", provider)
        return match.canonical if match else None

    def _match(self, name: str, resolved_by: str, provider: str) -> _Match | None:
        canonical = self._names.normalize(name)
        if not canonical:
            return None
        override = self._model_overrides.get(canonical) or self._model_overrides.get(ModelNames.unversioned(canonical))
        info = catalog.find_model(self._snapshot, canonical, provider)
        if info is None and override is None and not self._names.is_aliased(name) and not has_unit_prices(canonical):
            return None
        prices = catalog.catalog_prices(info) if info is not None else ()
        return _Match(canonical, resolved_by, info.id if info else None, prices, override)

    def _multiplier(self, deployment_type: str, canonical: str | None) -> Decimal:
        if canonical is not None and (
            canonical in self._no_premium or ModelNames.unversioned(canonical) in self._no_premium
        ):
            deployment_type = NO_PREMIUM_EQUIVALENT.get(deployment_type, deployment_type)
        return self._multipliers[deployment_type]

    def _resolve_uncached(
        self, provider: str, deployment: str | None, served: str | None, requested: str | None
    ) -> _Resolution:
        if provider not in PROVIDERS:
            expected = " or ".join(repr(p) for p in PROVIDERS)
            return _Resolution(
                None, None, None, None, None, reason=f"unknown provider {provider!r}; expected {expected}"
            )
        azure = provider == "azure_openai"
        spec = self._deployments.get(deployment) if azure and deployment else None
        deployment_type = (spec.type if spec else self._default_type) if azure else None

        candidates: list[tuple[str, str]] = []
        if spec is not None:
            if spec.version:
                candidates.append(("deployment_map", spec.model_ref))
            candidates.append(("deployment_map", spec.model))
        if served:
            candidates.append(("response_model", served))
        if not azure and requested:
            candidates.append(("request_model", requested))
        if azure and spec is None and (deployment or requested):
            # on Azure the requested "model" is the deployment name; only a last resort
            candidates.append(("deployment_name_guess", deployment or requested or ""))

        match = None
        for resolved_by, name in candidates:
            match = self._match(name, resolved_by, provider)
            if match is not None:
                break
        base = _Resolution(
            canonical_model=match.canonical if match else None,
            resolved_by=match.resolved_by if match else None,
            deployment_type=deployment_type,
            price_source=None,
            multiplier=None,
            catalog_model=match.catalog_model if match else None,
            in_deployment_map=spec is not None,
        )
        if azure and deployment and deployment in self._deployment_overrides:
            label, rates = self._deployment_overrides[deployment]
            return replace(base, price_source=label, multiplier=_ONE, prices=_fixed(rates), override="deployment")
        if deployment_type == "provisioned":
            return replace(base, price_source=PROVISIONED_SOURCE, fixed_cost=_ZERO)
        if match is None:
            return replace(base, reason=_unknown_reason(candidates))

        multiplier = self._multiplier(deployment_type, match.canonical) if deployment_type else _ONE
        if match.override is not None:
            label, rates = match.override
            return replace(base, price_source=label, multiplier=multiplier, prices=_fixed(rates), override="model")
        source = catalog.source_label(self._snapshot)
        if not match.catalog_prices:
            if has_unit_prices(match.canonical):  # DALL·E: priced per image from TokenID's own table
                return replace(base, price_source=source, multiplier=multiplier)
            return replace(base, reason=f"no price for {match.canonical} in {source}")
        return replace(base, price_source=source, multiplier=multiplier, prices=match.catalog_prices)

    def _resolution(
        self, provider: str, deployment: str | None, served: str | None, requested: str | None
    ) -> _Resolution:
        snapshot = catalog.current_snapshot()
        if snapshot is not self._snapshot:  # genai-prices loaded new data: forget what the old data said
            with self._lock:
                if snapshot is not self._snapshot:
                    self._snapshot = snapshot
                    self._resolve.cache_clear()
                    self._plans = {}
        return self._resolve(provider, deployment, served, requested)

    # -- pricing -------------------------------------------------------------------------------------------

    def price(
        self,
        *,
        provider: str,
        usage: Usage | None,
        model_served: str | None,
        model_requested: str | None,
        deployment: str | None,
        at: datetime | None = None,
        units: Mapping[str, object] | None = None,
        batch: bool = False,
        service_tier: str | None = None,
        region: str | None = None,
    ) -> PriceResult:
        """Price one call. ``at`` is when it ran (default now; naive means UTC) and selects dated list prices.

        ``units`` are the call's non-token units (:func:`tokenid.units.units_of`); ``batch`` marks a line of Batch
        API output (half price on OpenAI, the batch deployment type on Azure); ``service_tier`` is the tier the
        response reports (``priority`` and ``flex`` change the per-token price); ``region`` is where Azure served
        it (``x-ms-region``), which selects Data Zone and Regional retail prices.
        """
        plan_key: tuple[object, ...] | None = None
        if usage is not None and not units:
            # a token-billed call like one priced before (same target, tier, region and day): its rates are known
            day = (at or datetime.now(tz=timezone.utc)).date()
            plan_key = (provider, deployment, model_served, model_requested, service_tier, region, batch, day)
            plan = self._plans.get(plan_key)
            if plan is not None and usage.input_tokens <= plan.max_input \
                    and catalog.current_snapshot() is plan.snapshot:
                try:
                    return plan.price(usage)
                except MissingRateError:
                    pass  # a kind of token this card has no rate for: the full path says so
        result, plan = self._price(provider, usage, model_served, model_requested, deployment, at, units, batch,
                                   service_tier, region)
        if plan is not None and plan_key is not None:
            if len(self._plans) >= self._plans_max:
                self._plans = {}
            self._plans[plan_key] = plan
        return result

    def _price(
        self, provider: str, usage: Usage | None, model_served: str | None, model_requested: str | None,
        deployment: str | None, at: datetime | None, units: Mapping[str, object] | None, batch: bool,
        service_tier: str | None, region: str | None,
    ) -> tuple[PriceResult, _Plan | None]:
        """:meth:`price` worked out in full; also the plan that prices the next such call from its tokens alone."""
        res = self._resolution(provider, deployment, model_served, model_requested)
        if res.fixed_cost is not None:
            return PriceResult(
                res.fixed_cost, res.canonical_model, res.deployment_type, res.resolved_by, res.price_source
            ), None
        if res.reason is not None:
            return _unpriced(res, res.reason), None
        deployment_type, multiplier = res.deployment_type, res.multiplier
        if batch:
            if deployment_type is None:
                multiplier = _CTX.multiply(multiplier or _ONE, BATCH_MULTIPLIER)
            elif res.override == "deployment":
                pass  # a deployment's own rates are used as given (the user priced the batch deployment)
            else:
                deployment_type = BATCH_TYPES.get(deployment_type, deployment_type)
                multiplier = self._multiplier(deployment_type, res.canonical_model)
        dated = _select(res.prices, at) if res.prices else None
        retail: RetailRates | None = None
        effective: Rates | None = None
        if (provider == "azure_openai" and usage is not None and deployment_type is not None
                and res.canonical_model is not None and dated is not None and dated.rates is not None
                and res.override is None
                and deployment_type not in self._own_multipliers
                and not any(usage.input_tokens > t for t, _ in dated.rates.tiers)):
            day = (at or datetime.now(tz=timezone.utc)).date()
            retail, effective = self._retail(res.canonical_model, deployment_type, region, day,
                                             service_tier == "priority", dated.rates.base, multiplier or _ONE)
        tier_factor = _ONE
        if service_tier is not None and res.canonical_model is not None and not (
                retail is not None and service_tier == "priority"):
            tier = service_tier_multiplier(service_tier, ModelNames.unversioned(res.canonical_model))
            if tier is None:
                return _unpriced(res, f"no {service_tier} service-tier price for {res.canonical_model}",
                                 deployment_type), None
            tier_factor = tier

        unit_lines: tuple[UnitLine, ...] = ()
        unpriced_units: tuple[str, ...] = ()
        if units and res.canonical_model is not None:
            unit_lines, unpriced_units = price_units(
                res.canonical_model, units, dated.unit_prices if dated is not None else {}, res.price_source or "")
        units_cost = units_total(unit_lines) if unit_lines else None

        token_cost: Decimal | None = None
        rates: Rates | None = None
        if usage is not None:
            if dated is None or dated.rates is None:
                if units_cost is None:
                    reason = _no_token_price_reason(res, dated) if dated is not None else \
                        f"no per-token price for {res.canonical_model}"
                    return _unpriced(res, reason, deployment_type), None
            else:
                rates = dated.rates.for_input(usage.input_tokens)
                if effective is not None:  # the meters' rates, and the list's x factor for what they lack
                    rates = effective
                    multiplier = tier_factor
                elif tier_factor != _ONE:
                    multiplier = _CTX.multiply(multiplier or _ONE, tier_factor)
                try:
                    token_cost = price_tokens(rates, split_tokens(usage))
                except MissingRateError as error:
                    return _unpriced(
                        res, f"no {error.component} price for {res.canonical_model} in {res.price_source}",
                        deployment_type), None
                if multiplier is not None and multiplier != _ONE:
                    token_cost = _CTX.multiply(token_cost, multiplier)
        elif units_cost is None:
            if unpriced_units:
                return _unpriced(res, f"no {', '.join(unpriced_units)} price for {res.canonical_model}",
                                 deployment_type), None
            return _unpriced(res, "no usage", deployment_type), None
        if token_cost is not None:  # e.g. seconds of a token-billed transcription: described, not billed again
            unpriced_units = tuple(u for u in unpriced_units if u in _ADDITIVE_UNITS)
        cost = _CTX.add(token_cost or _ZERO, units_cost or _ZERO)
        source = retail.label if retail is not None and token_cost is not None else res.price_source
        unit_sources = sorted({line.source for line in unit_lines if line.source != source})
        if unit_sources:
            source = "; ".join([*([source] if token_cost is not None and source else []), *unit_sources])
        result = PriceResult(
            tidy(cost),
            res.canonical_model,
            deployment_type,
            res.resolved_by,
            source,
            None,
            multiplier if token_cost is not None else None,
            rates,
            unit_lines,
            tidy(units_cost) if units_cost is not None else None,
            unpriced_units,
            retail.meters if retail is not None and token_cost is not None else (),
        )
        plan: _Plan | None = None
        if rates is not None and usage is not None and not units and len(res.prices) == 1:  # dated: by the hour
            tiers = dated.rates.tiers if dated is not None and dated.rates is not None else ()
            first_tier = min((t for t, _ in tiers), default=sys.maxsize)
            if usage.input_tokens <= first_tier:  # base rates: what a plan may reuse below the first tier
                plan = _Plan(self._snapshot, first_tier, result)
        return result, plan

    def _retail_uncached(self, canonical: str, deployment_type: str, region: str | None, day: date,
                         priority: bool, base: Rates, factor: Decimal) -> tuple[RetailRates | None, Rates | None]:
        """Retail meters for the call and the effective rates: theirs, else ``base`` x ``factor`` (cached)."""
        if self._azure is None:
            return None, None
        family = ModelNames.unversioned(canonical)
        version = canonical[len(family) + 1:]
        try:
            found = self._azure.rates(family, version, deployment_type, region=region, at=day, priority=priority)
        except Exception as exc:  # retail data is a refinement: fall back to list price x multiplier
            log.warning("tokenid: Azure retail lookup failed (%s: %s)", type(exc).__name__, exc)
            return None, None
        if found is None:
            return None, None
        return found, _overlay(_scaled(base, factor), found.rates)

    def explain(
        self,
        *,
        provider: str,
        usage: Usage | None = None,
        model_served: str | None = None,
        model_requested: str | None = None,
        deployment: str | None = None,
        at: datetime | None = None,
        units: Mapping[str, object] | None = None,
        batch: bool = False,
        service_tier: str | None = None,
        region: str | None = None,
    ) -> PriceExplanation:
        """A human-readable breakdown of ``price()`` for the same arguments: model, rates, per-component cost.

        With ``usage`` None it still shows the model and the rates that would apply (for ``tokenid prices show``).
        """
        result = self.price(
            provider=provider,
            usage=usage,
            model_served=model_served,
            model_requested=model_requested,
            deployment=deployment,
            at=at,
            units=units,
            batch=batch,
            service_tier=service_tier,
            region=region,
        )
        res = self._resolution(provider, deployment, model_served, model_requested)
        rates = result.rates
        excluded: tuple[str, ...] = ()
        unit_prices: Mapping[str, Decimal] = {}
        tier_threshold: int | None = None
        if res.prices:
            dated = _select(res.prices, at)
            excluded = dated.other_units
            unit_prices = dated.unit_prices
            if dated.rates is not None:
                tokens = usage.input_tokens if usage is not None else 0
                if rates is None:
                    rates = dated.rates.for_input(tokens)
                passed = [t for t, _ in dated.rates.tiers if tokens > t]
                tier_threshold = passed[-1] if passed else None
        components: tuple[ComponentCost, ...] = ()
        if usage is not None and rates is not None and result.cost_usd is not None:
            components = component_costs(rates, usage, result.multiplier or _ONE)
        notes = build_notes(
            provider=provider,
            deployment=deployment,
            in_deployment_map=res.in_deployment_map,
            resolved_by=res.resolved_by,
            deployment_type=result.deployment_type,
            multiplier=result.multiplier,
            excluded=excluded,
            tier_threshold=tier_threshold,
            components=components,
            batch=batch,
            service_tier=service_tier,
            unpriced_units=result.unpriced_units,
            meters=result.meters,
        )
        return PriceExplanation(
            result=result,
            catalog_model=res.catalog_model,
            rates=rates,
            components=components,
            notes=notes,
            unit_prices=dict(unit_prices),
        )


@lru_cache(maxsize=1)
def _default_azure_rates() -> AzureRates:
    """One shared index of the default retail list (built lazily, on first use) for every Pricer that wants it."""
    return AzureRates()


def _scaled(rates: Rates, factor: Decimal) -> Rates:
    if factor == _ONE:
        return rates
    return Rates(**{name: None if (v := getattr(rates, name)) is None else _CTX.multiply(v, factor)
                    for name in RATE_FIELDS})


def _overlay(base: Rates, retail: Rates) -> Rates:
    return Rates(**{name: getattr(retail, name) if getattr(retail, name) is not None else getattr(base, name)
                    for name in RATE_FIELDS})


def _duplicate(first: str, second: str, model: str) -> ConfigError:
    """Two override keys name the same model after alias resolution: refuse rather than pick one silently."""
    return ConfigError(f"price_overrides[{first!r}] and price_overrides[{second!r}] both name model {model!r}")


def _unknown_reason(candidates: list[tuple[str, str]]) -> str:
    if not candidates:
        return "no model name (no deployment map entry, response model or request model)"
    resolved_by, name = candidates[0]
    if resolved_by == "deployment_name_guess":
        return f"unknown model {name!r} (an Azure deployment name; map it to a model with deployments=)"
    return f"unknown model {name!r}"


def _no_token_price_reason(res: _Resolution, dated: CatalogPrice) -> str:
    units = ", ".join([*dated.unit_prices, *dated.other_units])
    priced_by = f" (priced by {units})" if units else ""
    return f"no per-token price for {res.canonical_model} in {res.price_source}{priced_by}"


def _unpriced(res: _Resolution, reason: str, deployment_type: str | None = None) -> PriceResult:
    kind = deployment_type or res.deployment_type
    return PriceResult(None, res.canonical_model, kind, res.resolved_by, res.price_source, reason)
