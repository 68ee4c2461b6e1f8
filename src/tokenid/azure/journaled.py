"""The journal side of reconciliation: Azure calls summed per (account, day, deployment, session, model, type).

Tokens are split into the disjoint directions a meter bills (uncached input, cached input, output, audio ...),
each with its list-price cost: the journaled cost of the group spread over the directions in proportion to their
list rates, so a user's own price overrides are respected. Non-token units (images, characters, audio seconds,
tool calls) are grouped like the meters that bill them. The account of a call is read from its endpoint host.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Context, Decimal
from typing import Any, Final

from ..journal import Journal
from ..pricing.engine import Pricer
from ..pricing.models import ModelNames
from ..pricing.rates import COMPONENTS, component_costs, split_tokens
from ..usage import Usage
from .invoice import unit_meter
from .meters import MeterInfo

__all__ = ["TokenGroup", "UnitGroup", "account_name", "account_of_host", "canonical_parts", "is_fine_tuned",
           "token_groups", "unit_groups_of"]

_CTX = Context(prec=60)
_ZERO = Decimal(0)
_MILLION = Decimal(1_000_000)

# Host suffixes of Azure OpenAI endpoints: the first label is the account's custom subdomain (usually its name).
_AZURE_HOSTS = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com",
                ".openai.azure.us", ".cognitiveservices.azure.us")


def account_of_host(host: str | None, accounts: Mapping[str, str] | None = None) -> str | None:
    """The account name a journaled endpoint host belongs to: ``accounts[host]`` when given, else the first label
    of an Azure OpenAI host (``contoso-oai.openai.azure.com`` → ``contoso-oai``), else the host itself."""
    if not host:
        return None
    host = host.lower()
    if accounts:
        mapped = accounts.get(host)
        if mapped is not None:
            return account_name(mapped)
    for suffix in _AZURE_HOSTS:
        if host.endswith(suffix):
            return host[: -len(suffix)]
    return host


def account_name(value: str) -> str:
    """An account name from a name or a ResourceId (``…/accounts/NAME``), lower-cased."""
    value = value.strip().lower().rstrip("/")
    marker = "/accounts/"
    i = value.rfind(marker)
    if i >= 0:
        value = value[i + len(marker):].split("/", 1)[0]
    return value


_GROUP_SQL = """
SELECT resource, substr(started_at, 1, 10) AS day, deployment, model_served, model_requested, canonical_model,
       deployment_type, region, service_tier, batch_id IS NOT NULL AS batch, session_id,
       COUNT(*) AS calls,
       COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cached_input_tokens), 0),
       COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(audio_input_tokens), 0),
       COALESCE(SUM(audio_output_tokens), 0), COALESCE(SUM(cache_write_tokens), 0),
       COALESCE(SUM(image_input_tokens), 0), COALESCE(SUM(cached_audio_input_tokens), 0),
       SUM(cost_nanousd)
FROM events
WHERE provider = 'azure_openai' AND started_at >= ? AND started_at < ? AND status != 'blocked'
  AND COALESCE(cache_hit, 0) = 0 AND input_tokens IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
"""


@dataclass(slots=True)
class TokenGroup:
    """Journaled tokens of one (account, day, deployment, session, model, type, ...) and their list cost."""

    account: str
    day: date
    deployment: str | None
    session_id: str | None
    family: str | None
    version: str | None
    kind: str | None
    pricing_key: tuple[Any, ...]
    tokens: dict[str, int]
    list_cost: dict[str, Decimal]  # per direction, scaled so the directions sum to the journaled cost
    list_rate: dict[str, Decimal]  # USD per 1M tokens per direction (journaled cost basis)
    consumed: set[str] = field(default_factory=set)


# OpenAI model ids whose Azure meters spell the family differently (`Az-Speech-Text to Speech HD Characters` bills
# tts-1-hd, `Az-Speech-Whisper …` whisper-1).
_METER_FAMILIES: Final[dict[str, str]] = {"tts-1": "tts", "tts-1-hd": "tts-hd", "whisper-1": "whisper"}


def canonical_parts(canonical: str | None) -> tuple[str | None, str | None]:
    if not canonical:
        return None, None
    if canonical in _METER_FAMILIES:
        return _METER_FAMILIES[canonical], None
    family = ModelNames.unversioned(canonical)
    version = canonical[len(family) + 1:] or None
    return family, version


def _usage(values: tuple[int, ...]) -> Usage:
    inp, out, cached, reasoning, audio_in, audio_out, write, image, cached_audio = values
    return Usage(input_tokens=inp, output_tokens=out, cached_input_tokens=cached, reasoning_tokens=reasoning,
                 audio_input_tokens=audio_in, audio_output_tokens=audio_out, cache_write_tokens=write,
                 image_input_tokens=image, cached_audio_input_tokens=cached_audio)


def token_groups(journal: Journal, start: date, end: date, accounts: Mapping[str, str] | None,
                    account: str | None, pricer: Pricer) -> dict[tuple[str, date], list[TokenGroup]]:
    """The journal's Azure tokens per (account, day), in groups that carry their per-direction list cost."""
    rows = journal.store.query(_GROUP_SQL, (start.isoformat(), (end + timedelta(days=1)).isoformat()))
    out: dict[tuple[str, date], list[TokenGroup]] = defaultdict(list)
    for row in rows:
        (host, day_text, deployment, served, requested, canonical, dtype, region, tier, batch, session, _calls,
         *counts, nanos) = tuple(row)
        name = account_of_host(host, accounts)
        if name is None or (account is not None and name != account):
            continue
        day = date.fromisoformat(day_text)
        usage = _usage(tuple(int(c) for c in counts))
        family, version = canonical_parts(canonical)
        kind = f"priority:{dtype}" if tier == "priority" and dtype else dtype
        tokens: dict[str, int] = {}
        costs: dict[str, Decimal] = {}
        rates: dict[str, Decimal] = {}
        at = datetime.combine(day, time(12), tzinfo=timezone.utc)
        priced = pricer.price(provider="azure_openai", usage=usage, model_served=canonical or served,
                              model_requested=requested, deployment=deployment, at=at, batch=bool(batch),
                              service_tier=tier, region=region)
        lines = component_costs(priced.rates, usage, priced.multiplier or Decimal(1)) if priced.rates else ()
        derived = sum((ln.cost_usd for ln in lines), _ZERO)
        journaled = Decimal(nanos).scaleb(-9) if nanos is not None else None
        # What was journaled is the truth of the journal (it may carry the user's own overrides): spread it over
        # the directions in proportion to the list price of each.
        scale = _CTX.divide(journaled, derived) if journaled is not None and derived else Decimal(1)
        for ln in lines:
            if ln.tokens:
                tokens[ln.component] = ln.tokens
                cost = _CTX.multiply(ln.cost_usd, scale)
                costs[ln.component] = cost
                rates[ln.component] = _CTX.divide(_CTX.multiply(cost, _MILLION), ln.tokens)
        if not lines:  # not priceable here: the tokens still count for quantities and shares
            for name, count in zip(COMPONENTS, split_tokens(usage), strict=True):
                if count:
                    tokens[name] = count
        out[(name, day)].append(TokenGroup(name, day, deployment, session, family, version, kind,
                                       (deployment, canonical, dtype, region, tier, bool(batch), day),
                                       tokens, costs, rates))
    return out


