"""Streaming readers for Azure Cost Management exports: the input half of reconciliation.

``read_export(path)`` returns a lazy iterator of :class:`CostLine` (one invoice line: account × day × meter) and a
:class:`ReadSummary` that fills in as the iterator is consumed. Memory stays flat whatever the file size: CSV goes
through the ``csv`` module line by line, Parquet through ``pyarrow`` record batches.

What it reads (each file's format is detected from its header, never from its name; gzip and Parquet from their
magic bytes):

- legacy "Actual cost" / "Amortized cost" exports: EA (PascalCase, including the older ``Cost`` /
  ``BillingCurrency`` / ``Product`` names) and MCA (camelCase, billing-currency costs beside ``costInUsd`` and
  ``exchangeRatePricingToBilling``); UTF-8 with or without a BOM (UTF-16 with a BOM too); ``MM/dd/yyyy`` or ISO
  dates; Tags as a JSON object or as JSON pairs without the outer braces;
- FOCUS 1.0, 1.0r2, 1.2-preview and 1.2 (``FocusCost``), CSV or Parquet;
- a folder: when it holds ``manifest.json`` files only the blobs they list are read, and of the runs for one scope,
  dataset and month only the latest (month-to-date runs restate the days before them); without a manifest, every
  export file inside (``*.csv``, ``*.csv.gz``, ``*.gz``, ``*.parquet``).

Rules that encode the traps of Azure billing data (shared/azure-billing/EXPORTS.md §6):

- **No deployment dimension.** Azure bills the Cognitive Services *account*: ``account_id`` is the ResourceId
  case-folded (FOCUS lower-cases it, legacy exports do not) and cut to ``…/accounts/NAME``, so rows that name a
  ``/projects/…`` or ``/deployments/…`` child land on their account.
- **Quantity is in blocks.** ``quantity`` is ``Quantity`` / FOCUS ``ConsumedQuantity`` counted in UnitOfMeasure
  blocks (``1K``, ``1M``, …). FOCUS ``PricingQuantity`` and ``ContractedCost`` are never read: Microsoft's own sample
  rows divide them by the block size a second time. FOCUS token meters say only ``Units``, so
  ``unit_of_measure`` comes from ``x_PricingUnitDescription``, else from ``x_PricingBlockSize`` (1000 → ``1K``).
- **Prices vary by region, date and contract**: ``cost`` is the export's own cost and ``unit_price`` its effective
  price (``EffectivePrice`` / ``x_EffectiveUnitPrice``); nothing is recomputed from a price list.
- **Capacity costs are kept.** PTU hours, fine-tune hosting, tools, storage, reservation purchases and
  unused-reservation rows stay in the stream, labelled by ``charge_type`` and ``pricing_model``, for the
  reconciler to allocate; ``openai_only`` drops only rows of other services.
- **Currencies.** ``cost`` is in the billing currency. ``cost_usd`` is ``costInUsd`` / ``x_BilledCostInUsd`` when
  exported, the cost itself when billing in USD, else cost ÷ exchange rate (``exchangeRatePricingToBilling`` /
  ``x_BillingExchangeRate``) when the pricing currency is USD, else None.

Money and quantities are ``Decimal`` parsed from the exported text (Parquet numbers through Arrow's shortest
round-trip text), never ``float``.

A row that cannot be read becomes a :class:`ReadIssue` (file, line, reason) and counts in ``rows_malformed``; a
file that cannot be read (unknown header, corrupt gzip or Parquet, blob missing from the manifest's folder) counts
in ``files_malformed``. Nothing raises while iterating and nothing is skipped without being counted.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import importlib
import io
import json
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO, Literal, NamedTuple, Protocol
from urllib.parse import urlparse

from ..errors import ConfigError

__all__ = ["CostLine", "ReadIssue", "ReadSummary", "read_export"]

FocusCost = Literal["billed", "effective"]

_EXPORT_SUFFIXES = (".csv", ".csv.gz", ".gz", ".parquet")


@dataclass(frozen=True, slots=True)
class CostLine:
    """One row of a Cost Management export: what Azure billed one account for one meter on one day."""

    day: date
    account_id: str  # lower-cased ResourceId of the Cognitive Services account (…/accounts/NAME)
    account_name: str
    resource_group: str  # lower-cased, like account_id
    subscription_id: str
    region: str  # ARM location form: lower case, no spaces ("eastus2")
    meter_name: str
    meter_id: str
    meter_category: str
    meter_subcategory: str
    product: str
    unit_of_measure: str  # the block the quantity counts: "1K", "1M", "1 Hour", "1/Hour", "100", ...
    quantity: Decimal  # in unit_of_measure blocks
    cost: Decimal  # in `currency` (the billing currency)
    cost_usd: Decimal | None
    currency: str
    exchange_rate: Decimal | None  # pricing (USD) → billing currency, when exported
    unit_price: Decimal | None  # the export's effective price per block, in the pricing currency
    charge_type: str  # Usage, Purchase, UnusedReservation, UnusedSavingsPlan, Refund, ...
    pricing_model: str  # OnDemand, Reservation, SavingsPlan, Spot, ...
    tags: dict[str, str]
    source: str  # "file:line" (Parquet: "file:row")


@dataclass(frozen=True, slots=True)
class ReadIssue:
    """A row or file that could not be read as it stands.

    ``severity`` is ``"error"`` when the row or file was not read (it counts in ``rows_malformed`` or
    ``files_malformed``) and ``"warning"`` when it was read anyway (e.g. unparseable Tags: the row is kept without
    tags). ``line`` is the physical CSV line where the row starts (the header is line 1), the 1-based row number in
    a Parquet file, or 0 for the file as a whole.
    """

    file: str
    line: int
    reason: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity}: {self.reason}"


@dataclass(slots=True)
class ReadSummary:
    """What ``read_export`` read; filled in as its iterator is consumed (``complete`` once it is exhausted).

    ``rows_read == rows_kept + rows_filtered_out + rows_malformed`` holds at every step.
    """

    path: str
    files: list[str] = field(default_factory=list)  # export files to read, in reading order
    formats: dict[str, str] = field(default_factory=dict)  # file → ea | mca | focus-1.0 | focus-1.0r2 | focus-1.2…
    datasets: dict[str, str] = field(default_factory=dict)  # file → the manifest's export type, when known
    currencies: set[str] = field(default_factory=set)  # billing currencies of the kept rows
    cost_kept: dict[str, Decimal] = field(default_factory=dict)  # currency → sum of `cost` over kept rows
    rows_read: int = 0
    rows_kept: int = 0
    rows_filtered_out: int = 0
    filtered: dict[str, int] = field(default_factory=dict)  # not_openai | other_account | out_of_range → rows
    rows_malformed: int = 0
    files_malformed: int = 0
    warnings: int = 0
    issues: list[ReadIssue] = field(default_factory=list)  # the first `max_issues`; the rest are only counted
    issues_omitted: int = 0
    superseded: list[str] = field(default_factory=list)  # manifests of older runs that were not read
    complete: bool = False


# --- columns ------------------------------------------------------------------------------------------------------
# Logical fields, in the order the row getter returns them. Column names are facts from Microsoft's export schemas
# (EA 2024-08-01, MCA 2023-12-01-preview, FOCUS 1.0 / 1.2) as listed in shared/azure-billing/EXPORTS.md §1-2.
_FIELDS = (
    "day", "resource_id", "resource_name", "resource_group", "subscription", "region",
    "meter_name", "meter_id", "meter_category", "meter_subcategory", "product", "unit",
    "quantity", "cost", "cost_usd", "currency", "exchange_rate", "pricing_currency", "unit_price",
    "charge_type", "pricing_model", "tags", "consumed_service", "resource_type",
    "block_size", "consumed_unit", "commitment_status", "commitment_type",
)  # fmt: skip

_LEGACY_COLUMNS: dict[str, tuple[str, ...]] = {
    "day": ("date",),
    "resource_id": ("resourceid",),
    "resource_name": ("resourcename",),
    "resource_group": ("resourcegroup", "resourcegroupname"),
    "subscription": ("subscriptionid",),
    "region": ("resourcelocationnormalized", "resourcelocation", "location"),
    "meter_name": ("metername",),
    "meter_id": ("meterid",),
    "meter_category": ("metercategory",),
    "meter_subcategory": ("metersubcategory",),
    "product": ("productname", "product"),
    "unit": ("unitofmeasure",),
    "quantity": ("quantity",),
    "cost": ("costinbillingcurrency", "cost"),
    "cost_usd": ("costinusd",),
    "currency": ("billingcurrencycode", "billingcurrency"),
    "exchange_rate": ("exchangeratepricingtobilling",),
    "pricing_currency": ("pricingcurrency",),
    "unit_price": ("effectiveprice",),
    "charge_type": ("chargetype",),
    "pricing_model": ("pricingmodel",),
    "tags": ("tags",),
    "consumed_service": ("consumedservice",),
}

_FOCUS_COLUMNS: dict[str, tuple[str, ...]] = {
    "day": ("chargeperiodstart",),
    "resource_id": ("resourceid",),
    "resource_name": ("resourcename",),
    "resource_group": ("x_resourcegroupname",),
    "subscription": ("subaccountid",),
    "region": ("regionid", "regionname"),
    "meter_name": ("x_skumetername", "skumeter", "chargedescription"),  # the last: FOCUS without Microsoft's x_
    "meter_id": ("x_skumeterid",),
    "meter_category": ("x_skumetercategory",),
    "meter_subcategory": ("x_skumetersubcategory",),
    "product": ("x_skudescription",),
    "unit": ("x_pricingunitdescription",),
    "quantity": ("consumedquantity",),
    "currency": ("billingcurrency",),
    "exchange_rate": ("x_billingexchangerate",),
    "pricing_currency": ("pricingcurrency", "x_pricingcurrency"),
    "unit_price": ("x_effectiveunitprice",),
    "charge_type": ("chargecategory",),
    "pricing_model": ("pricingcategory",),
    "tags": ("tags",),
    "resource_type": ("x_resourcetype",),
    "block_size": ("x_pricingblocksize",),
    "consumed_unit": ("consumedunit", "pricingunit"),
    "commitment_status": ("commitmentdiscountstatus",),
    "commitment_type": ("commitmentdiscounttype",),
}
_FOCUS_COST = {"billed": (("billedcost",), ("x_billedcostinusd",)),
               "effective": (("effectivecost",), ("x_effectivecostinusd",))}  # fmt: skip

_REQUIRED = ("day", "resource_id", "meter_name", "quantity", "cost")

# Marks an MCA legacy export (costs in the billing currency beside USD ones); EA has none of these columns.
_MCA_MARKERS = frozenset({"costinusd", "exchangeratepricingtobilling", "costinpricingcurrency",
                          "serviceperiodstartdate"})

# --- what counts as Azure OpenAI ------------------------------------------------------------------------------------
_CS_ACCOUNTS = "/providers/microsoft.cognitiveservices/accounts/"
_CS_SERVICE = "microsoft.cognitiveservices"
# 2026 exports file the non-model AI services (Speech, Language, Vision, ...) under this meter category (EXPORTS.md §4).
_OTHER_AI_CATEGORIES = frozenset({"foundry tools"})
# Rows not on an account (e.g. a PTU reservation purchase under Microsoft.Capacity) are kept when their product or
# meter category names Azure OpenAI or provisioned throughput.
_OPENAI_WORDS = ("openai", "provisioned throughput", "foundry models")

_PRICING_MODELS = {"standard": "OnDemand", "dynamic": "Spot"}  # FOCUS PricingCategory → legacy PricingModel
_COMMITMENT_MODELS = {"reservation": "Reservation", "savings plan": "SavingsPlan", "savingsplan": "SavingsPlan"}
_UNITS_BY_BLOCK = {Decimal(1000): "1K", Decimal(10_000): "10K", Decimal(100_000): "100K", Decimal(1_000_000): "1M",
                   Decimal(10_000_000): "10M"}  # fmt: skip

_ZERO = Decimal(0)
_USD = "USD"
_CACHE_LIMIT = 50_000
_PARQUET_BATCH = 4096  # rows per Arrow batch: bigger batches cost memory (Python strings), not speed
_FOCUS_DATA_VERSIONS = ("1.0", "1.0r2", "1.2-preview", "1.2")


# --- public entry point ----------------------------------------------------------------------------------------------
def read_export(
    path: str | Path,
    *,
    start: date | None = None,
    end: date | None = None,
    account: str | None = None,
    openai_only: bool = True,
    focus_cost: FocusCost = "billed",
    max_issues: int = 1000,
) -> tuple[Iterator[CostLine], ReadSummary]:
    """Read an export file or folder lazily: ``(lines, summary)``; ``summary`` fills in as ``lines`` is consumed.

    ``start`` / ``end``: keep days in ``[start, end]`` (both inclusive). ``account``: keep one account, given as its
    ResourceId (any case; a child resource id names its account) or its name. ``openai_only``: keep only rows of
    Cognitive Services accounts (and reservation purchases for Azure OpenAI), dropping other services; dropped rows
    are counted by reason in ``summary.filtered``. ``focus_cost``: which FOCUS cost column is ``cost``,
    ``BilledCost`` (actual, what the invoice shows) or ``EffectiveCost`` (amortized). ``max_issues``: how many
    issues to keep in ``summary.issues``; the rest are counted in ``issues_omitted``.

    Raises ``FileNotFoundError`` if ``path`` does not exist and :class:`~tokenid.errors.ConfigError` for bad
    arguments; everything wrong inside the export is reported in the summary instead.
    """
    if focus_cost not in _FOCUS_COST:
        raise ConfigError(f"focus_cost must be 'billed' or 'effective', not {focus_cost!r}")
    if start is not None and end is not None and start > end:
        raise ConfigError(f"start ({start}) is after end ({end})")
    if max_issues < 0:
        raise ConfigError(f"max_issues must be >= 0, not {max_issues}")
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"no export at {root}")
    summary = ReadSummary(path=str(root))
    reader = _Reader(summary, start=start, end=end, account=account, openai_only=openai_only,
                     focus_cost=focus_cost, max_issues=max_issues)
    plan = _plan(root, reader)
    summary.files = [p.display for p in plan]
    for p in plan:
        if p.dataset:
            summary.datasets[p.display] = p.dataset
    return reader.lines(plan), summary


# --- planning: which files, in which order ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Planned:
    path: Path
    display: str
    dataset: str | None = None
    data_version: str | None = None


@dataclass(slots=True)
class _Manifest:
    path: Path
    scope: str
    dataset: str
    data_version: str | None
    key: tuple[str, ...]
    order: tuple[datetime, str, str]
    month: str
    blobs: list[tuple[str, int | None]]


def _plan(root: Path, reader: _Reader) -> list[_Planned]:
    if root.is_file() and root.name.lower() == "manifest.json":
        return _plan_manifests(root.parent, [root], reader)
    if root.is_file():
        return [_Planned(root, str(root))]
    manifests = sorted(p for p in root.rglob("*") if p.name.lower() == "manifest.json" and p.is_file())
    if manifests:
        return _plan_manifests(root, manifests, reader)
    files = sorted(p for p in root.rglob("*") if p.is_file() and _is_export_name(p.name))
    return [_Planned(p, str(p)) for p in files]


def _is_export_name(name: str) -> bool:
    lower = name.lower()
    return not lower.startswith(".") and lower.endswith(_EXPORT_SUFFIXES)


def _plan_manifests(root: Path, paths: list[Path], reader: _Reader) -> list[_Planned]:
    latest: dict[tuple[str, ...], _Manifest] = {}
    for mpath in paths:
        parsed = _read_manifest(mpath, root)
        if isinstance(parsed, str):
            reader.file_error(str(mpath), f"manifest not readable, none of its files were read: {parsed}")
            continue
        kept = latest.get(parsed.key)
        if kept is None or parsed.order > kept.order:
            if kept is not None:
                reader.summary.superseded.append(str(kept.path))
            latest[parsed.key] = parsed
        else:
            reader.summary.superseded.append(str(parsed.path))
    chosen = sorted(latest.values(), key=lambda m: (m.month, m.scope, m.dataset, str(m.path)))
    by_period: dict[tuple[str, str], set[str]] = {}
    for m in chosen:
        by_period.setdefault((m.scope, m.month), set()).add(m.dataset or "?")
    for (scope, month), kinds in by_period.items():
        if len(kinds) > 1 and month:
            reader.warn(scope or str(root), 0, f"runs of several datasets ({', '.join(sorted(kinds))}) cover {month}: "
                        "all are read, so the same cost may appear once per dataset; read one export's folder")
    plan: list[_Planned] = []
    seen: set[Path] = set()
    for m in chosen:
        for blob, size in m.blobs:
            found = _find_blob(blob, m.path.parent, root)
            if found is None:
                reader.file_error(blob, f"listed in {m.path} but not found under {m.path.parent} or {root}")
                continue
            if found in seen:
                continue
            seen.add(found)
            if size is not None and found.stat().st_size != size:
                reader.warn(str(found), 0, f"manifest byteCount is {size} but the file has {found.stat().st_size} "
                            "bytes (partial download?)")
            plan.append(_Planned(found, str(found), m.dataset or None, m.data_version))
    return plan


def _read_manifest(mpath: Path, root: Path) -> _Manifest | str:
    try:
        data = json.loads(mpath.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeError, ValueError) as exc:
        return str(exc)
    if not isinstance(data, dict):
        return "not a JSON object"
    config = _ci(data, "exportConfig")
    run = _ci(data, "runInfo")
    blobs = _ci(data, "blobs")
    config = config if isinstance(config, dict) else {}
    run = run if isinstance(run, dict) else {}
    if not isinstance(blobs, list):
        return "no 'blobs' list"
    listed: list[tuple[str, int | None]] = []
    for blob in blobs:
        name = _ci(blob, "blobName") if isinstance(blob, dict) else None
        if not isinstance(name, str) or not name:
            return f"a blob without blobName: {str(blob)[:80]}"
        size = _ci(blob, "byteCount")
        listed.append((name, size if isinstance(size, int) and not isinstance(size, bool) else None))
    scope = str(_ci(config, "resourceId") or "").lower()  # the export's id: {scope}/providers/…/exports/{name}
    scope = scope.split("/providers/microsoft.costmanagement/exports/")[0]
    dataset = str(_ci(config, "type") or "")
    version = _ci(config, "dataVersion")
    start = str(_ci(run, "startDate") or "")
    end = str(_ci(run, "endDate") or "")
    month = start[:7] if re.match(r"\d{4}-\d\d", start) else ""
    # the folders: {exportName}/{yyyyMMdd-yyyyMMdd}/{runTime-or-runId}/manifest.json
    folders = re.match(r"(.*?)/?(\d{4})(\d\d)\d\d-\d{8}/", mpath.relative_to(root).as_posix())
    if not month and folders:
        month = f"{folders.group(2)}-{folders.group(3)}"
    if not scope and folders:  # no exportConfig: the export's folder stands for its scope
        scope = f"folder:{folders.group(1)}"
    time_frame = str(_ci(config, "timeFrame") or "").lower()
    if not month or not scope:
        key: tuple[str, ...] = ("manifest", str(mpath))  # nothing to group by: keep every such run
    elif time_frame == "custom":
        key = (scope, dataset.lower(), start[:10], end[:10])
    else:
        key = (scope, dataset.lower(), month)
    submitted = _instant(str(_ci(run, "submittedTime") or "")) or datetime.min.replace(tzinfo=timezone.utc)
    return _Manifest(mpath, scope, dataset, str(version) if version else None, key, (submitted, end, str(mpath)),
                     month, listed)


def _ci(obj: Any, key: str) -> Any:
    """Dict lookup that tolerates either key casing (camelCase is documented; PascalCase costs nothing to accept)."""
    if not isinstance(obj, dict):
        return None
    if key in obj:
        return obj[key]
    lower = key.lower()
    for k, v in obj.items():
        if isinstance(k, str) and k.lower() == lower:
            return v
    return None


def _instant(text: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)  # Azure writes 7 fractional digits
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _find_blob(blob: str, folder: Path, root: Path) -> Path | None:
    """A manifest names blobs by their path in the storage container; locally they sit under the manifest's folder
    (or the folder given), so try the blob path's suffixes from the longest down to the bare file name."""
    if "://" in blob:
        blob = urlparse(blob).path
    parts = [p for p in blob.replace("\\", "/").split("/") if p and p not in (".", "..")]
    for base in (folder, root):
        for i in range(len(parts)):
            candidate = base.joinpath(*parts[i:])
            if candidate.is_file():
                return candidate
    return None


