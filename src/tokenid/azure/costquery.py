"""Read Azure Cost Management **Query API** results as :class:`~tokenid.azure.exports.CostLine`: exports without files.

``query_cost_lines(scope, start, end)`` POSTs a daily query (``Cost`` and ``UsageQuantity`` summed, grouped by
``ResourceId`` and ``Meter``) to ``{scope}/providers/Microsoft.CostManagement/query`` and yields one ``CostLine``
per account × day × meter, the same dataclass the export readers yield, so the reconciler reads both alike.
Facts from shared/azure-billing/EXPORTS.md §5:

- The range is queried one calendar month at a time (third-party notes, unverified: a Daily query with grouping
  is limited to 31 days and longer ones are silently truncated), each month paged through
  ``properties.nextLink``, POSTing the same body again. A nextLink to another host than ``base_url`` is refused:
  it would carry the bearer token away.
- Columns are found by name in ``properties.columns`` (never by position); ``UsageDate`` is an integer
  ``yyyyMMdd``; the ``Currency`` column is appended by the service. Numbers are parsed from the JSON text as
  ``Decimal``, never through ``float``.
- 429 / 5xx / dropped connections are retried at most ``max_retries`` times per request, waiting what
  ``Retry-After`` or the ``x-ms-ratelimit-microsoft.costmanagement-*-retry-after`` headers say (the largest), else
  1, 2, 4… s; a wait longer than ``max_retry_wait`` is not slept but reported as :class:`CostQueryError`.

What a query cannot say, because the API allows at most two groupings (both are spent on ResourceId and Meter,
the reconciliation key): ``meter_id``, ``region``, ``meter_category``, ``product``, ``charge_type`` and
``pricing_model`` are empty, ``tags`` is ``{}``, ``unit_price`` and ``exchange_rate`` are None.
``unit_of_measure`` is derived from the meter name with :func:`tokenid.azure.meters.parse_meter` (``… Tokens`` →
``1K``, ``… 1M Tokens`` → ``1M``, hosting ``… Unit`` → ``1 Hour``…) and left empty when the name does not say
(e.g. PTU ``Provisioned Managed … Unit``). ``cost_usd`` is the cost when the billing currency is USD, else None.
Use exports when those fields matter. The same notes say grouping by ResourceId works only at subscription and
resource-group scope [unverified]; at a billing scope the service's 400 would surface as :class:`CostQueryError`.

What counts as Azure OpenAI (``openai_only``) follows the export reader: rows of Cognitive Services accounts, or
rows whose meter name mentions Azure OpenAI / provisioned throughput. The query itself also filters
``ServiceName`` (``service_names``): "Foundry Models" (2026 name) and "Cognitive Services" (earlier), which leaves
out the "Foundry Tools" services (Speech, Vision…) exactly as the export reader's category rule does.

A row that cannot be read becomes a :class:`~tokenid.azure.exports.ReadIssue` (``file`` names the query month and
page, ``line`` the 1-based row on that page) counted in ``rows_malformed``; nothing is dropped uncounted. A request
that fails for good (HTTP 4xx, retries exhausted, a page that is not a query result) raises
:class:`CostQueryError` naming the scope and the service's error code and message: a partial month must not pass
for a complete one. The bearer token never appears in a message or a log record.

Why ``httpx2`` and azure-identity's ``get_token`` instead of ``azure-mgmt-costmanagement`` 5.0.0: the SDK has no
operation that follows ``next_link`` (only ``_send_request`` with a hand-built request would), its deserialiser
returns row numbers as ``float`` (money must stay ``Decimal``), azure-core's retry policy reads ``Retry-After`` but
not the Cost Management ``x-ms-ratelimit-*-retry-after`` headers, and its bearer policy refuses ``http://``
unless ``enforce_https=False`` is passed per call, which is not limited to loopback. Here plain ``http`` is
accepted only for a loopback ``base_url`` (a local fake), and the only Azure dependency is azure-identity (the
``tokenid[azure]`` extra), imported only when no ``credential`` is given.
"""

from __future__ import annotations

