"""Every read the dashboard makes, in one place: rollups when they can answer, raw events when they must.

The overview, breakdowns and session list read the rollups (``journal/rollups.py``); a filter on one session,
or a tag combined with another grouping, reads the events through their indexes instead, with the same metric
expressions, so both paths give identical figures. All SQL is parameterised; identifiers come only from
fixed tables in this module. The same SQL serves SQLite and PostgreSQL journals: the few constructs that differ
come from the reader's dialect (``journal/dialect.py``), and :class:`Reader` is the only thing that talks to the
database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from ..enforce.counters import Window, parse_window
from ..enforce.rules import Budget
from ..errors import ConfigError
from ..journal.dialect import Dialect
from ..journal.rollups import DIMENSIONS, METRICS, REWRITTEN, action_fields, actions_join
from .params import BUCKETS, Filters, iso_hour
from .reader import Reader

__all__ = [
    "CALL_KINDS",
    "LINE_STATUSES",
    "SESSION_SORTS",
    "Reader",
    "breakdown",
    "budgets",
    "calls",
    "enforcement",
    "meta",
    "money",
    "reconciliation",
    "session_detail",
    "sessions",
    "summary",
    "timeseries",
]

UTC: Final = timezone.utc
_SUMS: Final = ", ".join(f"SUM({m}) AS {m}" for m in METRICS)
SERIES_METRICS: Final[dict[str, str]] = {"cost": "SUM(cost_nanousd)", "tokens": "SUM(input_tokens + output_tokens)",
                                         "calls": "SUM(calls)", "input_tokens": "SUM(input_tokens)",
                                         "output_tokens": "SUM(output_tokens)"}
# ``{greatest}``: the dialect's two-argument maximum
SESSION_SORTS: Final[dict[str, str]] = {
    "last_call": "MAX(last_at)",
    "first_call": "MIN(first_at)",
    "calls": "SUM(calls)",
    "cost": "SUM(cost_nanousd)",
    "tokens": "SUM(input_tokens) + SUM(output_tokens)",
    "errors": "SUM(errors)",
    "blocked": "SUM(blocked)",
    "latency": "SUM(latency_ms_sum) / {greatest}(SUM(latency_calls), 1)",
    "session": "session_id",
}
_FEW_KEYS: Final = frozenset({"model", "deployment", "provider", "status"})
_PLAIN: Final = re.compile(r"\b(?:SUM|MIN|MAX)\((\w+)\)")  # SUM(calls) -> calls: the same sort on one row per session
CALL_KINDS: Final[dict[str, str]] = {
    "all": "",
    "blocked": "enforcement IS NOT NULL AND status = 'blocked'",
    "rewritten": "enforcement IS NOT NULL AND " + REWRITTEN,
    "enforced": "enforcement IS NOT NULL",
    "errors": "status = 'error'",
}
# what the calls list and a session page show of an event (never `content`: prompts stay out of the dashboard)
_CALL_COLUMNS: Final = (
    "id", "started_at", "ended_at", "latency_ms", "ttft_ms", "session_id", "tags", "provider", "endpoint",
    "deployment", "model_requested", "model_served", "canonical_model", "deployment_type", "input_tokens",
    "cached_input_tokens", "output_tokens", "reasoning_tokens", "usage_source", "cost_usd", "invoice_cost_usd",
    "saved_usd", "price_source", "unpriced_reason", "status", "http_status", "error_type", "error_code",
    "request_id", "enforcement", "attempts", "route", "stream", "cache_hit", "service_tier", "batch_id",
)
_JSON: Final = frozenset({"tags", "enforcement", "route"})
_MAX_SESSION_CALLS: Final = 5000


# -- formatting ---------------------------------------------------------------------------------------
def money(nanos: int | None) -> str | None:
    """Integer nano-dollars as exact decimal text ("12.345000000"); None stays None."""
    return None if nanos is None else f"{Decimal(int(nanos)).scaleb(-9):f}"


def _decimal(text: Any) -> Decimal | None:
    if text is None or text == "":
        return None
    try:
        return Decimal(str(text))
    except InvalidOperation:
        return None


def _average(total: Any, count: Any) -> float | None:
    """A mean of milliseconds to 0.1 ms. The float sum is first rounded to the microsecond the journal stores
    (latency_ms has 3 decimals): SQLite and PostgreSQL add floats in different orders, and the noise must not
    decide a rounding. Counts may come back as Decimal (PostgreSQL): made int before dividing."""
    return round(round(float(total), 3) / int(count), 1) if count else None


def _metrics(row: dict[str, Any]) -> dict[str, Any]:
    """Rollup sums -> what the API shows: money as decimal text, averages, nothing-priced as null."""
    r = {k: (row.get(k) or 0) for k in METRICS}
    calls = int(r["calls"])
    out: dict[str, Any] = {
        "calls": calls,
        "input_tokens": int(r["input_tokens"]),
        "cached_input_tokens": int(r["cached_input_tokens"]),
        "output_tokens": int(r["output_tokens"]),
        "reasoning_tokens": int(r["reasoning_tokens"]),
        "tokens": int(r["input_tokens"]) + int(r["output_tokens"]),
        "cost_usd": money(r["cost_nanousd"]) if r["priced_calls"] else None,
        "invoice_cost_usd": money(r["invoice_cost_nanousd"]) if r["invoiced_calls"] else None,
        "invoiced_list_cost_usd": money(r["invoiced_list_nanousd"]) if r["invoiced_calls"] else None,
        "invoiced_calls": int(r["invoiced_calls"]),
        "unpriced": int(r["unpriced"]),
        "errors": int(r["errors"]),
        "blocked": int(r["blocked"]),
        "aborted": int(r["aborted"]),
        "rewritten": int(r["rewritten"]),
        "estimated": int(r["estimated"]),
        "cache_hits": int(r["cache_hits"]),
        "avg_latency_ms": _average(r["latency_ms_sum"], r["latency_calls"]),
        "avg_ttft_ms": _average(r["ttft_ms_sum"], r["ttft_calls"]),
    }
    return out


# -- where the figures come from ----------------------------------------------------------------------
@dataclass
class _Source:
    """A FROM target (a rollup table or a derived table over events) with the WHERE that applies the filters."""

    target: str
    where: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def sql(self, select: str, tail: str = "") -> tuple[str, list[Any]]:
        where = f" WHERE {' AND '.join(self.where)}" if self.where else ""
        return f"SELECT {select} FROM {self.target}{where} {tail}", list(self.params)


def _session_and_tag(d: Dialect, f: Filters, where: list[str], params: list[Any]) -> None:
    """The session and tag filters as conditions on events rows."""
    if f.session is not None:
        where.append("events.session_id = ?")
        params.append(f.session)
    if f.tag is not None:
        where.append(d.tag_equals("events.tags"))
        params += [d.tag_param(f.tag[0]), f.tag[1]]


def _events_target(d: Dialect, f: Filters, tag_group: str | None, *, with_range: bool = True,
                   actions: bool = False) -> tuple[str, list[Any]]:
    """A derived table over events shaped like a rollup (same column names, one row per event).

    ``tag_group``: one row per event and value of that tag; ``actions``: one row per enforcement action.
    """
    cols = [f"{expr} AS {name}" for name, expr in DIMENSIONS.items()]
    cols += ["started_at AS first_at", "started_at AS last_at"]
    cols += [f"({expr}) AS {name}" for name, (_, expr) in METRICS.items()]
    source = "events"
    where: list[str] = []
    params: list[Any] = []
    if with_range:
        where += ["started_at >= ?", "started_at < ?"]
        params += [f.since_key, f.until_key]
    _session_and_tag(d, f, where, params)
    if tag_group is not None:
        source += f", {d.tags_join('events.tags', 't')}"
        cols.append(f"{d.tag_value('t')} AS tag_value")
        where += ["t.key = ?", d.is_scalar("t")]
        params.append(tag_group)
    if actions:
        source += f", {actions_join(d)}"
        cols += [f"{expr} AS {name}" for name, expr in action_fields(d).items()]
        where += ["events.enforcement IS NOT NULL", d.is_object("a")]
    sql = f"(SELECT {', '.join(cols)} FROM {source}{' WHERE ' + ' AND '.join(where) if where else ''}) AS e"
    return sql, params


_DIMS: Final = ("provider", "deployment", "model", "status")


def _source(d: Dialect, f: Filters, group: str | None = None) -> _Source:
    """The cheapest table that answers ``f`` grouped by ``group`` exactly."""
    tag_group = group[4:] if group and group.startswith("tag:") else None
    if f.session is not None:
        target, params = _events_target(d, f, tag_group)  # one session: its index
        src = _Source(target, [], params)
    elif f.tag is not None and tag_group is not None and f.tag[0] != tag_group:  # a tag split by another tag
        src = _Source(f"(SELECT hour, other_value AS tag_value, {', '.join(_DIMS)}, {', '.join(METRICS)} "
                      "FROM rollup_tag_pairs WHERE tag_key = ? AND tag_value = ? AND other_key = ?) AS p",
                      ["hour >= ?", "hour < ?"], [f.tag[0], f.tag[1], tag_group, f.since_key, f.until_key])
    else:
        if group == "session" and f.tag is not None:
            src = _Source("rollup_session_tags", ["tag_key = ?", "tag_value = ?"], list(f.tag))
        elif tag_group is not None or f.tag is not None:
            src = _Source("rollup_tags", ["tag_key = ?"], [tag_group or (f.tag[0] if f.tag else "")])
            if f.tag is not None:
                src.where.append("tag_value = ?")
                src.params.append(f.tag[1])
        else:
            src = _Source("rollup_sessions" if group == "session" else "rollup_hourly")
        src.where += ["hour >= ?", "hour < ?"]
        src.params += [f.since_key, f.until_key]
    for name, value in f.dims().items():
        src.where.append(f"{name} = ?")
        src.params.append(value)
    return src


def _sessions_source(d: Dialect, f: Filters) -> _Source:
    """Sessions active in the range: whole-session totals (one row each) unless a filter needs finer rollups."""
    if f.dims() or f.tag is not None or f.session is not None:
        src = _source(d, f, "session")
        src.where.append("session_id IS NOT NULL")
        return src
    return _Source("session_totals", ["last_at >= ?", "first_at < ?"], [f.since_key, f.until_key])


def _group_column(group: str) -> str:
    if group.startswith("tag:"):
        return "tag_value"
    return {"session": "session_id", "model": "model", "deployment": "deployment", "provider": "provider",
            "status": "status"}[group]


# -- the views ----------------------------------------------------------------------------------------
def meta(db: Reader) -> dict[str, Any]:
    """What the filter bar offers and the journal's time span (from the rollups: cheap at any size)."""
    bounds = db.rows("SELECT MIN(hour) AS first, MAX(hour) AS last, SUM(calls) AS calls FROM rollup_hourly")[0]
    options = {
        name: [r["v"] for r in db.rows(f"SELECT DISTINCT {name} AS v FROM rollup_hourly ORDER BY 1")]
        for name in ("provider", "deployment", "model", "status")
    }
    tag_keys = [r["v"] for r in db.rows("SELECT DISTINCT tag_key AS v FROM rollup_tags ORDER BY 1 LIMIT 200")]
    return {
        "journal": db.label,
        "schema_version": db.schema_version(),
        "first_hour": bounds["first"],
        "last_hour": bounds["last"],
        "calls": int(bounds["calls"] or 0),
        "options": {**options, "tag_keys": tag_keys},
        "has_reconciliation": bool(db.scalar("SELECT 1 FROM reconcile_runs LIMIT 1")),
        "has_budgets": db.has_table("budget_counters"),
    }