_UNITS_SQL = """
SELECT resource, substr(started_at, 1, 10), deployment, COALESCE(canonical_model, model_served), deployment_type,
       session_id, units, units_cost_usd
FROM events
WHERE provider = 'azure_openai' AND started_at >= ? AND started_at < ? AND status != 'blocked'
  AND COALESCE(cache_hit, 0) = 0 AND units IS NOT NULL
"""


@dataclass(slots=True)
class UnitGroup:
    """Journaled units of one kind (images of one quality and size, characters, audio seconds, tool calls)."""

    account: str
    day: date
    deployment: str | None
    session_id: str | None
    family: str | None
    unit: str
    qualifiers: frozenset[str]
    service: str | None = None
    amount: Decimal = _ZERO
    cost: Decimal | None = _ZERO
    consumed: bool = False

    def fits(self, info: MeterInfo) -> bool:
        """Whether meter ``info`` bills these units."""
        found = unit_meter(info)
        if found is None or self.consumed:
            return False
        unit = found[0]
        if unit == "calls":
            return self.service is not None and self.service == info.service
        if unit != self.unit or (info.model is not None and info.model != self.family):
            return False
        if unit == "images":
            if ("hd" in info.qualifiers) != ("hd" in self.qualifiers):
                return False
            resolution = set(info.qualifiers) & {"high_res", "low_res"}
            return not resolution or bool(resolution & self.qualifiers)
        return True


def _image_qualifiers(units: Mapping[str, Any]) -> frozenset[str]:
    out = set()
    if str(units.get("image_quality", "")).lower() == "hd":
        out.add("hd")
    size = str(units.get("image_size", ""))
    if size:
        out.add("low_res" if size == "1024x1024" else "high_res")
    return frozenset(out)


def unit_groups_of(journal: Journal, start: date, end: date, accounts: Mapping[str, str] | None,
                   account: str | None) -> dict[tuple[str, date], list[UnitGroup]]:
    """The journal's Azure non-token units per (account, day), grouped like the meters that bill them."""
    rows = journal.store.query(_UNITS_SQL, (start.isoformat(), (end + timedelta(days=1)).isoformat()))
    groups: dict[tuple[Any, ...], UnitGroup] = {}
    for host, day_text, deployment, model, _dtype, session, units_text, units_cost in rows:
        name = account_of_host(host, accounts)
        if name is None or (account is not None and name != account):
            continue
        try:
            units = json.loads(units_text)
        except ValueError:
            continue
        if not isinstance(units, dict):
            continue
        family, _ = canonical_parts(model)
        day = date.fromisoformat(day_text)
        found: list[tuple[str, frozenset[str], str | None, Decimal]] = []
        for unit, service in (("images", None), ("characters", None), ("audio_seconds", None),
                              ("file_search_calls", "file_search_calls"), ("web_search_calls", "web_search_calls")):
            value = units.get(unit)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                quals = _image_qualifiers(units) if unit == "images" else frozenset()
                found.append(("calls" if service else unit, quals, service, Decimal(str(value))))
        for unit, quals, service, amount in found:
            key = (name, day, deployment, session, family, unit, quals, service)
            group = groups.get(key)
            if group is None:
                group = groups[key] = UnitGroup(name, day, deployment, session, family, unit, quals, service)
            group.amount += amount
            # the units' cost is attributable when the call billed one kind of unit only
            if units_cost is None or len(found) != 1 or group.cost is None:
                group.cost = None
            else:
                group.cost += Decimal(units_cost)
    out: dict[tuple[str, date], list[UnitGroup]] = defaultdict(list)
    for group in groups.values():
        out[(group.account, group.day)].append(group)
    return out



def is_fine_tuned(group: TokenGroup, info: MeterInfo) -> bool:
    model = group.pricing_key[1] or ""
    deployment = group.deployment or ""
    tuned = model.startswith("ft:") or ".ft-" in model or "-ft-" in model or "ft" in deployment.lower().split("-")
    return tuned and (info.model is None or group.family is None or group.family == info.model)