import calendar
import json
import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from ..errors import ConfigError, TokenIDError
from ..routing.retry import retry_after_seconds
from .exports import CostLine, ReadIssue, ReadSummary
from .exports import _account as account_of  # package-internal helpers: the export reader's own rules
from .exports import _mentions_openai as mentions_openai
from .exports import _parse_day as parse_day
from .meters import parse_meter

if TYPE_CHECKING:
    import httpx2

__all__ = [
    "API_VERSION",
    "DEFAULT_SERVICE_NAMES",
    "QUERY_TYPES",
    "TOKEN_SCOPE",
    "CostQueryError",
    "TokenCredential",
    "query_body",
    "query_cost_lines",
    "unit_of_measure",
    "validate_scope",
]

log = logging.getLogger(__name__)

API_VERSION = "2023-11-01"
#: What azure-identity is asked for: a token for Azure Resource Manager.
TOKEN_SCOPE = "https://management.azure.com/.default"
#: Query ``type`` values that return Cost / UsageQuantity per meter.
QUERY_TYPES: tuple[str, ...] = ("ActualCost", "AmortizedCost", "Usage")
#: ``ServiceName`` values of Azure OpenAI usage: "Foundry Models" since 2026, "Cognitive Services" before (§4).
DEFAULT_SERVICE_NAMES: tuple[str, ...] = ("Foundry Models", "Cognitive Services")

_QUERY_PATH = "providers/Microsoft.CostManagement/query"
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_RATE_LIMIT_PREFIX = "x-ms-ratelimit-microsoft.costmanagement-"
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_USD = "USD"
_ZERO = Decimal(0)

# Scope forms the Query API accepts that this reader supports (EXPORTS.md §5), matched case-insensitively.
_GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_NAME = r"[\w.()-]{1,90}"  # resource group / management group names
_BILLING_ID = r"[\w.:@-]{1,128}"  # EA enrollment numbers, MCA "guid:guid_yyyy-mm-dd", profile ids "AAAA-BBBB-CCC-DDD"
_SCOPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("subscription", re.compile(rf"subscriptions/{_GUID}", re.I)),
    ("resource group", re.compile(rf"subscriptions/{_GUID}/resourceGroups/{_NAME}(?<!\.)", re.I)),
    ("billing account", re.compile(rf"providers/Microsoft\.Billing/billingAccounts/{_BILLING_ID}", re.I)),
    ("billing profile", re.compile(
        rf"providers/Microsoft\.Billing/billingAccounts/{_BILLING_ID}/billingProfiles/{_BILLING_ID}", re.I)),
    ("management group", re.compile(rf"providers/Microsoft\.Management/managementGroups/{_NAME}", re.I)),
)
_SCOPE_FORMS = (
    "subscriptions/<subscription-guid>, subscriptions/<subscription-guid>/resourceGroups/<name>, "
    "providers/Microsoft.Billing/billingAccounts/<id>, "
    "providers/Microsoft.Billing/billingAccounts/<id>/billingProfiles/<id>, "
    "providers/Microsoft.Management/managementGroups/<id>"
)

# MeterInfo.unit → the UnitOfMeasure text exports write (EXPORTS.md §3).
_BLOCKS = {"1": "1", "100": "100", "1k": "1K", "10k": "10K", "1m": "1M"}
_TIME_UNITS = {"hours": "1 Hour", "seconds": "1 Second", "days": "1/Day", "months": "1/Month", "gb_days": "1/Day"}