def bounds(db: Reader) -> tuple[datetime, datetime] | None:
    """The first and last hour with calls, for ``range=all``."""
    row = db.rows("SELECT MIN(hour) AS first, MAX(hour) AS last FROM rollup_hourly")[0]
    if row["first"] is None:
        return None
    first = datetime.strptime(row["first"], "%Y-%m-%dT%H").replace(tzinfo=UTC)
    last = datetime.strptime(row["last"], "%Y-%m-%dT%H").replace(tzinfo=UTC)
    return first, last + timedelta(minutes=59)


def summary(db: Reader, f: Filters) -> dict[str, Any]:
    """Totals for the range and for the period of the same length just before it."""
    sql, params = _source(db.dialect, f).sql(_SUMS)
    current = _metrics(db.rows(sql, params)[0])
    span = f.until - f.since
    before = Filters(**{**f.__dict__, "since": f.since - span, "until": f.since})
    sql, params = _source(db.dialect, before).sql(_SUMS)
    previous = _metrics(db.rows(sql, params)[0])
    return {"filters": f.as_dict(), "totals": current, "previous": previous}


def breakdown(db: Reader, f: Filters, group: str, *, limit: int = 100) -> dict[str, Any]:
    """Totals per model / deployment / provider / status / session / tag value, costliest first."""
    column = _group_column(group)
    src = _sessions_source(db.dialect, f) if column == "session_id" else _source(db.dialect, f, group)
    sql, params = src.sql(f"{column} AS key, {_SUMS}",
                          "GROUP BY 1 ORDER BY SUM(cost_nanousd) DESC, SUM(calls) DESC, 1 LIMIT ?")
    rows = [{"key": r["key"], **_metrics(r)} for r in db.rows(sql, [*params, limit])]
    sql, params = _source(db.dialect, f).sql(_SUMS)
    return {"filters": f.as_dict(), "group": group, "rows": rows, "total": _metrics(db.rows(sql, params)[0])}


