"""Files, batches and fine-tuning jobs through the raw openai SDK against a running simulator."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx2
import openai
import pytest
from raw_sdk import close_raw_clients, raw_client
from raw_sdk import sim as sim_fixture

from tokenid.simulator import DEFAULT_DEPLOYMENTS, Simulator
from tokenid.simulator.batch import DEFAULT_EPOCHS
from tokenid.tokens import count_input_tokens, count_text_tokens

sim = sim_fixture  # a simulator of this module's own
_close = close_raw_clients  # autouse: closes the clients each test made

KEY = "sk-simulator-batch-key-0123456789"
API_VERSION = "2024-10-21"
MESSAGES: list[Any] = [{"role": "user", "content": "Name three colours."}]


def client(sim: Simulator, kind: str, **kw: Any) -> openai.OpenAI:
    return raw_client(sim, kind, key=KEY, api_version=API_VERSION, **kw)


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def chat_line(custom_id: str, model: str, url: str = "/v1/chat/completions", **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": url,
        "body": {"model": model, "messages": MESSAGES, **body},
    }


def line_for(custom_id: str, url: str, **body: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def output_lines(api: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    return [json.loads(line) for line in api.files.content(file_id).text.splitlines()]


# -------------------------------------------------------------------------------- files


@pytest.mark.parametrize("kind", ["openai", "azure", "azure_v1"])
def test_file_lifecycle(sim: Simulator, kind: str) -> None:
    api = client(sim, kind, max_retries=0)
    data = jsonl([chat_line("a", "gpt-4o-mini")])
    created = api.files.create(file=("input.jsonl", data, "application/jsonl"), purpose="batch")
    assert created.object == "file"
    assert created.purpose == "batch"
    assert created.filename == "input.jsonl"
    assert created.bytes == len(data)
    if kind == "openai":
        assert re.fullmatch(r"file-[A-Za-z0-9]{22}", created.id)
        assert created.status == "processed"
    else:
        assert re.fullmatch(r"file-[0-9a-f]{32}", created.id)
        assert created.status == "pending"  # Azure processes uploads asynchronously
    assert api.files.retrieve(created.id).status == "processed"
    content = api.files.content(created.id)
    assert content.response.headers["content-type"] == "application/octet-stream"
    assert content.read() == data
    assert created.id in {f.id for f in api.files.list(purpose="batch")}
    assert created.id not in {f.id for f in api.files.list(purpose="fine-tune")}
    deleted = api.files.delete(created.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (created.id, True, "file")
    with pytest.raises(openai.NotFoundError):
        api.files.retrieve(created.id)


def test_file_wire_shape_matches_recording(sim: Simulator) -> None:
    response = httpx2.post(
        sim.openai_base_url + "/files",
        files={"file": ("training_data.jsonl", b"{}\n", "application/jsonl")},
        data={"purpose": "fine-tune"},
        headers={"authorization": f"Bearer {KEY}"},
    )
    body = response.json()
    assert {"object", "id", "purpose", "filename", "bytes", "created_at", "status", "status_details"} <= set(body)
    assert response.headers["x-request-id"].startswith("req_")
    missing = httpx2.post(
        sim.openai_base_url + "/files", files={"purpose": (None, "batch")}, headers={"authorization": f"Bearer {KEY}"}
    )
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "file"


# ------------------------------------------------------------------------------ batches


def test_openai_chat_batch(sim: Simulator) -> None:
    api = client(sim, "openai")
    lines = [chat_line("first", "gpt-4o-mini", max_tokens=5), chat_line("second", "gpt-4.1-nano")]
    uploaded = api.files.create(file=("batch.jsonl", jsonl(lines)), purpose="batch")
    batch = api.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"job": "t"}
    )
    assert batch.object == "batch"
    assert batch.status == "completed"
    assert re.fullmatch(r"batch_[0-9a-f]{32}", batch.id)
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (2, 2, 0)
    assert batch.completed_at is not None and batch.in_progress_at is not None and batch.finalizing_at is not None
    assert batch.expires_at == batch.created_at + 24 * 3600
    assert batch.error_file_id is None
    assert batch.metadata == {"job": "t"}
    out = output_lines(api, batch.output_file_id)
    assert [line["custom_id"] for line in out] == ["first", "second"]
    prompt_tokens = count_input_tokens({"messages": MESSAGES}, "gpt-4o-mini-2024-07-18")
    total_in = total_out = 0
    for line, model in zip(out, ["gpt-4o-mini-2024-07-18", "gpt-4.1-nano"], strict=True):
        assert set(line) == {"id", "custom_id", "response", "error"}
        assert re.fullmatch(r"batch_req_[0-9a-f]{32}", line["id"])
        assert line["error"] is None
        response = line["response"]
        assert response["status_code"] == 200
        assert response["request_id"].startswith("req_")
        body = response["body"]
        assert body["object"] == "chat.completion"
        assert body["model"] == model
        assert body["usage"]["prompt_tokens"] == prompt_tokens
        assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
        total_in += body["usage"]["prompt_tokens"]
        total_out += body["usage"]["completion_tokens"]
    assert out[0]["response"]["body"]["usage"]["completion_tokens"] == 5
    assert batch.model == "gpt-4o-mini-2024-07-18"
    assert batch.usage is not None
    assert (batch.usage.input_tokens, batch.usage.output_tokens) == (total_in, total_out)
    output_file = api.files.retrieve(batch.output_file_id or "")
    assert output_file.purpose == "batch_output"
    assert api.batches.retrieve(batch.id).status == "completed"
    assert batch.id in {b.id for b in api.batches.list()}


@pytest.mark.parametrize("kind", ["azure", "azure_v1"])
def test_azure_global_batch(sim: Simulator, kind: str) -> None:
    api = client(sim, kind)
    lines = [
        chat_line("task-0", "gpt-4o-mini-batch", url="/chat/completions"),
        chat_line("task-1", "gpt-4o-batch", url="/chat/completions", max_tokens=3),
    ]
    uploaded = api.files.create(file=("batch.jsonl", jsonl(lines)), purpose="batch")
    batch = api.batches.create(input_file_id=uploaded.id, endpoint="/chat/completions", completion_window="24h")
    assert batch.status == "completed"
    assert re.fullmatch(r"batch_[0-9a-f-]{36}", batch.id)
    assert batch.request_counts is not None and batch.request_counts.completed == 2
    assert batch.endpoint == "/chat/completions"
    out = output_lines(api, batch.output_file_id)
    served = [DEFAULT_DEPLOYMENTS["gpt-4o-mini-batch"], DEFAULT_DEPLOYMENTS["gpt-4o-batch"]]
    for line, model in zip(out, served, strict=True):
        response = line["response"]
        assert response["status_code"] == 200
        assert re.fullmatch(r"[0-9a-f-]{36}", response["request_id"])
        body = response["body"]
        assert body["model"] == model
        assert body["usage"]["completion_tokens"] > 0
        assert "prompt_filter_results" in body
        assert "content_filter_results" in body["choices"][0]
        assert list(body) == sorted(body)
    assert out[1]["response"]["body"]["usage"]["completion_tokens"] == 3


def test_azure_batch_unknown_deployment_fails_validation(sim: Simulator) -> None:
    api = client(sim, "azure")
    lines = [chat_line("task-0", "gpt-4o-mini-batch", url="/chat/completions"), chat_line("task-1", "nope")]
    uploaded = api.files.create(file=("batch.jsonl", jsonl(lines)), purpose="batch")
    batch = api.batches.create(input_file_id=uploaded.id, endpoint="/chat/completions", completion_window="24h")
    assert batch.status == "failed"
    assert batch.failed_at is not None
    assert batch.output_file_id is None
    assert batch.errors is not None and batch.errors.data is not None
    assert [(error.code, error.line, error.param) for error in batch.errors.data] == [
        ("model_not_found", 2, "body.model")
    ]
    lines[1] = chat_line("task-1", "gpt-4o-mini-batch", url="/embeddings")
    uploaded = api.files.create(file=("batch.jsonl", jsonl(lines)), purpose="batch")
    batch = api.batches.create(input_file_id=uploaded.id, endpoint="/chat/completions", completion_window="24h")
    assert batch.errors is not None and batch.errors.data is not None
    assert [(error.code, error.line) for error in batch.errors.data] == [("mismatched_url", 2)]


def test_batch_embeddings_responses_and_error_lines(sim: Simulator) -> None:
    api = client(sim, "openai")
    embed = [
        line_for("e1", "/v1/embeddings", model="text-embedding-3-small", input="hello world"),
        line_for("e2", "/v1/embeddings", model="text-embedding-ada-002", input="x", dimensions=8),
    ]
    uploaded = api.files.create(file=("embed.jsonl", jsonl(embed)), purpose="batch")
    batch = api.batches.create(input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h")
    assert batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (1, 1)
    good = output_lines(api, batch.output_file_id)
    assert good[0]["response"]["body"]["usage"] == {
        "prompt_tokens": count_text_tokens("hello world", "text-embedding-3-small"),
        "total_tokens": count_text_tokens("hello world", "text-embedding-3-small"),
    }
    bad = output_lines(api, batch.error_file_id)
    assert bad[0]["custom_id"] == "e2"
    assert bad[0]["response"]["status_code"] == 400
    assert bad[0]["response"]["body"]["error"]["message"] == "This model does not support specifying dimensions."

    responses = [line_for("r1", "/v1/responses", model="gpt-4o", input="hi", stream=True)]
    uploaded = api.files.create(file=("responses.jsonl", jsonl(responses)), purpose="batch")
    batch = api.batches.create(input_file_id=uploaded.id, endpoint="/v1/responses", completion_window="24h")
    body = output_lines(api, batch.output_file_id)[0]["response"]["body"]
    assert body["object"] == "response"
    assert body["model"] == "gpt-4o-2024-08-06"
    assert body["usage"]["output_tokens"] > 0


def test_batch_validation_errors(sim: Simulator) -> None:
    api = client(sim, "openai", max_retries=0)
    broken = b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}\nnot json\n'
    uploaded = api.files.create(file=("broken.jsonl", broken), purpose="batch")
    batch = api.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert batch.status == "failed"
    assert batch.errors is not None and batch.errors.data is not None
    assert [(e.code, e.line) for e in batch.errors.data] == [("invalid_json_line", 2)]
    with pytest.raises(openai.NotFoundError):
        api.batches.create(input_file_id="file-missing", endpoint="/v1/chat/completions", completion_window="24h")
    with pytest.raises(openai.NotFoundError):
        api.batches.retrieve("batch_missing")


def test_deferred_batch_cancel_and_completed_cancel(sim: Simulator) -> None:
    api = client(sim, "openai", max_retries=0)
    uploaded = api.files.create(file=("b.jsonl", jsonl([chat_line("a", "gpt-4o")])), purpose="batch")
    deferred = api.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        extra_headers={"x-sim-batch": "defer"},
    )
    assert deferred.status == "validating"
    cancelling = api.batches.cancel(deferred.id)
    assert cancelling.status == "cancelling"
    assert cancelling.cancelling_at is not None
    cancelled = api.batches.retrieve(deferred.id)
    assert cancelled.status == "cancelled"
    assert cancelled.output_file_id is None
    later = api.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        extra_headers={"x-sim-batch": "defer"},
    )
    assert api.batches.retrieve(later.id).status == "completed"
    with pytest.raises(openai.BadRequestError) as caught:
        api.batches.cancel(later.id)
    assert "completed" in caught.value.response.json()["error"]["message"]


def test_resource_routes_keep_azure_checks(sim: Simulator) -> None:
    no_version = httpx2.get(sim.url + "/openai/files", headers={"api-key": KEY})
    assert no_version.status_code == 404
    assert no_version.json() == {"error": {"code": "404", "message": "Resource not found"}}
    bad_version = httpx2.get(sim.url + "/openai/batches?api-version=banana", headers={"api-key": KEY})
    assert bad_version.status_code == 400
    ok = httpx2.get(f"{sim.url}/openai/batches?api-version={API_VERSION}", headers={"api-key": KEY})
    assert ok.status_code == 200
    assert ok.headers["x-ms-region"] == sim.region
    assert ok.headers["apim-request-id"]
    with pytest.raises(openai.RateLimitError):
        client(sim, "azure", max_retries=0).files.list(extra_headers={"x-sim-fault": "429"})
    with pytest.raises(openai.NotFoundError) as missing:
        client(sim, "azure", max_retries=0).batches.retrieve("batch_nope")
    assert missing.value.response.json()["error"]["code"] == "notFound"


def test_resource_routes_enforce_keys() -> None:
    with Simulator(api_keys={KEY}) as locked:
        wrong = openai.OpenAI(base_url=locked.openai_base_url, api_key="sk-wrong-0123456789abcdef", max_retries=0)
        with wrong, pytest.raises(openai.AuthenticationError):
            wrong.files.list()
        right = openai.AzureOpenAI(
            azure_endpoint=locked.azure_endpoint, api_key=KEY, api_version=API_VERSION, max_retries=0
        )
        with right:
            assert list(right.batches.list()) == []


async def test_async_batch_and_fine_tuning(sim: Simulator) -> None:
    async with openai.AsyncAzureOpenAI(azure_endpoint=sim.azure_endpoint, api_key=KEY, api_version=API_VERSION) as api:
        uploaded = await api.files.create(
            file=("b.jsonl", jsonl([chat_line("x", "gpt-4o-mini-batch", url="/chat/completions")])), purpose="batch"
        )
        batch = await api.batches.create(
            input_file_id=uploaded.id, endpoint="/chat/completions", completion_window="24h"
        )
        assert batch.status == "completed"
        assert batch.output_file_id is not None
        content = await api.files.content(batch.output_file_id)
        line = json.loads(content.text.splitlines()[0])
        assert line["response"]["body"]["model"] == "gpt-4o-mini-2024-07-18"
        training = await api.files.create(file=("t.jsonl", TRAINING), purpose="fine-tune")
        job = await api.fine_tuning.jobs.create(training_file=training.id, model="gpt-4o-mini-2024-07-18")
        done = await api.fine_tuning.jobs.retrieve(job.id)
        assert done.status == "succeeded"
        assert done.trained_tokens == DEFAULT_EPOCHS * training_tokens("gpt-4o-mini-2024-07-18")


# -------------------------------------------------------------------------- fine-tuning

TRAINING_LINES: list[dict[str, Any]] = [
    {
        "messages": [
            {"role": "system", "content": "Marv is a factual chatbot that is also sarcastic."},
            {"role": "user", "content": "What's the capital of France?"},
            {"role": "assistant", "content": "Paris, as if everyone doesn't know that already."},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "Who wrote 'Romeo and Juliet'?"},
            {"role": "assistant", "content": "Oh, just some guy named William Shakespeare."},
        ]
    },
]
TRAINING = jsonl(TRAINING_LINES)


def training_tokens(model: str) -> int:
    return sum(count_input_tokens(line, model, endpoint="chat.completions") for line in TRAINING_LINES)


@pytest.mark.parametrize("kind", ["openai", "azure"])
def test_fine_tuning_job(sim: Simulator, kind: str) -> None:
    api = client(sim, kind)
    training = api.files.create(file=("train.jsonl", TRAINING), purpose="fine-tune")
    job = api.fine_tuning.jobs.create(training_file=training.id, model="gpt-4o-mini-2024-07-18", suffix="marv")
    assert job.object == "fine_tuning.job"
    assert job.status == "queued"
    assert job.fine_tuned_model is None
    assert job.trained_tokens is None
    assert job.hyperparameters.n_epochs == "auto"
    assert job.id.startswith("ftjob-")
    done = api.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded"
    assert done.finished_at is not None
    assert done.hyperparameters.n_epochs == DEFAULT_EPOCHS
    per_epoch = training_tokens("gpt-4o-mini-2024-07-18")
    assert per_epoch > 50
    assert done.trained_tokens == DEFAULT_EPOCHS * per_epoch
    assert done.fine_tuned_model is not None
    if kind == "openai":
        assert re.fullmatch(r"ft:gpt-4o-mini-2024-07-18:user-simulated:marv:[A-Za-z0-9]{8}", done.fine_tuned_model)
    else:
        assert re.fullmatch(r"gpt-4o-mini-2024-07-18\.ft-[0-9a-f]{32}", done.fine_tuned_model)
    assert len(done.result_files) == 1
    metrics = api.files.retrieve(done.result_files[0])
    assert metrics.purpose == "fine-tune-results"
    assert api.files.content(done.result_files[0]).text.startswith("step,train_loss")
    events = list(api.fine_tuning.jobs.list_events(job.id))
    assert events[0].message == "The job has successfully completed"
    assert events[-1].message == f"Created fine-tuning job: {job.id}"
    assert all(event.object == "fine_tuning.job.event" for event in events)
    assert any(event.type == "metrics" for event in events)
    assert job.id in {j.id for j in api.fine_tuning.jobs.list()}


def test_fine_tuning_explicit_epochs_and_cancel(sim: Simulator) -> None:
    api = client(sim, "openai", max_retries=0)
    training = api.files.create(file=("train.jsonl", TRAINING), purpose="fine-tune")
    job = api.fine_tuning.jobs.create(
        training_file=training.id,
        model="gpt-4o-mini",
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}},
    )
    assert job.model == DEFAULT_DEPLOYMENTS["gpt-4o-mini"]
    assert job.hyperparameters.n_epochs == 2
    done = api.fine_tuning.jobs.retrieve(job.id)
    assert done.trained_tokens == 2 * training_tokens(DEFAULT_DEPLOYMENTS["gpt-4o-mini"])
    assert done.method is not None and done.method.supervised is not None
    with pytest.raises(openai.BadRequestError):
        api.fine_tuning.jobs.cancel(job.id)
    queued = api.fine_tuning.jobs.create(training_file=training.id, model="gpt-4o-mini-2024-07-18")
    cancelled = api.fine_tuning.jobs.cancel(queued.id)
    assert cancelled.status == "cancelled"
    assert api.fine_tuning.jobs.retrieve(queued.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError) as caught:
        api.fine_tuning.jobs.create(training_file="file-missing", model="gpt-4o-mini-2024-07-18")
    assert caught.value.response.json()["error"]["param"] == "training_file"


def test_fine_tuning_legacy_prompt_completion_file(sim: Simulator) -> None:
    api = client(sim, "openai")
    rows = [{"prompt": "Great service ->", "completion": " positive"}, {"prompt": "Late again ->", "completion": " no"}]
    training = api.files.create(file=("legacy.jsonl", jsonl(rows)), purpose="fine-tune")
    job = api.fine_tuning.jobs.create(training_file=training.id, model="babbage-002", hyperparameters={"n_epochs": 4})
    done = api.fine_tuning.jobs.retrieve(job.id)
    per_epoch = sum(
        count_text_tokens(r["prompt"], "babbage-002") + count_text_tokens(r["completion"], "babbage-002") for r in rows
    )
    assert done.trained_tokens == 4 * per_epoch