# --- opening files ---------------------------------------------------------------------------------------------------
class _RowError(NamedTuple):
    reason: str


class _FileError(NamedTuple):
    reason: str


class _Warn(NamedTuple):
    reason: str


_Item = tuple[int, "list[str] | _RowError | _FileError | _Warn"]


class _Opened(Protocol):
    header: list[str]
    projects: bool  # rows() returns only the requested columns, in that order

    def rows(self, columns: list[int]) -> Iterator[_Item]: ...

    def close(self) -> None: ...


class _CsvFile:
    projects = False

    def __init__(self, raw: BinaryIO, compressed: bool) -> None:
        self._raw = raw
        stream: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw  # type: ignore[assignment]
        self._stream = stream
        self._bad_lines: list[int] = []
        head = stream.peek(2)[:2] if hasattr(stream, "peek") else b""
        lines: Iterable[str]
        if head in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            lines = io.TextIOWrapper(stream, encoding="utf-16", newline="")
        else:
            lines = self._decode(stream)
        self._reader = csv.reader(lines)
        self.header = next(self._reader)  # StopIteration / csv.Error / OSError: the caller reports the file

    def _decode(self, stream: BinaryIO) -> Iterator[str]:
        bad = self._bad_lines
        for n, raw in enumerate(stream, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("utf-8", "replace")
                bad.append(n)
            yield text[1:] if n == 1 and text.startswith("\ufeff") else text

    def rows(self, columns: list[int]) -> Iterator[_Item]:
        reader = self._reader
        bad = self._bad_lines
        last = reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield last + 1, _RowError(f"CSV syntax error: {exc}")
                last = reader.line_num
                continue
            except (OSError, EOFError, zlib.error, UnicodeError) as exc:
                yield last + 1, _FileError(f"unreadable after line {last}: {exc}")
                return
            start = last + 1
            last = reader.line_num
            if bad:
                lines = ", ".join(str(n) for n in bad)
                yield start, _Warn(f"invalid UTF-8 on line(s) {lines}, replaced with U+FFFD")
                bad.clear()
            if row:  # blank lines are not rows
                yield start, row

    def close(self) -> None:
        self._stream.close()
        self._raw.close()


class _ParquetFile:
    projects = True

    def __init__(self, path: Path) -> None:
        try:
            self._pa = importlib.import_module("pyarrow")
            self._pc = importlib.import_module("pyarrow.compute")
            pq = importlib.import_module("pyarrow.parquet")
        except ImportError as exc:
            raise _Unreadable(f"Parquet needs pyarrow (pip install 'tokenid[azure]'): {exc}") from exc
        self._file = pq.ParquetFile(str(path))
        self.header: list[str] = list(self._file.schema_arrow.names)

    def rows(self, columns: list[int]) -> Iterator[_Item]:
        names = [self.header[i] for i in columns]
        n = 0
        try:
            for batch in self._file.iter_batches(batch_size=_PARQUET_BATCH, columns=names):
                texts = [self._texts(batch.column(i)) for i in range(batch.num_columns)]
                for values in zip(*texts, strict=True):
                    n += 1
                    yield n, list(values)
        except Exception as exc:  # pyarrow raises ArrowInvalid / OSError / ... on a damaged file
            yield n + 1, _FileError(f"unreadable after row {n}: {type(exc).__name__}: {exc}")

    def _texts(self, array: Any) -> list[str]:
        pa, pc = self._pa, self._pc
        kind = array.type
        if pa.types.is_dictionary(kind):
            array = array.dictionary_decode()
            kind = array.type
        if pa.types.is_map(kind):
            return [json.dumps(dict(v)) if v is not None else "" for v in array.to_pylist()]
        if pa.types.is_struct(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind):
            return [json.dumps(v, default=str) if v is not None else "" for v in array.to_pylist()]
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            try:  # Arrow writes numbers as their shortest round-trip text: 0.1 → "0.1", decimals exactly
                array = pc.cast(array, pa.string())
            except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
                return ["" if v is None else str(v) for v in array.to_pylist()]
        texts: list[str] = pc.fill_null(array, "").to_pylist()
        return texts

    def close(self) -> None:
        self._file.close()


class _Unreadable(Exception):
    pass


def _open(path: Path) -> _Opened:
    raw = path.open("rb")
    try:
        magic = raw.read(4)
        raw.seek(0)
        if magic == b"PAR1":
            raw.close()
            return _ParquetFile(path)
        return _CsvFile(raw, compressed=magic[:2] == b"\x1f\x8b")
    except BaseException:
        raw.close()
        raise


# --- layouts: header → where each logical field is -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Layout:
    family: Literal["legacy", "focus"]
    format: str
    width: int
    index: dict[str, int]  # logical field → column; missing fields point at `width`, the "" appended to each row
    names: dict[str, str]  # logical field → column name as written (for messages)

    @property
    def columns(self) -> list[int]:
        return sorted({i for i in self.index.values() if i < self.width})

    def project(self, columns: list[int]) -> _Layout:
        """The same layout over rows that hold only ``columns``, in that order."""
        position = {c: p for p, c in enumerate(columns)}
        width = len(columns)
        return _Layout(self.family, self.format, width, {k: position.get(i, width) for k, i in self.index.items()},
                       self.names)

    def getter(self) -> Any:
        return itemgetter(*(self.index[f] for f in _FIELDS))


def _layout(header: list[str], focus_cost: FocusCost, data_version: str | None) -> _Layout | str:
    clean = [h.strip().strip('"').strip().lstrip("\ufeff") for h in header]
    position: dict[str, int] = {}
    for i, name in enumerate(clean):
        position.setdefault(name.lower(), i)
    if "chargeperiodstart" in position and ("billedcost" in position or "effectivecost" in position):
        family: Literal["legacy", "focus"] = "focus"
        columns = dict(_FOCUS_COLUMNS)
        columns["cost"], columns["cost_usd"] = _FOCUS_COST[focus_cost]
        if data_version in _FOCUS_DATA_VERSIONS:
            fmt = f"focus-{data_version}"
        elif "skumeter" in position:
            fmt = "focus-1.2-preview" if "x_skumetername" in position else "focus-1.2"
        else:
            fmt = "focus-1.0"  # 1.0 and 1.0r2 share a header; the first date tells them apart
    elif "metername" in position and ("costinbillingcurrency" in position or "cost" in position):
        family = "legacy"
        columns = _LEGACY_COLUMNS
        fmt = "mca" if _MCA_MARKERS & position.keys() else "ea"
    else:
        return ("header not recognised as an EA/MCA cost export or a FOCUS export (no MeterName with "
                "CostInBillingCurrency/Cost, nor ChargePeriodStart with BilledCost/EffectiveCost): "
                + ", ".join(clean[:8]) + (", …" if len(clean) > 8 else ""))
    width = len(header)
    index: dict[str, int] = {}
    names: dict[str, str] = {}
    for name in _FIELDS:
        index[name] = width
        for alias in columns.get(name, ()):
            if alias in position:
                index[name] = position[alias]
                names[name] = clean[position[alias]]
                break
    missing = [f for f in _REQUIRED if index[f] == width]
    if missing:
        wanted = {f: "/".join(columns.get(f, ())) for f in missing}
        return f"{fmt} header lacks " + "; ".join(f"{f} ({w})" for f, w in wanted.items())
    return _Layout(family, fmt, width, index, names)


# --- value parsing ------------------------------------------------------------------------------------------------
_ISO_DAY = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d\d)(?::(\d\d)(?:\.\d+)?)?\s*(Z|[+-]\d\d:?\d\d)?)?$", re.IGNORECASE)
_US_DAY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})(?:\s.*)?$")