def _bucket_keys(f: Filters, bucket: str) -> list[str]:
    keys: list[str] = []
    at = f.since
    while at < f.until:
        key = iso_hour(at)[: BUCKETS[bucket]]
        if not keys or keys[-1] != key:
            keys.append(key)
        if bucket == "hour":
            at += timedelta(hours=1)
        elif bucket == "day":
            at = (at + timedelta(days=1)).replace(hour=0)
        else:
            at = (at.replace(day=1, hour=0) + timedelta(days=32)).replace(day=1)
    return keys


def timeseries(db: Reader, f: Filters, *, bucket: str, metric: str, group: str | None,
               top: int = 8) -> dict[str, Any]:
    """One series per group (the ``top`` largest, the rest as "(other)") or a single total series."""
    value = SERIES_METRICS[metric]
    width = BUCKETS[bucket]
    keys = _bucket_keys(f, bucket)
    index = {k: i for i, k in enumerate(keys)}
    series: dict[str, list[int]] = {}
    if group is None:
        sql, params = _source(db.dialect, f).sql(f"substr(hour, 1, {width}) AS b, {value} AS v", "GROUP BY 1")
        series["total"] = [0] * len(keys)
        for r in db.rows(sql, params):
            if r["b"] in index:
                series["total"][index[r["b"]]] = int(r["v"] or 0)
    elif _group_column(group) in _FEW_KEYS:  # a handful of keys: one scan, ranked here
        column = _group_column(group)
        sql, params = _source(db.dialect, f, group).sql(f"substr(hour, 1, {width}) AS b, {column} AS k, {value} AS v",
                                            "GROUP BY 1, 2")
        per: dict[str, list[int]] = {}
        for r in db.rows(sql, params):
            if r["b"] in index:
                per.setdefault(r["k"], [0] * len(keys))[index[r["b"]]] += int(r["v"] or 0)
        ranking = sorted(per, key=lambda k: (-sum(per[k]), k))
        series = {k: per[k] for k in ranking[:top]}
        rest = [per[k] for k in ranking[top:]]
        if rest:
            series["(other)"] = [sum(col) for col in zip(*rest, strict=True)]
    else:  # sessions, tag values: rank first, then read only the leaders' rows
        column = _group_column(group)
        ranked = _sessions_source(db.dialect, f) if column == "session_id" else _source(db.dialect, f, group)
        sql, params = ranked.sql(f"{column} AS k", f"GROUP BY 1 ORDER BY {value} DESC, 1 LIMIT ?")
        leaders = [r["k"] for r in db.rows(sql, [*params, top])]
        for k in leaders:
            series[k] = [0] * len(keys)
        if leaders:  # the leaders' own rows (an index seek for sessions), then the rest as total minus leaders
            src = _source(db.dialect, f, group)
            src.where.append(f"{column} IN ({', '.join('?' * len(leaders))})")
            src.params += leaders
            sql, params = src.sql(f"substr(hour, 1, {width}) AS b, {column} AS k, {value} AS v", "GROUP BY 1, 2")
            for r in db.rows(sql, params):
                if r["b"] in index and r["k"] in series:
                    series[r["k"]][index[r["b"]]] += int(r["v"] or 0)
        # everything else: other sessions and calls without one; for a tag, the other values of that tag
        whole = _source(db.dialect, f, group) if group.startswith("tag:") else _source(db.dialect, f)
        sql, params = whole.sql(f"substr(hour, 1, {width}) AS b, {value} AS v", "GROUP BY 1")
        other = [0] * len(keys)
        for r in db.rows(sql, params):
            if r["b"] in index:
                other[index[r["b"]]] += int(r["v"] or 0)
        for vals in series.values():
            other = [o - v for o, v in zip(other, vals, strict=True)]
        if any(other):
            series["(other)"] = other
    as_value = money if metric == "cost" else int
    return {
        "filters": f.as_dict(), "bucket": bucket, "metric": metric, "group": group, "buckets": keys,
        "series": [{"key": k, "values": [as_value(v) for v in vals], "total": as_value(sum(vals))}
                   for k, vals in series.items()],
    }


