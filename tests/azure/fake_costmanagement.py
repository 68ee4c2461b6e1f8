"""A local Azure Cost Management Query API: a real HTTP server on 127.0.0.1 for ``tokenid.azure.costquery`` tests.

``POST /{scope}/providers/Microsoft.CostManagement/query?api-version=…`` answers like the service (EXPORTS.md §5):
``properties.columns`` (aggregations, then ``UsageDate``, the groupings, and the appended ``Currency``),
``properties.rows`` and ``properties.nextLink`` with a ``$skiptoken``. It aggregates the :class:`Usage` records a
test gives it per day × grouping × currency, applies the ``In`` dimension filter, and rejects what the service
rejects with Azure-shaped errors (``{"error": {"code", "message"}}``): a wrong bearer token (401), an unknown
api-version or a body that breaks the documented limits (400), an unknown scope path (404). A test can queue 429
responses (with the headers it chooses), reorder the columns and append raw rows.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from types import TracebackType
from typing import Any
from urllib.parse import quote

import uvicorn
from azure.core.credentials import AccessToken
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tokenid.simulator.background import BackgroundServer

TOKEN = "eyFAKE.cost-management-token.SECRET-7f3a9c"
API_VERSIONS = frozenset({"2023-11-01", "2025-03-01"})
QUERY_SUFFIX = "/providers/microsoft.costmanagement/query"
QUERY_TYPES = frozenset({"Usage", "ActualCost", "AmortizedCost", "FocusCost"})
AGGREGATION_NAMES = frozenset({"Cost", "CostUSD", "PreTaxCost", "PreTaxCostUSD", "UsageQuantity"})
DIMENSIONS = frozenset({"ResourceId", "ResourceGroupName", "ServiceName", "MeterCategory", "MeterSubCategory",
                        "Meter", "MeterId", "ChargeType", "PricingModel", "ResourceLocation"})
MAX_DAILY_DAYS = 31


@dataclass(frozen=True)
class Usage:
    """One usage record the fake aggregates: what an account spent on a meter on a day."""

    day: date
    resource_id: str
    meter: str
    cost: Decimal
    quantity: Decimal
    currency: str = "USD"
    service_name: str = "Foundry Models"
    meter_id: str = ""
    extra: dict[str, str] = field(default_factory=dict)  # other dimensions: ChargeType, ResourceLocation...

    def dimension(self, name: str) -> str:
        values = {"ResourceId": self.resource_id, "Meter": self.meter, "ServiceName": self.service_name,
                  "MeterId": self.meter_id}
        return values.get(name, self.extra.get(name, ""))


class FakeCredential:
    """azure-identity's credential shape: ``get_token(scope)`` → ``AccessToken``; records the scopes asked for."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


