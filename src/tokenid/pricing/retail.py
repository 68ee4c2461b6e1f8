"""Azure OpenAI list prices from the public Azure Retail Prices API: a bundled snapshot, a synced copy, the sync.

The Retail Prices API (``https://prices.azure.com/api/retail/prices``) publishes one pay-as-you-go price per Azure
meter and region, with the date it took effect. Azure OpenAI meters sit under ``serviceName eq 'Foundry Models'``
(``'Cognitive Services'`` before 2025), products ``Azure OpenAI``, ``Azure OpenAI GPT5``, ``Azure OpenAI Media`` …
These are *retail* prices, not a customer's EA/MCA price, and every row says where it came from.

Where prices come from (:meth:`RetailPrices.load`):

1. an explicit path;
2. else the file ``tokenid prices sync`` wrote under the per-user data directory (:func:`default_synced_path`);
3. else the snapshot bundled in the package (``data/azure_retail.json``, provenance in its ``source`` list and in
   ``docs/pricing-azure.md``).

Nothing here touches the network except :func:`sync`, which is only ever called explicitly.

The file format (bundled and synced alike) is JSON with a header and one row per price::

    {"format": "tokenid.azure-retail/1", "fetched": "2026-07-31",
     "source": [{"id": ..., "label": ..., "repo": ..., "path": ..., "commit": ..., "fetched": ...}],
     "fields": ["meterName", "productName", "skuName", "armRegionName", "unitOfMeasure", "retailPrice",
                "currencyCode", "effectiveStartDate", "source"],
     "rows": [["gpt-4o-0806-Inp-glbl Tokens", "Azure OpenAI", "gpt-4o-0806-Inp-glbl", "eastus", "1K", "0.0025",
               "USD", "2024-08-01", 1], ...]}

``retailPrice`` is a decimal string (exact); ``source`` indexes the ``source`` list. An empty ``armRegionName``
means the source did not record the region: such a row is the price in the regions the source merged into it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Context, Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenid.errors import TokenIDError
from tokenid.journal.paths import _user_data_dir

if TYPE_CHECKING:
    import httpx2

__all__ = [
    "DEFAULT_FILTER",
    "FIELDS",
    "FORMAT",
    "RETAIL_PRICES_URL",
    "RetailDataError",
    "RetailPrice",
    "RetailPrices",
    "RetailSyncError",
    "SyncSummary",
    "UnknownUnitError",
    "bundled_path",
    "default_synced_path",
    "dump_document",
    "is_azure_openai_item",
    "meter_deployment_type",
    "per_million",
    "per_token",
    "per_unit",
    "row_from_item",
    "sync",
    "to_decimal_text",
    "unit_quantity",
]

RETAIL_PRICES_URL = "https://prices.azure.com/api/retail/prices"
#: OData filter :func:`sync` sends. Filter values are case-sensitive; ``priceType`` is the filter name of the
#: ``type`` field. Items are filtered again client-side with :func:`is_azure_openai_item`.
DEFAULT_FILTER = "serviceName eq 'Foundry Models' and priceType eq 'Consumption'"
FORMAT = "tokenid.azure-retail/1"
FIELDS: tuple[str, ...] = (
    "meterName",
    "productName",
    "skuName",
    "armRegionName",
    "unitOfMeasure",
    "retailPrice",
    "currencyCode",
    "effectiveStartDate",
    "source",
)
SYNCED_FILENAME = "azure_retail.json"
_BUNDLED = "data/azure_retail.json"
_FIX = "run `tokenid prices sync` again, or delete the file to fall back to the bundled snapshot"


class RetailDataError(TokenIDError, ValueError):
    """A retail prices file is missing, corrupt or not in the expected format; the message names the file."""


class UnknownUnitError(RetailDataError):
    """A price's ``unitOfMeasure`` is not one TokenID knows how to divide into single units."""


class RetailSyncError(TokenIDError):
    """``sync`` could not download the price list (HTTP errors after retries, or a malformed page)."""


@dataclass(frozen=True, slots=True)
class RetailPrice:
    """One retail price of one Azure meter, in one region (``""`` when the source did not record it).

    ``price`` is per ``unit_of_measure`` ("1K" tokens, "1M" tokens, "1 Hour", "100" images …): use
    :func:`per_unit` for the price of a single unit. ``source`` says which dump or sync the price came from.
    """

    meter_name: str
    product_name: str
    sku_name: str
    region: str
    unit_of_measure: str
    price: Decimal
    currency: str
    effective_start: date
    source: str


