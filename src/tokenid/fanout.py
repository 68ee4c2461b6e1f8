"""Responses that bill more than their own call: Batch API output files and finished fine-tuning jobs.

A batch job is billed per request line, at the batch price, when it runs; TokenID sees those lines when the caller
downloads the job's output file (``files.content``) and journals each line as an event of its own (endpoint from
the line's body, its usage, priced with ``batch=True``, ``batch_id`` set), so batch spend shows per model and day
like any other call. A fine-tuning job retrieved (or listed) as ``succeeded`` adds one ``fine_tuning.training``
event for its trained tokens.

Both kinds of event get ids derived from what they describe (the batch request id, the job id), so downloading an
output file twice or polling a finished job again stores nothing new (the journal ignores a repeated id).
Runs on the journal's writer thread, inside :meth:`tokenid.call.Call.to_row`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .usage import Usage, usage_from_json

if TYPE_CHECKING:
    from .call import Call

__all__ = ["BATCH_ENDPOINTS", "rows_for"]

log = logging.getLogger("tokenid")

#: ``object`` of a batch line's response body -> journal endpoint name
BATCH_ENDPOINTS: Mapping[str, str] = {
    "chat.completion": "chat.completions",
    "text_completion": "completions",
    "list": "embeddings",
    "response": "responses",
}
_BATCH_REASON = "a batch job is billed per request line: its lines are journaled when the output file is retrieved"
_MAX_KNOWN = 4096


class _Batch:
    __slots__ = ("batch_id", "session_id", "tags")

    def __init__(self, batch_id: str, session_id: str | None, tags: str | None) -> None:
        self.batch_id = batch_id
        self.session_id = session_id
        self.tags = tags


# output/error file id -> the batch it belongs to, learned from batches.* responses seen by this process
_KNOWN: OrderedDict[str, _Batch] = OrderedDict()


def _remember(call: Call, batch: Mapping[str, Any]) -> None:
    batch_id = batch.get("id")
    if not isinstance(batch_id, str):
        return
    from .call import _tags_json

    for key in ("output_file_id", "error_file_id"):
        file_id = batch.get(key)
        if isinstance(file_id, str) and file_id:
            _KNOWN[file_id] = _Batch(batch_id, call.session_id, _tags_json(call.tags))
            _KNOWN.move_to_end(file_id)
    while len(_KNOWN) > _MAX_KNOWN:
        _KNOWN.popitem(last=False)


def rows_for(call: Call, endpoint: str, body: bytes,
             payload: Mapping[str, Any] | None) -> tuple[list[tuple[Any, ...]], str | None]:
    """Extra events a successful response of ``endpoint`` stands for, and the note for the call's own event."""
    if payload is None and endpoint != "files.content":
        # the caller may have kept the SDK's parsed model instead of decoding the body (an OpenAI batch object
        # carries ``usage``): the batch's output file id, or the job's status, is only in the body
        try:
            decoded = json.loads(body)
        except ValueError:
            decoded = None
        payload = decoded if isinstance(decoded, dict) else None
    if endpoint == "batches":
        for batch in _objects(payload, "batch"):
            _remember(call, batch)
        return [], _BATCH_REASON
    if endpoint == "fine_tuning.jobs":
        rows = [row for job in _objects(payload, "fine_tuning.job") if (row := _training_row(call, job)) is not None]
        return rows, ("fine-tuning is billed by trained tokens: see the fine_tuning.training event" if rows else None)
    if endpoint == "files.content":
        rows = _batch_rows(call, body)
        if rows:
            return rows, f"batch output file: {len(rows)} request lines journaled as events of their own"
    return [], None


def _objects(payload: Mapping[str, Any] | None, kind: str) -> list[Mapping[str, Any]]:
    """The ``kind`` objects of a response: the object itself or the items of a list."""
    if payload is None:
        return []
    if payload.get("object") == kind:
        return [payload]
    data = payload.get("data")
    if payload.get("object") == "list" and isinstance(data, list):
        return [item for item in data if isinstance(item, Mapping) and item.get("object") == kind]
    return []


def _event_id(ts: float | None, key: str) -> str:
    """32 hex digits like every event id (milliseconds first), but derived from ``key``: the same thing twice
    gets the same id."""
    ms = int(ts * 1000) if ts is not None else 0
    return f"{ms:012x}{hashlib.sha1(key.encode()).hexdigest()[:20]}"


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None


def _base(call: Call, ts: float) -> dict[str, Any]:
    from .call import _iso, _tags_json

    return {
        "started_at": _iso(ts),
        "ended_at": _iso(ts),
        "session_id": call.session_id,
        "tags": _tags_json(call.tags),
        "provider": call.provider,
        "method": "POST",
        "path": call.path,
        "resource": call.resource,
        "api_version": call.api_version if call.provider == "azure_openai" else None,
        "attempts": 0,
        "stream": 0,
        "cache_hit": 0,
    }