def sessions(db: Reader, f: Filters, *, sort: str, descending: bool, limit: int, offset: int) -> dict[str, Any]:
    """Sessions active in the range, sorted on any column.

    Without a dimension or tag filter the figures are whole-session totals (a session is one unit of work, even
    when it straddles the range's edge); with one, they are the session's calls that match it, within the range.
    """
    src = _sessions_source(db.dialect, f)
    direction = "DESC" if descending else "ASC"
    order = SESSION_SORTS[sort].format(greatest=db.dialect.greatest)
    if src.target == "session_totals":  # already one row per session: no grouping, a top-N sort
        select = ("session_id, first_at, last_at, COUNT(*) OVER () AS total, "
                  + ", ".join(f"{m} AS {m}" for m in METRICS))
        plain = _PLAIN.sub(r"\1", order)
        tail = f"ORDER BY {plain} {direction}, session_id LIMIT ? OFFSET ?"
    else:
        select = f"session_id, MIN(first_at) AS first_at, MAX(last_at) AS last_at, COUNT(*) OVER () AS total, {_SUMS}"
        tail = f"GROUP BY session_id ORDER BY {order} {direction}, session_id LIMIT ? OFFSET ?"
    sql, params = src.sql(select, tail)
    found = db.rows(sql, [*params, limit, offset])
    if found:
        total = int(found[0]["total"])
    else:
        sql, params = src.sql("COUNT(DISTINCT session_id)")
        total = int(db.scalar(sql, params) or 0)
    models: dict[str, list[str]] = {}
    if found:  # the models each listed session used (an index seek per session)
        ids = [r["session_id"] for r in found]
        used = db.dialect.group_concat_distinct("NULLIF(model, '')")
        for r in db.rows(f"SELECT session_id, {used} AS models FROM rollup_sessions "
                         f"WHERE session_id IN ({', '.join('?' * len(ids))}) GROUP BY session_id", ids):
            models[r["session_id"]] = sorted(r["models"].split(",")) if r["models"] else []
    rows = [{"session_id": r["session_id"], "first_call": r["first_at"], "last_call": r["last_at"],
             "models": models.get(r["session_id"], []), **_metrics(r)} for r in found]
    return {"filters": f.as_dict(), "sort": sort, "order": direction.lower(), "limit": limit, "offset": offset,
            "total": total, "whole_sessions": src.target == "session_totals", "rows": rows}