# -- units ------------------------------------------------------------------------------------------------------

#: unitOfMeasure values that are not plain counts, and what one unit of them is.
_TIME_UNITS: Mapping[str, str] = {
    "1 hour": "hour",
    "1/hour": "hour",
    "1 second": "second",
    "1/second": "second",
    "1 minute": "minute",
    "1/minute": "minute",
    "1/day": "day",
    "1 day": "day",
    "1/month": "month",
    "1 month": "month",
}
_COUNT = re.compile(r"^(\d+)\s*([km]?)$")
_SCALE = {"": 1, "k": 1_000, "m": 1_000_000}
_MILLION = Decimal(1_000_000)
# exact division whatever the calling thread's decimal context (quantities are small integers)
_CTX = Context(prec=60)


def unit_quantity(unit_of_measure: str) -> Decimal:
    """How many single units one price covers: "1K" → 1000, "1M" → 1000000, "100" → 100, "1 Hour" → 1.

    Raises :class:`UnknownUnitError` for a unit it does not know (a reservation's "1 Year" term, say), rather than
    guess: a wrong divisor is a wrong price.
    """
    folded = " ".join(unit_of_measure.strip().lower().split())
    if folded in _TIME_UNITS:
        return Decimal(1)
    match = _COUNT.match(folded)
    if match is None or int(match.group(1)) == 0:
        known = "'1K', '1M', '100', '1', '1 Hour', '1/Hour', '1 Second', '1/Day', '1/Month'"
        raise UnknownUnitError(f"unknown unitOfMeasure {unit_of_measure!r}; known units: {known}")
    return Decimal(int(match.group(1)) * _SCALE[match.group(2)])


def per_unit(price: RetailPrice) -> Decimal:
    """The price of one unit: one token for a "1K"/"1M" token meter, one image for "100", one hour for "1 Hour"."""
    return _CTX.divide(price.price, unit_quantity(price.unit_of_measure))


def per_token(price: RetailPrice) -> Decimal:
    """The price of one token of a token meter ("1K" / "1M"); for other meters the price of one of their units.

    Same as :func:`per_unit`; the name reads better where the meter is known to count tokens.
    """
    return per_unit(price)


def per_million(price: RetailPrice) -> Decimal:
    """The price of one million units of a count meter (tokens, images, calls): how model prices are quoted.

    Raises :class:`UnknownUnitError` for time-based meters (hours, seconds, days), where "per million" means nothing.
    """
    if " ".join(price.unit_of_measure.strip().lower().split()) in _TIME_UNITS:
        raise UnknownUnitError(
            f"{price.meter_name!r} is billed per {price.unit_of_measure!r}, not per counted unit; use per_unit()"
        )
    return per_unit(price) * _MILLION


# -- meter names ------------------------------------------------------------------------------------------------

_SPLIT = re.compile(r"[\s\-_]+")
_GLOBAL = frozenset({"glbl", "gl", "glb", "global"})
_DATA_ZONE = frozenset({"dz", "dzn", "dzone", "datazone"})
_REGIONAL = frozenset({"regnl", "regional", "rgnl", "rg", "regn"})


def meter_deployment_type(meter_name: str) -> str | None:
    """The deployment type a meter name bills, guessed from its abbreviations; None when it names none.

    A heuristic over Azure's inconsistent spellings ("Inp glbl", "Inp-glbl", "Gl", "Data Zone", "DZone", "Dz",
    "regnl", "Rg", "Batch"): returns one of ``global``, ``data_zone``, ``regional``, ``global_batch``,
    ``data_zone_batch`` or ``provisioned`` (the types of ``tokenid.pricing.DEPLOYMENT_TYPES``). Priority-processing
    ("pp") and long-context meters are reported under their base type; the meter name tells them apart.
    """
    words = [w for w in _SPLIT.split(meter_name.lower()) if w]
    joined = " ".join(words)
    if "provisioned" in joined:
        return "provisioned"
    batch = any("batch" in w for w in words)
    if any(w in _DATA_ZONE or w.endswith("datazone") for w in words) or "data zone" in joined:
        return "data_zone_batch" if batch else "data_zone"
    if any(w in _GLOBAL for w in words):
        return "global_batch" if batch else "global"
    if any(w in _REGIONAL for w in words):
        return "regional"
    return None


def _meter_key(meter_name: str) -> str:
    return " ".join(meter_name.lower().split())


def _region_key(region: str | None) -> str:
    """``East US`` and ``eastus`` are the same region (armRegionName is the display name without spaces)."""
    return "".join((region or "").lower().split())