def _priced(call: Call, row: dict[str, Any], *, usage: Usage | None, model: str | None, ts: float,
            units: Mapping[str, Any] | None = None, batch: bool = False) -> None:
    from .call import price_columns

    try:
        priced = call.settings.pricer.price(
            provider=call.provider, usage=usage, model_served=model, model_requested=None, deployment=None,
            at=datetime.fromtimestamp(ts, tz=timezone.utc), units=units, batch=batch)
    except Exception as exc:  # the usage is kept; only the cost is lost, and the event says why
        log.warning("tokenid: pricing failed (%s: %s); journaled unpriced", type(exc).__name__, exc)
        row["unpriced_reason"] = f"pricing failed: {type(exc).__name__}"
        return
    row.update(price_columns(priced))


def _batch_rows(call: Call, body: bytes) -> list[tuple[Any, ...]]:
    """One event per line of a Batch API output (or error) file; [] when ``body`` is not one."""
    from .call import row_tuple

    head = body.lstrip()[:200]
    if not head.startswith(b"{") or b'"custom_id"' not in body[:4096]:
        return []
    file_id = call.path.rstrip("/").rsplit("/", 2)[-2] if call.path.rstrip("/").endswith("/content") else ""
    known = _KNOWN.get(file_id)
    batch_id = known.batch_id if known is not None else f"file:{file_id}"
    rows: list[tuple[Any, ...]] = []
    for n, raw in enumerate(body.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            log.warning("tokenid: batch output %s line %d is not JSON; not journaled", file_id, n)
            continue
        if not isinstance(line, dict) or "custom_id" not in line:
            continue
        rows.append(row_tuple(_batch_line(call, line, n, batch_id, known)))
    return rows


def _batch_line(call: Call, line: Mapping[str, Any], n: int, batch_id: str, known: _Batch | None) -> dict[str, Any]:
    from .call import usage_columns

    response = line.get("response") if isinstance(line.get("response"), Mapping) else {}
    assert isinstance(response, Mapping)
    body = response.get("body") if isinstance(response.get("body"), Mapping) else {}
    assert isinstance(body, Mapping)
    status_code = response.get("status_code") if isinstance(response.get("status_code"), int) else None
    error = line.get("error")
    ts = _number(body.get("created")) or _number(body.get("created_at"))
    line_id = line.get("id") if isinstance(line.get("id"), str) else f"{batch_id}:{line.get('custom_id')}"
    row = _base(call, ts if ts is not None else call.started)
    if known is not None:  # the session and tags of the call that submitted or polled the job
        row["session_id"], row["tags"] = known.session_id or call.session_id, known.tags or row["tags"]
    model = body.get("model") if isinstance(body.get("model"), str) and body.get("model") else None
    usage = usage_from_json(body.get("usage"))
    failed = error is not None or status_code is None or status_code >= 400
    row.update(
        id=_event_id(ts, f"batch-line:{line_id}"),
        endpoint=BATCH_ENDPOINTS.get(str(body.get("object")), "batch"),
        model_served=model,
        batch_id=batch_id,
        request_id=response.get("request_id") if isinstance(response.get("request_id"), str) else None,
        http_status=status_code,
        status="error" if failed else "ok",
        usage_source="reported" if usage is not None else "missing",
        service_tier=body.get("service_tier") if isinstance(body.get("service_tier"), str) else None,
        route=json.dumps({"batch_id": batch_id, "custom_id": line.get("custom_id"), "line": n,
                          "batch_request_id": line.get("id")}, default=str),
    )
    if failed:
        err = error if isinstance(error, Mapping) else body.get("error") if isinstance(body.get("error"), Mapping) \
            else {}
        assert isinstance(err, Mapping)
        row["error_code"] = str(err["code"]) if err.get("code") is not None else None
        row["error_message"] = str(err["message"])[:2000] if err.get("message") is not None else None
        row["unpriced_reason"] = "error response"
    if usage is not None:
        row.update(usage_columns(usage))
        if not failed:
            _priced(call, row, usage=usage, model=model, ts=ts or call.started, batch=True)
    elif not failed:
        row["unpriced_reason"] = "no usage"
    return row


def _training_row(call: Call, job: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The training cost of a succeeded fine-tuning job, or None while it is not finished."""
    from .call import row_tuple

    tokens = job.get("trained_tokens")
    job_id = job.get("id")
    if job.get("status") != "succeeded" or not isinstance(tokens, int) or tokens <= 0 or not isinstance(job_id, str):
        return None
    ts = _number(job.get("finished_at")) or call.started
    base_model = job.get("model") if isinstance(job.get("model"), str) else None
    units = {"training_tokens": tokens}
    row = _base(call, ts)
    row.update(
        id=_event_id(ts, f"fine-tune:{job_id}"),
        endpoint="fine_tuning.training",
        model_requested=base_model,
        model_served=base_model,
        status="ok",
        usage_source="reported",
        units=json.dumps(units),
        request_id=job_id,
        route=json.dumps({"fine_tuning_job": job_id, "fine_tuned_model": job.get("fine_tuned_model")}),
    )
    _priced(call, row, usage=None, model=base_model, ts=ts, units=units)
    return row_tuple(row)
