"""Pre-aggregated rollups of the events table: hourly totals by dimension, by session and by tag.

The dashboard reads these instead of scanning millions of events. They are kept exact by the
journal writer: in the transaction that inserts a batch, one ``INSERT … SELECT … GROUP BY`` per
rollup folds in the rows whose rowid is above the table's maximum before the insert, i.e. exactly
the rows that were stored (``INSERT OR IGNORE`` duplicates are skipped). Spooled rows, fan-out rows
and out-of-order timestamps all go through that same insert. Migration 4 runs the same statements
over the whole table to backfill an existing journal, and a trigger folds the invoice-calibrated
cost in when reconciliation updates an event. Key and metric expressions are defined once here and
shared by the writer, the backfill and the dashboard's queries over raw events.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "ACTIONS_JOIN",
    "ACTION_FIELDS",
    "DIMENSIONS",
    "ENFORCEMENT_KEYS",
    "METRICS",
    "ROLLUP_MIGRATION",
    "ROLLUP_TABLES",
    "STAGE_DDL",
    "fold_statements",
]

def _dimensions(row: str = "") -> dict[str, str]:
    """rollup column -> the SQL expression over an events row it is keyed by (``row``: "NEW." in a trigger)."""
    r = row
    return {
        "hour": f"substr({r}started_at, 1, 13)",
        "provider": f"{r}provider",
        "deployment": f"COALESCE({r}deployment, '')",
        "model": f"COALESCE({r}canonical_model, {r}model_served, {r}model_requested, '')",
        "status": f"{r}status",
        "session_id": f"{r}session_id",
    }


DIMENSIONS: Final[dict[str, str]] = _dimensions()

_REWRITTEN: Final = ("(enforcement IS NOT NULL AND enforcement NOT LIKE '%\"shadow\": true%' AND (enforcement "
                     "LIKE '%\"action\": \"rewrite\"%' OR enforcement LIKE '%\"action\": \"downgrade\"%'))")

# rollup column -> (SQL type, its value for one events row). Every metric is additive: a rollup row holds the
# SUM over its events, a batch folds in as a sum, and a query over raw events sums the same expressions.
METRICS: Final[dict[str, tuple[str, str]]] = {
    "calls": ("INTEGER", "1"),
    "input_tokens": ("INTEGER", "COALESCE(input_tokens, 0)"),
    "cached_input_tokens": ("INTEGER", "COALESCE(cached_input_tokens, 0)"),
    "output_tokens": ("INTEGER", "COALESCE(output_tokens, 0)"),
    "reasoning_tokens": ("INTEGER", "COALESCE(reasoning_tokens, 0)"),
    "cost_nanousd": ("INTEGER", "COALESCE(cost_nanousd, 0)"),
    "priced_calls": ("INTEGER", "cost_nanousd IS NOT NULL"),
    "unpriced": ("INTEGER", "cost_nanousd IS NULL AND status != 'blocked'"),
    "invoice_cost_nanousd": ("INTEGER", "COALESCE(invoice_cost_nanousd, 0)"),
    "invoiced_calls": ("INTEGER", "invoice_cost_nanousd IS NOT NULL"),
    # the list-price cost of the calls that have an invoice cost: what the invoice cost compares with
    "invoiced_list_nanousd": ("INTEGER",
                              "CASE WHEN invoice_cost_nanousd IS NULL THEN 0 ELSE COALESCE(cost_nanousd, 0) END"),
    "latency_ms_sum": ("REAL", "COALESCE(latency_ms, 0)"),
    "latency_calls": ("INTEGER", "latency_ms IS NOT NULL"),
    "ttft_ms_sum": ("REAL", "COALESCE(ttft_ms, 0)"),
    "ttft_calls": ("INTEGER", "ttft_ms IS NOT NULL"),
    "rewritten": ("INTEGER", _REWRITTEN),
    "estimated": ("INTEGER", "usage_source = 'estimated'"),
    "cache_hits": ("INTEGER", "cache_hit IS 1"),
    "errors": ("INTEGER", "status = 'error'"),
    "blocked": ("INTEGER", "status = 'blocked'"),
    "aborted": ("INTEGER", "status = 'aborted'"),
}


# table -> its key columns, in primary-key order (the time column first: the dashboard reads ranges)
ROLLUP_TABLES: Final[dict[str, tuple[str, ...]]] = {
    "rollup_hourly": ("hour", "provider", "deployment", "model", "status"),
    "rollup_sessions": ("hour", "session_id", "provider", "deployment", "model", "status"),
    "rollup_tags": ("tag_key", "tag_value", "hour", "provider", "deployment", "model", "status"),
    # every ordered pair of tags one call carries: a tag filter split by another tag (team:x by feature)
    "rollup_tag_pairs": ("tag_key", "tag_value", "other_key", "other_value", "hour", "provider", "deployment", "model",
                         "status"),
    # sessions by tag: the sessions list (or a split by session) under a tag filter, with or without a dimension
    "rollup_session_tags": ("tag_key", "tag_value", "hour", "session_id", "provider", "deployment", "model", "status"),
    # one row per session, whole-session totals: the sessions list sorts tens of thousands of these at once
    "session_totals": ("session_id",),
}
_SPAN: Final = (("first_at", "TEXT", "MIN(started_at)"), ("last_at", "TEXT", "MAX(started_at)"))
_EXTRA: Final[dict[str, tuple[tuple[str, str, str], ...]]] = {
    # the session rollups also keep when each session (or session-hour slice) started and ended
    "rollup_sessions": _SPAN,
    "session_totals": _SPAN,
    "rollup_session_tags": _SPAN,
}
_MERGE_EXTRA: Final[dict[str, str]] = {"first_at": "min(first_at, excluded.first_at)",
                                       "last_at": "max(last_at, excluded.last_at)"}


def _create(table: str) -> str:
    keys = ROLLUP_TABLES[table]
    cols = [f"{k} TEXT NOT NULL" for k in keys]
    cols += [f"{name} {sqltype}" for name, sqltype, _ in _EXTRA.get(table, ())]
    cols += [f"{name} {sqltype} NOT NULL DEFAULT 0" for name, (sqltype, _) in METRICS.items()]
    return f"CREATE TABLE {table} (\n  " + ",\n  ".join(cols) + f",\n  PRIMARY KEY ({', '.join(keys)})\n) WITHOUT ROWID"


_STAGE_KEYS: Final = ("hour", "provider", "deployment", "model", "status", "session_id")
# A batch is grouped once, by every key any rollup needs, into this per-connection scratch table; the
# rollups are then folded from its few rows (one scan of the new events instead of one per rollup).
STAGE_DDL: Final = (f"CREATE TEMP TABLE IF NOT EXISTS rollup_stage ({', '.join(_STAGE_KEYS)}, tags, first_at, last_at, "
                    f"{', '.join(METRICS)})")


def _fold(table: str) -> str:
    """``INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE`` adding the staged batch to one rollup."""
    keys = ROLLUP_TABLES[table]
    extra = _EXTRA.get(table, ())
    tag_parts = {"tag_key": "CAST(t.key AS TEXT)", "tag_value": "CAST(t.value AS TEXT)",
                 "other_key": "CAST(u.key AS TEXT)", "other_value": "CAST(u.value AS TEXT)"}
    key_exprs = [tag_parts.get(k, f"s.{k}") for k in keys]
    staged_extra = {"first_at": "MIN(s.first_at)", "last_at": "MAX(s.last_at)"}
    columns = [*keys, *(name for name, _, _ in extra), *METRICS]
    selects = [*key_exprs, *(staged_extra[name] for name, _, _ in extra), *(f"SUM(s.{m})" for m in METRICS)]
    source = "temp.rollup_stage AS s"
    where = ["1"]
    if "tag_key" in keys:
        source += ", json_each(s.tags) AS t"
        where = ["s.tags IS NOT NULL", "json_valid(s.tags)", "t.type NOT IN ('object', 'array')"]
    if "other_key" in keys:
        source += ", json_each(s.tags) AS u"
        where += ["u.type NOT IN ('object', 'array')", "u.key != t.key"]
    if "session_id" in keys:
        where.append("s.session_id IS NOT NULL")
    updates = [f"{c} = {_MERGE_EXTRA[c]}" for c, _, _ in extra]
    updates += [f"{m} = {m} + excluded.{m}" for m in METRICS]
    return (f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(selects)} FROM {source} "
            f"WHERE {' AND '.join(where)} GROUP BY {', '.join(str(i) for i in range(1, len(keys) + 1))} "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(updates)}")


_FOLDS: Final = tuple(_fold(table) for table in ROLLUP_TABLES)


def fold_statements(where: str) -> tuple[str, ...]:
    """The statements that add the events matching ``where`` (may use ``:after``) to every rollup.

    Run them inside the transaction that stored those events, on a connection that has run ``STAGE_DDL``.
    """
    sums = ", ".join(f"SUM({expr})" for _, expr in METRICS.values())
    stage = (f"INSERT INTO temp.rollup_stage SELECT {', '.join(DIMENSIONS[k] for k in _STAGE_KEYS)}, tags, "
             f"MIN(started_at), MAX(started_at), {sums} FROM events "
             f"WHERE {where} GROUP BY 1, 2, 3, 4, 5, 6, 7")
    return ("DELETE FROM temp.rollup_stage", stage, *_FOLDS, "DELETE FROM temp.rollup_stage",
            _enforcement_fold(where))


# Enforcement actions per hour (one row per action a call carries; a call can carry several): the dashboard's
# enforcement view counts them by rule without reading every enforced event.
ENFORCEMENT_KEYS: Final = ("hour", "rule", "type", "action", "shadow", "provider", "deployment", "model", "status")
_ENFORCEMENT_METRICS: Final = ("calls", "input_tokens", "output_tokens", "cost_nanousd")
_ENFORCEMENT_DDL: Final = (
    "CREATE TABLE rollup_enforcement (\n  " + ",\n  ".join(f"{k} TEXT NOT NULL" for k in ENFORCEMENT_KEYS) + ",\n  "
    + ",\n  ".join(f"{m} INTEGER NOT NULL DEFAULT 0" for m in _ENFORCEMENT_METRICS)
    + f",\n  PRIMARY KEY ({', '.join(ENFORCEMENT_KEYS)})\n) WITHOUT ROWID")


# one enforcement action (``a``: a row of json_each over the events' enforcement list) -> its rollup keys
ACTION_FIELDS: Final[dict[str, str]] = {
    "rule": "COALESCE(json_extract(a.value, '$.rule'), '')",
    "type": "COALESCE(json_extract(a.value, '$.type'), '')",
    "action": "COALESCE(json_extract(a.value, '$.action'), '')",
    "shadow": "CASE WHEN json_extract(a.value, '$.shadow') THEN '1' ELSE '0' END",
}
ACTIONS_JOIN: Final = "json_each(CASE WHEN json_valid(events.enforcement) THEN events.enforcement END) AS a"


def _enforcement_fold(where: str) -> str:
    keys = [ACTION_FIELDS.get(k) or DIMENSIONS[k] for k in ENFORCEMENT_KEYS]
    sums = [f"SUM({METRICS[m][1]})" for m in _ENFORCEMENT_METRICS]
    return (f"INSERT INTO rollup_enforcement ({', '.join((*ENFORCEMENT_KEYS, *_ENFORCEMENT_METRICS))}) "
            f"SELECT {', '.join((*keys, *sums))} FROM events, {ACTIONS_JOIN} "
            f"WHERE {where} AND events.enforcement IS NOT NULL AND a.type = 'object' "
            f"GROUP BY {', '.join(str(i) for i in range(1, len(keys) + 1))} "
            f"ON CONFLICT ({', '.join(ENFORCEMENT_KEYS)}) DO UPDATE SET "
            + ", ".join(f"{m} = {m} + excluded.{m}" for m in _ENFORCEMENT_METRICS))


def _row(expr: str, prefix: str) -> str:
    """A per-row metric expression over the trigger's NEW or OLD row."""
    return re.sub(r"\b(invoice_cost_nanousd|cost_nanousd)\b", lambda m: prefix + m.group(1), expr)