class CostQueryError(TokenIDError):
    """A Cost Management query failed for good: HTTP error, retries exhausted, or a response that is no query result.

    ``status`` is the HTTP status (None when no response arrived); ``code`` the service's ``error.code``.
    """

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class TokenCredential(Protocol):
    """What azure-identity credentials provide: ``get_token(scope)`` → an ``AccessToken(token, expires_on)``."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any: ...


# --- arguments ---------------------------------------------------------------------------------------------------
def validate_scope(scope: str) -> str:
    """The scope without surrounding slashes, or :class:`ConfigError` naming it and the accepted forms."""
    if not isinstance(scope, str):
        raise ConfigError(f"scope must be a string, not {type(scope).__name__}")
    text = scope.strip().strip("/")
    for _, pattern in _SCOPES:
        if pattern.fullmatch(text):
            return text
    raise ConfigError(f"scope {scope!r} is not a Cost Management scope; expected one of: {_SCOPE_FORMS}")


def _validate_base_url(base_url: str) -> str:
    parts = urlsplit(base_url.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host or parts.query or parts.fragment:
        raise ConfigError(f"base_url {base_url!r} must be an https:// URL such as https://management.azure.com")
    if parts.scheme == "http" and host not in _LOOPBACK:
        raise ConfigError(f"base_url {base_url!r}: a bearer token is only sent over http:// to a loopback host "
                          "(127.0.0.1, ::1, localhost); use https://")
    return base_url.strip().rstrip("/")


def query_body(cost_type: str, start: date, end: date, service_names: Sequence[str] | None) -> dict[str, Any]:
    """The Query API request for ``[start, end]`` (both inclusive): daily Cost and UsageQuantity per account × meter."""
    dataset: dict[str, Any] = {
        "granularity": "Daily",
        "aggregation": {
            "totalCost": {"name": "Cost", "function": "Sum"},
            "totalQuantity": {"name": "UsageQuantity", "function": "Sum"},
        },
        "grouping": [{"type": "Dimension", "name": "ResourceId"}, {"type": "Dimension", "name": "Meter"}],
    }
    if service_names:
        dataset["filter"] = {"dimensions": {"name": "ServiceName", "operator": "In", "values": list(service_names)}}
    return {
        "type": cost_type,
        "timeframe": "Custom",
        "timePeriod": {"from": f"{start.isoformat()}T00:00:00Z", "to": f"{end.isoformat()}T23:59:59Z"},
        "dataset": dataset,
    }


def _months(start: date, end: date) -> Iterator[tuple[date, date]]:
    """``[start, end]`` cut at calendar-month boundaries."""
    first = start
    while first <= end:
        last = date(first.year, first.month, calendar.monthrange(first.year, first.month)[1])
        yield first, min(last, end)
        first = last + timedelta(days=1)


_UNITS: dict[str, str] = {}


def unit_of_measure(meter_name: str) -> str:
    """The UnitOfMeasure (``1K``, ``1M``, ``1 Hour``, ``100``…) a meter name implies, or "" when it does not say."""
    unit = _UNITS.get(meter_name)
    if unit is None:
        info = parse_meter(meter_name)
        unit = "" if info.unknown or not info.unit else _uom(info.unit)
        if len(_UNITS) > 50_000:
            _UNITS.clear()
        _UNITS[meter_name] = unit
    return unit


def _uom(unit: str) -> str:
    if unit in _TIME_UNITS:
        return _TIME_UNITS[unit]
    _, _, block = unit.rpartition("_")
    if block in _BLOCKS:
        return _BLOCKS[block]
    return "1"  # a count without a block: sessions, images, calls one by one


# --- the public entry point -----------------------------------------------------------------------------------------
def query_cost_lines(
    scope: str,
    start: date,
    end: date,
    *,
    credential: TokenCredential | None = None,
    base_url: str = "https://management.azure.com",
    cost_type: str = "AmortizedCost",
    summary: ReadSummary | None = None,
    api_version: str = API_VERSION,
    service_names: Sequence[str] | None = DEFAULT_SERVICE_NAMES,
    openai_only: bool = True,
    token_scope: str = TOKEN_SCOPE,
    max_retries: int = 4,
    max_retry_wait: float = 120.0,
    timeout: float = 120.0,
    max_issues: int = 1000,
    client: httpx2.Client | None = None,
) -> Iterator[CostLine]:
    """Yield the ``CostLine`` of every Azure OpenAI account × day × meter in ``[start, end]`` (both inclusive).

    ``scope``: ``subscriptions/<id>`` (optionally ``/resourceGroups/<name>``), a billing account or profile, or a
    management group. ``credential``: anything with azure-identity's ``get_token`` (default
    ``DefaultAzureCredential()``). ``cost_type``: ``AmortizedCost`` (reservations spread over usage),
    ``ActualCost`` (what the invoice shows) or ``Usage``. ``summary``: filled in as lines are consumed, exactly like
    ``read_export``'s (``complete`` once exhausted). ``service_names``: the server-side ``ServiceName`` filter; None
    sends none. ``openai_only``: drop rows that are not Azure OpenAI (counted in ``summary.filtered``).
    ``client``: an ``httpx2.Client`` to send through (not closed here).

    Arguments are checked at once (:class:`ConfigError`); requests are sent while the iterator is consumed and a
    failed request raises :class:`CostQueryError` from it.
    """
    scope = validate_scope(scope)
    base = _validate_base_url(base_url)
    if not isinstance(start, date) or not isinstance(end, date) or isinstance(start, datetime) \
            or isinstance(end, datetime):
        raise ConfigError("start and end must be datetime.date values (days, both inclusive)")
    if start > end:
        raise ConfigError(f"start ({start}) is after end ({end})")
    if cost_type not in QUERY_TYPES:
        raise ConfigError(f"cost_type must be one of {', '.join(QUERY_TYPES)}, not {cost_type!r}")
    if not re.fullmatch(r"\d{4}-\d\d-\d\d(-preview)?", api_version):
        raise ConfigError(f"api_version {api_version!r} is not an api-version such as {API_VERSION}")
    if service_names is not None and (isinstance(service_names, str) or not all(
            isinstance(s, str) and s for s in service_names)):
        raise ConfigError("service_names must be a sequence of ServiceName values, or None for no filter")
    if max_retries < 0 or max_retry_wait < 0 or timeout <= 0 or max_issues < 0:
        raise ConfigError("max_retries, max_retry_wait and max_issues must be >= 0 and timeout > 0")
    if credential is None:
        credential = _default_credential()
    elif not callable(getattr(credential, "get_token", None)):
        raise ConfigError("credential must have get_token(scope), like azure-identity's credentials")
    if summary is None:
        summary = ReadSummary(path="")
    summary.path = summary.path or f"{base}/{scope}"
    run = _Run(scope=scope, base=base, cost_type=cost_type, api_version=api_version,
               service_names=tuple(service_names) if service_names else None, openai_only=openai_only,
               start=start, end=end, summary=summary, bearer=_Bearer(credential, token_scope),
               max_retries=max_retries, max_retry_wait=max_retry_wait, timeout=timeout, max_issues=max_issues)
    return run.lines(client)


def _default_credential() -> TokenCredential:
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError as exc:
        raise ConfigError("querying Cost Management needs azure-identity for its credential: "
                          f"pip install 'tokenid[azure]' ({exc})") from None
    credential: TokenCredential = DefaultAzureCredential()
    return credential


def _import_httpx() -> Any:
    try:
        import httpx2
    except ImportError as exc:  # openai depends on it, so only a broken install lands here
        raise ConfigError(f"querying Cost Management needs httpx2: pip install 'tokenid[azure]' ({exc})") from None
    return httpx2


# --- tokens --------------------------------------------------------------------------------------------------------
class _Bearer:
    """The current access token, fetched again a few minutes before it expires or after a 401."""

    _MARGIN_S = 300

    def __init__(self, credential: TokenCredential, scope: str) -> None:
        self._credential = credential
        self._scope = scope
        self._token: str | None = None
        self._expires = 0.0
        self.secrets: list[str] = []  # every token handed out, to scrub from messages

    def header(self, *, refresh: bool = False) -> str:
        if refresh or self._token is None or time.time() > self._expires - self._MARGIN_S:
            try:
                access = self._credential.get_token(self._scope)
            except Exception as exc:  # ClientAuthenticationError, CredentialUnavailableError, ...
                raise CostQueryError(f"could not get an access token for {self._scope}: "
                                     f"{type(exc).__name__}: {self.scrub(str(exc))}") from None
            token = getattr(access, "token", None)
            if not isinstance(token, str) or not token:
                raise CostQueryError(f"credential.get_token({self._scope!r}) returned no token")
            expires = getattr(access, "expires_on", None)
            self._token = token
            self._expires = float(expires) if isinstance(expires, (int, float)) else time.time() + 600
            self.secrets.append(token)
        return f"Bearer {self._token}"

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "<token>")
        return text


# --- one run -------------------------------------------------------------------------------------------------------
@dataclass
class _Columns:
    """Where each needed column is on a page, read from ``properties.columns``."""

    cost: int
    quantity: int
    day: int
    resource_id: int
    meter: int
    currency: int | None
    width: int


_REQUIRED_COLUMNS = {"cost": "Cost", "quantity": "UsageQuantity", "day": "UsageDate", "resource_id": "ResourceId",
                     "meter": "Meter"}


@dataclass
class _Run:
    scope: str
    base: str
    cost_type: str
    api_version: str
    service_names: tuple[str, ...] | None
    openai_only: bool
    start: date
    end: date
    summary: ReadSummary
    bearer: _Bearer
    max_retries: int
    max_retry_wait: float
    timeout: float
    max_issues: int

    # issues, counted like the export reader counts them
    def _issue(self, issue: ReadIssue) -> None:
        if len(self.summary.issues) < self.max_issues:
            self.summary.issues.append(issue)
        else:
            self.summary.issues_omitted += 1

    def _warn(self, where: str, line: int, reason: str) -> None:
        self.summary.warnings += 1
        self._issue(ReadIssue(where, line, reason, "warning"))

    def _row_error(self, where: str, line: int, reason: str) -> None:
        self.summary.rows_malformed += 1
        self._issue(ReadIssue(where, line, reason))

    def _page_error(self, where: str, reason: str) -> CostQueryError:
        self.summary.files_malformed += 1
        self._issue(ReadIssue(where, 0, reason))
        return CostQueryError(f"Cost Management query for {self.scope}: {where}: {reason}")

    def lines(self, client: httpx2.Client | None) -> Iterator[CostLine]:
        httpx2 = _import_httpx()
        http = client if client is not None else httpx2.Client(timeout=self.timeout, follow_redirects=False)
        try:
            for first, last in _months(self.start, self.end):
                yield from self._month(http, first, last)
            self.summary.complete = True
        finally:
            if client is None:
                http.close()

    def _month(self, http: httpx2.Client, first: date, last: date) -> Iterator[CostLine]:
        body = query_body(self.cost_type, first, last, self.service_names)
        url: str | None = f"{self.base}/{self.scope}/{_QUERY_PATH}?api-version={self.api_version}"
        seen: set[str] = set()
        page_no = 0
        while url is not None:
            page_no += 1
            where = f"query {self.scope} {first.isoformat()}..{last.isoformat()} page {page_no}"
            seen.add(url)
            page = self._post(http, url, body, where)
            self.summary.files.append(where)
            self.summary.formats[where] = "costquery"
            self.summary.datasets[where] = self.cost_type
            if page is None:  # 204 No Content: no data for the month
                return
            properties = page.get("properties")
            if not isinstance(properties, dict):
                raise self._page_error(where, "response has no 'properties' object")
            yield from self._rows(where, properties, first, last)
            next_link = properties.get("nextLink")
            url = self._next(next_link, where, seen) if next_link else None

    def _next(self, next_link: object, where: str, seen: set[str]) -> str:
        if not isinstance(next_link, str):
            raise self._page_error(where, f"nextLink is {type(next_link).__name__}, not a URL")
        base, link = urlsplit(self.base), urlsplit(next_link)
        if (link.scheme, (link.hostname or "").lower(), link.port) != (
                base.scheme, (base.hostname or "").lower(), base.port):
            raise self._page_error(where, f"nextLink points to {link.scheme}://{link.netloc}, not {self.base}: "
                                   "not followed (the bearer token is only sent to base_url)")
        if next_link in seen:
            raise self._page_error(where, "nextLink repeats an earlier page: paging would never end")
        return next_link

    # HTTP
    def _post(self, http: httpx2.Client, url: str, body: dict[str, Any], where: str) -> dict[str, Any] | None:
        httpx2 = _import_httpx()
        attempt = 0
        refreshed = False
        while True:
            headers = {"Authorization": self.bearer.header(), "Content-Type": "application/json",
                       "Accept": "application/json"}
            log.debug("POST %s (attempt %d)", url, attempt + 1)
            try:
                response = http.post(url, json=body, headers=headers)
            except httpx2.TransportError as exc:
                reason = f"{type(exc).__name__}: {self.bearer.scrub(str(exc))}"
                if attempt >= self.max_retries:
                    raise CostQueryError(f"Cost Management query for {self.scope}: {where}: no response after "
                                         f"{attempt + 1} attempts ({reason})") from None
                wait = min(self.max_retry_wait, 2.0**attempt)
                log.info("%s: %s; retrying in %.1f s", where, reason, wait)
                time.sleep(wait)
                attempt += 1
                continue
            status = response.status_code
            if status == 401 and not refreshed:  # the token may have expired mid-run: get a fresh one once
                refreshed = True
                self.bearer.header(refresh=True)
                continue
            if status in _RETRY_STATUS and attempt < self.max_retries:
                asked = _retry_after(response.headers)
                wait = min(self.max_retry_wait, 2.0**attempt) if asked is None else asked
                if wait > self.max_retry_wait:
                    raise self._http_error(response, where, f"asks to retry after {wait:g} s, more than "
                                           f"max_retry_wait={self.max_retry_wait:g} s")
                log.info("%s: HTTP %d, retrying in %.1f s (retry %d of %d)", where, status, wait, attempt + 1,
                         self.max_retries)
                time.sleep(wait)
                attempt += 1
                continue
            if status == 204:
                return None
            if status != 200:
                suffix = f"after {attempt + 1} attempts" if status in _RETRY_STATUS else ""
                raise self._http_error(response, where, suffix)
            try:
                page = json.loads(response.content, parse_float=Decimal)
            except (ValueError, UnicodeDecodeError) as exc:
                raise self._page_error(where, f"response is not JSON: {exc}") from None
            if not isinstance(page, dict):
                raise self._page_error(where, f"response is a JSON {type(page).__name__}, not an object")
            return page

    def _http_error(self, response: httpx2.Response, where: str, detail: str) -> CostQueryError:
        code, message = _azure_error(response)
        text = f"Cost Management query for {self.scope}: {where}: HTTP {response.status_code}"
        if code:
            text += f" {code}"
        if message:
            text += f": {message}"
        if detail:
            text += f" ({detail})"
        return CostQueryError(self.bearer.scrub(text), status=response.status_code, code=code)

    # rows
    def _columns(self, where: str, columns: object) -> _Columns:
        if not isinstance(columns, list):
            raise self._page_error(where, "properties.columns is not a list")
        position: dict[str, int] = {}
        for i, column in enumerate(columns):
            name = column.get("name") if isinstance(column, dict) else None
            if not isinstance(name, str):
                raise self._page_error(where, f"column {i + 1} has no name: {str(column)[:80]}")
            position.setdefault(name.lower(), i)
        missing = [name for name in _REQUIRED_COLUMNS.values() if name.lower() not in position]
        if missing:
            raise self._page_error(where, f"columns lack {', '.join(missing)} (have "
                                   f"{', '.join(str(c.get('name')) for c in columns)})")
        found = {key: position[name.lower()] for key, name in _REQUIRED_COLUMNS.items()}
        currency = position.get("currency")
        if currency is None:
            self._warn(where, 0, "no Currency column: currency left empty")
        return _Columns(currency=currency, width=len(columns), **found)

    def _rows(self, where: str, properties: dict[str, Any], first: date, last: date) -> Iterator[CostLine]:
        summary = self.summary
        columns = self._columns(where, properties.get("columns"))
        rows = properties.get("rows")
        if not isinstance(rows, list):
            raise self._page_error(where, "properties.rows is not a list")
        for n, row in enumerate(rows, 1):
            summary.rows_read += 1
            try:
                line = self._line(where, n, row, columns, first, last)
            except _BadRow as exc:
                self._row_error(where, n, str(exc))
                continue
            except Exception as exc:  # a value no rule foresaw: report the row, never stop the run
                self._row_error(where, n, f"unexpected {type(exc).__name__}: {exc}")
                continue
            if isinstance(line, str):
                summary.rows_filtered_out += 1
                summary.filtered[line] = summary.filtered.get(line, 0) + 1
                continue
            summary.rows_kept += 1
            summary.cost_kept[line.currency] = summary.cost_kept.get(line.currency, _ZERO) + line.cost
            summary.currencies.add(line.currency)
            yield line

    def _line(self, where: str, n: int, row: object, columns: _Columns, first: date,
              last: date) -> CostLine | str:
        """The row's CostLine, or the reason it is filtered out; :class:`_BadRow` when it cannot be read."""
        if not isinstance(row, list):
            raise _BadRow(f"row is a JSON {type(row).__name__}, not an array")
        if len(row) != columns.width:
            raise _BadRow(f"expected {columns.width} values, found {len(row)}")
        rid = row[columns.resource_id]
        if rid is None:
            rid = ""
        if not isinstance(rid, str):
            raise _BadRow(f"ResourceId {rid!r} is not a string")
        meter = row[columns.meter]
        if not isinstance(meter, str) or not meter.strip():
            raise _BadRow("Meter is empty" if meter in (None, "") else f"Meter {meter!r} is not a string")
        account = account_of(rid)
        if self.openai_only and not (account.is_cs or mentions_openai(meter)):
            return "not_openai"
        day = _day(row[columns.day])
        if not (first <= day <= last):
            return "out_of_range"
        cost = _number("Cost", row[columns.cost])
        raw_quantity = row[columns.quantity]
        quantity = _ZERO if raw_quantity is None else _number("UsageQuantity", raw_quantity)
        if raw_quantity is None:
            self._warn(where, n, "UsageQuantity is null: quantity taken as 0")
        currency = ""
        if columns.currency is not None:
            raw_currency = row[columns.currency]
            if raw_currency is not None and not isinstance(raw_currency, str):
                raise _BadRow(f"Currency {raw_currency!r} is not a string")
            currency = (raw_currency or "").strip().upper()
        return CostLine(
            day=day,
            account_id=account.account_id,
            account_name=account.name,
            resource_group=account.resource_group,
            subscription_id=account.subscription,
            region="",
            meter_name=meter,
            meter_id="",
            meter_category="",
            meter_subcategory="",
            product="",
            unit_of_measure=unit_of_measure(meter),
            quantity=quantity,
            cost=cost,
            cost_usd=cost if currency == _USD else None,
            currency=currency,
            exchange_rate=None,
            unit_price=None,
            charge_type="",
            pricing_model="",
            tags={},
            source=f"{where}:{n}",
        )