# -- the price list ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Source:
    label: str
    meta: Mapping[str, str]


class RetailPrices:
    """An immutable list of Azure retail prices with lookup by meter, region and date.

    Build one with :meth:`load` (bundled snapshot, or the synced file when present) or from ``RetailPrice`` items.
    """

    def __init__(
        self,
        items: Iterable[RetailPrice],
        *,
        fetched: date,
        sources: Sequence[Mapping[str, str]] = (),
        origin: str = "<memory>",
    ) -> None:
        self._items = tuple(sorted(items, key=lambda p: (_meter_key(p.meter_name), p.region, p.effective_start)))
        self._fetched = fetched
        self._sources = tuple(dict(s) for s in sources)
        self._origin = origin
        index: dict[str, dict[str, list[RetailPrice]]] = {}
        for item in self._items:
            index.setdefault(_meter_key(item.meter_name), {}).setdefault(_region_key(item.region), []).append(item)
        self._index = index

    # -- loading ------------------------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> RetailPrices:
        """Prices from ``path``; by default the synced per-user file when it exists, else the bundled snapshot.

        A file that exists but cannot be read raises :class:`RetailDataError` naming it (it never falls back
        silently to older prices).
        """
        if path is not None:
            return cls.from_file(Path(path))
        synced = default_synced_path()
        if synced.exists():
            return cls.from_file(synced)
        return cls.bundled()

    @classmethod
    def bundled(cls) -> RetailPrices:
        """The snapshot shipped with TokenID (see ``docs/pricing-azure.md`` for where it came from)."""
        resource = resources.files("tokenid.pricing").joinpath("data").joinpath("azure_retail.json")
        try:
            text = resource.read_text(encoding="utf-8")
        except OSError as exc:
            raise RetailDataError(f"bundled retail prices missing ({exc}); reinstall tokenid") from exc
        return cls.from_text(text, origin=f"bundled snapshot {_BUNDLED}")

    @classmethod
    def from_file(cls, path: Path) -> RetailPrices:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RetailDataError(f"no retail prices file at {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise RetailDataError(f"cannot read retail prices file {path}: {exc}; {_FIX}") from exc
        return cls.from_text(text, origin=str(path))

    @classmethod
    def from_text(cls, text: str, *, origin: str) -> RetailPrices:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RetailDataError(f"retail prices file {origin} is corrupt (not JSON: {exc}); {_FIX}") from None
        return cls.from_document(doc, origin=origin)

    @classmethod
    def from_document(cls, doc: object, *, origin: str) -> RetailPrices:
        """Validate and read a parsed file; every problem is reported with the file and row it is in."""

        def bad(what: str) -> RetailDataError:
            return RetailDataError(f"retail prices file {origin} is corrupt: {what}; {_FIX}")

        if not isinstance(doc, dict):
            raise bad("expected a JSON object")
        if doc.get("format") != FORMAT:
            raise bad(f"format is {doc.get('format')!r}, expected {FORMAT!r}")
        if tuple(doc.get("fields") or ()) != FIELDS:
            raise bad(f"fields are {doc.get('fields')!r}, expected {list(FIELDS)!r}")
        fetched = _parse_date(doc.get("fetched"))
        if fetched is None:
            raise bad(f"'fetched' is {doc.get('fetched')!r}, expected a date such as '2026-07-31'")
        raw_sources = doc.get("source")
        if not isinstance(raw_sources, list) or not all(isinstance(s, dict) for s in raw_sources):
            raise bad("'source' must be a list of objects")
        sources = [_source(s) for s in raw_sources]
        rows = doc.get("rows")
        if not isinstance(rows, list):
            raise bad("'rows' must be a list")
        items: list[RetailPrice] = []
        for number, row in enumerate(rows, start=1):
            if not isinstance(row, list) or len(row) != len(FIELDS):
                raise bad(f"row {number} is not a list of {len(FIELDS)} values")
            meter, product, sku, region, unit, price_text, currency, start_text, source_index = row
            if not all(isinstance(v, str) for v in (meter, product, sku, region, unit, price_text, currency)):
                raise bad(f"row {number}: text fields must be strings")
            if not meter:
                raise bad(f"row {number}: empty meterName")
            try:
                price = Decimal(price_text)
            except InvalidOperation:
                raise bad(f"row {number}: retailPrice {price_text!r} is not a decimal number") from None
            if not price.is_finite() or price < 0:
                raise bad(f"row {number}: retailPrice {price_text!r} is not a finite amount >= 0")
            start = _parse_date(start_text)
            if start is None:
                raise bad(f"row {number}: effectiveStartDate {start_text!r} is not a date")
            if not isinstance(source_index, int) or isinstance(source_index, bool) or not (
                0 <= source_index < len(sources)
            ):
                raise bad(f"row {number}: source {source_index!r} does not index the 'source' list")
            items.append(
                RetailPrice(meter, product, sku, region, unit, price, currency, start, sources[source_index].label)
            )
        return cls(items, fetched=fetched, sources=[s.meta for s in sources], origin=origin)

    # -- queries ------------------------------------------------------------------------------------------------

    @property
    def fetched(self) -> date:
        """When the newest source of these prices was downloaded from the API."""
        return self._fetched

    @property
    def origin(self) -> str:
        """Where these prices were loaded from (a path, or the bundled snapshot)."""
        return self._origin

    @property
    def sources(self) -> tuple[dict[str, str], ...]:
        """Provenance of the data: repo/path/commit or API URL, and fetch date, per source."""
        return tuple(dict(s) for s in self._sources)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> tuple[RetailPrice, ...]:
        """Every price, sorted by meter name, region and effective date."""
        return self._items

    def regions(self) -> tuple[str, ...]:
        """The regions (armRegionName) with at least one price; rows without a region are not counted."""
        return tuple(sorted({p.region for p in self._items if p.region}))

    def find(self, text: str, *, region: str | None = None) -> list[RetailPrice]:
        """Prices whose meter name contains ``text``, ignoring case and treating ``-``/``_``/spaces alike.

        ``gpt-4o`` finds ``gpt 4o 0806 Inp Data Zone Tokens`` and ``gpt-4o-0806-Inp-glbl Tokens`` (and also the
        ``gpt-4o-mini`` and realtime meters: the match is a plain substring). With ``region``, only that region's
        rows and rows whose region the source did not record.
        """
        needle = " ".join(w for w in _SPLIT.split(text.lower()) if w)
        wanted = _region_key(region) if region else None
        found = []
        for item in self._items:
            if needle not in " ".join(w for w in _SPLIT.split(item.meter_name.lower()) if w):
                continue
            if wanted is not None and _region_key(item.region) not in (wanted, ""):
                continue
            found.append(item)
        return found

    def lookup(self, meter_name: str, region: str | None, at: date | None = None) -> RetailPrice | None:
        """The price of ``meter_name`` in ``region`` in effect on ``at`` (default: today, UTC), or None.

        Among the region's own rows, the one with the latest effective date on or before ``at`` wins. When no
        row names the region (or ``region`` is empty), rows whose region the source did not record are used, but
        only if all of them in effect on ``at`` agree on one price: a source that merged regions keeps one row
        per distinct price, so rows that disagree mean the price depends on a region the data cannot tell apart,
        and the answer is None (unpriced), never a guess. Meter names match ignoring case and repeated spaces;
        regions ignoring case and spaces (``East US`` = ``eastus``).
        """
        day = _as_date(at) if at is not None else datetime.now(timezone.utc).date()
        by_region = self._index.get(_meter_key(meter_name), {})
        own = by_region.get(_region_key(region), []) if _region_key(region) else []
        rows = own or by_region.get("", [])
        in_effect = [r for r in rows if r.effective_start <= day]
        if not in_effect:
            return None
        latest = max(r.effective_start for r in in_effect)
        deciding = [r for r in in_effect if r.effective_start == latest] if own else in_effect
        if len({r.price for r in deciding}) != 1:
            return None
        return next(r for r in in_effect if r.effective_start == latest)

    def to_text(self) -> str:
        """These prices in the file format (what ``sync`` writes and ``load`` reads)."""
        sources = [dict(s) for s in self._sources]
        index = {s.get("label", ""): i for i, s in enumerate(sources)}
        for label in dict.fromkeys(p.source for p in self._items):
            if label not in index:  # items built in memory with a source the list does not describe
                index[label] = len(sources)
                sources.append({"id": label, "label": label})
        rows = [_row(p, index[p.source]) for p in self._items]
        return dump_document(rows, sources=sources, fetched=self._fetched)


def _source(meta: Mapping[str, Any]) -> _Source:
    clean = {str(k): str(v) for k, v in meta.items() if v is not None}
    label = clean.get("label") or clean.get("id") or "unknown source"
    clean["label"] = label
    return _Source(label, clean)


def _row(p: RetailPrice, source: int) -> list[object]:
    return [p.meter_name, p.product_name, p.sku_name, p.region, p.unit_of_measure, _plain(p.price), p.currency,
            p.effective_start.isoformat(), source]


def _as_date(value: date) -> date:
    return value.date() if isinstance(value, datetime) else value


def _parse_date(value: object) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _plain(value: Decimal) -> str:
    """Exact, plain (no exponent) text of a decimal: 2.5E-05 -> '0.000025', 10.0 -> '10'."""
    return format(value.normalize(), "f")


def to_decimal_text(value: object) -> str:
    """A retailPrice from a JSON dump as exact decimal text; floats go through their shortest repr."""
    if isinstance(value, bool):
        raise ValueError(f"retailPrice {value!r} is not a number")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str):
        number = Decimal(value.strip())
    else:
        raise ValueError(f"retailPrice {value!r} is not a number")
    if not number.is_finite() or number < 0:
        raise ValueError(f"retailPrice {value!r} is not a finite amount >= 0")
    return _plain(number)