def _parse_day(text: str) -> date | str:
    """``yyyy-MM-dd`` with an optional time and offset (a UTC day is the answer), ``MM/dd/yyyy`` (legacy exports,
    optionally with a time), or ``yyyyMMdd`` (the Query API's UsageDate)."""
    s = text.strip()
    try:
        m = _ISO_DAY.match(s)
        if m:
            day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            offset = m.group(7)
            if offset and offset.upper() != "Z" and m.group(4) is not None:
                sign = -1 if offset[0] == "-" else 1
                digits = offset[1:].replace(":", "")
                shift = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
                moment = datetime(day.year, day.month, day.day, int(m.group(4)), int(m.group(5)), tzinfo=timezone.utc)
                day = (moment - sign * shift).date()
            return day
        m = _US_DAY.match(s)
        if m:
            return date(int(m.group(3)), int(m.group(1)), int(m.group(2)))
        if len(s) == 8 and s.isdigit():
            return date(int(s[:4]), int(s[4:6]), int(s[6:]))
    except ValueError as exc:
        return f"{text[:40]!r} is not a valid date ({exc})"
    return f"{text[:40]!r} is not a date (expected MM/dd/yyyy or yyyy-MM-dd[Thh:mm[:ss]Z])"


def _parse_tags(text: str) -> dict[str, str] | str:
    s = text.strip()
    if not s:
        return {}
    if not s.startswith("{"):  # EA writes the pairs without the outer braces
        s = "{" + s + "}"
    try:
        value = json.loads(s)
    except (ValueError, RecursionError) as exc:
        return f"Tags not readable as JSON ({exc}); row kept without tags"
    if not isinstance(value, dict):
        return "Tags is not a JSON object; row kept without tags"
    return {str(k): "" if v is None else v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}


