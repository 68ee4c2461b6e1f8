"""Files, batches and fine-tuning jobs, kept in memory for the life of the server.

Rules, so tests can rely on them:

* **Files**: ``POST files`` stores the upload and returns the file object
  (OpenAI: ``status`` "processed"; Azure: "pending" until the first read).
  Listing, retrieval, ``/content`` and deletion work as on the services.
* **Batches** run when created: every line of the input JSONL
  (``{custom_id, method, url, body}``) is answered by the simulator's own
  chat / completions / embeddings / Responses code, and the batch comes
  back ``completed`` with an ``output_file_id`` whose lines are
  ``{"id": "batch_req_…", "custom_id": …, "response": {"status_code": 200,
  "request_id": …, "body": <the endpoint's body, usage included>}, "error":
  null}``.  Lines answered with an error status go to ``error_file_id``
  instead.  On Azure ``body.model`` names a (global-batch) deployment and the
  body's ``model`` is the model it serves; an unknown deployment, bad JSON, a
  duplicate ``custom_id`` or a ``url`` other than the batch's endpoint fail
  the whole batch at validation (``status`` "failed", ``errors``).  A create
  request with the header ``x-sim-batch: defer`` leaves the batch
  ``validating`` until its first read, so cancellation can be exercised.
* **Fine-tuning jobs** are created ``queued`` and have ``succeeded`` by the
  first read of the job (retrieve, list or events): ``trained_tokens`` =
  ``n_epochs`` × the training file's tokens (chat lines as
  :func:`tokenid.tokens.count_input_tokens` counts a chat prompt; legacy
  ``prompt``/``completion`` lines as their text tokens), ``n_epochs`` "auto"
  meaning :data:`DEFAULT_EPOCHS`; ``fine_tuned_model`` is
  ``ft:<model>:<org>:<suffix>:<id>`` on OpenAI and ``<model>.ft-<hex>`` on Azure.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tokenid.simulator import errors
from tokenid.simulator.errors import ErrorReply
from tokenid.simulator.payloads import HEX, new_id
from tokenid.simulator.wire import Answer, Call, form_int
from tokenid.tokens import count_input_tokens, count_text_tokens

ExecuteLine = Callable[[bool, str, dict[str, Any]], tuple[int, dict[str, Any]]]
"""Answer one batch line: ``(azure, endpoint, body) -> (http status, response body)``."""

ORGANIZATION = "user-simulated"
DEFAULT_EPOCHS = 3
DEFAULT_BATCH_SIZE = 1
DEFAULT_LEARNING_RATE_MULTIPLIER = 1.8
BATCH_ENDPOINTS = ("/chat/completions", "/completions", "/embeddings", "/responses")
FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
BATCH_WINDOW_SECONDS = 24 * 3600


def _dumps(value: object, *, azure: bool = False) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=azure).encode()


def normalize_endpoint(url: object) -> str:
    """``/v1/chat/completions``, ``/openai/v1/chat/completions`` and ``/chat/completions`` alike."""
    if not isinstance(url, str):
        return ""
    path = url.split("?", 1)[0]
    for prefix in ("/openai/v1", "/openai", "/v1"):
        if path.startswith(prefix + "/"):
            return path[len(prefix) :]
    return path


@dataclass
class _File:
    info: dict[str, Any]
    data: bytes


@dataclass
class _Batch:
    info: dict[str, Any]
    lines: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Job:
    info: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)


def _page(items: list[dict[str, Any]], query: Mapping[str, str], *, cursor_ids: bool = True) -> dict[str, Any]:
    """A cursor page: newest first, ``after`` and ``limit`` honoured."""
    ordered = sorted(items, key=lambda item: item["created_at"], reverse=query.get("order", "desc") != "asc")
    after = query.get("after")
    if after:
        ids = [item["id"] for item in ordered]
        ordered = ordered[ids.index(after) + 1 :] if after in ids else []
    limit = max(1, form_int(query.get("limit"), 10_000))
    page = ordered[:limit]
    body: dict[str, Any] = {"object": "list", "data": page}
    if cursor_ids:
        body["first_id"] = page[0]["id"] if page else None
        body["last_id"] = page[-1]["id"] if page else None
    body["has_more"] = len(ordered) > limit
    return body


class Store:
    """The in-memory files, batches and fine-tuning jobs behind both route families."""

    def __init__(self, *, execute: ExecuteLine, deployments: Mapping[str, str]) -> None:
        self._execute = execute
        self._deployments = deployments
        self._lock = threading.RLock()
        self._files: dict[str, _File] = {}
        self._batches: dict[str, _Batch] = {}
        self._jobs: dict[str, _Job] = {}

    # ------------------------------------------------------------------ dispatch

    def handle(self, op: str, call: Call, ident: str | None) -> Answer | ErrorReply:
        """Run one operation (``files.create``, ``batches.cancel``, ...) for ``call``."""
        handlers: dict[str, Callable[[Call, str], Answer | ErrorReply]] = {
            "files.create": lambda c, _: self.create_file(c),
            "files.list": lambda c, _: self.list_files(c),
            "files.retrieve": self.retrieve_file,
            "files.content": self.file_content,
            "files.delete": self.delete_file,
            "batches.create": lambda c, _: self.create_batch(c),
            "batches.list": lambda c, _: self.list_batches(c),
            "batches.retrieve": self.retrieve_batch,
            "batches.cancel": self.cancel_batch,
            "fine_tuning.jobs.create": lambda c, _: self.create_job(c),
            "fine_tuning.jobs.list": lambda c, _: self.list_jobs(c),
            "fine_tuning.jobs.retrieve": self.retrieve_job,
            "fine_tuning.jobs.cancel": self.cancel_job,
            "fine_tuning.jobs.events": self.job_events,
        }
        with self._lock:
            return handlers[op](call, ident or "")

    # ------------------------------------------------------------------ files

    def add_file(self, *, azure: bool, purpose: str, filename: str, data: bytes, status: str) -> dict[str, Any]:
        """Store ``data`` as a file and return its file object."""
        ident = "file-" + uuid.uuid4().hex if azure else new_id("file-", 22)
        info: dict[str, Any] = {
            "object": "file",
            "id": ident,
            "purpose": purpose,
            "filename": filename,
            "bytes": len(data),
            "created_at": int(time.time()),
            "expires_at": None,
            "status": status,
            "status_details": None,
        }
        self._files[ident] = _File(info, data)
        return info

    def create_file(self, call: Call) -> Answer | ErrorReply:
        upload = call.upload("file")
        if upload is None:
            return errors.missing_parameter("file")
        purpose = call.body.get("purpose")
        if not isinstance(purpose, str):
            return errors.missing_parameter("purpose")
        if purpose not in FILE_PURPOSES:
            return errors.not_one_of(purpose, list(FILE_PURPOSES), "purpose")
        info = self.add_file(
            azure=call.azure,
            purpose=purpose,
            filename=upload.filename or "file",
            data=upload.data,
            status="pending" if call.azure else "processed",
        )
        return Answer(_dumps(info))

    def _file(self, call: Call, ident: str) -> _File | ErrorReply:
        stored = self._files.get(ident)
        if stored is None:
            return errors.object_not_found("File", ident, azure=call.azure)
        if stored.info["status"] == "pending":
            stored.info["status"] = "processed"
        return stored

    def list_files(self, call: Call) -> Answer:
        purpose = call.query.get("purpose")
        items = [f.info for f in self._files.values() if purpose is None or f.info["purpose"] == purpose]
        return Answer(_dumps(_page(items, call.query)))

    def retrieve_file(self, call: Call, ident: str) -> Answer | ErrorReply:
        stored = self._file(call, ident)
        return stored if isinstance(stored, ErrorReply) else Answer(_dumps(stored.info))

    def file_content(self, call: Call, ident: str) -> Answer | ErrorReply:
        stored = self._file(call, ident)
        if isinstance(stored, ErrorReply):
            return stored
        return Answer(stored.data, media_type="application/octet-stream")

    def delete_file(self, call: Call, ident: str) -> Answer | ErrorReply:
        if self._files.pop(ident, None) is None:
            return errors.object_not_found("File", ident, azure=call.azure)
        return Answer(_dumps({"object": "file", "id": ident, "deleted": True}))

    # ------------------------------------------------------------------ batches

    def create_batch(self, call: Call) -> Answer | ErrorReply:
        body = call.body
        for name in ("input_file_id", "endpoint", "completion_window"):
            if not isinstance(body.get(name), str):
                return errors.missing_parameter(name)
        if body["completion_window"] != "24h":
            return errors.not_one_of(body["completion_window"], ["24h"], "completion_window")
        endpoint = normalize_endpoint(body["endpoint"])
        if endpoint not in BATCH_ENDPOINTS:
            return errors.not_one_of(body["endpoint"], [f"/v1{e}" for e in BATCH_ENDPOINTS], "endpoint")
        stored = self._files.get(body["input_file_id"])
        if stored is None:
            return errors.object_not_found("File", body["input_file_id"], azure=call.azure)
        now = int(time.time())
        ident = "batch_" + (str(uuid.uuid4()) if call.azure else new_id("", 32, HEX))
        info: dict[str, Any] = {
            "id": ident,
            "object": "batch",
            "endpoint": body["endpoint"],
            "errors": None,
            "input_file_id": body["input_file_id"],
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + BATCH_WINDOW_SECONDS,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": body.get("metadata") if isinstance(body.get("metadata"), dict) else None,
        }
        if not call.azure:
            info["model"] = None
            info["usage"] = None
        batch = _Batch(info)
        self._batches[ident] = batch
        problems = self._parse_lines(batch, stored.data, endpoint, azure=call.azure)
        if problems:
            info.update(status="failed", failed_at=now, errors={"object": "list", "data": problems})
        elif call.headers.get("x-sim-batch") != "defer":
            self._run(batch, azure=call.azure)
        return Answer(_dumps(info, azure=call.azure))

    def _parse_lines(self, batch: _Batch, data: bytes, endpoint: str, *, azure: bool) -> list[dict[str, Any]]:
        """Read the input JSONL into ``batch.lines``; return validation errors (none when valid)."""
        problems: list[dict[str, Any]] = []
        seen: set[str] = set()

        def problem(code: str, message: str, line: int, param: str | None = None) -> None:
            problems.append({"code": code, "message": message, "param": param, "line": line})

        for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                problem("invalid_json_line", "This line is not parseable as valid JSON.", number)
                continue
            body = line.get("body") if isinstance(line, dict) else None
            custom_id = line.get("custom_id") if isinstance(line, dict) else None
            if not isinstance(line, dict) or not isinstance(body, dict) or not isinstance(custom_id, str):
                problem("invalid_request", "Each line needs 'custom_id', 'method', 'url' and 'body'.", number)
                continue
            if custom_id in seen:
                problem("duplicate_custom_id", f"The custom ID '{custom_id}' is not unique.", number, "custom_id")
                continue
            seen.add(custom_id)
            if normalize_endpoint(line.get("url")) != endpoint:
                message = f"The provided url '{line.get('url')}' does not match the batch endpoint."
                problem("mismatched_url", message, number, "url")
                continue
            model = body.get("model")
            if azure and (not isinstance(model, str) or model not in self._deployments):
                message = (
                    f"The provided model deployment '{model}' does not exist in the AOAI resource. "
                    "Use a Global-Batch deployment name as the model."
                )
                problem("model_not_found", message, number, "body.model")
                continue
            batch.lines.append(line)
        if not problems and not batch.lines:
            problem("empty_batch", "The input file contains no requests.", 1)
        return problems

    def _run(self, batch: _Batch, *, azure: bool) -> None:
        """Answer every line, write the output (and error) file, and complete the batch."""
        info = batch.info
        now = int(time.time())
        info.update(status="in_progress", in_progress_at=now)
        endpoint = normalize_endpoint(info["endpoint"])
        outputs: list[bytes] = []
        failures: list[bytes] = []
        usage = {"input": 0, "cached": 0, "output": 0, "reasoning": 0}
        model: str | None = None
        for line in batch.lines:
            body = dict(line["body"])
            body.pop("stream", None)
            body.pop("stream_options", None)
            status, answer = self._execute(azure, endpoint, body)
            request_id = str(uuid.uuid4()) if azure else new_id("req_", 32, HEX)
            record = {
                "id": new_id("batch_req_", 32, HEX),
                "custom_id": line["custom_id"],
                "response": {"status_code": status, "request_id": request_id, "body": answer},
                "error": None,
            }
            (outputs if status == 200 else failures).append(_dumps(record, azure=azure))
            if status == 200:
                model = model or answer.get("model")
                _add_usage(usage, answer.get("usage"))
        done = int(time.time())
        if outputs:
            name = f"{batch.info['id']}_output.jsonl"
            info["output_file_id"] = self._output_file(azure, name, outputs)
        if failures:
            name = f"{batch.info['id']}_error.jsonl"
            info["error_file_id"] = self._output_file(azure, name, failures)
        info.update(
            status="completed",
            finalizing_at=done,
            completed_at=done,
            request_counts={"total": len(batch.lines), "completed": len(outputs), "failed": len(failures)},
        )
        if "usage" in info:
            info["model"] = model
            info["usage"] = {
                "input_tokens": usage["input"],
                "input_tokens_details": {"cached_tokens": usage["cached"]},
                "output_tokens": usage["output"],
                "output_tokens_details": {"reasoning_tokens": usage["reasoning"]},
                "total_tokens": usage["input"] + usage["output"],
            }

    def _output_file(self, azure: bool, name: str, lines: list[bytes]) -> str:
        data = b"\n".join(lines) + b"\n"
        info = self.add_file(azure=azure, purpose="batch_output", filename=name, data=data, status="processed")
        return str(info["id"])

    def _advance_batch(self, batch: _Batch, *, azure: bool) -> None:
        """A deferred batch runs (or finishes cancelling) when first read."""
        status = batch.info["status"]
        if status == "validating":
            self._run(batch, azure=azure)
        elif status == "cancelling":
            now = int(time.time())
            batch.info.update(
                status="cancelled",
                cancelled_at=now,
                request_counts={"total": len(batch.lines), "completed": 0, "failed": 0},
            )

    def _batch(self, call: Call, ident: str) -> _Batch | ErrorReply:
        batch = self._batches.get(ident)
        if batch is None:
            return errors.object_not_found("Batch", ident, azure=call.azure)
        return batch

    def retrieve_batch(self, call: Call, ident: str) -> Answer | ErrorReply:
        batch = self._batch(call, ident)
        if isinstance(batch, ErrorReply):
            return batch
        self._advance_batch(batch, azure=call.azure)
        return Answer(_dumps(batch.info, azure=call.azure))

    def list_batches(self, call: Call) -> Answer:
        for batch in self._batches.values():
            self._advance_batch(batch, azure=call.azure)
        return Answer(_dumps(_page([b.info for b in self._batches.values()], call.query), azure=call.azure))

    def cancel_batch(self, call: Call, ident: str) -> Answer | ErrorReply:
        batch = self._batch(call, ident)
        if isinstance(batch, ErrorReply):
            return batch
        status = batch.info["status"]
        if status not in ("validating", "in_progress"):
            return errors.invalid_request(f"Cannot cancel a batch with status '{status}'.")
        batch.info.update(status="cancelling", cancelling_at=int(time.time()))
        return Answer(_dumps(batch.info, azure=call.azure))

    # ------------------------------------------------------------------ fine-tuning

    def create_job(self, call: Call) -> Answer | ErrorReply:
        body = call.body
        model = body.get("model")
        if not isinstance(model, str):
            return errors.missing_parameter("model")
        training = body.get("training_file")
        if not isinstance(training, str):
            return errors.missing_parameter("training_file")
        if training not in self._files:
            return errors.invalid_request(f"invalid training_file: {training}", "training_file")
        requested = _hyperparameters(body)
        now = int(time.time())
        ident = "ftjob-" + (uuid.uuid4().hex if call.azure else new_id("", 24))
        suffix = body.get("suffix") if isinstance(body.get("suffix"), str) else None
        method_type = "supervised"
        method = body.get("method")
        if isinstance(method, dict) and method.get("type") in ("supervised", "dpo", "reinforcement"):
            method_type = method["type"]
        info: dict[str, Any] = {
            "object": "fine_tuning.job",
            "id": ident,
            "model": self._deployments.get(model, model),
            "created_at": now,
            "finished_at": None,
            "fine_tuned_model": None,
            "organization_id": "org-" + ORGANIZATION,
            "result_files": [],
            "status": "queued",
            "validation_file": body.get("validation_file") if isinstance(body.get("validation_file"), str) else None,
            "training_file": training,
            "hyperparameters": requested,
            "trained_tokens": None,
            "error": None,
            "user_provided_suffix": suffix,
            "seed": form_int(body.get("seed"), 42),
            "estimated_finish": None,
            "integrations": [],
            "metadata": body.get("metadata") if isinstance(body.get("metadata"), dict) else None,
            "method": {"type": method_type, method_type: {"hyperparameters": dict(requested)}},
        }
        job = _Job(info)
        self._jobs[ident] = job
        _event(job, f"Created fine-tuning job: {ident}", now)
        _event(job, f"Validating training file: {training}", now)
        _event(job, "Files validated, moving job to queued state", now)
        return Answer(_dumps(info))

    def _advance_job(self, job: _Job, *, azure: bool) -> None:
        """A queued or running job has succeeded by the time anyone looks at it."""
        info = job.info
        if info["status"] not in ("queued", "running", "validating_files"):
            return
        now = int(time.time())
        params = info["hyperparameters"]
        epochs = params["n_epochs"] if isinstance(params["n_epochs"], int) else DEFAULT_EPOCHS
        resolved = {
            "n_epochs": epochs,
            "batch_size": params["batch_size"] if isinstance(params["batch_size"], int) else DEFAULT_BATCH_SIZE,
            "learning_rate_multiplier": (
                params["learning_rate_multiplier"]
                if isinstance(params["learning_rate_multiplier"], (int, float))
                else DEFAULT_LEARNING_RATE_MULTIPLIER
            ),
        }
        stored = self._files.get(info["training_file"])
        per_epoch = training_tokens(stored.data if stored else b"", info["model"])
        steps = epochs  # one metrics event per epoch
        if azure:
            fine_tuned = f"{info['model']}.ft-{uuid.uuid4().hex}"
        else:
            fine_tuned = f"ft:{info['model']}:{ORGANIZATION}:{info['user_provided_suffix'] or ''}:{new_id('', 8)}"
        metrics = "step,train_loss,train_accuracy\n" + "".join(
            f"{step},{1.5 / step:.4f},{min(0.99, 0.5 + 0.1 * step):.2f}\n" for step in range(1, steps + 1)
        )
        results = self.add_file(
            azure=azure,
            purpose="fine-tune-results",
            filename="step_metrics.csv",
            data=metrics.encode(),
            status="processed",
        )
        method = info["method"]
        method[method["type"]]["hyperparameters"] = dict(resolved)
        info.update(
            status="succeeded",
            finished_at=now,
            fine_tuned_model=fine_tuned,
            trained_tokens=per_epoch * epochs,
            hyperparameters=resolved,
            result_files=[results["id"]],
        )
        _event(job, "Fine-tuning job started", now)
        for step in range(1, steps + 1):
            data = {"step": step, "train_loss": round(1.5 / step, 4), "total_steps": steps}
            _event(job, f"Step {step}/{steps}: training loss={1.5 / step:.4f}", now, kind="metrics", data=data)
        _event(job, f"Checkpoint created at step {steps}", now)
        _event(job, f"New fine-tuned model created: {fine_tuned}", now)
        _event(job, "The job has successfully completed", now)

    def _job(self, call: Call, ident: str) -> _Job | ErrorReply:
        job = self._jobs.get(ident)
        if job is None:
            return errors.object_not_found("Fine-tuning job", ident, azure=call.azure)
        return job

    def retrieve_job(self, call: Call, ident: str) -> Answer | ErrorReply:
        job = self._job(call, ident)
        if isinstance(job, ErrorReply):
            return job
        self._advance_job(job, azure=call.azure)
        return Answer(_dumps(job.info))

    def list_jobs(self, call: Call) -> Answer:
        for job in self._jobs.values():
            self._advance_job(job, azure=call.azure)
        return Answer(_dumps(_page([j.info for j in self._jobs.values()], call.query, cursor_ids=False)))

    def cancel_job(self, call: Call, ident: str) -> Answer | ErrorReply:
        job = self._job(call, ident)
        if isinstance(job, ErrorReply):
            return job
        status = job.info["status"]
        if status not in ("queued", "running", "validating_files"):
            return errors.invalid_request(f"Cannot cancel a job with status '{status}'.")
        now = int(time.time())
        job.info.update(status="cancelled", finished_at=now)
        _event(job, "Fine-tuning job cancelled", now)
        return Answer(_dumps(job.info))

    def job_events(self, call: Call, ident: str) -> Answer | ErrorReply:
        job = self._job(call, ident)
        if isinstance(job, ErrorReply):
            return job
        self._advance_job(job, azure=call.azure)
        newest_first = list(reversed(job.events))
        limit = max(1, form_int(call.query.get("limit"), 20))
        after = call.query.get("after")
        if after:
            ids = [event["id"] for event in newest_first]
            newest_first = newest_first[ids.index(after) + 1 :] if after in ids else []
        page = newest_first[:limit]
        return Answer(_dumps({"object": "list", "data": page, "has_more": len(newest_first) > limit}))


def _event(job: _Job, message: str, when: int, *, kind: str = "message", data: dict[str, Any] | None = None) -> None:
    job.events.append(
        {
            "object": "fine_tuning.job.event",
            "id": new_id("ftevent-", 24),
            "created_at": when,
            "level": "info",
            "message": message,
            "data": data or {},
            "type": kind,
        }
    )


def _hyperparameters(body: Mapping[str, Any]) -> dict[str, Any]:
    """The requested hyperparameters (top level or under ``method``), "auto" where not given."""
    source: object = body.get("hyperparameters")
    method = body.get("method")
    if isinstance(method, dict):
        inner = method.get(str(method.get("type")))
        if isinstance(inner, dict) and isinstance(inner.get("hyperparameters"), dict):
            source = inner["hyperparameters"]
    given: Mapping[str, Any] = source if isinstance(source, dict) else {}
    result: dict[str, Any] = {}
    for name in ("n_epochs", "batch_size", "learning_rate_multiplier"):
        value = given.get(name, "auto")
        valid = isinstance(value, (int, float)) and not isinstance(value, bool)
        result[name] = value if valid else "auto"
    return result


def training_tokens(data: bytes, model: str) -> int:
    """Tokens in one pass over a training file (see the module rules)."""
    total = 0
    for raw in data.decode("utf-8", "replace").splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(line, dict):
            continue
        if "messages" in line:
            total += count_input_tokens(line, model, endpoint="chat.completions")
        else:
            for key in ("prompt", "completion"):
                value = line.get(key)
                if isinstance(value, str):
                    total += count_text_tokens(value, model)
    return total


def _add_usage(totals: dict[str, int], usage: object) -> None:
    """Add one answer's usage (chat, completions, embeddings or Responses shape) to the batch totals."""
    if not isinstance(usage, dict):
        return

    def number(mapping: object, key: str) -> int:
        value = mapping.get(key) if isinstance(mapping, dict) else None
        return value if isinstance(value, int) else 0

    totals["input"] += number(usage, "prompt_tokens") + number(usage, "input_tokens")
    totals["output"] += number(usage, "completion_tokens") + number(usage, "output_tokens")
    totals["cached"] += number(usage.get("prompt_tokens_details"), "cached_tokens")
    totals["cached"] += number(usage.get("input_tokens_details"), "cached_tokens")
    totals["reasoning"] += number(usage.get("completion_tokens_details"), "reasoning_tokens")
    totals["reasoning"] += number(usage.get("output_tokens_details"), "reasoning_tokens")