def is_azure_openai_item(item: Mapping[str, Any]) -> bool:
    """True for a Retail Prices API item of an Azure OpenAI product at a pay-as-you-go (Consumption) price.

    Reservation rows are dropped: their ``retailPrice`` is per term (month/year), not per unit of use.
    """
    product = str(item.get("productName") or "")
    kind = item.get("type")
    return product.lower().startswith("azure openai") and (kind is None or kind == "Consumption")


def row_from_item(item: Mapping[str, Any], source: int) -> list[object]:
    """One file row from one Retail Prices API item (raises ValueError/KeyError on a malformed item)."""
    start = _parse_date(item.get("effectiveStartDate"))
    if start is None:
        raise ValueError(f"effectiveStartDate {item.get('effectiveStartDate')!r} is not a date")
    meter = str(item["meterName"])
    if not meter:
        raise ValueError("empty meterName")
    return [
        meter,
        str(item.get("productName") or ""),
        str(item.get("skuName") or ""),
        str(item.get("armRegionName") or ""),
        str(item["unitOfMeasure"]),
        to_decimal_text(item["retailPrice"]),
        str(item.get("currencyCode") or ""),
        start.isoformat(),
        source,
    ]


def dump_document(rows: Iterable[Sequence[object]], *, sources: Sequence[Mapping[str, str]], fetched: date) -> str:
    """The file text: a JSON header, then one row per line (so a refresh diffs row by row). Rows are
    deduplicated and sorted by meter name, region and effective date."""
    unique = sorted({tuple(r) for r in rows}, key=_sort_key)
    header = {"format": FORMAT, "fetched": fetched.isoformat(), "source": [dict(s) for s in sources],
              "fields": list(FIELDS)}
    head = json.dumps(header, ensure_ascii=False, indent=1)[: -len("\n}")]
    body = ",\n  ".join(json.dumps(list(r), ensure_ascii=False) for r in unique)
    return f'{head},\n "rows": [\n  {body}\n ]\n}}\n' if unique else f'{head},\n "rows": []\n}}\n'