def _decode_call(row: dict[str, Any]) -> dict[str, Any]:
    for name in _JSON:
        raw = row.get(name)
        if raw:
            try:
                row[name] = json.loads(raw)
            except ValueError:
                row[name] = None
        else:
            row[name] = None
    for name in ("stream", "cache_hit"):
        if row.get(name) is not None:
            row[name] = bool(row[name])
    row["model"] = row.get("canonical_model") or row.get("model_served") or row.get("model_requested")
    return row


def session_detail(db: Reader, session_id: str) -> dict[str, Any]:
    """Every call of one session in order (up to 5,000), with its totals."""
    cols = ", ".join(_CALL_COLUMNS)
    rows = db.rows(f"SELECT {cols} FROM events WHERE session_id = ? ORDER BY started_at, id LIMIT ?",
                   (session_id, _MAX_SESSION_CALLS + 1))
    if not rows:
        raise LookupError(session_id)
    truncated = len(rows) > _MAX_SESSION_CALLS
    whole = Filters(since=datetime.min.replace(tzinfo=UTC), until=datetime.max.replace(tzinfo=UTC), session=session_id)
    target, params = _events_target(db.dialect, whole, None, with_range=False)
    totals = _metrics(db.rows(f"SELECT {_SUMS} FROM {target}", params)[0])
    by_source: dict[str, int] = {}
    for r in rows:
        by_source[r["usage_source"]] = by_source.get(r["usage_source"], 0) + 1
    calls_out = [_decode_call(r) for r in rows[:_MAX_SESSION_CALLS]]
    return {"session_id": session_id, "first_call": rows[0]["started_at"], "last_call": calls_out[-1]["started_at"],
            "totals": totals, "usage_sources": by_source, "truncated": truncated, "calls": calls_out}


