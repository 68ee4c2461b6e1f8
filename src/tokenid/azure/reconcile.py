"""Reconciliation: the Azure invoice beside the journal, per (account, day, meter).

Azure bills a Cognitive Services *account* per day per *meter* and never names a deployment
(shared/azure-billing/EXPORTS.md §4, §6). The journal knows each call's account (the endpoint host), deployment,
model, deployment type and tokens by direction. :func:`reconcile` joins the two:

1. invoice rows are summed per (account, day, meter) and each meter name is parsed (:mod:`tokenid.azure.invoice`,
   :mod:`tokenid.azure.meters`);
2. journaled tokens are summed per (account, day, deployment, session, model, deployment type) and split into the
   disjoint directions a meter bills (input, cached input, output, audio ...), each with its list-price cost
   (:mod:`tokenid.azure.journaled`);
3. each token meter line takes the journal's tokens of the same model, version, deployment type and direction;
   a line left over takes tokens of the same model and direction journaled under another deployment type, which
   is evidence that the deployment is of the meter's type (a *learned mapping*);
4. the line's cost is split across deployments and sessions by token share; its cost per token is the deployment's
   *calibrated rate*, used to re-cost the journaled calls (the list-price cost is kept beside it);
5. capacity lines (provisioned throughput, fine-tune hosting, tools, storage) are allocated by capacity or time
   share, labelled, never dropped; what cannot be allocated is reported as unallocated.

Every line ends with a status: ``matched`` (within tolerance), ``variance``, ``invoice_only`` (billed, nothing
journaled: traffic that bypassed TokenID, or a missing account mapping), ``journal_only`` (journaled, not billed),
``capacity`` or ``unknown_meter``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Context, Decimal, InvalidOperation
from typing import Any, Final

from ..errors import ConfigError
from ..journal import Journal
from ..pricing.engine import Pricer
from ..pricing.rates import tidy
from .exports import CostLine, ReadSummary
from .invoice import (
    UNIT_METERS,
    InvoiceLine,
    billing_kind,
    block_size,
    collect_invoice,
    is_token_meter,
    unit_meter,
)
from .journaled import (
    TokenGroup,
    UnitGroup,
    account_name,
    account_of_host,
    is_fine_tuned,
    token_groups,
    unit_groups_of,
)
from .meters import MeterInfo, parse_meter

__all__ = [
    "STATUSES",
    "Allocation",
    "LearnedMapping",
    "LineResult",
    "ReconcileResult",
    "account_of_host",
    "reconcile",
]

#: Every status a reconciled line can have.
STATUSES: Final = ("matched", "variance", "invoice_only", "journal_only", "capacity", "unknown_meter")

_CTX = Context(prec=60)
_ZERO = Decimal(0)
_MILLION = Decimal(1_000_000)
_HUNDRED = Decimal(100)
# A direction the invoice has no meter for is billed on the nearest more general one (what Rates falls back to).
_FALLBACK: Final[dict[str, str]] = {
    "cached_input": "input",
    "cache_write": "input",
    "audio_input": "input",
    "image_input": "input",
    "cached_audio_input": "audio_input",
    "cached_image_input": "image_input",
    "audio_output": "output",
}


# --- results --------------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Allocation:
    """A share of one line's cost given to a deployment (and session). ``basis``: tokens | capacity | time |
    account_tokens | unallocated."""

    deployment: str | None
    session_id: str | None
    tokens: int
    share: Decimal
    cost_usd: Decimal | None
    basis: str


@dataclass(slots=True)
class LineResult:
    """One invoice line (or journal-only group) beside what the journal says about it."""

    day: date
    account_id: str
    account_name: str
    meter_name: str
    status: str
    meter: MeterInfo | None = None
    meter_ids: tuple[str, ...] = ()
    unit: str = ""
    currency: str = "USD"
    invoice_quantity: Decimal | None = None
    invoice_cost: Decimal | None = None
    invoice_cost_usd: Decimal | None = None
    journal_tokens: int = 0
    journal_quantity: Decimal | None = None
    journal_cost_usd: Decimal | None = None
    variance_usd: Decimal | None = None
    variance_pct: Decimal | None = None
    quantity_variance_pct: Decimal | None = None
    note: str = ""
    allocations: list[Allocation] = field(default_factory=list)

    @property
    def direction(self) -> str | None:
        return self.meter.direction if self.meter is not None else None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (money as decimal strings)."""
        info = self.meter
        return {
            "day": self.day.isoformat(),
            "account_id": self.account_id,
            "account_name": self.account_name,
            "meter_name": self.meter_name,
            "meter_ids": list(self.meter_ids),
            "model": info.model if info else None,
            "version": info.version if info else None,
            "direction": info.direction if info else None,
            "deployment_type": billing_kind(info) if info else None,
            "unit": self.unit,
            "currency": self.currency,
            "invoice_quantity": _text(self.invoice_quantity),
            "invoice_cost": _text(self.invoice_cost),
            "invoice_cost_usd": _text(self.invoice_cost_usd),
            "journal_tokens": self.journal_tokens,
            "journal_quantity": _text(self.journal_quantity),
            "journal_cost_usd": _text(self.journal_cost_usd),
            "variance_usd": _text(self.variance_usd),
            "variance_pct": _text(self.variance_pct),
            "quantity_variance_pct": _text(self.quantity_variance_pct),
            "status": self.status,
            "note": self.note,
            "allocations": [
                {"deployment": a.deployment, "session_id": a.session_id, "tokens": a.tokens,
                 "share": _text(a.share), "cost_usd": _text(a.cost_usd), "basis": a.basis}
                for a in self.allocations
            ],
        }