class _Invalid(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class FakeCostManagement:
    """The server; ``records``, ``page_size``, ``column_order``, ``extra_rows`` and ``throttle`` may be changed
    between requests. ``requests`` records what each request sent (path, query, body, whether auth passed)."""

    def __init__(self, records: Iterable[Usage] = (), *, token: str = TOKEN, page_size: int = 100,
                 column_order: Sequence[str] | None = None) -> None:
        self.records = list(records)
        self.token = token
        self.page_size = page_size
        self.column_order = list(column_order) if column_order else None
        self.extra_rows: list[Any] = []  # appended verbatim (non-lists too) after the aggregated rows
        self.throttle: list[dict[str, str]] = []  # each entry: one 429 with these headers, served first
        self.errors: list[tuple[int, dict[str, Any]]] = []  # each entry: one (status, JSON body), served first
        self.next_link_base: str | None = None  # serve nextLinks on another origin (tests the client's refusal)
        self.requests: list[dict[str, Any]] = []
        self.served_columns: list[list[str]] = []  # the column names of each result page served
        self.lock = threading.Lock()
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT"])])
        self._served = BackgroundServer(
            lambda port: uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                                        lifespan="off", ws="none", server_header=False, timeout_graceful_shutdown=1,
                                        log_config=None), name="fake-cost-management")
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- lifecycle --------------------------------------------------------------------------------------------
    def start(self) -> FakeCostManagement:
        self.port = self._served.start().port
        return self

    def stop(self) -> None:
        self._served.stop()

    def __enter__(self) -> FakeCostManagement:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # --- the endpoint -----------------------------------------------------------------------------------------
    async def _handle(self, request: Request) -> Response:
        raw = await request.body()
        path = "/" + request.path_params["path"]
        entry: dict[str, Any] = {"method": request.method, "path": path, "query": dict(request.query_params),
                                 "auth": request.headers.get("authorization") == f"Bearer {self.token}"}
        with self.lock:
            self.requests.append(entry)
        try:
            if request.method != "POST" or not path.lower().endswith(QUERY_SUFFIX):
                raise _Invalid(404, "NotFound", f"No HTTP resource was found that matches the request URI {path}.")
            if not entry["auth"]:
                raise _Invalid(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is "
                               "missing or has an invalid value.")
            with self.lock:
                throttle = self.throttle.pop(0) if self.throttle else None
                error = self.errors.pop(0) if self.errors else None
            if throttle is not None:
                return JSONResponse({"error": {"code": "429", "message": "Too many requests. Please retry."}},
                                    status_code=429, headers=throttle)
            if error is not None:
                return JSONResponse(error[1], status_code=error[0])
            version = request.query_params.get("api-version")
            if version not in API_VERSIONS:
                raise _Invalid(400, "InvalidApiVersionParameter",
                               f"The api-version '{version}' is invalid. The supported versions are "
                               f"'{', '.join(sorted(API_VERSIONS))}'.")
            scope = path[: -len(QUERY_SUFFIX)].strip("/")
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise _Invalid(400, "BadRequest", f"Invalid query definition: body is not JSON ({exc})") from None
            entry["body"] = body
            query = _validate(body)
            columns, rows = self._result(query)
            offset = _offset(request.query_params.get("$skiptoken"))
            page = rows[offset: offset + self.page_size]
            with self.lock:
                self.served_columns.append([c["name"] for c in columns])
            next_link = None
            if offset + self.page_size < len(rows):
                token = base64.urlsafe_b64encode(json.dumps({"o": offset + self.page_size}).encode()).decode()
                base = self.next_link_base or self.url
                next_link = (f"{base}/{scope}/providers/Microsoft.CostManagement/query?api-version={version}"
                             f"&$skiptoken={quote(token)}")
            payload = {"id": f"/{scope}/providers/Microsoft.CostManagement/query/00000000-0000-0000-0000-00000000c0de",
                       "name": "00000000-0000-0000-0000-00000000c0de", "type": "Microsoft.CostManagement/query",
                       "properties": {"nextLink": next_link, "columns": columns, "rows": page}}
            return Response(json.dumps(payload, default=_json_number), media_type="application/json")
        except _Invalid as exc:
            return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status)

    def _result(self, query: _Query) -> tuple[list[dict[str, str]], list[list[Any]]]:
        groups: dict[tuple[Any, ...], list[Decimal]] = {}
        for record in self.records:
            if not (query.first <= record.day <= query.last):
                continue
            if query.filter is not None:
                name, values = query.filter
                if record.dimension(name).lower() not in values:
                    continue
            key = (int(record.day.strftime("%Y%m%d")), *(record.dimension(g) for g in query.groupings),
                   record.currency)
            sums = groups.setdefault(key, [Decimal(0)] * len(query.aggregations))
            for i, name in enumerate(query.aggregations):
                sums[i] += record.quantity if name == "UsageQuantity" else record.cost
        columns = ([{"name": a, "type": "Number"} for a in query.aggregations] + [{"name": "UsageDate",
                   "type": "Number"}] + [{"name": g, "type": "String"} for g in query.groupings]
                   + [{"name": "Currency", "type": "String"}])
        rows = [[*sums, key[0], *key[1:-1], key[-1]] for key, sums in sorted(groups.items())]
        if self.column_order is not None:
            names = [c["name"] for c in columns]
            order = [names.index(n) for n in self.column_order if n in names]
            order += [i for i in range(len(names)) if i not in order]
            columns = [columns[i] for i in order]
            rows = [[row[i] for i in order] for row in rows]
        return columns, rows + [list(r) if isinstance(r, list) else r for r in self.extra_rows]


