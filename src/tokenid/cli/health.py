"""``tokenid health``: each routing target's sends, failures, fallbacks, latency and breaker state."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..errors import ConfigError
from ..routing.health import TargetHealth, target_health


def _since(value: str | None) -> str:
    """An ISO date/time as given, or a look-back such as ``30m``, ``2h``, ``7d`` (default ``24h``)."""
    value = value or "24h"
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if value[-1:] in units and value[:-1].isdigit():
        start = datetime.now(timezone.utc) - timedelta(**{units[value[-1]]: int(value[:-1])})
        return start.isoformat(timespec="seconds").replace("+00:00", "Z")
    return value


def _configured(path: str | None) -> list[str]:
    if path is None:
        return []
    from ..enforce import load_config
    from ..routing import parse_routing

    raw = load_config(path, "--config", env=None)
    assert raw is not None
    routing = raw.get("routing", raw)
    try:
        return [t.name for t in parse_routing(routing, azure_client=True).targets()]
    except ConfigError as exc:
        try:  # a file written for the OpenAI clients: targets without a provider are OpenAI there
            return [t.name for t in parse_routing(routing, azure_client=False).targets()]
        except ConfigError:
            raise typer.BadParameter(str(exc), param_hint="--config") from exc


def _table(rows: list[TargetHealth], since: str) -> Table:
    table = Table(title=f"Routing targets since {since}")
    for name in ("target", "breaker", "sends", "ok %", "failed", "skipped", "served", "fell over", "p50 ms",
                 "last failure"):
        table.add_column(name, justify="left" if name in ("target", "breaker", "last failure") else "right")
    for h in rows:
        rate = "—" if h.success_rate is None else f"{h.success_rate * 100:.1f}"
        state = h.breaker or "—"
        style = {"open": "red", "half_open": "yellow"}.get(state, "")
        last = f"{h.last_failure} at {h.last_failure_at}" if h.last_failure else "—"
        table.add_row(h.target, f"[{style}]{state}[/{style}]" if style else state, str(h.sends), rate,
                      str(h.failed), str(h.skipped), str(h.served), str(h.fallbacks_from),
                      "—" if h.p50_ms is None else f"{h.p50_ms:g}", last)
    return table


def health(
    journal: Annotated[str | None, typer.Option("--journal", "-j", help="Journal path (default: $TOKENID_JOURNAL "
                                                "or the per-user journal).")] = None,
    since: Annotated[str | None, typer.Option(help="ISO date/time, or a look-back: 30m, 2h, 7d (default 24h).")]
    = None,
    config: Annotated[str | None, typer.Option(help="A routing (or enforcement) file: list its targets even "
                                               "when they saw no traffic.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per target.")] = False,
) -> None:
    """Health of each routing target from the journal: sends, failures, fallbacks, latency, breaker state."""
    from . import _open

    start = _since(since)
    j = _open(journal)
    events = j.iter_events("started_at >= ? AND route IS NOT NULL", (start,))
    rows = target_health(events, _configured(config))
    if as_json:
        for h in rows:
            typer.echo(json.dumps(h.as_dict()))
        return
    Console().print(_table(rows, start))
