"""Enforcement through the real clients and the simulator: every rule, shadow mode, bad configuration."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import openai
import pytest

import tokenid
from tokenid import BudgetExceeded, ConfigError, Journal, ModelNotAllowed, RateLimitExceeded

from conftest import DEPLOYMENTS, make_client

MSG = [{"role": "user", "content": "hello there"}]


def rows(journal: Journal, session: str) -> list[dict[str, Any]]:
    journal.flush()
    return journal.events(session_id=session)


def client_with(sim: Any, journal: Journal, session: str, config: dict[str, Any], kind: str = "azure",
                **kw: Any) -> Any:
    return make_client(kind, sim, journal, session_id=session, enforcement_config=config, **kw)


# -- configuration -----------------------------------------------------------------------------------

@pytest.mark.parametrize("config,message", [
    ({"budgets": [{"scope": "session", "limit_usd": "-1"}]}, r"budgets\[0\]\.limit_usd must be zero or more"),
    ({"budgets": [{"scope": "session", "limit_usd": 1, "window": "dayly"}]}, r"budgets\[0\]\.window.*dayly"),
    ({"budgets": [{"scope": "team", "limit_usd": 1}]}, r"budgets\[0\]\.scope: unknown scope 'team'"),
    ({"budgets": [{"limit_usd": 1, "colour": "red"}]}, r"budgets\[0\]: unknown key.*'colour'"),
    ({"budgets": [{"limit_usd": 1, "limit_tokens": 5}]}, r"exactly one of limit_usd or limit_tokens"),
    ({"model_ceiling": {"max_model": "gpt-4o-mini", "target": "no-such-deployment"}},
     r"model_ceiling\.target: 'no-such-deployment' is not a deployment of this client"),
    ({"routes": [{"when": {"model": "gpt-4o"}, "to": "gpt-5-nano"}]}, r"routes\[0\]\.to: 'gpt-5-nano' is not a dep"),
    ({"rate_limits": [{"scope": "session"}]}, r"rate_limits\[0\] needs requests_per_minute"),
    ({"throttle": {}}, r"unknown key\(s\) 'throttle'"),
])
def test_bad_configuration_fails_at_construction(sim: Any, journal: Journal, config: dict[str, Any],
                                                 message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        client_with(sim, journal, "cfg", config)


def test_config_from_a_toml_file(sim: Any, journal: Journal, tmp_path: Any) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('mode = "enforce"\n[[budgets]]\nname = "tiny"\nscope = "session"\nlimit_usd = "0.0000001"\n')
    client = client_with(sim, journal, "toml", str(path))  # type: ignore[arg-type]
    with pytest.raises(BudgetExceeded):
        client.chat.completions.create(model="gpt-4o", messages=MSG)
    client.close()


# -- budgets -----------------------------------------------------------------------------------------

def test_budget_blocks_and_the_blocked_call_is_journaled(sim: Any, journal: Journal) -> None:
    config = {"budgets": [{"name": "session-cap", "scope": "session", "limit_usd": "0.0015", "window": "day"}]}
    client = client_with(sim, journal, "budget", config)
    sent = 0
    with pytest.raises(BudgetExceeded) as info:
        for _ in range(50):
            client.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=40)
            sent += 1
    client.close()
    error = info.value
    assert isinstance(error, openai.OpenAIError) and isinstance(error, tokenid.TokenIDError)
    text = str(error)
    assert "session-cap" in text and "session:budget" in text and "limit $0.0015" in text and "spent+reserved" in text
    events = rows(journal, "budget")
    ok = [e for e in events if e["status"] == "ok"]
    blocked = [e for e in events if e["status"] == "blocked"]
    assert len(ok) == sent >= 1 and len(blocked) == 1
    assert blocked[0]["cost_usd"] == "0" and blocked[0]["http_status"] is None
    assert blocked[0]["error_type"] == "BudgetExceeded"
    assert blocked[0]["enforcement"][0] | {"scope": "x"} == {
        "rule": "session-cap", "type": "budget", "action": "block", "scope": "x",
        "reason": blocked[0]["enforcement"][0]["reason"]}
    spent = sum(Decimal(e["cost_usd"]) for e in ok)
    assert spent <= Decimal("0.0015")


def test_budget_warn_lets_calls_through(sim: Any, journal: Journal) -> None:
    config = {"budgets": [{"name": "soft", "scope": "global", "limit_tokens": 10, "action": "warn"}]}
    client = client_with(sim, journal, "warn", config)
    client.chat.completions.create(model="gpt-4o", messages=MSG)
    client.close()
    (event,) = rows(journal, "warn")
    assert event["status"] == "ok"
    assert event["enforcement"][0]["action"] == "warn" and event["enforcement"][0]["rule"] == "soft"


def test_budget_downgrade_rewrites_to_a_cheaper_deployment(sim: Any, journal: Journal) -> None:
    config = {"budgets": [{"name": "big-model", "scope": "deployment:gpt-4o", "limit_usd": "0.000001",
                           "action": "downgrade", "downgrade_to": "gpt-4o-mini"}]}
    client = client_with(sim, journal, "down", config)
    reply = client.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=20)
    client.close()
    (event,) = rows(journal, "down")
    assert reply.model.startswith("gpt-4o-mini")
    assert event["deployment"] == "gpt-4o-mini" and event["model_requested"] == "gpt-4o"
    assert event["enforcement"][0] | {"reason": ""} == {"rule": "big-model", "type": "budget", "action": "downgrade",
                                                        "scope": "deployment:gpt-4o", "from": "gpt-4o",
                                                        "to": "gpt-4o-mini", "reason": ""}


def test_token_budget_per_tag(sim: Any, journal: Journal) -> None:
    config = {"budgets": [{"name": "team", "scope": "tag:team", "limit_tokens": 150, "window": "hour"}]}
    client = client_with(sim, journal, "tags", config)
    with tokenid.tags(team="search"):
        client.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=50)
        with pytest.raises(BudgetExceeded, match="tag:team=search"):
            for _ in range(10):
                client.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=50)
    with tokenid.tags(team="ads"):  # another value of the tag has its own budget
        client.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=50)
    client.close()
    journal.flush()
    by_team = [(e["tags"]["team"], e["status"]) for e in journal.events(session_id="tags")]
    assert by_team[-1] == ("ads", "ok") and ("search", "blocked") in by_team


# -- ceiling, routes, limits ------------------------------------------------------------------------

def test_model_ceiling_rewrites_or_blocks(sim: Any, journal: Journal) -> None:
    rewrite = client_with(sim, journal, "ceil", {"model_ceiling": {"max_model": "gpt-4o-mini",
                                                                     "target": "gpt-4o-mini"}})
    reply = rewrite.chat.completions.create(model="gpt-4o", messages=MSG)
    rewrite.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    rewrite.close()
    assert reply.model.startswith("gpt-4o-mini")
    first, second = rows(journal, "ceil")
    assert first["deployment"] == "gpt-4o-mini" and first["enforcement"][0]["action"] == "rewrite"
    assert second["enforcement"] is None
    block = client_with(sim, journal, "ceil-block", {"model_ceiling": {"max_model": "gpt-4o-mini", "action": "block"}})
    with pytest.raises(ModelNotAllowed, match="model ceiling"):
        block.chat.completions.create(model="gpt-4o", messages=MSG)
    block.close()
    assert rows(journal, "ceil-block")[0]["status"] == "blocked"


def test_routes_choose_a_deployment(sim: Any, journal: Journal) -> None:
    config = {"routes": [
        {"name": "free-tier", "when": {"tags": {"tier": "free"}}, "to": "gpt-4o-mini"},
        {"name": "long-answers", "when": {"max_tokens_over": 500}, "to": "gpt-4o-mini"},
    ]}
    client = client_with(sim, journal, "routes", config)
    with tokenid.tags(tier="free"):
        client.chat.completions.create(model="gpt-4o", messages=MSG)
    client.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=800)
    client.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=10)
    client.close()
    deployments = [(e["deployment"], (e["enforcement"] or [{}])[0].get("rule")) for e in rows(journal, "routes")]
    assert deployments == [("gpt-4o-mini", "free-tier"), ("gpt-4o-mini", "long-answers"), ("gpt-4o", None)]


def test_max_tokens_clamp(sim: Any, journal: Journal) -> None:
    client = client_with(sim, journal, "clamp", {"max_tokens": 25})
    reply = client.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=400)
    client.close()
    assert reply.usage is not None and reply.usage.completion_tokens <= 25
    (event,) = rows(journal, "clamp")
    assert event["enforcement"][0] | {"reason": ""} == {"rule": "max_tokens", "type": "max_tokens",
                                                        "action": "clamp", "from": 400, "to": 25, "reason": ""}


def test_rate_limit_blocks_then_waits(sim: Any, journal: Journal) -> None:
    block = client_with(sim, journal, "rl", {"rate_limits": [{"name": "rpm", "scope": "session",
                                                              "requests_per_minute": 2}]})
    block.chat.completions.create(model="gpt-4o", messages=MSG)
    block.chat.completions.create(model="gpt-4o", messages=MSG)
    with pytest.raises(RateLimitExceeded, match="limit 2 requests/min"):
        block.chat.completions.create(model="gpt-4o", messages=MSG)
    block.close()
    wait = client_with(sim, journal, "rl-wait", {"rate_limits": [{"name": "rps", "scope": "session",
                                                                   "requests_per_minute": 120, "action": "wait"}]})
    start = time.monotonic()
    for _ in range(122):  # 120 in the bucket, then one every 0.5 s
        wait.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=1)
    elapsed = time.monotonic() - start
    wait.close()
    assert 0.9 <= elapsed < 5
    assert any(e["enforcement"] and e["enforcement"][0]["action"] == "wait" for e in rows(journal, "rl-wait"))


def test_allow_and_deny_lists(sim: Any, journal: Journal) -> None:
    client = client_with(sim, journal, "acl", {"deny": {"endpoints": ["embeddings"]},
                                               "allow": {"deployments": ["gpt-4o-mini", "text-embedding-3-small"]}})
    client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    with pytest.raises(ModelNotAllowed, match="not on the allow list"):
        client.chat.completions.create(model="gpt-4o", messages=MSG)
    with pytest.raises(ModelNotAllowed, match="deny list"):
        client.embeddings.create(model="text-embedding-3-small", input="x")
    client.close()
    assert [e["status"] for e in rows(journal, "acl")] == ["ok", "blocked", "blocked"]


def test_shadow_mode_changes_nothing_and_says_what_it_would_do(sim: Any, journal: Journal) -> None:
    config = {"mode": "shadow", "max_tokens": 5, "model_ceiling": {"max_model": "gpt-4o-mini", "target": "gpt-4o-mini"},
              "budgets": [{"name": "zero", "scope": "global", "limit_usd": "0"}]}
    client = client_with(sim, journal, "shadow", config)
    reply = client.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=30)
    client.close()
    assert reply.model.startswith("gpt-4o-2024") and reply.usage is not None and reply.usage.completion_tokens == 30
    (event,) = rows(journal, "shadow")
    assert event["status"] == "ok" and event["deployment"] == "gpt-4o"
    actions = {(a["type"], a["action"]) for a in event["enforcement"]}
    assert actions == {("model_ceiling", "rewrite"), ("max_tokens", "clamp"), ("budget", "block")}
    assert all(a["shadow"] for a in event["enforcement"])


def test_async_client_enforces_too(sim: Any, journal: Journal) -> None:
    client = make_client("async_azure", sim, journal, session_id="async-enf",
                         enforcement_config={"deny": {"deployments": ["gpt-4o"]}})

    async def main() -> None:
        await client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
        with pytest.raises(ModelNotAllowed):
            await client.chat.completions.create(model="gpt-4o", messages=MSG)
        await client.close()

    asyncio.run(main())
    assert [e["status"] for e in rows(journal, "async-enf")] == ["ok", "blocked"]


def test_openai_targets_are_models(sim: Any, journal: Journal) -> None:
    client = client_with(sim, journal, "oa", {"model_ceiling": {"max_model": "gpt-4o-mini", "target": "gpt-4o-mini"}},
                         kind="openai")
    reply = client.chat.completions.create(model="gpt-4o", messages=MSG)
    client.close()
    assert reply.model.startswith("gpt-4o-mini")
    assert DEPLOYMENTS  # the Azure map is irrelevant to OpenAI clients


def test_stream_settles_its_reservation_to_the_true_tokens(sim: Any, journal: Journal) -> None:
    from tokenid.enforce import SQLiteCounters, parse_window

    config = {"budgets": [{"name": "tok", "scope": "session", "limit_tokens": 100_000, "window": "day"}]}
    client = client_with(sim, journal, "stream-budget", config)
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MSG, stream=True, max_tokens=70))
    client.close()
    (event,) = rows(journal, "stream-budget")
    spent, reserved = SQLiteCounters(journal.path).usage("tok|session:stream-budget", parse_window("day"))
    assert chunks[-1].usage is not None
    assert reserved == 0
    assert spent == event["input_tokens"] + event["output_tokens"] == chunks[-1].usage.total_tokens


def test_warn_is_logged(sim: Any, journal: Journal, caplog: pytest.LogCaptureFixture) -> None:
    client = client_with(sim, journal, "warn-log", {"budgets": [{"name": "soft", "limit_tokens": 1,
                                                                  "action": "warn"}]})
    with caplog.at_level("WARNING", logger="tokenid.enforce"):
        client.chat.completions.create(model="gpt-4o", messages=MSG)
    client.close()
    assert any("soft" in r.getMessage() and "call allowed" in r.getMessage() for r in caplog.records)
