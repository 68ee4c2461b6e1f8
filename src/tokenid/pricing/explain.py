"""Human-readable price breakdowns (model, rates, per-component cost) for ``tokenid prices show`` and debugging."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from tokenid.pricing.rates import COMPONENTS, RATE_FIELDS, ComponentCost, Rates

if TYPE_CHECKING:
    from tokenid.pricing.engine import PriceResult

__all__ = ["PriceExplanation", "build_notes", "format_usd"]


def format_usd(amount: Decimal | None, places: int = 9) -> str:
    """``$0.000123456`` style text; the stored amount stays exact, this is for display only."""
    if amount is None:
        return "-"
    return f"${amount.quantize(Decimal(1).scaleb(-places)):f}" if amount else "$0"


@dataclass(frozen=True, slots=True)
class PriceExplanation:
    """What ``Pricer.price`` decided and why; ``str()`` renders it as text."""

    result: PriceResult
    catalog_model: str | None
    rates: Rates | None
    components: tuple[ComponentCost, ...]
    notes: tuple[str, ...]
    #: genai-prices' non-token prices of the model (price key -> USD), shown when nothing was priced by them yet
    unit_prices: Mapping[str, Decimal] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The explanation as text lines."""
        r = self.result
        out = [
            f"model:           {r.canonical_model or '?'}"
            + (f"  (resolved by {r.resolved_by})" if r.resolved_by else ""),
        ]
        if self.catalog_model:
            out.append(f"catalogue entry: {self.catalog_model}")
        if r.deployment_type:
            out.append(f"deployment type: {r.deployment_type}")
        out.append(f"price source:    {r.price_source or '-'}")
        if r.multiplier is not None and r.multiplier != 1:
            out.append(f"multiplier:      x{r.multiplier}")
        if self.rates is not None:
            out.append("rates (USD per 1M tokens):")
            for name in RATE_FIELDS:
                value = getattr(self.rates, name)
                if value is not None:
                    out.append(f"  {name:<20} {value.normalize():f}")
        if self.components:
            factor = f" x {r.multiplier}" if r.multiplier is not None and r.multiplier != 1 else ""
            out.append("cost (tokens x rate / 1M):")
            for line in self.components:
                if line.tokens:
                    priced = f"{line.tokens:>12,} x {line.rate}{factor}"
                    out.append(f"  {line.component:<20} {priced} = {format_usd(line.cost_usd)}")
        if r.unit_lines:
            out.append("units (quantity x USD per unit):")
            for unit in r.unit_lines:
                out.append(f"  {unit.unit:<20} {unit.quantity:>12,} x {unit.rate.normalize():f} = "
                           f"{format_usd(unit.cost_usd)}  [{unit.source}]")
        elif self.unit_prices:
            out.append("unit prices (USD):")
            for key, value in self.unit_prices.items():
                out.append(f"  {key:<20} {value}")
        out.append(f"total:           {format_usd(r.cost_usd)}")
        if r.unpriced_reason:
            out.append(f"unpriced:        {r.unpriced_reason}")
        out.extend(f"note: {note}" for note in self.notes)
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def build_notes(
    *,
    provider: str,
    deployment: str | None,
    in_deployment_map: bool,
    resolved_by: str | None,
    deployment_type: str | None,
    multiplier: Decimal | None,
    excluded: Sequence[str],
    tier_threshold: int | None,
    components: Sequence[ComponentCost],
    batch: bool = False,
    service_tier: str | None = None,
    unpriced_units: Sequence[str] = (),
    meters: Sequence[str] = (),
) -> tuple[str, ...]:
    """Caveats worth showing next to a price: guesses, assumptions and what is not included."""
    notes = []
    if resolved_by == "deployment_name_guess":
        notes.append("model guessed from the deployment name; add the deployment to deployments= to be sure")
    if provider == "azure_openai" and not in_deployment_map:
        where = f"deployment {deployment!r}" if deployment else "the deployment"
        notes.append(f"{where} is not in deployments=; deployment type assumed {deployment_type}")
    if meters:
        notes.append(f"Azure retail meters: {', '.join(meters)} (directions they lack: list price x type factor)")
    if multiplier is not None and multiplier != 1 and meters:
        notes.append(f"service tier {service_tier}: x {multiplier.normalize():f}")
    elif multiplier is not None and multiplier != 1:
        why = [f"Azure {deployment_type}" if deployment_type else "", "batch" if batch else "",
               f"service tier {service_tier}" if service_tier not in (None, "default", "auto") else ""]
        reasons = " + ".join(w for w in why if w) or "configured"
        notes.append(
            f"price = list price x {multiplier.normalize():f} ({reasons}; Azure factors are the US/EU figures "
            "from PRICING.md, other regions differ)"
        )
    if unpriced_units:
        notes.append(f"no price known for: {', '.join(unpriced_units)} (not included in the total)")
    if tier_threshold is not None:
        notes.append(f"long-context rates: input above {tier_threshold:,} tokens")
    by_name = {line.component: line for line in components}
    if by_name.get("cached_audio_input", _EMPTY).tokens or by_name.get("cached_image_input", _EMPTY).tokens:
        notes.append("cached tokens exceed the text tokens; the excess is counted as cached audio/image")
    if excluded:
        notes.append(f"not included (not counted in usage): {', '.join(excluded)}")
    return tuple(notes)


_EMPTY = ComponentCost(COMPONENTS[0], 0, None, Decimal(0))