class _Account(NamedTuple):
    account_id: str
    name: str
    resource_group: str
    subscription: str
    is_cs: bool


def _account(raw: str) -> _Account:
    rid = raw.strip().lower().rstrip("/")
    if rid.startswith(("subscriptions/", "providers/")):
        rid = "/" + rid
    i = rid.find(_CS_ACCOUNTS)
    is_cs = False
    if i >= 0:
        j = i + len(_CS_ACCOUNTS)
        k = rid.find("/", j)
        if k >= 0:
            rid = rid[:k]
        name = rid[j:]
        is_cs = bool(name)
    else:
        name = rid.rsplit("/", 1)[-1]
    return _Account(rid, name, _segment(rid, "/resourcegroups/"), _segment(rid, "/subscriptions/"), is_cs)


def _segment(rid: str, marker: str) -> str:
    i = rid.find(marker)
    if i < 0:
        return ""
    j = i + len(marker)
    k = rid.find("/", j)
    return rid[j:] if k < 0 else rid[j:k]


def _mentions_openai(*texts: str) -> bool:
    for text in texts:
        lower = text.lower()
        if any(word in lower for word in _OPENAI_WORDS):
            return True
    return False


def _focus_unit(block: str, consumed_unit: str) -> str:
    """FOCUS token meters say ConsumedUnit "Units"; the block is in x_PricingBlockSize (EXPORTS.md §2)."""
    try:
        size = Decimal(block)
    except InvalidOperation:
        return consumed_unit
    if not size.is_finite() or size == 1:
        return consumed_unit
    label = _UNITS_BY_BLOCK.get(size)
    if label is None:
        label = f"{size.normalize():f}"
    unit = consumed_unit.strip()
    return label if not unit or unit.lower() == "units" else f"{label} {unit}"