def calls(db: Reader, f: Filters, *, kind: str = "all", limit: int = 100, after: str | None = None,
          before: str | None = None) -> dict[str, Any]:
    """Calls newest first (``before``: older than that id), or with ``after``: the ones stored since (live tail)."""
    where: list[str] = []
    params: list[Any] = []
    if after is None:
        where += ["started_at >= ?", "started_at < ?"]
        params += [f.since_key, f.until_key]
    else:
        where.append("id > ?")
        params.append(after)
    if before is not None:
        where.append("id < ?")
        params.append(before)
    _session_and_tag(db.dialect, f, where, params)
    for name, value in f.dims().items():
        where.append(f"{DIMENSIONS[name]} = ?")
        params.append(value)
    if CALL_KINDS[kind]:
        where.append(CALL_KINDS[kind])
    hint = db.dialect.index_hint("events_enforced") if kind in ("blocked", "rewritten", "enforced") else ""
    order = "id" if after is not None else "started_at DESC, id DESC"
    sql = (f"SELECT {', '.join(_CALL_COLUMNS)} FROM events{hint} WHERE {' AND '.join(where)} "
           f"ORDER BY {order} LIMIT ?")
    rows = [_decode_call(r) for r in db.rows(sql, [*params, limit])]
    return {"filters": f.as_dict(), "kind": kind, "rows": rows, "more": len(rows) == limit}


def enforcement(db: Reader, f: Filters, *, limit: int = 100) -> dict[str, Any]:
    """Enforcement actions by rule (from the enforcement rollup) and the latest blocked and rewritten calls."""
    if f.session is not None or f.tag is not None:  # per session / tag: count the events' own actions
        target, params = _events_target(db.dialect, f, None, actions=True)
        src = _Source(target, [], params)
    else:
        src = _Source("rollup_enforcement", ["hour >= ?", "hour < ?"], [f.since_key, f.until_key])
    for name, value in f.dims().items():
        src.where.append(f"{name} = ?")
        src.params.append(value)
    sql, params = src.sql("rule, type, action, shadow, SUM(calls) AS calls, SUM(cost_nanousd) AS cost_nanousd, "
                          "SUM(CASE WHEN status = 'blocked' THEN calls ELSE 0 END) AS blocked",
                          "GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC, 1, 3")
    rules = [{"rule": r["rule"], "type": r["type"], "action": r["action"], "shadow": r["shadow"] == "1",
              "calls": int(r["calls"]), "blocked": int(r["blocked"]), "cost_usd": money(r["cost_nanousd"])}
             for r in db.rows(sql, params)]
    blocked = calls(db, f, kind="blocked", limit=limit)["rows"]
    rewritten = calls(db, f, kind="rewritten", limit=limit)["rows"]
    return {"filters": f.as_dict(), "rules": rules, "blocked": blocked, "rewritten": rewritten}