@dataclass(frozen=True, slots=True)
class LearnedMapping:
    """What the invoice shows a deployment to be; ``changed`` when the journal had assumed something else."""

    account: str
    deployment: str
    model: str
    version: str | None
    deployment_type: str
    evidence: str
    journal_deployment_type: str | None
    changed: bool


@dataclass(slots=True)
class ReconcileResult:
    """Everything one run found; :func:`tokenid.azure.reconcile_store.store_run` persists it."""

    run_id: str
    created_at: datetime
    source: str
    period_from: date | None
    period_to: date | None
    account: str | None
    tolerance_pct: Decimal
    lines: list[LineResult]
    mappings: list[LearnedMapping]
    #: (account, deployment, direction, day) → (calibrated USD per 1M tokens, list USD per 1M tokens)
    rates: dict[tuple[str, str, str, date], tuple[Decimal, Decimal | None]]
    #: (account, deployment, direction, day) → the journal's own USD per 1M tokens, for directions not calibrated
    list_rates: dict[tuple[str, str, str, date], Decimal] = field(default_factory=dict)
    #: endpoint host → account name, as given to :func:`reconcile` (re-costing events needs it again)
    accounts: dict[str, str] = field(default_factory=dict)
    read: ReadSummary | None = None
    currencies: set[str] = field(default_factory=set)
    #: accounts on the invoice with nothing journaled in the period, and journaled accounts the invoice lacks:
    #: both non-empty usually means a host is missing from the account map
    accounts_not_journaled: list[str] = field(default_factory=list)
    accounts_not_billed: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Lines per status (every status present, zeros included)."""
        out = dict.fromkeys(STATUSES, 0)
        for line in self.lines:
            out[line.status] += 1
        return out

    def totals(self) -> dict[str, Decimal]:
        """Invoice and journal cost in USD over the lines that have them, and the variance between them."""
        invoice = sum((ln.invoice_cost_usd for ln in self.lines if ln.invoice_cost_usd is not None), _ZERO)
        journal = sum((ln.journal_cost_usd for ln in self.lines if ln.journal_cost_usd is not None), _ZERO)
        unconverted = sum((ln.invoice_cost for ln in self.lines
                           if ln.invoice_cost_usd is None and ln.invoice_cost is not None), _ZERO)
        return {"invoice_usd": tidy(invoice), "journal_usd": tidy(journal), "variance_usd": tidy(invoice - journal),
                "invoice_unconverted": tidy(unconverted)}

    def summary(self) -> dict[str, Any]:
        """A JSON-ready digest: totals, counts by status, read figures and learned mappings."""
        read = self.read
        return {
            "run_id": self.run_id,
            "source": self.source,
            "period_from": self.period_from.isoformat() if self.period_from else None,
            "period_to": self.period_to.isoformat() if self.period_to else None,
            "tolerance_pct": str(self.tolerance_pct),
            "currencies": sorted(self.currencies),
            "lines": len(self.lines),
            "by_status": self.counts(),
            "accounts_not_journaled": self.accounts_not_journaled,
            "accounts_not_billed": self.accounts_not_billed,
            **{k: str(v) for k, v in self.totals().items()},
            "read": None if read is None else {
                "files": len(read.files), "rows_read": read.rows_read, "rows_kept": read.rows_kept,
                "rows_filtered_out": read.rows_filtered_out, "rows_malformed": read.rows_malformed,
                "files_malformed": read.files_malformed, "warnings": read.warnings,
                "issues": [str(i) for i in read.issues[:50]],
                "issues_omitted": read.issues_omitted + max(len(read.issues) - 50, 0),
                "superseded": list(read.superseded),
            },
            "mappings_changed": [
                {"account": m.account, "deployment": m.deployment, "model": m.model, "version": m.version,
                 "deployment_type": m.deployment_type, "was": m.journal_deployment_type, "evidence": m.evidence}
                for m in self.mappings if m.changed
            ],
        }


# --- matching -------------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Take:
    group: TokenGroup
    direction: str  # the group's own direction (may be a fallback of the line's)
    tokens: int


def _versions_match(meter_version: str | None, journal_version: str | None) -> bool:
    return meter_version is None or journal_version is None or meter_version == journal_version


def _candidates(groups: list[TokenGroup], info: MeterInfo, kind: str | None, directions: set[str],
                same_kind: bool) -> list[_Take]:
    takes: list[_Take] = []
    tuned = "fine_tuned" in info.qualifiers
    for g in groups:
        if g.family != info.model or not _versions_match(info.version, g.version):
            continue
        if is_fine_tuned(g, info) != tuned:
            continue
        if (g.kind == kind) != same_kind:
            continue
        for d in directions:
            count = g.tokens.get(d, 0)
            if count and d not in g.consumed:
                takes.append(_Take(g, d, count))
    return takes


def _fallbacks_into(direction: str, billed: set[str]) -> set[str]:
    """The journal directions a meter of ``direction`` bills: its own, plus those with no meter of their own on
    this invoice whose fallback chain reaches it."""
    out = {direction}
    for d in _FALLBACK:
        target = d
        while target in _FALLBACK and target not in billed:
            target = _FALLBACK[target]
        if target == direction and d not in billed:
            out.add(d)
    return out


def reconcile(
    lines: Iterable[CostLine],
    journal: Journal,
    *,
    start: date | None = None,
    end: date | None = None,
    account: str | None = None,
    accounts: Mapping[str, str] | None = None,
    capacities: Mapping[str, Decimal | int | str] | None = None,
    fx: Mapping[str, Decimal | int | str] | None = None,
    tolerance_pct: Decimal | int | str = Decimal("0.5"),
    pricer: Pricer | None = None,
    read: ReadSummary | None = None,
    source: str = "",
) -> ReconcileResult:
    """Reconcile invoice ``lines`` (from :func:`~tokenid.azure.exports.read_export` or the Query API) with
    ``journal`` over ``[start, end]`` (inclusive days; default: the days the invoice covers).

    ``account``: one account (name or ResourceId). ``accounts``: endpoint host → account name or ResourceId, for
    hosts that are not ``NAME.openai.azure.com`` (a custom domain, a proxy, the local simulator). ``capacities``:
    provisioned deployment → PTUs, to allocate PTU hours by capacity. ``fx``: billing currency → units of it per
    USD, for rows that carry no USD cost or exchange rate. ``tolerance_pct``: the variance (cost and quantity)
    within which a line is ``matched``. ``pricer``: the list prices the journal is compared with (default: the
    journal's own deployment types and models, at Azure retail).
    """
    tolerance = _decimal(tolerance_pct, "tolerance_pct")
    rates_fx = {k.upper(): _decimal(v, f"fx[{k}]") for k, v in (fx or {}).items()}
    ptus = {k: _decimal(v, f"capacities[{k}]") for k, v in (capacities or {}).items()}
    host_map = {k.lower(): v for k, v in (accounts or {}).items()}
    only = account_name(account) if account else None
    if start is not None and end is not None and start > end:
        raise ConfigError(f"start ({start}) is after end ({end})")

    invoice = collect_invoice(lines, rates_fx)
    if only is not None:
        invoice = {k: v for k, v in invoice.items() if v.account_name == only or v.account_id == account}
    days = [k[1] for k in invoice]
    lo = start or (min(days) if days else None)
    hi = end or (max(days) if days else None)
    groups: dict[tuple[str, date], list[TokenGroup]] = {}
    unit_groups: dict[tuple[str, date], list[UnitGroup]] = {}
    if lo is not None and hi is not None:
        groups = token_groups(journal, lo, hi, host_map, only, pricer or Pricer())
        unit_groups = unit_groups_of(journal, lo, hi, host_map, only)

    engine = _Engine(groups, unit_groups, ptus, tolerance)
    results = engine.run(invoice)
    currencies = {ln.currency for ln in invoice.values()}
    billed_accounts = {ln.account_name for ln in invoice.values() if ln.on_account}
    journaled_accounts = {acct for acct, _ in groups} | {acct for acct, _ in unit_groups}
    return ReconcileResult(
        run_id=_run_id(), created_at=datetime.now(tz=timezone.utc), source=source, period_from=lo, period_to=hi,
        account=only, tolerance_pct=tolerance, lines=results, mappings=engine.mapping_list(), rates=engine.rates,
        list_rates=engine.list_rates(), accounts=host_map, read=read, currencies=currencies,
        accounts_not_journaled=sorted(billed_accounts - journaled_accounts),
        accounts_not_billed=sorted(journaled_accounts - billed_accounts),
    )


class _Engine:
    """One run's matching state: the journal groups, what each line took, and what was learned."""

    def __init__(self, groups: dict[tuple[str, date], list[TokenGroup]],
                 unit_groups: dict[tuple[str, date], list[UnitGroup]], ptus: Mapping[str, Decimal],
                 tolerance: Decimal) -> None:
        self.groups = groups
        self.unit_groups = unit_groups
        self.ptus = ptus
        self.tolerance = tolerance
        self.mappings: dict[tuple[str, str], LearnedMapping] = {}
        self.rates: dict[tuple[str, str, str, date], tuple[Decimal, Decimal | None]] = {}

    def list_rates(self) -> dict[tuple[str, str, str, date], Decimal]:
        out: dict[tuple[str, str, str, date], Decimal] = {}
        for groups in self.groups.values():
            for g in groups:
                for d, rate in g.list_rate.items():
                    out.setdefault((g.account, g.deployment or "", d, g.day), tidy(rate))
        return out

    def mapping_list(self) -> list[LearnedMapping]:
        return sorted(self.mappings.values(), key=lambda m: (m.account, m.deployment))

    def run(self, invoice: Mapping[tuple[str, date, str], InvoiceLine]) -> list[LineResult]:
        parsed = {key: parse_meter(line.meter_name, line.unit or None) for key, line in invoice.items()}
        # which (model, version, kind, direction) the invoice bills per account-day, for direction fallbacks
        billed: dict[tuple[str, date, str | None, str | None, str | None], set[str]] = defaultdict(set)
        for key, info in parsed.items():
            line = invoice[key]
            if is_token_meter(info):
                billed[(line.account_name, line.day, info.model, info.version, billing_kind(info))].add(
                    str(info.direction))
        results: dict[tuple[str, date, str], LineResult] = {}
        token_keys = [k for k, info in parsed.items() if is_token_meter(info) and invoice[k].on_account]
        # pass 1: same model, version, type and direction; pass 2: the same model and direction journaled under
        # another deployment type (the invoice is the evidence of the deployment's real type)
        for same_kind in (True, False):
            for key in token_keys:
                if key in results:
                    continue
                line, info = invoice[key], parsed[key]
                kind = billing_kind(info)
                directions = _fallbacks_into(
                    str(info.direction), billed[(line.account_name, line.day, info.model, info.version, kind)])
                takes = _candidates(self.groups.get((line.account_name, line.day), []), info, kind, directions,
                                    same_kind)
                if takes:
                    results[key] = self._matched(line, info, takes, learned=not same_kind)
        for key, line in invoice.items():
            info = parsed[key]
            if key in results or not line.on_account or unit_meter(info) is None:
                continue
            found = [g for g in self.unit_groups.get((line.account_name, line.day), []) if g.fits(info)]
            if found:
                results[key] = self._matched_units(line, info, found)
        for key, line in invoice.items():
            if key in results:
                continue
            info = parsed[key]
            billed_units = unit_meter(info)
            if (is_token_meter(info) or billed_units is not None) and line.on_account:
                what = f"{billed_units[0].replace('_', ' ')} of this model" if billed_units is not None else \
                    "tokens of this model, type and direction"
                results[key] = self._line(line, info, "invoice_only",
                                          f"billed, but no journaled {what} on this account and day (traffic "
                                          "that bypassed TokenID, or a host missing from the account map)")
            elif info.unknown:
                results[key] = self._line(line, info, "unknown_meter", f"meter name not understood: {info.reason}")
                results[key].allocations = [Allocation(None, None, 0, Decimal(1), results[key].invoice_cost_usd,
                                                       "unallocated")]
            else:
                results[key] = self._capacity(line, info)
        out = list(results.values())
        out.extend(self._journal_only())
        out.sort(key=lambda r: (r.day, r.account_name, r.meter_name))
        return out

    # -- lines ---------------------------------------------------------------------------------------------------
    def _line(self, line: InvoiceLine, info: MeterInfo | None, status: str, note: str = "") -> LineResult:
        units = sorted(line.units_seen)
        if len(units) > 1:
            note = (note + "; " if note else "") + f"rows disagree on UnitOfMeasure: {', '.join(units)}"
        return LineResult(
            day=line.day, account_id=line.account_id, account_name=line.account_name, meter_name=line.meter_name,
            status=status, meter=info, meter_ids=tuple(sorted(line.meter_ids)), unit=line.unit,
            currency=line.currency, invoice_quantity=line.quantity, invoice_cost=line.cost,
            invoice_cost_usd=line.cost_usd, note=note,
        )

    def _matched(self, line: InvoiceLine, info: MeterInfo, takes: list[_Take], *, learned: bool) -> LineResult:
        result = self._line(line, info, "matched")
        direction = str(info.direction)
        tokens = sum(t.tokens for t in takes)
        cost = sum((t.group.list_cost.get(t.direction, _ZERO) for t in takes), _ZERO)
        priced = all(t.direction in t.group.list_cost for t in takes)
        result.journal_tokens = tokens
        result.journal_cost_usd = tidy(cost) if priced else None
        notes = self._compare(result, line, block_size(line.unit, info), Decimal(tokens), "tokens")
        folded = sorted({t.direction for t in takes} - {direction})
        if folded:
            notes.append(f"includes {', '.join(folded)} tokens (no meter of their own on this invoice)")
        # split across deployments and sessions by token share; the line's cost per token is the calibrated rate
        for t in takes:
            t.group.consumed.add(t.direction)
        share_cost = line.cost_usd
        by_deployment: dict[str | None, int] = defaultdict(int)
        for t in takes:
            share = _CTX.divide(Decimal(t.tokens), Decimal(tokens)) if tokens else _ZERO
            result.allocations.append(Allocation(
                t.group.deployment, t.group.session_id, t.tokens, share,
                tidy(_CTX.multiply(share_cost, share)) if share_cost is not None else None, "tokens"))
            by_deployment[t.group.deployment] += t.tokens
            if share_cost is not None and tokens:
                rate = _CTX.divide(_CTX.multiply(share_cost, _MILLION), Decimal(tokens))
                key = (line.account_name, t.group.deployment or "", t.direction, line.day)
                self.rates[key] = (tidy(rate), tidy(t.group.list_rate[t.direction])
                                   if t.direction in t.group.list_rate else None)
        for t in takes:
            if t.group.deployment:
                self._learn(line, info, t.group, learned)
        if learned:
            kinds = sorted({str(t.group.kind) for t in takes})
            notes.append(f"journal had these deployments as {', '.join(kinds)}; the invoice bills them as "
                         f"{billing_kind(info)}")
        result.note = "; ".join(filter(None, [result.note, *notes]))
        return result

    def _compare(self, result: LineResult, line: InvoiceLine, block: Decimal | None, amount: Decimal,
                 what: str) -> list[str]:
        """Quantity and cost variance of a line whose journal side is filled in; sets the status, returns notes."""
        notes: list[str] = []
        if block is not None:
            result.journal_quantity = tidy(_CTX.divide(amount, block))
            if line.quantity:
                result.quantity_variance_pct = _pct(line.quantity - result.journal_quantity, line.quantity)
        else:
            notes.append(f"unknown block size for UnitOfMeasure {line.unit!r}")
        if line.cost_usd is not None and result.journal_cost_usd is not None:
            result.variance_usd = tidy(line.cost_usd - result.journal_cost_usd)
            result.variance_pct = _pct(result.variance_usd, line.cost_usd)
        elif line.cost_usd is None:
            notes.append(f"no USD cost or exchange rate for {line.currency}: compared by quantity only")
        else:
            notes.append(f"journaled {what} are unpriced: compared by quantity only")
        over = [name for name, pct in (("cost", result.variance_pct), ("quantity", result.quantity_variance_pct))
                if pct is not None and abs(pct) > self.tolerance]
        if over:
            result.status = "variance"
            notes.append(f"{' and '.join(over)} differ by more than {self.tolerance}%")
            if "quantity" in over and result.journal_quantity and line.quantity:
                ratio = _CTX.divide(amount, line.quantity)
                notes.append(f"journaled {what} ÷ invoice quantity = {ratio.quantize(Decimal('0.01'))} "
                             f"(block {block})")
        return notes

    def _matched_units(self, line: InvoiceLine, info: MeterInfo, takes: list[UnitGroup]) -> LineResult:
        """A meter billed per image, character, hour of audio or tool call, beside the journal's unit counts."""
        result = self._line(line, info, "matched")
        unit, block = UNIT_METERS[str(info.unit)]  # a unit meter: unit_meter(info) is not None
        amount = sum((g.amount for g in takes), _ZERO)
        priced = all(g.cost is not None for g in takes)
        result.journal_cost_usd = tidy(sum((g.cost or _ZERO for g in takes), _ZERO)) if priced else None
        notes = self._compare(result, line, block, amount, unit.replace("_", " "))
        for g in takes:
            g.consumed = True
            share = _CTX.divide(g.amount, amount) if amount else _ZERO
            cost = tidy(_CTX.multiply(line.cost_usd, share)) if line.cost_usd is not None else None
            result.allocations.append(Allocation(g.deployment, g.session_id, 0, share, cost, "units"))
        result.note = "; ".join(filter(None, [result.note, *notes]))
        return result

    def _learn(self, line: InvoiceLine, info: MeterInfo, group: TokenGroup, learned: bool) -> None:
        kind = billing_kind(info) or ""
        key = (line.account_name, str(group.deployment))
        if key in self.mappings and not learned:
            return
        self.mappings[key] = LearnedMapping(
            account=line.account_name, deployment=str(group.deployment), model=str(info.model),
            version=info.version or group.version, deployment_type=kind,
            evidence=f"{line.meter_name} on {line.day}", journal_deployment_type=group.kind,
            changed=learned and group.kind != kind)

    def _capacity(self, line: InvoiceLine, info: MeterInfo) -> LineResult:
        """Provisioned throughput, hosting, tools, storage, images...: allocated, labelled, never dropped."""
        result = self._line(line, info, "capacity")
        groups = self.groups.get((line.account_name, line.day), []) if line.on_account else []
        charge = ", ".join(sorted(line.charge_types))
        allocations: list[Allocation] = []
        basis_note = ""
        if not line.on_account:
            basis_note = f"not on an account ({charge}): shown, not allocated"
        elif line.charge_types & {"UnusedReservation", "UnusedSavingsPlan", "Purchase"}:
            basis_note = f"{charge}: a commitment cost, not allocated to deployments"
        elif info.billing_mode == "provisioned":
            scope_groups = [g for g in groups if g.kind == "provisioned" and g.deployment]
            deployments = sorted({str(g.deployment) for g in scope_groups})
            with_capacity = {d: self.ptus[d] for d in deployments if d in self.ptus}
            if with_capacity and len(with_capacity) == len(deployments):
                total = sum(with_capacity.values(), _ZERO)
                allocations = [self._share(line, d, None, 0, _CTX.divide(c, total), "capacity")
                               for d, c in sorted(with_capacity.items())]
                basis_note = "PTU hours allocated by deployment capacity (PTUs)"
            elif scope_groups:
                allocations = self._by_tokens(line, scope_groups, "tokens")
                basis_note = "PTU hours allocated by journaled tokens (no capacity given for every deployment)"
            else:
                basis_note = "no provisioned deployment journaled on this account and day: unallocated"
        elif info.direction == "hosting":
            hosted = sorted({str(g.deployment) for g in groups if g.deployment and is_fine_tuned(g, info)})
            if hosted:
                share = _CTX.divide(Decimal(1), Decimal(len(hosted)))
                allocations = [self._share(line, d, None, 0, share, "time") for d in hosted]
                basis_note = "fine-tune hosting hours shared equally by the fine-tuned deployments journaled"
            else:
                basis_note = "no fine-tuned deployment journaled on this account and day: unallocated"
        elif groups:
            allocations = self._by_tokens(line, groups, "account_tokens")
            basis_note = "not tied to tokens: allocated by each deployment's share of the account's tokens"
        else:
            basis_note = "nothing journaled on this account and day: unallocated"
        if not allocations:
            allocations = [Allocation(None, None, 0, Decimal(1), line.cost_usd, "unallocated")]
        result.allocations = allocations
        result.note = "; ".join(filter(None, [result.note, basis_note]))
        return result

    def _share(self, line: InvoiceLine, deployment: str | None, session: str | None, tokens: int, share: Decimal,
               basis: str) -> Allocation:
        cost = tidy(_CTX.multiply(line.cost_usd, share)) if line.cost_usd is not None else None
        return Allocation(deployment, session, tokens, share, cost, basis)

    def _by_tokens(self, line: InvoiceLine, groups: list[TokenGroup], basis: str) -> list[Allocation]:
        per: dict[tuple[str | None, str | None], int] = defaultdict(int)
        for g in groups:
            per[(g.deployment, g.session_id)] += sum(g.tokens.values())
        total = sum(per.values())
        if not total:
            return []
        return [self._share(line, d, s, n, _CTX.divide(Decimal(n), Decimal(total)), basis)
                for (d, s), n in sorted(per.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1])))]

    def _journal_only(self) -> Iterator[LineResult]:
        """Journaled tokens no invoice line took, one line per (account, day, model, version, type, direction)."""
        left: dict[tuple[str, date, str | None, str | None, str | None, str], list[_Take]] = defaultdict(list)
        for groups in self.groups.values():
            for g in groups:
                if g.kind == "provisioned":
                    continue  # billed by the hour on the PTU meters, which are capacity lines
                for d, n in g.tokens.items():
                    if n and d not in g.consumed:
                        left[(g.account, g.day, g.family, g.version, g.kind, d)].append(_Take(g, d, n))
        for unit_groups in self.unit_groups.values():
            for ug in unit_groups:
                if not ug.consumed:
                    yield LineResult(
                        day=ug.day, account_id="", account_name=ug.account,
                        meter_name=f"(journal) {ug.family or ''} {ug.unit}".replace("  ", " "), status="journal_only",
                        journal_quantity=ug.amount, journal_cost_usd=ug.cost,
                        note=f"{ug.amount} {ug.unit.replace('_', ' ')} journaled on {ug.deployment} but no invoice "
                             "line bills them",
                        allocations=[Allocation(ug.deployment, ug.session_id, 0, Decimal(1), None, "units")])
        for (acct, day, family, version, kind, direction), takes in left.items():
            tokens = sum(t.tokens for t in takes)
            priced = all(t.direction in t.group.list_cost for t in takes)
            cost = sum((t.group.list_cost.get(t.direction, _ZERO) for t in takes), _ZERO)
            label = " ".join(filter(None, [family or "(unknown model)", version, direction, kind]))
            info = MeterInfo(name=f"(journal) {label}", model=family, version=version, direction=direction,
                             deployment_type=kind, billing_mode="standard")
            deployments = sorted({str(t.group.deployment) for t in takes})
            yield LineResult(
                day=day, account_id="", account_name=acct, meter_name=f"(journal) {label}", status="journal_only",
                meter=info, journal_tokens=tokens, journal_cost_usd=tidy(cost) if priced else None,
                note=f"journaled on {', '.join(deployments)} but no invoice line bills it (another billing scope, "
                     "a wrong account map, or usage Azure did not bill)",
                allocations=[Allocation(t.group.deployment, t.group.session_id, t.tokens,
                                        _CTX.divide(Decimal(t.tokens), Decimal(tokens)), None, "tokens")
                             for t in takes],
            )


def _pct(delta: Decimal, base: Decimal) -> Decimal | None:
    if not base:
        return None if delta else _ZERO
    return _CTX.divide(_CTX.multiply(delta, _HUNDRED), base).quantize(Decimal("0.0001"))


def _decimal(value: Decimal | int | str, key: str) -> Decimal:
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{key} must be a number; got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ConfigError(f"{key} must be a finite number >= 0; got {value!r}")
    return number


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _run_id() -> str:
    now = datetime.now(tz=timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"