def _invoice_trigger() -> str:
    """Reconciliation re-prices stored events (``invoice_cost_nanousd``): move the rollups' invoice sums along."""
    delta = ", ".join(
        f"{m} = {m} + ({_row(METRICS[m][1], 'NEW.')}) - ({_row(METRICS[m][1], 'OLD.')})"
        for m in ("invoice_cost_nanousd", "invoiced_calls", "invoiced_list_nanousd"))
    match = _dimensions("NEW.")
    body = []
    for table, keys in ROLLUP_TABLES.items():
        conds = [f"{k} = {match[k]}" for k in keys if k in match]
        tags = "json_each(CASE WHEN json_valid(NEW.tags) THEN NEW.tags END)"
        if "tag_key" in keys and "other_key" not in keys:
            conds.append(f"(tag_key, tag_value) IN (SELECT CAST(key AS TEXT), CAST(value AS TEXT) FROM {tags} "
                         "WHERE type NOT IN ('object', 'array'))")
        elif "other_key" in keys:
            conds.append("(tag_key, tag_value, other_key, other_value) IN (SELECT CAST(t.key AS TEXT), "
                         f"CAST(t.value AS TEXT), CAST(u.key AS TEXT), CAST(u.value AS TEXT) FROM {tags} AS t, "
                         f"{tags} AS u WHERE t.type NOT IN ('object', 'array') AND u.type NOT IN ('object', 'array') "
                         "AND u.key != t.key)")
        body.append(f"UPDATE {table} SET {delta} WHERE {' AND '.join(conds)};")
    return ("CREATE TRIGGER events_invoice_rollups AFTER UPDATE OF invoice_cost_nanousd ON events "
            "WHEN NEW.invoice_cost_nanousd IS NOT OLD.invoice_cost_nanousd BEGIN\n  " + "\n  ".join(body) + "\nEND")


ROLLUP_MIGRATION: Final[tuple[str, ...]] = (
    *(_create(table) for table in ROLLUP_TABLES),
    _ENFORCEMENT_DDL,
    "CREATE INDEX rollup_sessions_session ON rollup_sessions (session_id, hour)",
    "CREATE INDEX session_totals_last ON session_totals (last_at)",
    # the enforcement view lists blocked and rewritten calls: a small partial index instead of a scan
    "CREATE INDEX events_enforced ON events (started_at) WHERE enforcement IS NOT NULL",
    STAGE_DDL,
    *fold_statements("1"),  # backfill what an existing journal already holds
    _invoice_trigger(),
)
