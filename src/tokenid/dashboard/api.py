"""The JSON API under ``/api/``: one declared endpoint per view, its parameters, and its OpenAPI description.

Each endpoint lists the parameters it accepts; that list both validates requests (anything else is a 400)
and documents the endpoint in ``/api/openapi.json``, so the two cannot drift apart.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import __version__
from ..enforce.rules import Budget
from ..errors import QueryError
from . import queries
from .params import BUCKETS, FILTER_PARAMS, GROUPS, PRESETS, STATUSES, Query, check_buckets, valid_tag_key
from .queries import Reader

__all__ = ["ENDPOINTS", "Endpoint", "Param", "openapi"]


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    enum: tuple[str, ...] = ()
    default: str | None = None
    kind: str = "string"


@dataclass(frozen=True)
class Endpoint:
    path: str
    name: str
    summary: str
    params: tuple[Param, ...]
    handler: Callable[[Request, Query, Context], Any]
    csv_rows: Callable[[Any], Sequence[dict[str, Any]]] | None = None
    path_params: tuple[Param, ...] = ()


@dataclass
class Context:
    """What handlers share: the journal reader, budget rules and a clock (tests set it)."""

    db: Reader
    budgets: Sequence[Budget]
    now: Callable[[], datetime]


_GROUP_HELP = f"{', '.join(GROUPS)} or tag:KEY"
FILTERS: Final = (
    Param("range", "Preset range ending now (instead of from/to).", (*PRESETS, "all")),
    Param("from", "Start, ISO 8601 date or date-time, UTC unless an offset is given; rounded down to the hour. "
                  "Default: 30 days before `to`."),
    Param("to", "End (exclusive), rounded up to the hour. Default: now."),
    Param("session", "Only this session's calls."),
    Param("tag", "Only calls with this tag, as KEY:VALUE (e.g. team:support)."),
    Param("provider", "openai or azure_openai."),
    Param("deployment", "Azure deployment name; (none) for calls without one."),
    Param("model", "Model as priced (canonical), else as served or requested; (none) for unknown."),
    Param("status", "Call status.", STATUSES),
)
_FORMAT = Param("format", "json, or csv to download the table.", ("json", "csv"), "json")


def _now(ctx: Context) -> datetime:
    return ctx.now().astimezone(timezone.utc)


def _filters(q: Query, ctx: Context) -> Any:
    return q.filters(_now(ctx), queries.bounds(ctx.db))


def _group(q: Query, *, allow_none: bool) -> str | None:
    raw = q.text("group")
    if raw is None or raw == "none":
        if allow_none:
            return None
        raw = "model"
    if raw in GROUPS:
        return raw
    if raw.startswith("tag:") and valid_tag_key(raw[4:]):
        return raw
    raise QueryError(f"group={raw!r} is not accepted; choose one of: {_GROUP_HELP}{', none' if allow_none else ''}")


def _summary(request: Request, q: Query, ctx: Context) -> Any:
    return queries.summary(ctx.db, _filters(q, ctx))


def _timeseries(request: Request, q: Query, ctx: Context) -> Any:
    f = _filters(q, ctx)
    bucket = q.choice("bucket", BUCKETS, "day")
    check_buckets(f, bucket)
    metric = q.choice("metric", queries.SERIES_METRICS, "cost")
    return queries.timeseries(ctx.db, f, bucket=bucket, metric=metric, group=_group(q, allow_none=True),
                              top=q.integer("top", 8, 1, 20))


def _breakdown(request: Request, q: Query, ctx: Context) -> Any:
    group = _group(q, allow_none=False) or "model"
    return queries.breakdown(ctx.db, _filters(q, ctx), group, limit=q.integer("limit", 100, 1, 1000))


def _sessions(request: Request, q: Query, ctx: Context) -> Any:
    sort = q.choice("sort", queries.SESSION_SORTS, "last_call")
    order = q.choice("order", ("desc", "asc"), "desc")
    return queries.sessions(ctx.db, _filters(q, ctx), sort=sort, descending=order == "desc",
                            limit=q.integer("limit", 50, 1, 1000), offset=q.integer("offset", 0, 0, 10_000_000))


def _session(request: Request, q: Query, ctx: Context) -> Any:
    session_id = request.path_params["session_id"]
    try:
        return queries.session_detail(ctx.db, session_id)
    except LookupError:
        raise LookupError(f"no calls journaled for session {session_id!r}") from None


def _calls(request: Request, q: Query, ctx: Context) -> Any:
    kind = q.choice("kind", queries.CALL_KINDS, "all")
    return queries.calls(ctx.db, _filters(q, ctx), kind=kind, limit=q.integer("limit", 100, 1, 1000),
                         after=q.text("after"), before=q.text("before"))


def _enforcement(request: Request, q: Query, ctx: Context) -> Any:
    return queries.enforcement(ctx.db, _filters(q, ctx), limit=q.integer("limit", 50, 1, 500))


def _budgets(request: Request, q: Query, ctx: Context) -> Any:
    return queries.budgets(ctx.db, ctx.budgets, _now(ctx))


def _reconciliation(request: Request, q: Query, ctx: Context) -> Any:
    line_status = q.text("line_status")
    if line_status is not None and line_status not in queries.LINE_STATUSES:
        raise QueryError(f"line_status={line_status!r} is not accepted; choose one of: "
                         f"{', '.join(queries.LINE_STATUSES)}")
    run = q.text("run")
    try:
        return queries.reconciliation(ctx.db, _filters(q, ctx), run=run, line_status=line_status,
                                      limit=q.integer("limit", 1000, 1, 100_000))
    except LookupError:
        raise LookupError(f"no reconciliation run {run!r}") from None


def _meta(request: Request, q: Query, ctx: Context) -> Any:
    return {**queries.meta(ctx.db), "version": __version__, "now": _now(ctx).isoformat().replace("+00:00", "Z"),
            "budgets_configured": bool(ctx.budgets)}


ENDPOINTS: Final[tuple[Endpoint, ...]] = (
    Endpoint("/api/meta", "meta", "The journal's time span and the values each filter offers.", (), _meta),
    Endpoint("/api/summary", "summary", "Totals for the range and the period of equal length before it.",
             FILTERS, _summary),
    Endpoint("/api/timeseries", "timeseries", "Spend, tokens or calls per hour/day/month, one series per group.",
             (*FILTERS, Param("bucket", "Bucket width.", tuple(BUCKETS), "day"),
              Param("metric", "What to sum.", tuple(queries.SERIES_METRICS), "cost"),
              Param("group", f"Split by {_GROUP_HELP}, or none.", (), "none"),
              Param("top", "Series kept (the rest are summed as (other)), 1-20.", (), "8", "integer"), _FORMAT),
             _timeseries,
             lambda d: [{"bucket": b, "series": s["key"], "value": s["values"][i]}
                        for s in d["series"] for i, b in enumerate(d["buckets"])]),
    Endpoint("/api/breakdown", "breakdown", "Totals per model, deployment, provider, status, session or tag value.",
             (*FILTERS, Param("group", f"Group by {_GROUP_HELP}.", (), "model"),
              Param("limit", "Rows, 1-1000.", (), "100", "integer"), _FORMAT),
             _breakdown, lambda d: d["rows"]),
    Endpoint("/api/sessions", "sessions", "Sessions active in the range with their totals; sortable, paged.",
             (*FILTERS, Param("sort", "Sort column.", tuple(queries.SESSION_SORTS), "last_call"),
              Param("order", "Sort order.", ("desc", "asc"), "desc"),
              Param("limit", "Rows per page, 1-1000.", (), "50", "integer"),
              Param("offset", "Rows to skip.", (), "0", "integer"), _FORMAT),
             _sessions, lambda d: d["rows"]),
    Endpoint("/api/sessions/{session_id}", "session", "Every call of one session, in order, with its totals.",
             (_FORMAT,), _session, lambda d: d["calls"],
             path_params=(Param("session_id", "The session id."),)),
    Endpoint("/api/calls", "calls", "Calls newest first; with `after`, those journaled since (the live tail).",
             (*FILTERS, Param("kind", "Which calls.", tuple(queries.CALL_KINDS), "all"),
              Param("limit", "Rows, 1-1000.", (), "100", "integer"),
              Param("after", "Only calls stored after this call id (ignores the time range), oldest first."),
              Param("before", "Only calls older than this call id (paging)."), _FORMAT),
             _calls, lambda d: d["rows"]),
    Endpoint("/api/enforcement", "enforcement", "Enforcement actions by rule, and the latest blocked and "
             "rewritten calls.", (*FILTERS, Param("limit", "Calls listed per kind, 1-500.", (), "50", "integer"),
                                  _FORMAT), _enforcement, lambda d: d["rules"]),
    Endpoint("/api/budgets", "budgets", "Every budget's current window: spent, reserved, limit, reset time.",
             (_FORMAT,), _budgets, lambda d: d["rows"]),
    Endpoint("/api/reconciliation", "reconciliation", "A reconciliation run (default: the latest): invoice vs "
             "journal cost per day/account/meter, and list vs invoice-calibrated cost of re-priced calls.",
             (*FILTERS, Param("run", "Run id (default: the latest)."),
              Param("line_status", "Only lines with this status.", queries.LINE_STATUSES),
              Param("limit", "Lines, 1-100000.", (), "1000", "integer"), _FORMAT),
             _reconciliation, lambda d: d["lines"]),
)


def accepted(endpoint: Endpoint) -> list[str]:
    return [p.name for p in endpoint.params]


def render(endpoint: Endpoint, data: Any, fmt: str, filename: str) -> Response:
    """JSON, or the endpoint's table as a CSV download."""
    if fmt == "csv":
        if endpoint.csv_rows is None:
            raise QueryError(f"{endpoint.path} has no CSV form")
        return Response(to_csv(endpoint.csv_rows(data)), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": f'attachment; filename="{filename}.csv"',
                                 "cache-control": "no-store"})
    return JSONResponse(data, headers={"cache-control": "no-store"})


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as CSV: the union of their keys as header (first seen first), nested values as JSON."""
    fields: dict[str, None] = {}
    for row in rows:
        fields.update(dict.fromkeys(row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v, default=str) if isinstance(v, dict | list) else
                         ("true" if v is True else "false" if v is False else v) for k, v in row.items()})
    return out.getvalue()


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 description of every endpoint, generated from :data:`ENDPOINTS`."""
    paths: dict[str, Any] = {}
    for ep in ENDPOINTS:
        parameters = []
        for p, where in [*((p, "path") for p in ep.path_params), *((p, "query") for p in ep.params)]:
            schema: dict[str, Any] = {"type": p.kind}
            if p.enum:
                schema["enum"] = list(p.enum)
            if p.default is not None:
                schema["default"] = int(p.default) if p.kind == "integer" else p.default
            parameters.append({"name": p.name, "in": where, "required": where == "path",
                               "description": p.description, "schema": schema})
        content: dict[str, Any] = {"application/json": {"schema": {"type": "object"}}}
        if ep.csv_rows is not None:
            content["text/csv"] = {"schema": {"type": "string"}}
        paths[ep.path] = {"get": {
            "operationId": ep.name, "summary": ep.summary, "parameters": parameters,
            "responses": {
                "200": {"description": "OK" + (" (format=csv: the table as CSV)" if ep.csv_rows else ""),
                        "content": content},
                "400": {"description": "A parameter is unknown or malformed.", "content": _ERROR},
                "401": {"description": "An access token is required.", "content": _ERROR},
                **({"404": {"description": "Not found.", "content": _ERROR}} if "{" in ep.path or
                   ep.name == "reconciliation" else {}),
            }}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "TokenID dashboard API", "version": __version__,
                 "description": "Read-only access to a TokenID journal. Money is decimal text in US dollars "
                                "(exact, never floats); times are UTC ISO 8601; ranges are whole hours. "
                                f"Every endpoint also accepts `token` (the access token) and `format`. "
                                f"Filters: {', '.join(FILTER_PARAMS)}."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{}, {"bearer": []}],
        "paths": paths,
    }


_ERROR: Final = {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}}}}}
