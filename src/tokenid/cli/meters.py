"""``tokenid meters``: what an Azure OpenAI meter name bills, as the invoice reconciler reads it."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..azure.meters import MeterAliases, MeterInfo, load_aliases, parse_meter
from ..errors import ConfigError

meters_app = typer.Typer(
    help="Azure OpenAI meter names: model, version, direction, deployment type and unit of each.",
    no_args_is_help=True,
)


def _names(args: list[str]) -> Iterator[str]:
    """The arguments, with each ``-`` replaced by the non-blank lines of standard input."""
    for arg in args:
        if arg != "-":
            yield arg
            continue
        for line in sys.stdin:
            name = line.strip()
            if name:
                yield name


def _table(infos: list[MeterInfo]) -> Table:
    table = Table(header_style="bold", pad_edge=False)
    table.add_column("meter", overflow="fold", min_width=12)
    for column in ("model", "version", "direction", "deployment", "billing", "context", "unit"):
        table.add_column(column, overflow="fold")
    table.add_column("notes", overflow="fold")
    for info in infos:
        if info.unknown:
            table.add_row(info.name, Text("unknown", style="bold red"), *[""] * 6, info.reason or "")
            continue
        notes = [f"service: {info.service}"] if info.service else []
        notes += list(info.qualifiers)
        table.add_row(info.name, info.model or "—", info.version or "—", info.direction or "—",
                      info.deployment_type or "—", info.billing_mode or "—", info.context_tier or "—",
                      info.unit or "—", ", ".join(notes))
    return table


@meters_app.command()
def explain(
    names: Annotated[list[str], typer.Argument(
        help="Meter names as in an export's MeterName column (quote each); '-' reads names from standard input, "
             "one per line.", show_default=False, metavar="NAME")],
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object per name, one per line.")] = False,
    unit: Annotated[str | None, typer.Option(
        "--unit", help="The unitOfMeasure that goes with the names (1K, 1M, 1 Hour...).")] = None,
    aliases: Annotated[Path | None, typer.Option(
        help="An alias file (TOML) read over the bundled table and $TOKENID_METER_ALIASES.")] = None,
    strict: Annotated[bool, typer.Option(help="Exit with status 1 if any name is unknown.")] = False,
) -> None:
    """What each meter name parses to: model, version, direction, deployment type, billing mode, unit — or why
    it is unknown."""
    vocabulary: MeterAliases | None = None
    if aliases is not None:
        try:
            vocabulary = load_aliases(aliases)
        except ConfigError as exc:
            raise typer.BadParameter(str(exc), param_hint="--aliases") from exc
    infos = [parse_meter(name, unit, aliases=vocabulary) for name in _names(names)]
    if json_output:
        for info in infos:
            sys.stdout.write(json.dumps(info.to_json(), ensure_ascii=False) + "\n")
    else:
        Console().print(_table(infos))
    if strict and any(info.unknown for info in infos):
        raise typer.Exit(1)
