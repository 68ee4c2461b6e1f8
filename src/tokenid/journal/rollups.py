"""Pre-aggregated rollups of the events table: hourly totals by dimension, by session and by tag.

The dashboard reads these instead of scanning millions of events. They are kept exact by the
journal writer: in the transaction that inserts a batch, one ``INSERT … SELECT … GROUP BY`` per
rollup folds in the rows whose rowid is above the table's maximum before the insert, i.e. exactly
the rows that were stored (ids already stored are skipped). Spooled rows, fan-out rows
and out-of-order timestamps all go through that same insert. Migration 4 runs the same statements
over the whole table to backfill an existing journal, and a trigger folds the invoice-calibrated
cost in when reconciliation updates an event. Key and metric expressions are defined once here and
shared by the writer, the backfill and the dashboard's queries over raw events; every statement is generated for
SQLite (the module's constants) or for PostgreSQL (:func:`rollup_migration`, :func:`fold_statements` with
:data:`~.dialect.POSTGRES`, where a plpgsql trigger moves the invoice sums).
"""

from __future__ import annotations

import re
from typing import Final

from .dialect import PG_JSON_FUNCTION, POSTGRES, SQLITE, Dialect

__all__ = [
    "ACTIONS_JOIN",
    "ACTION_FIELDS",
    "DIMENSIONS",
    "ENFORCEMENT_KEYS",
    "METRICS",
    "REWRITTEN",
    "ROLLUP_MIGRATION",
    "ROLLUP_TABLES",
    "STAGE_DDL",
    "fold_choices",
    "fold_statements",
    "rollup_migration",
    "stage_ddl",
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

# a call an enforcement rule rewrote or downgraded (not in shadow mode): a condition on an events row
REWRITTEN: Final = ("(enforcement IS NOT NULL AND enforcement NOT LIKE '%\"shadow\": true%' AND (enforcement "
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
    "priced_calls": ("INTEGER", "CASE WHEN cost_nanousd IS NOT NULL THEN 1 ELSE 0 END"),
    "unpriced": ("INTEGER", "CASE WHEN cost_nanousd IS NULL AND status != 'blocked' THEN 1 ELSE 0 END"),
    "invoice_cost_nanousd": ("INTEGER", "COALESCE(invoice_cost_nanousd, 0)"),
    "invoiced_calls": ("INTEGER", "CASE WHEN invoice_cost_nanousd IS NOT NULL THEN 1 ELSE 0 END"),
    # the list-price cost of the calls that have an invoice cost: what the invoice cost compares with
    "invoiced_list_nanousd": ("INTEGER",
                              "CASE WHEN invoice_cost_nanousd IS NULL THEN 0 ELSE COALESCE(cost_nanousd, 0) END"),
    "latency_ms_sum": ("REAL", "COALESCE(latency_ms, 0)"),
    "latency_calls": ("INTEGER", "CASE WHEN latency_ms IS NOT NULL THEN 1 ELSE 0 END"),
    "ttft_ms_sum": ("REAL", "COALESCE(ttft_ms, 0)"),
    "ttft_calls": ("INTEGER", "CASE WHEN ttft_ms IS NOT NULL THEN 1 ELSE 0 END"),
    "rewritten": ("INTEGER", f"CASE WHEN {REWRITTEN} THEN 1 ELSE 0 END"),
    "estimated": ("INTEGER", "CASE WHEN usage_source = 'estimated' THEN 1 ELSE 0 END"),
    "cache_hits": ("INTEGER", "CASE WHEN cache_hit = 1 THEN 1 ELSE 0 END"),
    "errors": ("INTEGER", "CASE WHEN status = 'error' THEN 1 ELSE 0 END"),
    "blocked": ("INTEGER", "CASE WHEN status = 'blocked' THEN 1 ELSE 0 END"),
    "aborted": ("INTEGER", "CASE WHEN status = 'aborted' THEN 1 ELSE 0 END"),
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


def _merge_extra(table: str, column: str, d: Dialect) -> str:
    """How a session span column merges an existing rollup row with a batch's (earliest first, latest last)."""
    fn = d.least if column == "first_at" else d.greatest
    return f"{fn}({table}.{column}, excluded.{column})"


def _create(table: str, d: Dialect) -> str:
    keys = ROLLUP_TABLES[table]
    cols = [f"{k} TEXT NOT NULL" for k in keys]
    cols += [f"{name} {sqltype}" for name, sqltype, _ in _EXTRA.get(table, ())]
    cols += [f"{name} {sqltype} NOT NULL DEFAULT 0" for name, (sqltype, _) in METRICS.items()]
    return (f"CREATE TABLE {table} (\n  " + ",\n  ".join(cols) + f",\n  PRIMARY KEY ({', '.join(keys)})\n)"
            + d.without_rowid)


_STAGE_KEYS: Final = ("hour", "provider", "deployment", "model", "status", "session_id")


def stage_ddl(d: Dialect) -> str:
    """A batch is grouped once, by every key any rollup needs, into this per-connection scratch table; the rollups
    are then folded from its few rows (one scan of the new events instead of one per rollup)."""
    if d is SQLITE:  # SQLite: untyped columns, nothing converted on the way in
        return (f"CREATE TEMP TABLE IF NOT EXISTS rollup_stage ({', '.join(_STAGE_KEYS)}, tags, first_at, last_at, "
                f"{', '.join(METRICS)})")
    cols = [f"{k} TEXT" for k in (*_STAGE_KEYS, "tags", "first_at", "last_at")]
    cols += [f"{name} {sqltype}" for name, (sqltype, _) in METRICS.items()]
    return f"CREATE TEMP TABLE IF NOT EXISTS rollup_stage ({', '.join(cols)})"


STAGE_DDL: Final = stage_ddl(SQLITE)


def _fold(table: str, d: Dialect) -> str:
    """``INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE`` adding the staged batch to one rollup."""
    keys = ROLLUP_TABLES[table]
    extra = _EXTRA.get(table, ())
    tag_parts = {"tag_key": d.tag_key("t"), "tag_value": d.tag_value("t"),
                 "other_key": d.tag_key("u"), "other_value": d.tag_value("u")}
    key_exprs = [tag_parts.get(k, f"s.{k}") for k in keys]
    staged_extra = {"first_at": "MIN(s.first_at)", "last_at": "MAX(s.last_at)"}
    columns = [*keys, *(name for name, _, _ in extra), *METRICS]
    selects = [*key_exprs, *(staged_extra[name] for name, _, _ in extra), *(f"SUM(s.{m})" for m in METRICS)]
    source = f"{d.stage_table} AS s"
    where = ["1 = 1"]
    if "tag_key" in keys:
        source += f", {d.tags_join('s.tags', 't')}"
        where = ["s.tags IS NOT NULL", d.is_scalar("t")]
    if "other_key" in keys:
        source += f", {d.tags_join('s.tags', 'u')}"
        where += [d.is_scalar("u"), "u.key != t.key"]
    if "session_id" in keys:
        where.append("s.session_id IS NOT NULL")
    updates = [f"{c} = {_merge_extra(table, c, d)}" for c, _, _ in extra]
    updates += [f"{m} = {table}.{m} + excluded.{m}" for m in METRICS]
    return (f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(selects)} FROM {source} "
            f"WHERE {' AND '.join(where)} GROUP BY {', '.join(str(i) for i in range(1, len(keys) + 1))} "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(updates)}")


_FOLDS: Final = {d.name: {table: _fold(table, d) for table in ROLLUP_TABLES} for d in (SQLITE, POSTGRES)}
#: the rollups keyed by tag: a batch without tags adds nothing to them
TAG_ROLLUPS: Final = frozenset(table for table, keys in ROLLUP_TABLES.items() if "tag_key" in keys)


def fold_statements(where: str, d: Dialect = SQLITE, *, tags: bool = True, enforcement: bool = True) -> tuple[
        str, ...]:
    """The statements that add the events matching ``where`` (may take parameters) to every rollup.

    Run them inside the transaction that stored those events, on a connection that has run :func:`stage_ddl`.
    Only the second statement and the last read ``where``. ``tags=False`` / ``enforcement=False`` leave out the
    statements that could only add something if some of those events carried tags / enforcement actions.
    """
    sums = ", ".join(f"SUM({expr})" for _, expr in METRICS.values())
    stage = (f"INSERT INTO {d.stage_table} SELECT {', '.join(DIMENSIONS[k] for k in _STAGE_KEYS)}, tags, "
             f"MIN(started_at), MAX(started_at), {sums} FROM events "
             f"WHERE {where} GROUP BY 1, 2, 3, 4, 5, 6, 7")
    folds = (statement for table, statement in _FOLDS[d.name].items() if tags or table not in TAG_ROLLUPS)
    return (f"DELETE FROM {d.stage_table}", stage, *folds, f"DELETE FROM {d.stage_table}",
            *((_enforcement_fold(where, d),) if enforcement else ()))


def fold_choices(where: str, d: Dialect = SQLITE) -> dict[tuple[bool, bool], tuple[str, ...]]:
    """:func:`fold_statements` for each (tags, enforcement) pair, as :func:`~.schema.batch_carries` names a batch."""
    return {(tags, enforced): fold_statements(where, d, tags=tags, enforcement=enforced)
            for tags in (False, True) for enforced in (False, True)}


# Enforcement actions per hour (one row per action a call carries; a call can carry several): the dashboard's
# enforcement view counts them by rule without reading every enforced event.
ENFORCEMENT_KEYS: Final = ("hour", "rule", "type", "action", "shadow", "provider", "deployment", "model", "status")
_ENFORCEMENT_METRICS: Final = ("calls", "input_tokens", "output_tokens", "cost_nanousd")


def _enforcement_ddl(d: Dialect) -> str:
    return ("CREATE TABLE rollup_enforcement (\n  " + ",\n  ".join(f"{k} TEXT NOT NULL" for k in ENFORCEMENT_KEYS)
            + ",\n  " + ",\n  ".join(f"{m} INTEGER NOT NULL DEFAULT 0" for m in _ENFORCEMENT_METRICS)
            + f",\n  PRIMARY KEY ({', '.join(ENFORCEMENT_KEYS)})\n)" + d.without_rowid)


def action_fields(d: Dialect) -> dict[str, str]:
    """One enforcement action (``a``: a row of :meth:`Dialect.actions_join`) -> its rollup keys."""
    return {"rule": d.field_text("a", "rule"), "type": d.field_text("a", "type"),
            "action": d.field_text("a", "action"), "shadow": d.field_true("a", "shadow")}


def actions_join(d: Dialect) -> str:
    return d.actions_join("events.enforcement", "a")


ACTION_FIELDS: Final[dict[str, str]] = action_fields(SQLITE)
ACTIONS_JOIN: Final = actions_join(SQLITE)


def _enforcement_fold(where: str, d: Dialect) -> str:
    fields = action_fields(d)
    keys = [fields.get(k) or DIMENSIONS[k] for k in ENFORCEMENT_KEYS]
    sums = [f"SUM({METRICS[m][1]})" for m in _ENFORCEMENT_METRICS]
    return (f"INSERT INTO rollup_enforcement ({', '.join((*ENFORCEMENT_KEYS, *_ENFORCEMENT_METRICS))}) "
            f"SELECT {', '.join((*keys, *sums))} FROM events, {actions_join(d)} "
            f"WHERE {where} AND events.enforcement IS NOT NULL AND {d.is_object('a')} "
            f"GROUP BY {', '.join(str(i) for i in range(1, len(keys) + 1))} "
            f"ON CONFLICT ({', '.join(ENFORCEMENT_KEYS)}) DO UPDATE SET "
            + ", ".join(f"{m} = rollup_enforcement.{m} + excluded.{m}" for m in _ENFORCEMENT_METRICS))


def _row(expr: str, prefix: str) -> str:
    """A per-row metric expression over the trigger's NEW or OLD row."""
    return re.sub(r"\b(invoice_cost_nanousd|cost_nanousd)\b", lambda m: prefix + m.group(1), expr)


def _invoice_updates(d: Dialect) -> list[str]:
    """Reconciliation re-prices stored events (``invoice_cost_nanousd``): the updates moving the rollups' invoice
    sums along, over the trigger's NEW and OLD rows."""
    delta = ", ".join(
        f"{m} = {m} + ({_row(METRICS[m][1], 'NEW.')}) - ({_row(METRICS[m][1], 'OLD.')})"
        for m in ("invoice_cost_nanousd", "invoiced_calls", "invoiced_list_nanousd"))
    match = _dimensions("NEW.")
    body = []
    for table, keys in ROLLUP_TABLES.items():
        conds = [f"{k} = {match[k]}" for k in keys if k in match]
        if "tag_key" in keys and "other_key" not in keys:
            conds.append(f"(tag_key, tag_value) IN (SELECT {d.tag_key('t')}, {d.tag_value('t')} FROM "
                         f"{d.tags_join('NEW.tags', 't')} WHERE {d.is_scalar('t')})")
        elif "other_key" in keys:
            conds.append(f"(tag_key, tag_value, other_key, other_value) IN (SELECT {d.tag_key('t')}, "
                         f"{d.tag_value('t')}, {d.tag_key('u')}, {d.tag_value('u')} FROM {d.tags_join('NEW.tags', 't')}"
                         f", {d.tags_join('NEW.tags', 'u')} WHERE {d.is_scalar('t')} AND {d.is_scalar('u')} "
                         "AND u.key != t.key)")
        body.append(f"UPDATE {table} SET {delta} WHERE {' AND '.join(conds)};")
    return body


def _invoice_trigger(d: Dialect) -> tuple[str, ...]:
    body = _invoice_updates(d)
    if d is SQLITE:
        return ("CREATE TRIGGER events_invoice_rollups AFTER UPDATE OF invoice_cost_nanousd ON events "
                "WHEN NEW.invoice_cost_nanousd IS NOT OLD.invoice_cost_nanousd BEGIN\n  " + "\n  ".join(body)
                + "\nEND",)
    return ("CREATE FUNCTION events_invoice_rollups() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT "
            "AS $$\nBEGIN\n  " + "\n  ".join(body) + "\n  RETURN NULL;\nEND $$",
            "CREATE TRIGGER events_invoice_rollups AFTER UPDATE OF invoice_cost_nanousd ON events FOR EACH ROW "
            "WHEN (NEW.invoice_cost_nanousd IS DISTINCT FROM OLD.invoice_cost_nanousd) "
            "EXECUTE FUNCTION events_invoice_rollups()")


def rollup_migration(d: Dialect) -> tuple[str, ...]:
    """Migration 4 in one dialect: the rollup tables, their indexes, the backfill and the invoice trigger."""
    return (
        *((PG_JSON_FUNCTION,) if d is POSTGRES else ()),
        *(_create(table, d) for table in ROLLUP_TABLES),
        _enforcement_ddl(d),
        "CREATE INDEX rollup_sessions_session ON rollup_sessions (session_id, hour)",
        "CREATE INDEX session_totals_last ON session_totals (last_at)",
        # the enforcement view lists blocked and rewritten calls: a small partial index instead of a scan
        "CREATE INDEX events_enforced ON events (started_at) WHERE enforcement IS NOT NULL",
        stage_ddl(d),
        *fold_statements("1 = 1", d),  # backfill what an existing journal already holds
        *_invoice_trigger(d),
    )


ROLLUP_MIGRATION: Final[tuple[str, ...]] = rollup_migration(SQLITE)