class _BadRow(Exception):
    pass


def _number(column: str, value: object) -> Decimal:
    if value is None:
        raise _BadRow(f"{column} is null")
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str, float)):
        raise _BadRow(f"{column} {value!r} is not a number")
    try:
        number = Decimal(value) if not isinstance(value, float) else Decimal(repr(value))
    except (InvalidOperation, ValueError):
        raise _BadRow(f"{column} {str(value)[:40]!r} is not a number") from None
    if not number.is_finite():
        raise _BadRow(f"{column} {str(value)[:40]!r} is not a finite number")
    return number


def _day(value: object) -> date:
    """UsageDate: an integer ``yyyyMMdd`` at Daily granularity (older API versions wrote an ISO date string)."""
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _BadRow(f"UsageDate {value!r} is not a yyyyMMdd number")
    parsed = parse_day(str(value))
    if isinstance(parsed, str):
        raise _BadRow(f"UsageDate: {parsed}")
    return parsed


def _retry_after(headers: httpx2.Headers) -> float | None:
    """Seconds to wait: the largest of Retry-After and Cost Management's ``x-ms-ratelimit-…-retry-after`` headers."""
    waits: list[float] = []
    for name, value in headers.items():
        lower = name.lower()
        if lower == "retry-after" or (lower.startswith(_RATE_LIMIT_PREFIX) and lower.endswith("retry-after")):
            seconds = retry_after_seconds(value)
            if seconds is not None:
                waits.append(seconds)
    return max(waits) if waits else None


def _azure_error(response: httpx2.Response) -> tuple[str | None, str]:
    """``(error.code, error.message)`` of an Azure error body, or ``(None, the body's start)``."""
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        return None, response.text[:300].strip()
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        code = error.get("code")
        message = error.get("message")
        return (str(code) if code is not None else None), str(message or "")[:500]
    return None, response.text[:300].strip()