def _sort_key(row: Sequence[Any]) -> tuple[str, str, str, str, str]:
    return (_meter_key(str(row[0])), str(row[3]), str(row[7]), str(row[5]), str(row[1]))


# -- where files live -------------------------------------------------------------------------------------------


def bundled_path() -> Path:
    """Path of the bundled snapshot inside the installed package."""
    return Path(str(resources.files("tokenid.pricing").joinpath("data").joinpath("azure_retail.json")))


def default_synced_path() -> Path:
    """Where ``tokenid prices sync`` writes by default: ``<user data dir>/azure_retail.json``.

    Linux ``$XDG_DATA_HOME/tokenid`` (``~/.local/share/tokenid``), macOS ``~/Library/Application Support/tokenid``,
    Windows ``%LOCALAPPDATA%\\tokenid`` (the same directory as the default journal).
    """
    return _user_data_dir() / SYNCED_FILENAME


# -- sync -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncSummary:
    """What :func:`sync` wrote."""

    path: Path
    items: int
    regions: tuple[str, ...]
    fetched: date
    pages: int
    skipped: int


def sync(
    dest: str | os.PathLike[str] | None = None,
    *,
    base_url: str = RETAIL_PRICES_URL,
    client: httpx2.Client | None = None,
    currency: str = "USD",
    odata_filter: str = DEFAULT_FILTER,
    max_retries: int = 6,
    backoff: float = 1.0,
    max_backoff: float = 60.0,
    timeout: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
    today: date | None = None,
) -> SyncSummary:
    """Download every Azure OpenAI retail price and write it to ``dest`` (default :func:`default_synced_path`).

    Pages through ``NextPageLink``; a 429 or 5xx (or a dropped connection) is retried up to ``max_retries`` times
    per page, waiting ``Retry-After`` when the server sends one, else ``backoff`` × 2ⁿ seconds (at most
    ``max_backoff``). Only items passing :func:`is_azure_openai_item` are kept. The file is replaced atomically
    (written beside it, then renamed), so an interrupted sync leaves the previous file intact. Never called
    implicitly: TokenID only reads files.
    """
    import httpx2

    target = Path(dest) if dest is not None else default_synced_path()
    fetched = today or datetime.now(timezone.utc).date()
    own_client = client is None
    http = client if client is not None else httpx2.Client(timeout=timeout, follow_redirects=True)
    rows: set[tuple[object, ...]] = set()
    regions: set[str] = set()
    skipped = pages = 0
    try:
        url: str | None = base_url
        params: dict[str, str] | None = {"currencyCode": f"'{currency}'", "$filter": odata_filter}
        seen: set[str] = set()
        while url:
            if url in seen:
                raise RetailSyncError(f"NextPageLink loops back to {url}")
            seen.add(url)
            page = _get_page(http, url, params, max_retries=max_retries, backoff=backoff,
                             max_backoff=max_backoff, sleep=sleep)
            params = None  # NextPageLink carries the query
            pages += 1
            items = page.get("Items")
            if not isinstance(items, list):
                raise RetailSyncError(f"page {pages} from {url} has no 'Items' list")
            for item in items:
                if not isinstance(item, dict) or not is_azure_openai_item(item):
                    skipped += 1
                    continue
                try:
                    rows.add(tuple(row_from_item(item, 0)))
                except (KeyError, ValueError) as exc:
                    raise RetailSyncError(f"page {pages} from {url}: malformed item ({exc}): {item!r}") from None
                if item.get("armRegionName"):
                    regions.add(str(item["armRegionName"]))
            next_link = page.get("NextPageLink")
            url = str(next_link) if next_link else None
    finally:
        if own_client:
            http.close()
    source = {
        "id": "azure-retail-prices-api",
        "label": f"Azure Retail Prices API, synced {fetched.isoformat()} from {base_url}",
        "url": base_url,
        "filter": odata_filter,
        "currency": currency,
        "fetched": fetched.isoformat(),
    }
    text = dump_document(rows, sources=[source], fetched=fetched)
    _write_atomic(target, text)
    return SyncSummary(target, len(rows), tuple(sorted(regions)), fetched, pages, skipped)


