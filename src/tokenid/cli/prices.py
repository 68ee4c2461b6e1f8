"""``tokenid prices``: Azure OpenAI retail prices (bundled snapshot, or a copy synced from the Retail Prices API).

Thin commands over :mod:`tokenid.pricing.retail`. ``show MODEL`` lists the retail rows whose meter name contains
the model spelling (``gpt-4o`` matches ``gpt 4o 0806 Inp Data Zone Tokens`` and ``gpt-4o-0806-Inp-glbl Tokens``,
and, being a plain substring match, the ``gpt-4o-mini`` and realtime meters too) after the explanation of how a
call of that model is priced (:meth:`tokenid.pricing.Pricer.explain`); ``show --event ID`` explains a journaled
call.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..errors import ConfigError
from ..pricing.deployments import DEPLOYMENT_TYPES, normalize_deployment_type
from ..pricing.retail import (
    RETAIL_PRICES_URL,
    RetailDataError,
    RetailPrice,
    RetailPrices,
    RetailSyncError,
    UnknownUnitError,
    meter_deployment_type,
    per_million,
    per_unit,
    sync,
)

__all__ = ["prices_app"]

prices_app = typer.Typer(
    help="Azure OpenAI retail (pay-as-you-go) prices: a bundled snapshot, refreshable from the Azure Retail Prices "
    "API with `sync`.",
    no_args_is_help=True,
)

FileOpt = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="Retail prices file (default: the synced per-user file, else the bundled "
                 "snapshot)."),
]
_TIME_NOUNS = {"1 hour": "hour", "1/hour": "hour", "1 second": "second", "1/second": "second", "1/day": "day",
               "1 day": "day", "1/month": "month", "1 month": "month", "1 minute": "minute", "1/minute": "minute"}


def _console() -> Console:
    return Console()


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _exact(value: Decimal) -> str:
    """Exact decimal text without exponent or trailing zeros: 2.5000000 -> '2.5', 2.5E-5 -> '0.000025'."""
    return format(value.normalize(), "f")


def _load(path: Path | None) -> RetailPrices:
    try:
        return RetailPrices.load(path)
    except RetailDataError as exc:
        raise _fail(str(exc)) from None


@prices_app.command("sync")
def sync_cmd(
    dest: Annotated[Path | None, typer.Option(
        "--dest", help="Write here (default: azure_retail.json in the per-user TokenID data directory).")] = None,
    base_url: Annotated[str, typer.Option("--base-url", help="Retail Prices API endpoint.")] = RETAIL_PRICES_URL,
    currency: Annotated[str, typer.Option(help="currencyCode to request (USD is Azure's pricing currency).")] =
        "USD",
    retries: Annotated[int, typer.Option(min=0, help="Retries per page on HTTP 429/5xx or a dropped connection "
                                         "(waiting Retry-After, else 1s, 2s, 4s ...).")] = 6,
) -> None:
    """Download every Azure OpenAI retail price from the Azure Retail Prices API (the only command that does)."""
    try:
        summary = sync(dest, base_url=base_url, currency=currency, max_retries=retries)
    except RetailSyncError as exc:
        raise _fail(str(exc)) from None
    _console().print(f"Synced {summary.items:,} Azure OpenAI retail prices in {len(summary.regions)} regions "
                     f"({summary.pages} pages, {summary.skipped:,} other items skipped) from {base_url}")
    _console().print(f"Wrote {summary.path} (fetched {summary.fetched.isoformat()})")


@prices_app.command("show")
def show_cmd(
    model: Annotated[str | None, typer.Argument(help="Model spelling: gpt-4o, gpt-4o-2024-08-06, 'gpt 4.1', "
                                                     "o3-mini … (omit with --event)")] = None,
    region: Annotated[str | None, typer.Option(
        "--region", "-r", help="Azure region (armRegionName such as eastus2): selects Data Zone / Regional prices "
        "and filters the retail rows.")] = None,
    deployment_type: Annotated[str | None, typer.Option(
        "--type", "-t", help="Azure deployment type: " + ", ".join(DEPLOYMENT_TYPES) +
        " (Azure SKU names such as GlobalStandard are accepted).")] = None,
    provider: Annotated[str, typer.Option("--provider", "-p", help="azure_openai or openai.")] = "azure_openai",
    input_tokens: Annotated[int, typer.Option("--input", help="Input tokens of the example call.")] = 1_000_000,
    output_tokens: Annotated[int, typer.Option("--output", help="Output tokens of the example call.")] = 1_000_000,
    cached_tokens: Annotated[int, typer.Option("--cached", help="Cached input tokens (part of --input).")] = 0,
    batch: Annotated[bool, typer.Option("--batch", help="Price it as a Batch API line.")] = False,
    tier: Annotated[str | None, typer.Option("--tier", help="service_tier: priority or flex.")] = None,
    event: Annotated[str | None, typer.Option("--event", "-e", help="Explain this journaled event instead.")] = None,
    journal: Annotated[str | None, typer.Option("--journal", "-j", help="Journal of --event.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (prices as exact decimal strings).")] = False,
    file: FileOpt = None,
) -> None:
    """How a call of MODEL is priced (model, rates, source, multiplier, cost), then its Azure retail price rows."""
    from ..pricing import Pricer
    from ..pricing.azure import AzureRates
    from ..usage import Usage

    kind = None
    if deployment_type is not None:
        try:
            kind = normalize_deployment_type(deployment_type, "--type")
        except ConfigError as exc:
            raise typer.BadParameter(str(exc), param_hint="--type") from None
    if provider not in ("azure_openai", "openai"):
        raise typer.BadParameter("expected azure_openai or openai", param_hint="--provider")
    prices = _load(file)
    pricer_kw: dict[str, Any] = {"azure_retail": AzureRates(prices)}
    if event is not None:
        explanation, model = _explain_event(event, journal, pricer_kw)
    elif model is None:
        raise typer.BadParameter("give a MODEL or --event ID", param_hint="MODEL")
    else:
        if input_tokens < 0 or output_tokens < 0 or not 0 <= cached_tokens <= input_tokens:
            raise typer.BadParameter("token counts must be >= 0 and --cached at most --input", param_hint="--cached")
        deployments = {model: {"model": model, "type": kind or "global"}} if provider == "azure_openai" else None
        usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, cached_input_tokens=cached_tokens)
        explanation = Pricer(deployments=deployments, **pricer_kw).explain(
            provider=provider, usage=usage, model_served=model, model_requested=model,
            deployment=model if provider == "azure_openai" else None, batch=batch, service_tier=tier, region=region)
    if event is not None:
        from ..pricing.models import ModelNames

        model = ModelNames.unversioned(model)
    rows = [p for p in prices.find(model, region=region) if kind is None or meter_deployment_type(p.meter_name) == kind]
    if not rows and explanation.result.canonical_model is None:
        raise typer.BadParameter(
            f"unknown model {model!r}: no genai-prices entry and no Azure retail meter matches it"
            + (f" in region {region!r}" if region else "") + (f" of type {kind!r}" if kind else "")
            + f" ({prices.origin}, fetched {prices.fetched.isoformat()})",
            param_hint="MODEL",
        )
    if as_json:
        doc = _document(model, region, kind, prices, rows)
        result = explanation.result
        doc["explanation"] = {
            "canonical_model": result.canonical_model, "deployment_type": result.deployment_type,
            "price_source": result.price_source, "cost_usd": None if result.cost_usd is None else str(result.cost_usd),
            "unpriced_reason": result.unpriced_reason, "meters": list(result.meters),
            "multiplier": None if result.multiplier is None else str(result.multiplier),
            "notes": list(explanation.notes), "text": str(explanation),
        }
        typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    console = _console()
    console.print("[bold]How it is priced[/bold]")
    console.print(str(explanation), markup=False, highlight=False)
    if not rows:
        console.print(f"\nNo Azure retail meter matches {model!r} ({prices.origin}).")
        return
    table = Table(title=f"Azure retail prices matching {model!r}", title_justify="left", header_style="bold")
    for name, justify in (("meter", "left"), ("type", "left"), ("region", "left"), ("unit", "right"),
                          ("price", "right"), ("normalised", "right"), ("since", "left"), ("source", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    labels = {s.get("label", ""): s.get("id", "") for s in prices.sources}
    for p in rows:
        table.add_row(p.meter_name, meter_deployment_type(p.meter_name) or "-", p.region or "(any)",
                      p.unit_of_measure, f"${_exact(p.price)}", _normalised(p), p.effective_start.isoformat(),
                      labels.get(p.source, p.source))
    console.print(table)
    sources = "; ".join(s.get("label", "") for s in prices.sources)
    console.print(f"{len(rows)} rows from {prices.origin} (fetched {prices.fetched.isoformat()}): {sources}")
    console.print("Retail pay-as-you-go list prices in the row's currency, not your EA/MCA price. Region '(any)': the "
                  "source merged the regions sharing that price.")


def _explain_event(event_id: str, journal: str | None, pricer_kw: dict[str, Any]) -> tuple[Any, str]:
    """Re-run the pricing of a journaled event from what the event recorded (model, type, tokens, units)."""
    from datetime import datetime

    from ..journal import default_journal_target, get_journal
    from ..pricing import Pricer
    from ..usage import Usage

    target = journal or default_journal_target()
    if not target.startswith("sqlite:") and not Path(target).expanduser().exists():
        raise typer.BadParameter(f"no journal at {target}", param_hint="--journal")
    j = get_journal(target)
    found = list(j.store.iter_events("id = ?", (event_id,)))
    if not found:
        raise typer.BadParameter(f"no event {event_id!r} in {target}", param_hint="--event")
    e = found[0]
    model = e.get("canonical_model") or e.get("model_served") or e.get("model_requested") or ""
    usage = None
    if e.get("input_tokens") is not None:
        usage = Usage(**{k: e.get(k) or 0 for k in (
            "input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens", "audio_input_tokens",
            "audio_output_tokens", "cache_write_tokens", "image_input_tokens", "cached_audio_input_tokens")})
    units = {k: v for k, v in (e.get("units") or {}).items() if k != "unpriced"}
    azure = e.get("provider") == "azure_openai"
    kind = e.get("deployment_type") or "global"
    batch = kind.endswith("_batch") or e.get("batch_id") is not None
    base_kind = kind.removesuffix("_batch") if kind.endswith("_batch") else kind
    deployments = {"event": {"model": model, "type": base_kind}} if azure and model else None
    explanation = Pricer(deployments=deployments, **pricer_kw).explain(
        provider=e["provider"], usage=usage, model_served=model, model_requested=model,
        deployment="event" if deployments else None, units=units or None, batch=batch,
        service_tier=e.get("service_tier"), region=e.get("region"),
        at=datetime.fromisoformat(e["started_at"].replace("Z", "+00:00")))
    return explanation, model


def _normalised(p: RetailPrice) -> str:
    """Per 1M tokens/characters for count meters, per hour/second/… for time meters; '?' for an unknown unit."""
    unit = " ".join(p.unit_of_measure.lower().split())
    try:
        if unit in _TIME_NOUNS:
            return f"${_exact(per_unit(p))}/{_TIME_NOUNS[unit]}"
        noun = p.meter_name.rsplit(" ", 1)[-1].lower()
        if noun in ("tokens", "characters"):
            return f"${_exact(per_million(p))}/1M {noun}"
        return f"${_exact(per_unit(p))}/{noun.rstrip('s') or 'unit'}"
    except UnknownUnitError:
        return "?"


def _document(model: str, region: str | None, kind: str | None, prices: RetailPrices,
              rows: list[RetailPrice]) -> dict[str, Any]:
    out = []
    for p in rows:
        try:
            unit_price: str | None = _exact(per_unit(p))
        except UnknownUnitError:
            unit_price = None
        try:
            million: str | None = _exact(per_million(p))
        except UnknownUnitError:
            million = None
        out.append({
            "meterName": p.meter_name, "productName": p.product_name, "skuName": p.sku_name,
            "armRegionName": p.region, "unitOfMeasure": p.unit_of_measure, "retailPrice": _exact(p.price),
            "currencyCode": p.currency, "effectiveStartDate": p.effective_start.isoformat(),
            "deploymentType": meter_deployment_type(p.meter_name), "perUnit": unit_price, "perMillion": million,
            "source": p.source,
        })
    return {"model": model, "region": region, "type": kind, "origin": prices.origin,
            "fetched": prices.fetched.isoformat(), "sources": list(prices.sources), "prices": out}