@dataclass
class _Query:
    first: date
    last: date
    aggregations: list[str]
    groupings: list[str]
    filter: tuple[str, set[str]] | None


def _validate(body: Any) -> _Query:
    """The checks the service makes on a query definition; a violation is a 400 BadRequest."""

    def bad(message: str) -> _Invalid:
        return _Invalid(400, "BadRequest", f"Invalid query definition: {message}")

    if not isinstance(body, dict):
        raise bad("the body must be a JSON object")
    if body.get("type") not in QUERY_TYPES:
        raise bad(f"type {body.get('type')!r} is not one of {', '.join(sorted(QUERY_TYPES))}")
    if body.get("timeframe") != "Custom":
        raise bad("this fake serves only timeframe 'Custom'")
    period = body.get("timePeriod")
    if not isinstance(period, dict):
        raise bad("timePeriod is required when timeframe is Custom")
    try:
        start = _instant(period["from"])
        stop = _instant(period["to"])
    except (KeyError, TypeError, ValueError) as exc:
        raise bad(f"timePeriod from/to must be ISO 8601 date-times ({exc})") from None
    if start > stop:
        raise bad("timePeriod 'from' is after 'to'")
    dataset = body.get("dataset")
    if not isinstance(dataset, dict):
        raise bad("dataset is required")
    if dataset.get("granularity") != "Daily":
        raise bad("this fake serves only granularity 'Daily'")
    if (stop.date() - start.date()).days + 1 > MAX_DAILY_DAYS:
        raise bad(f"a Daily query with grouping may span at most {MAX_DAILY_DAYS} days")
    aggregation = dataset.get("aggregation") or {}
    if not isinstance(aggregation, dict) or len(aggregation) > 2:
        raise bad("at most 2 aggregations are allowed")
    names = []
    for alias, spec in aggregation.items():
        if not isinstance(spec, dict) or spec.get("function") != "Sum" or spec.get("name") not in AGGREGATION_NAMES:
            raise bad(f"aggregation {alias!r} must be {{'name': one of {sorted(AGGREGATION_NAMES)}, "
                      "'function': 'Sum'}")
        names.append(spec["name"])
    grouping = dataset.get("grouping") or []
    if not isinstance(grouping, list) or len(grouping) > 2:
        raise bad("at most 2 groupings are allowed")
    groups = []
    for g in grouping:
        if not isinstance(g, dict) or g.get("type") != "Dimension" or g.get("name") not in DIMENSIONS:
            raise bad(f"grouping {g!r} must be {{'type': 'Dimension', 'name': a known dimension}}")
        groups.append(g["name"])
    query_filter = None
    if dataset.get("filter") is not None:
        dims = dataset["filter"].get("dimensions") if isinstance(dataset["filter"], dict) else None
        if not isinstance(dims, dict) or dims.get("operator") != "In" or dims.get("name") not in DIMENSIONS \
                or not isinstance(dims.get("values"), list):
            raise bad("filter must be {'dimensions': {'name', 'operator': 'In', 'values': [...]}}")
        query_filter = (dims["name"], {str(v).lower() for v in dims["values"]})
    return _Query(start.date(), stop.date(), names, groups, query_filter)


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _offset(skiptoken: str | None) -> int:
    if not skiptoken:
        return 0
    try:
        value = json.loads(base64.urlsafe_b64decode(skiptoken.encode()))["o"]
    except (ValueError, KeyError, TypeError):
        raise _Invalid(400, "BadRequest", "Invalid $skiptoken") from None
    if not isinstance(value, int) or value < 0:
        raise _Invalid(400, "BadRequest", "Invalid $skiptoken")
    return value


def _json_number(value: object) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # JSON has no decimals; float's shortest repr keeps the text the test wrote
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def days(first: date, count: int) -> list[date]:
    """``count`` consecutive days from ``first``."""
    return [first + timedelta(days=i) for i in range(count)]