# -- budgets ------------------------------------------------------------------------------------------
_HOURLY = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}")
_DAILY = re.compile(r"\d{4}-\d{2}-\d{2}")
_MONTHLY = re.compile(r"\d{4}-\d{2}")


def _window_of(bucket: str) -> Window | None:
    """A counter bucket's window, read from the bucket id's shape (when no enforcement config says)."""
    if bucket.startswith("rolling:"):
        try:
            return parse_window(bucket.partition("@")[0])
        except ConfigError:
            return None
    for pattern, kind in ((_HOURLY, "hour"), (_DAILY, "day"), (_MONTHLY, "month")):
        if pattern.fullmatch(bucket):
            return Window(kind)  # type: ignore[arg-type]
    return Window("lifetime") if bucket == "all" else None


def budgets(db: Reader, rules: Sequence[Budget], now: datetime) -> dict[str, Any]:
    """Every budget's current window: spent, reserved (live reservations only), limit and reset time."""
    counters: dict[str, dict[str, tuple[int, int]]] = {}
    if db.has_table("budget_counters"):
        expired = ("COALESCE((SELECT SUM(r.amount) FROM budget_reservations AS r WHERE r.key = c.key "
                   "AND r.bucket = c.bucket AND r.expires_at <= ?), 0)")
        for r in db.rows(f"SELECT key, bucket, spent, reserved - {expired} AS reserved FROM budget_counters AS c",
                         (now.timestamp(),)):
            counters.setdefault(r["key"], {})[r["bucket"]] = (int(r["spent"]), max(int(r["reserved"]), 0))
    known = {b.name: b for b in rules}
    out: list[dict[str, Any]] = []
    for key, buckets in sorted(counters.items()):
        name, _, scope = key.partition("|")
        rule = known.get(name)
        window = rule.window if rule is not None else _window_of(max(buckets))
        if window is None:
            continue
        span = window._span(now.timestamp())
        spent = sum(buckets.get(b, (0, 0))[0] for b in span.members)
        reserved = sum(buckets.get(b, (0, 0))[1] for b in span.members)
        out.append(_budget_row(name, scope, window, spent, reserved, rule, span.reset))
    seen = {row["budget"] for row in out}
    for rule in rules:
        if rule.name not in seen:  # configured but no call has counted against it yet
            out.append(_budget_row(rule.name, rule.scope, rule.window, 0, 0, rule, rule.window.bucket(now)[1]))
    return {"now": now.isoformat().replace("+00:00", "Z"), "configured": bool(rules), "rows": out}


def _budget_row(name: str, scope: str, window: Window, spent: int, reserved: int, rule: Budget | None,
                reset: datetime | None) -> dict[str, Any]:
    unit = rule.unit if rule is not None else None
    limit = rule.limit if rule is not None else None

    def amount(v: int | None) -> Any:
        return money(v) if unit == "usd" and v is not None else v

    used = None
    if limit:
        used = str((Decimal(spent + reserved) * 100 / limit).quantize(Decimal("0.1")))
    return {"budget": name, "scope": scope, "window": str(window), "unit": unit or "unknown",
            "spent": amount(spent), "reserved": amount(reserved), "limit": amount(limit), "used_pct": used,
            "action": rule.action if rule is not None else None,
            "resets_at": None if window.kind == "lifetime" or reset is None else reset.isoformat().replace(
                "+00:00", "Z"), "rolling": window.kind == "rolling"}


# -- reconciliation -----------------------------------------------------------------------------------
_LINE_COLUMNS: Final = ("day", "account_id", "account_name", "meter_name", "model", "version", "direction",
                        "deployment_type", "unit", "currency", "invoice_quantity", "invoice_cost",
                        "invoice_cost_usd", "journal_tokens", "journal_quantity", "journal_cost_usd", "variance_usd",
                        "variance_pct", "status", "note")
