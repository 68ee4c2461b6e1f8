"""Routing inside the journaled clients: copies, enforcement before routing, Azure v1 targets, no secrets stored."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from regions import MSG, azure_target, events, fault, routed
from regions import regions as regions_fixture

import tokenid.clients
from tokenid import BudgetExceeded, Journal
from tokenid.simulator import Simulator

from conftest import DEPLOYMENTS

regions = regions_fixture


def test_copies_share_breakers_and_credentials(regions: dict[str, Simulator], tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    client = routed(journal, {"strategy": "fallback", "targets": [
        azure_target("sweden", regions["swedencentral"], headers=fault("503")),
        azure_target("eastus2", regions["eastus2"]),
    ], "breaker": {"failures": 1, "cooldown_s": 60}, "retry": {"attempts": 1}}, session_id="one")
    client.chat.completions.create(model="gpt-4o", messages=MSG)
    copy = client.with_options(session_id="two", timeout=30)
    assert copy._tokenid.router is client._tokenid.router
    assert copy._tokenid_targets["eastus2"] is not client._tokenid_targets["eastus2"]
    assert copy._tokenid_targets["eastus2"]._tokenid_owner is copy
    copy.chat.completions.create(model="gpt-4o", messages=MSG)
    client.close()
    first, second = events(journal)
    assert (first["session_id"], second["session_id"]) == ("one", "two")
    assert second["route"]["attempts"][0] == {**second["route"]["attempts"][0], "skipped": "breaker open"}


def test_enforcement_runs_before_routing(regions: dict[str, Simulator], tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    rules = {
        "counters": "local",
        "model_ceiling": {"max_model": "gpt-4o-mini", "target": "gpt-4o-mini"},
        "budgets": [{"name": "tokens", "scope": "global", "limit_tokens": 200, "window": "day"}],
        "routing": {"strategy": "fallback", "cache": "memory", "targets": [
            azure_target("sweden", regions["swedencentral"], headers=fault("503")),
            azure_target("eastus2", regions["eastus2"]),
        ]},
    }
    client = tokenid.JournaledAzureOpenAI(journal=journal, deployments=DEPLOYMENTS, enforcement_config=rules,
                                          max_retries=0)
    on = {"x-tokenid-cache": "true"}
    client.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=20, extra_headers=on)
    for _ in range(5):
        client.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=20, extra_headers=on)
        journal.flush()  # reservations are settled on the writer thread
    with pytest.raises(BudgetExceeded):
        for _ in range(20):
            client.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=20)
            journal.flush()
    client.close()
    rows = events(journal)
    first = rows[0]
    assert first["deployment"] == "gpt-4o-mini"  # rewritten by the ceiling, then routed
    assert first["route"]["served_by"] == "eastus2"
    assert first["enforcement"][0]["action"] in ("rewrite", "downgrade")
    assert [r["cache_hit"] for r in rows[1:6]] == [True] * 5
    assert rows[-1]["status"] == "blocked" and rows[-1]["attempts"] == 0
    sent = [r for r in rows if r["status"] == "ok" and not r["cache_hit"]]
    per_call = sent[0]["input_tokens"] + sent[0]["output_tokens"]
    # cache hits spent nothing: the budget let as many sends through as if they had never happened
    assert len(sent) >= 200 // per_call - 1  # had the 5 hits counted, at most 200 // per_call - 5 would be sent
    assert sum(r["input_tokens"] + r["output_tokens"] for r in sent) <= 200


def test_an_azure_v1_target(regions: dict[str, Simulator], tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    sim = regions["francecentral"]
    client = routed(journal, {"targets": [{"name": "v1", "base_url": sim.url + "/openai/v1", "provider": "azure",
                                           "auth": {"type": "api_key", "api_key": "k"}, "deployment": "gpt-4o"}]})
    client.chat.completions.create(model="anything", messages=MSG)
    client.close()
    [row] = events(journal)
    assert row["provider"] == "azure_openai" and row["deployment"] == "gpt-4o" and row["region"] == "France Central"
    assert row["cost_usd"] is not None


def test_a_call_that_cannot_be_described_is_still_routed(regions: dict[str, Simulator], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    journal = Journal(tmp_path / "j.db")
    client = routed(journal, {"targets": [azure_target("eastus2", regions["eastus2"])]})

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("describe bug")

    monkeypatch.setattr(tokenid.clients, "Call", broken)
    assert client.chat.completions.create(model="gpt-4o", messages=MSG).choices  # not journaled, still served
    client.close()


def test_keys_are_never_stored_or_logged(regions: dict[str, Simulator], tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    journal = Journal(tmp_path / "j.db")
    client = routed(journal, {"strategy": "fallback", "targets": [
        azure_target("sweden", regions["swedencentral"], headers=fault("401")),
        azure_target("eastus2", regions["eastus2"], headers=fault("503")),
        {"name": "openai", "provider": "openai", "base_url": regions["francecentral"].openai_base_url,
         "auth": {"type": "api_key", "api_key": "sk-proj-openai-SECRET-abcdef"}, "headers": fault("500")},
    ], "on_status": [401, 503, 500]})
    with caplog.at_level(logging.DEBUG), pytest.raises(Exception) as err:
        client.chat.completions.create(model="gpt-4o", messages=MSG)
    client.close()
    assert "SECRET" not in str(err.value)
    [row] = events(journal)
    assert [a["outcome"] for a in row["route"]["attempts"]] == ["status 401", "status 503", "status 500"]
    con = sqlite3.connect(journal.path)
    dump = "\n".join(con.iterdump())
    con.close()
    assert "SECRET" not in dump and "Bearer" not in dump
    assert "SECRET" not in caplog.text


def test_an_upload_reaches_the_region_that_answers_whole(regions: dict[str, Simulator], tmp_path: Path) -> None:
    import io
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16_000)
        writer.writeframes(b"\0\0" * 48_000)  # 3 seconds
    journal = Journal(tmp_path / "j.db")
    client = routed(journal, {"strategy": "fallback", "targets": [
        azure_target("sweden", regions["swedencentral"], headers=fault("503")),
        azure_target("eastus2", regions["eastus2"]),
    ], "retry": {"attempts": 2, "initial_delay_s": 0.001}, "breaker": False})
    upload = io.BytesIO(out.getvalue())
    client.audio.transcriptions.create(model="whisper", file=("speech.wav", upload))
    client.close()
    [row] = events(journal)
    assert row["status"] == "ok" and row["attempts"] == 3
    assert row["units"]["audio_seconds"] == 3  # the whole file reached the region that answered


def test_calls_on_stored_objects_stay_on_the_first_target(regions: dict[str, Simulator], tmp_path: Path) -> None:
    import io
    import json

    journal = Journal(tmp_path / "j.db")
    client = routed(journal, {"strategy": "loadbalance", "targets": [
        azure_target("sweden", regions["swedencentral"], weight=0.01),
        azure_target("eastus2", regions["eastus2"], weight=100),
    ]})
    line = {"custom_id": "1", "method": "POST", "url": "/chat/completions",
            "body": {"model": "gpt-4o-mini-batch", "messages": MSG}}
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO(json.dumps(line).encode())), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/chat/completions", completion_window="24h")
    assert client.batches.retrieve(batch.id).id == batch.id  # the file and the batch live in sweden
    for _ in range(3):
        client.embeddings.create(model="text-embedding-3-small", input="hi")  # stateless: balanced by weight
    client.close()
    rows = events(journal)
    pinned = [r for r in rows if r["endpoint"] != "embeddings"]
    assert len(pinned) == 3
    assert all(r["route"]["strategy"] == "pinned" and r["route"]["served_by"] == "sweden" for r in pinned)
    assert all(r["region"] == "Sweden Central" for r in pinned)
    balanced = [r for r in rows if r["endpoint"] == "embeddings"]
    assert all(r["route"]["strategy"] == "loadbalance" and r["route"]["served_by"] == "eastus2" for r in balanced)


def test_a_response_that_continues_a_stored_one_is_pinned() -> None:
    from tokenid.routing.router import is_stateless

    assert is_stateless("post", "responses", {"input": "hi"})
    assert not is_stateless("post", "responses", {"input": "hi", "previous_response_id": "resp_1"})
    assert not is_stateless("get", "responses", None)
    assert not is_stateless("post", "files", None) and not is_stateless("post", "batches", None)
    assert is_stateless("post", "audio.transcriptions", None)
