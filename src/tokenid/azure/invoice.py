"""The invoice side of reconciliation: export rows summed per (account, day, meter), and what each meter bills.

Azure may split one meter-day over several rows (a MeterId per region, charge types), so rows are summed first.
A meter bills tokens of one direction (:func:`is_token_meter`), or units (:func:`unit_meter`: images, characters,
audio hours, tool calls), or capacity and time (provisioned throughput, hosting, storage): the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Context, Decimal
from typing import Final

from ..pricing.rates import COMPONENTS
from .exports import CostLine
from .meters import MeterInfo

__all__ = ["UNIT_METERS", "InvoiceLine", "billing_kind", "block_size", "collect_invoice", "is_token_meter",
           "unit_meter", "usd_cost"]

_CTX = Context(prec=60)
_ZERO = Decimal(0)
_MILLION = Decimal(1_000_000)
_TOKEN_DIRECTIONS = frozenset(COMPONENTS)

@dataclass(slots=True)
class InvoiceLine:
    day: date
    account_id: str
    account_name: str
    meter_name: str
    unit: str
    currency: str
    quantity: Decimal = _ZERO
    cost: Decimal = _ZERO
    cost_usd: Decimal | None = _ZERO
    meter_ids: set[str] = field(default_factory=set)
    charge_types: set[str] = field(default_factory=set)
    units_seen: set[str] = field(default_factory=set)
    on_account: bool = True


def usd_cost(line: CostLine, fx: Mapping[str, Decimal]) -> Decimal | None:
    """The row's cost in USD: the export's own USD column, else billing cost ÷ the exchange rate (pricing USD →
    billing currency) the row or the user gave; None when there is none."""
    if line.cost_usd is not None:
        return line.cost_usd
    if line.currency.upper() == "USD":
        return line.cost
    rate = line.exchange_rate if line.exchange_rate else fx.get(line.currency.upper())
    if rate is None or rate == 0:
        return None
    return _CTX.divide(line.cost, rate)


def collect_invoice(lines: Iterable[CostLine], fx: Mapping[str, Decimal]) -> dict[tuple[str, date, str], InvoiceLine]:
    """Sum the export's rows per (account, day, meter): Azure may split one meter-day over rows (regions,
    meter ids, charge types)."""
    out: dict[tuple[str, date, str], InvoiceLine] = {}
    for line in lines:
        key = (line.account_id, line.day, line.meter_name)
        agg = out.get(key)
        if agg is None:
            on_account = "/accounts/" in line.account_id
            agg = out[key] = InvoiceLine(line.day, line.account_id, line.account_name.lower(), line.meter_name,
                                          line.unit_of_measure, line.currency.upper() or "?", on_account=on_account)
        agg.quantity += line.quantity
        agg.cost += line.cost
        usd = usd_cost(line, fx)
        agg.cost_usd = None if usd is None or agg.cost_usd is None else agg.cost_usd + usd
        if line.meter_id:
            agg.meter_ids.add(line.meter_id.lower())
        agg.charge_types.add(line.charge_type or "Usage")
        agg.units_seen.add(line.unit_of_measure)
    return out


def block_size(unit_of_measure: str, info: MeterInfo) -> Decimal | None:
    """Tokens per quantity block: from UnitOfMeasure (``1K``, ``1M``, ``10K``), else the meter name's unit."""
    text = unit_of_measure.strip().upper().replace(" ", "")
    for suffix, scale in (("K", 1000), ("M", 1_000_000)):
        if text.endswith(suffix) and text[:-1].isdigit():
            return Decimal(int(text[:-1]) * scale)
    if info.unit == "tokens_1k":
        return Decimal(1000)
    if info.unit == "tokens_1m":
        return _MILLION
    return None


def billing_kind(info: MeterInfo) -> str | None:
    """The journal's deployment type a meter bills (``priority:global`` for priority processing)."""
    if info.billing_mode == "priority" and info.deployment_type:
        return f"priority:{info.deployment_type}"
    return info.pricing_deployment_type


def is_token_meter(info: MeterInfo) -> bool:
    return (not info.unknown and info.model is not None and info.direction in _TOKEN_DIRECTIONS
            and (info.unit or "").startswith("tokens") and info.context_tier is None
            and set(info.qualifiers) <= {"fine_tuned"} and info.billing_mode not in ("provisioned",))



# Meter units billed per something other than tokens: the journal's unit (tokenid.units) and the block size.
UNIT_METERS: Final[dict[str, tuple[str, Decimal]]] = {
    "images_100": ("images", Decimal(100)),
    "images": ("images", Decimal(1)),
    "characters_1m": ("characters", _MILLION),
    "characters_1k": ("characters", Decimal(1000)),
    "hours": ("audio_seconds", Decimal(3600)),
    "calls_1k": ("calls", Decimal(1000)),
}

def unit_meter(info: MeterInfo) -> tuple[str, Decimal] | None:
    """(journal unit, block size) of a meter billed per image, character, audio hour or tool call; None for
    token meters and for hours of hosting or training (capacity)."""
    if info.unknown or info.unit not in UNIT_METERS:
        return None
    if info.unit == "hours" and info.direction != "audio_input":
        return None
    return UNIT_METERS[info.unit]