LINE_STATUSES: Final = ("matched", "variance", "invoice_only", "journal_only", "capacity", "unknown_meter")


def _add(totals: dict[str, dict[str, Any]], key: str, line: dict[str, Any]) -> None:
    acc = totals.setdefault(key, {"key": key, "invoice_cost_usd": Decimal(0), "journal_cost_usd": Decimal(0),
                                  "variance_usd": Decimal(0), "lines": 0})
    acc["lines"] += 1
    for name in ("invoice_cost_usd", "journal_cost_usd", "variance_usd"):
        value = _decimal(line.get(name))
        if value is not None:
            acc[name] += value


def _totals_list(totals: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for acc in sorted(totals.values(), key=lambda a: a["key"]):
        invoice, journal = acc["invoice_cost_usd"], acc["journal_cost_usd"]
        pct = None if not journal else str((acc["variance_usd"] * 100 / journal).quantize(Decimal("0.01")))
        rows.append({**acc, "invoice_cost_usd": str(invoice), "journal_cost_usd": str(journal),
                     "variance_usd": str(acc["variance_usd"]), "variance_pct": pct})
    return rows


def reconciliation(db: Reader, f: Filters, *, run: str | None, line_status: str | None,
                   limit: int) -> dict[str, Any]:
    """The latest (or a chosen) reconciliation run: its lines, variance by day / account / meter, and the
    journal's list-price vs invoice-calibrated cost of the calls it re-priced."""
    runs = db.rows("SELECT id, created_at, source, period_from, period_to, account, currency, summary "
                   "FROM reconcile_runs ORDER BY created_at DESC, id DESC LIMIT 100")
    for r in runs:
        try:
            r["summary"] = json.loads(r["summary"]) if r["summary"] else None
        except ValueError:
            r["summary"] = None
    chosen = runs[0] if runs and run is None else next((r for r in runs if r["id"] == run), None)
    if run is not None and chosen is None:
        if not db.scalar("SELECT 1 FROM reconcile_runs WHERE id = ?", (run,)):
            raise LookupError(run)
        chosen = db.rows("SELECT id, created_at, source, period_from, period_to, account, currency, summary "
                         "FROM reconcile_runs WHERE id = ?", (run,))[0]
    lines: list[dict[str, Any]] = []
    by: dict[str, dict[str, dict[str, Any]]] = {"day": {}, "account": {}, "meter": {}, "status": {}}
    if chosen is not None:
        for line in db.rows(f"SELECT {', '.join(_LINE_COLUMNS)} FROM reconcile_lines WHERE run_id = ? "
                            "ORDER BY day, account_id, meter_name", (chosen["id"],)):
            _add(by["day"], line["day"], line)
            _add(by["account"], line["account_name"] or line["account_id"], line)
            _add(by["meter"], line["meter_name"], line)
            _add(by["status"], line["status"], line)
            if line_status is None or line["status"] == line_status:
                lines.append(line)
    src = _source(db.dialect, f)
    sql, params = src.sql("substr(hour, 1, 10) AS day, SUM(invoiced_list_nanousd) AS list_nanos, "
                          "SUM(invoice_cost_nanousd) AS invoice_nanos, SUM(invoiced_calls) AS calls",
                          "GROUP BY 1 HAVING SUM(invoiced_calls) > 0 ORDER BY 1")
    repriced = [{"day": r["day"], "calls": int(r["calls"]), "list_cost_usd": money(r["list_nanos"]),
                 "invoice_cost_usd": money(r["invoice_nanos"]),
                 "variance_usd": money(int(r["invoice_nanos"]) - int(r["list_nanos"]))}
                for r in db.rows(sql, params)]
    return {"filters": f.as_dict(), "runs": runs, "run": chosen, "line_status": line_status,
            "lines": lines[:limit], "lines_total": len(lines),
            "by_day": _totals_list(by["day"]), "by_account": _totals_list(by["account"]),
            "by_meter": _totals_list(by["meter"]), "by_status": _totals_list(by["status"]),
            "repriced_calls": repriced}