def _focus_charge(category: str, status: str, kind: str, pricing: str) -> tuple[str, str]:
    """FOCUS ChargeCategory / PricingCategory in the legacy vocabulary (ChargeType / PricingModel)."""
    commitment = _COMMITMENT_MODELS.get(kind.strip().lower(), kind.replace(" ", ""))
    charge = category
    if status.strip().lower() == "unused" and category.strip().lower() == "usage":
        charge = f"Unused{commitment or 'Commitment'}"
    lower = pricing.strip().lower()
    model = (commitment or "Committed") if lower == "committed" else _PRICING_MODELS.get(lower, pricing)
    return charge, model


def _region(text: str) -> str:
    return text.strip().lower().replace(" ", "")


def _subscription(text: str) -> str:
    s = text.strip().lower()
    return s.removeprefix("/subscriptions/").strip("/") if s.startswith("/subscriptions/") else s


# --- the reader ------------------------------------------------------------------------------------------------------
class _Reader:
    def __init__(self, summary: ReadSummary, *, start: date | None, end: date | None, account: str | None,
                 openai_only: bool, focus_cost: FocusCost, max_issues: int) -> None:
        self.summary = summary
        self.start = start
        self.end = end
        self.openai_only = openai_only
        self.focus_cost: FocusCost = focus_cost
        self.max_issues = max_issues
        self.want_id: str | None = None
        self.want_name: str | None = None
        if account is not None:
            wanted = account.strip()
            if not wanted:
                raise ConfigError("account must be a ResourceId or an account name, not empty")
            if "/" in wanted:
                self.want_id = _account(wanted).account_id
            else:
                self.want_name = wanted.lower()

    # issues
    def _issue(self, issue: ReadIssue) -> None:
        if len(self.summary.issues) < self.max_issues:
            self.summary.issues.append(issue)
        else:
            self.summary.issues_omitted += 1

    def warn(self, file: str, line: int, reason: str) -> None:
        self.summary.warnings += 1
        self._issue(ReadIssue(file, line, reason, "warning"))

    def file_error(self, file: str, reason: str, line: int = 0) -> None:
        self.summary.files_malformed += 1
        self._issue(ReadIssue(file, line, reason))

    def _row_error(self, file: str, line: int, reason: str) -> None:
        self.summary.rows_malformed += 1
        self._issue(ReadIssue(file, line, reason))

    def lines(self, plan: list[_Planned]) -> Iterator[CostLine]:
        for planned in plan:
            yield from self._file(planned)
        self.summary.complete = True

    def _file(self, planned: _Planned) -> Iterator[CostLine]:
        display = planned.display
        try:
            opened = _open(planned.path)
        except StopIteration:
            self.file_error(display, "empty file: no header")
            return
        except csv.Error as exc:
            self.file_error(display, f"unreadable header: {exc}", 1)
            return
        except _Unreadable as exc:
            self.file_error(display, str(exc))
            return
        except Exception as exc:  # OSError, BadGzipFile, zlib.error, EOFError, pyarrow's errors on a damaged file
            self.file_error(display, f"unreadable: {type(exc).__name__}: {exc}")
            return
        try:
            layout = _layout(opened.header, self.focus_cost, planned.data_version)
            if isinstance(layout, str):
                self.file_error(display, layout, 1)
                return
            self.summary.formats[display] = layout.format
            if layout.names["meter_name"].lower() == "chargedescription":
                self.warn(display, 1, "no x_SkuMeterName or SkuMeter column: meter names are taken from "
                          "ChargeDescription and will not match Azure meter names")
            columns = layout.columns
            if opened.projects:
                layout = layout.project(columns)
            yield from self._rows(display, layout, opened.rows(columns), refine=layout.format == "focus-1.0"
                                  and planned.data_version is None)
        finally:
            opened.close()

    def _rows(self, display: str, layout: _Layout, items: Iterator[_Item], refine: bool) -> Iterator[CostLine]:
        summary = self.summary
        filtered = summary.filtered
        cost_kept = summary.cost_kept
        currencies = summary.currencies
        get = layout.getter()
        width = layout.width
        focus = layout.family == "focus"
        names = layout.names
        openai_only = self.openai_only
        want_id, want_name = self.want_id, self.want_name
        start, end = self.start, self.end
        accounts: dict[str, _Account] = {}
        days: dict[str, date | str] = {}
        tags_cache: dict[str, dict[str, str] | str] = {}
        units: dict[tuple[str, str], str] = {}
        charges: dict[tuple[str, str, str, str], tuple[str, str]] = {}
        regions: dict[str, str] = {}
        for line, row in items:
            if row.__class__ is not list:
                if isinstance(row, _Warn):
                    self.warn(display, line, row.reason)
                elif isinstance(row, _RowError):
                    summary.rows_read += 1
                    self._row_error(display, line, row.reason)
                elif isinstance(row, _FileError):
                    self.file_error(display, row.reason, line)
                continue
            assert isinstance(row, list)
            summary.rows_read += 1
            try:
                n = len(row)
                if n != width:
                    if n > width and not any(row[width:]):
                        del row[width:]
                    else:
                        self._row_error(display, line, f"expected {width} fields, found {n}")
                        continue
                row.append("")
                values = get(row)
                if "NULL" in values:  # FOCUS samples write NULL for empty
                    values = tuple("" if v == "NULL" else v for v in values)
                (day_s, rid, resource_name, rg, sub, region, meter_name, meter_id, category, subcategory, product, unit,
                 quantity_s, cost_s, usd_s, currency, rate_s, pricing_currency, price_s, charge, pricing, tags_s,
                 service, resource_type, block_s, consumed_unit, commitment_status, commitment_type) = values
                if refine:  # FOCUS 1.0 writes 2024-01-01T00:00Z, 1.0r2 2024-01-01T00:00:00Z
                    refine = False
                    if re.search(r"T\d\d:\d\d:\d\d", day_s):
                        summary.formats[display] = "focus-1.0r2"

                acct = accounts.get(rid)
                if acct is None:
                    if len(accounts) > _CACHE_LIMIT:
                        accounts.clear()
                    acct = accounts[rid] = _account(rid)
                if openai_only:
                    if acct.is_cs or service.lower() == _CS_SERVICE or resource_type.lower().startswith(_CS_SERVICE):
                        keep = category.lower() not in _OTHER_AI_CATEGORIES
                    else:
                        keep = _mentions_openai(product, category, subcategory)
                    if not keep:
                        summary.rows_filtered_out += 1
                        filtered["not_openai"] = filtered.get("not_openai", 0) + 1
                        continue
                if (want_id is not None and acct.account_id != want_id) or (
                        want_name is not None and (acct.name or resource_name.lower()) != want_name):
                    summary.rows_filtered_out += 1
                    filtered["other_account"] = filtered.get("other_account", 0) + 1
                    continue

                day = days.get(day_s)
                if day is None:
                    if len(days) > _CACHE_LIMIT:
                        days.clear()
                    day = days[day_s] = _parse_day(day_s)
                if day.__class__ is str:
                    self._row_error(display, line, f"{names['day']}: {day}")
                    continue
                assert isinstance(day, date)
                if (start is not None and day < start) or (end is not None and day > end):
                    summary.rows_filtered_out += 1
                    filtered["out_of_range"] = filtered.get("out_of_range", 0) + 1
                    continue

                try:
                    # FOCUS leaves ConsumedQuantity null on purchases, credits, taxes and adjustments
                    quantity = Decimal(quantity_s) if quantity_s or charge.lower() == "usage" else _ZERO
                    cost = Decimal(cost_s)
                    cost_usd = Decimal(usd_s) if usd_s else None
                    rate = Decimal(rate_s) if rate_s else None
                    price = Decimal(price_s) if price_s else None
                    if not (quantity.is_finite() and cost.is_finite()):
                        raise InvalidOperation
                except (InvalidOperation, ValueError):
                    self._row_error(display, line, self._number_problem(layout, values))
                    continue
                if not meter_name:
                    self._row_error(display, line, f"{names['meter_name']} is empty")
                    continue

                currency = currency.strip().upper()
                if cost_usd is None:
                    if currency == _USD:
                        cost_usd = cost
                    elif rate and pricing_currency.strip().upper() == _USD:
                        cost_usd = cost / rate

                if focus:
                    if not unit:
                        key = (block_s, consumed_unit)
                        unit = units.get(key) or units.setdefault(key, _focus_unit(block_s, consumed_unit))
                    ckey = (charge, commitment_status, commitment_type, pricing)
                    mapped = charges.get(ckey)
                    if mapped is None:
                        mapped = charges[ckey] = _focus_charge(charge, commitment_status, commitment_type, pricing)
                    charge, pricing = mapped

                if tags_s:
                    tags = tags_cache.get(tags_s)
                    if tags is None:
                        if len(tags_cache) > _CACHE_LIMIT:
                            tags_cache.clear()
                        tags = tags_cache[tags_s] = _parse_tags(tags_s)
                    if tags.__class__ is str:
                        self.warn(display, line, f"{names['tags']}: {tags}")
                        tag_map: dict[str, str] = {}
                    else:
                        assert isinstance(tags, dict)
                        tag_map = dict(tags)
                else:
                    tag_map = {}

                norm_region = regions.get(region)
                if norm_region is None:
                    norm_region = regions[region] = _region(region)

                cost_line = CostLine(
                    day=day,
                    account_id=acct.account_id,
                    account_name=acct.name or resource_name.lower(),
                    resource_group=acct.resource_group or rg.lower(),
                    subscription_id=acct.subscription or _subscription(sub),
                    region=norm_region,
                    meter_name=meter_name,
                    meter_id=meter_id.lower(),
                    meter_category=category,
                    meter_subcategory=subcategory,
                    product=product,
                    unit_of_measure=unit,
                    quantity=quantity,
                    cost=cost,
                    cost_usd=cost_usd,
                    currency=currency,
                    exchange_rate=rate,
                    unit_price=price,
                    charge_type=charge,
                    pricing_model=pricing,
                    tags=tag_map,
                    source=f"{display}:{line}",
                )
            except Exception as exc:  # a value no rule foresaw: report the row, never stop the run
                self._row_error(display, line, f"unexpected {type(exc).__name__}: {exc}")
                continue
            summary.rows_kept += 1
            cost_kept[currency] = cost_kept.get(currency, _ZERO) + cost
            if currency not in currencies:
                currencies.add(currency)
            yield cost_line

    @staticmethod
    def _number_problem(layout: _Layout, values: tuple[str, ...]) -> str:
        problems = []
        usage = values[_FIELDS.index("charge_type")].lower() == "usage"
        for name in ("quantity", "cost", "cost_usd", "exchange_rate", "unit_price"):
            text = values[_FIELDS.index(name)]
            required = name in _REQUIRED and (name != "quantity" or usage)
            if not text and not required:
                continue
            try:
                number = Decimal(text)
            except (InvalidOperation, ValueError):
                number = None
            if number is None or not number.is_finite():
                column = layout.names.get(name, name)
                problems.append(f"{column} is empty" if not text else f"{column} {text[:40]!r} is not a number")
        return "; ".join(problems) or "a number could not be read"