_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


def _get_page(
    http: httpx2.Client,
    url: str,
    params: Mapping[str, str] | None,
    *,
    max_retries: int,
    backoff: float,
    max_backoff: float,
    sleep: Callable[[float], None],
) -> dict[str, Any]:
    import httpx2

    attempt = 0
    while True:
        try:
            response = http.get(url, params=dict(params) if params else None)
        except httpx2.TransportError as exc:
            if attempt >= max_retries:
                raise RetailSyncError(f"GET {url} failed after {attempt + 1} attempts: {exc}") from exc
            sleep(min(max_backoff, backoff * 2**attempt))
            attempt += 1
            continue
        if response.status_code in _RETRY_STATUS and attempt < max_retries:
            sleep(_retry_after(response.headers.get("Retry-After"), default=min(max_backoff, backoff * 2**attempt),
                               cap=max_backoff))
            attempt += 1
            continue
        if response.status_code != 200:
            raise RetailSyncError(
                f"GET {response.url} returned HTTP {response.status_code} after {attempt + 1} attempts: "
                f"{response.text[:200]!r}"
            )
        try:
            page = json.loads(response.content, parse_float=Decimal)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RetailSyncError(f"GET {response.url} did not return JSON: {exc}") from None
        if not isinstance(page, dict):
            raise RetailSyncError(f"GET {response.url} returned {type(page).__name__}, expected an object")
        return page


def _retry_after(value: str | None, *, default: float, cap: float) -> float:
    """Seconds to wait from a Retry-After header, capped; ``default`` when there is none or it is unreadable."""
    from tokenid.routing.retry import retry_after_seconds

    seconds = retry_after_seconds(value) if value else None
    return default if seconds is None else min(cap, seconds)


def _write_atomic(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
