"""A synthetic Azure invoice derived from a journal: what Azure would bill for the journaled tokens.

For each (day, deployment model, deployment type, direction) the journal holds, the test's own arithmetic (not
TokenID's) sums the tokens of that direction; the meter Azure bills it on and its price per block come from the
Azure retail price list (``tokenid.pricing.retail``, itself a copy of Azure's Retail Prices API). The rows are
:class:`export_gen.GenRow`, so every export format the reader supports can be written from them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from export_gen import Account, GenRow, Meter

from tokenid.azure.meters import parse_meter
from tokenid.pricing.retail import RetailPrices, unit_quantity

_QUANTITY = Decimal("0.000001")  # Azure exports quantities with up to 6-7 decimals


@dataclass(frozen=True)
class Billed:
    """One synthetic invoice line and the journaled tokens it bills."""

    day: date
    meter: Meter
    tokens: int
    row: GenRow


def direction_tokens(event: Mapping[str, Any]) -> dict[str, int]:
    """Text-only calls: uncached input, cached input and output (reasoning is part of output)."""
    inp = event["input_tokens"] or 0
    cached = event["cached_input_tokens"] or 0
    return {"input": inp - cached, "cached_input": cached, "output": event["output_tokens"] or 0}


def meters_for(model: str, version: str | None, dtype: str, prices: RetailPrices) -> dict[str, str]:
    """direction → retail meter name for a model, version and standard deployment type."""
    out: dict[str, str] = {}
    for item in prices.items():
        info = parse_meter(item.meter_name, item.unit_of_measure or None)
        if (info.unknown or info.model != model or info.context_tier or info.qualifiers
                or info.pricing_deployment_type != dtype or not (info.unit or "").startswith("tokens")):
            continue
        if info.version not in (version, None) or info.direction is None:
            continue
        out.setdefault(info.direction, item.meter_name)
    return out


def bill(events: Iterable[Mapping[str, Any]], *, account: Account, region: str, prices: RetailPrices,
         types: Mapping[str, str], currency: str = "USD", rate: Decimal = Decimal(1),
         skip_deployments: Iterable[str] = ()) -> list[Billed]:
    """Invoice lines for ``events`` (Azure calls with usage). ``types``: deployment → the type Azure bills it as
    (may differ from what the journal assumed)."""
    tokens: dict[tuple[date, str, str | None, str, str], int] = defaultdict(int)
    skip = set(skip_deployments)
    for e in events:
        if e["provider"] != "azure_openai" or e["input_tokens"] is None or e["status"] == "blocked":
            continue
        if e["deployment"] in skip:
            continue
        canonical: str = e["canonical_model"]
        family, _, rest = canonical.partition("-20")
        version = f"20{rest}" if rest else None
        day = date.fromisoformat(e["started_at"][:10])
        for direction, n in direction_tokens(e).items():
            if n:
                tokens[(day, family, version, types[e["deployment"]], direction)] += n
    lines: list[Billed] = []
    for index, ((day, family, version, dtype, direction), n) in enumerate(sorted(tokens.items(), key=str)):
        meters = meters_for(family, version, dtype, prices)
        name = meters.get(direction) or meters["input"]  # no cached meter: billed as input, as Azure does
        price = prices.lookup(name, region, day)
        assert price is not None, f"no retail price for {name} in {region}"
        block = unit_quantity(price.unit_of_measure)
        quantity = (Decimal(n) / block).quantize(_QUANTITY)
        unit = "1M" if block == 1_000_000 else "1K"
        meter = Meter(name, unit, price.product_name, price.price, int(block), "Units")
        cost = quantity * price.price
        row = GenRow(index=index, day=day, account=account, resource_id=account.resource_id, meter=meter,
                     quantity=quantity, unit_price=price.price, kind="usage", billed_usd=cost, effective_usd=cost,
                     currency=currency, rate=rate, tags={"env": "prod"})
        lines.append(Billed(day, meter, n, row))
    return lines
