"""Azure per-token rates by model, version, deployment type and region, read from the Azure retail price list.

genai-prices knows only the Global list price; Azure's Data Zone, Regional and Batch prices differ by model,
region and date, and are rounded per 1K tokens (shared/azure-billing/PRICING.md §1-§2). The retail price list
(:mod:`tokenid.pricing.retail`: the bundled snapshot, or the file ``tokenid prices sync`` wrote) has a meter per
(model, version, direction, deployment type); :func:`tokenid.azure.meters.parse_meter` says which is which. This
module indexes the list once and answers "what are the rates of gpt-4o-2024-08-06 on Data Zone in eastus2 on
that day", one direction (input, cached input, output, audio ...) per meter.

Meters with a context tier (long-context), qualifiers (fine-tuned, HD ...) or non-token units are left out: they
are not the per-token rates of a plain call.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from tokenid.pricing.rates import RATE_FIELDS, Rates
from tokenid.pricing.retail import RetailDataError, RetailPrice, RetailPrices, UnknownUnitError, per_million

__all__ = ["AzureRates", "RetailRates"]

log = logging.getLogger("tokenid")

# meter direction -> Rates field (the same names, checked against RATE_FIELDS below)
_DIRECTIONS = frozenset(RATE_FIELDS)


@dataclass(frozen=True, slots=True)
class RetailRates:
    """Rates found in the retail list (USD per 1M tokens; only the directions it has) and the meters used."""

    rates: Rates
    meters: tuple[str, ...]
    fetched: date
    region: str | None
    #: ``price_source`` of calls priced with these rates, e.g. ``azure-retail 2026-07-31, eastus2``
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:  # worked out once: the pricer reuses one RetailRates for many calls
            where = f", {self.region}" if self.region else ""
            object.__setattr__(self, "label", f"azure-retail {self.fetched:%Y-%m-%d}{where}")


class AzureRates:
    """Index of a :class:`RetailPrices` list by (model family, version, deployment type) and direction.

    Built lazily, on first use, on the journal's writer thread; thread-safe afterwards (read-only).
    ``prices=None`` loads the synced file if there is one, else the bundled snapshot.
    """

    def __init__(self, prices: RetailPrices | None = None) -> None:
        self._prices = prices
        self._index: dict[tuple[str, str, str], dict[str, list[str]]] | None = None
        self._lock = threading.Lock()
        self._failed = False

    def _build(self) -> dict[tuple[str, str, str], dict[str, list[str]]]:
        from tokenid.azure.meters import parse_meter

        prices = self._prices if self._prices is not None else RetailPrices.load()
        self._prices = prices
        index: dict[tuple[str, str, str], dict[str, list[str]]] = {}
        seen: set[str] = set()
        for item in prices.items():
            if item.meter_name in seen:
                continue
            seen.add(item.meter_name)
            info = parse_meter(item.meter_name, item.unit_of_measure or None)
            if info.unknown or info.model is None or info.direction not in _DIRECTIONS:
                continue
            if info.context_tier is not None or info.qualifiers or not (info.unit or "").startswith("tokens"):
                continue
            kind = info.pricing_deployment_type
            if info.billing_mode == "priority" and info.deployment_type:
                kind = f"priority:{info.deployment_type}"
            if kind is None:
                continue
            key = (info.model, info.version or "", kind)
            index.setdefault(key, {}).setdefault(str(info.direction), []).append(item.meter_name)
        return index

    def _ready(self) -> dict[tuple[str, str, str], dict[str, list[str]]] | None:
        if self._index is None and not self._failed:
            with self._lock:
                if self._index is None and not self._failed:
                    try:
                        self._index = self._build()
                    except (RetailDataError, OSError, ValueError) as exc:
                        self._failed = True
                        log.error("tokenid: Azure retail prices unavailable (%s); using list price x multiplier", exc)
        return self._index

    def rates(self, family: str, version: str, deployment_type: str, *, region: str | None, at: date,
              priority: bool = False) -> RetailRates | None:
        """Retail rates of ``family`` (``gpt-4o``) ``version`` (``2024-08-06``, or "" for unversioned meters) on
        ``deployment_type`` in ``region`` on day ``at``; None when the list has no input or output meter for it."""
        index = self._ready()
        if index is None or self._prices is None:
            return None
        kind = f"priority:{deployment_type}" if priority else deployment_type
        directions = index.get((family, version, kind)) or index.get((family, "", kind))
        if not directions:
            return None
        found: dict[str, Decimal] = {}
        meters: list[str] = []
        for direction, names in directions.items():
            best: RetailPrice | None = None
            for name in names:
                price = self._prices.lookup(name, region, at)
                if price is not None and (best is None or price.effective_start > best.effective_start):
                    best = price
            if best is None:
                continue
            try:
                found[direction] = per_million(best)
            except UnknownUnitError:
                continue
            meters.append(best.meter_name)
        if "input" not in found and "output" not in found:
            return None
        return RetailRates(Rates(**found), tuple(sorted(meters)), self._prices.fetched, region)
