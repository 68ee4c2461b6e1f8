"""``tokenid demo``: real calls through the journaled Azure client against the local simulator."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
from rich.console import Console

from ..clients import AsyncJournaledAzureOpenAI, JournaledAzureOpenAI
from ..context import session
from ..errors import BudgetExceeded
from ..journal import default_journal_target, get_journal
from ..simulator import Simulator

console = Console()

DEPLOYMENTS = {
    "gpt-4o": {"model": "gpt-4o", "version": "2024-08-06", "type": "global"},
    "gpt-4o-mini": {"model": "gpt-4o-mini", "version": "2024-07-18", "type": "global"},
    "text-embedding-3-small": {"model": "text-embedding-3-small", "type": "global"},
}
QUESTIONS = [
    "How do I reset my password?",
    "What is your refund policy for annual plans?",
    "Can I move my subscription to another region?",
]


def _demo_path(journal: str | None) -> str:
    if journal:
        return journal
    path = Path(default_journal_target()).with_name("demo-journal.db")
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)  # each demo starts from an empty journal
    return str(path)


def _sync_calls(endpoint: str, journal: str) -> None:
    client = JournaledAzureOpenAI(azure_endpoint=endpoint, api_key="demo-key", api_version="2024-10-21",
                                  session_id="support-bot", tags={"team": "support"}, journal=journal,
                                  deployments=DEPLOYMENTS)
    with client:
        for question in QUESTIONS:
            reply = client.chat.completions.create(model="gpt-4o-mini",
                                                   messages=[{"role": "user", "content": question}])
            text = reply.choices[0].message.content or ""
            console.print(f"  chat      gpt-4o-mini  {reply.usage.prompt_tokens if reply.usage else '?':>3} tokens in  "
                          f"→ {text[:32]}…", overflow="ellipsis", no_wrap=True)
        stream = client.chat.completions.create(
            model="gpt-4o", max_tokens=120, stream=True,
            messages=[{"role": "user", "content": "Explain our escalation process step by step."}])
        pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
        console.print(f"  stream    gpt-4o       {len(pieces)} chunks; TokenID asked for usage and folded it in")
        vectors = client.embeddings.create(model="text-embedding-3-small", input=QUESTIONS)
        console.print(f"  embed     text-embedding-3-small  {len(vectors.data)} vectors")
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "bad"}],
                                           extra_headers={"x-sim-fault": "content_filter"})
        except openai.BadRequestError as exc:
            console.print(f"  rejected by Azure's content filter: HTTP {exc.status_code} (journaled as an error)")

    legacy = JournaledAzureOpenAI(azure_endpoint=endpoint, api_key="demo-key", api_version="2024-02-01",
                                  session_id="support-bot", journal=journal, deployments=DEPLOYMENTS)
    with legacy:
        stream = legacy.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                messages=[{"role": "user", "content": QUESTIONS[0]}])
        for _ in stream:
            pass
        console.print("  stream    api-version 2024-02-01: no usage sent, tokens estimated (o200k)")


async def _async_calls(endpoint: str, journal: str) -> None:
    client = AsyncJournaledAzureOpenAI(azure_endpoint=endpoint, api_key="demo-key", api_version="2024-10-21",
                                       journal=journal, deployments=DEPLOYMENTS, tags={"team": "analytics"})
    async with client:
        with session("nightly-summaries", tags={"feature": "summaries"}):
            replies = await asyncio.gather(*[
                client.chat.completions.create(model="gpt-4o", max_tokens=60,
                                               messages=[{"role": "user", "content": f"Summarise ticket #{n}"}])
                for n in range(4)
            ])
            console.print(f"  async     gpt-4o       {len(replies)} concurrent calls")
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "Draft a status update."}])
            count = 0
            async for _chunk in stream:
                count += 1
                if count == 5:
                    break  # the caller stops early: journaled as aborted, tokens estimated
            await stream.close()
            console.print("  async     stream stopped after 5 chunks (journaled as aborted)")
            await client.embeddings.create(model="text-embedding-3-small", input="nightly digest")


# a guarded client: a token budget per session, and gpt-4o rewritten to gpt-4o-mini
GUARDS = {
    "counters": "sqlite",
    "budgets": [{"name": "demo-session-tokens", "scope": "session", "limit_tokens": 150, "window": "day"}],
    "model_ceiling": {"name": "mini-only", "allowed": ["gpt-4o-mini", "text-embedding-3-small"],
                      "target": "gpt-4o-mini"},
}


def _guarded_calls(endpoint: str, journal: str) -> None:
    client = JournaledAzureOpenAI(azure_endpoint=endpoint, api_key="demo-key", api_version="2024-10-21",
                                  session_id="guarded-bot", tags={"team": "support"}, journal=journal,
                                  deployments=DEPLOYMENTS, enforcement_config=GUARDS)
    with client:
        reply = client.chat.completions.create(model="gpt-4o", max_tokens=40,
                                               messages=[{"role": "user", "content": "Hi!"}])
        console.print(f"  rewrite   asked for gpt-4o, served {reply.model} (model ceiling 'mini-only')")
        for n in range(3):
            try:
                client.chat.completions.create(model="gpt-4o-mini", max_tokens=40,
                                               messages=[{"role": "user", "content": f"Follow-up #{n}"}])
            except BudgetExceeded as exc:
                console.print(f"  blocked   {str(exc)[:90]}", overflow="ellipsis", no_wrap=True)
                break
        else:
            console.print("  (the session's token budget was not reached)")


def run_demo(journal: str | None) -> None:
    path = _demo_path(journal)
    with Simulator() as sim:
        console.print(f"[bold]TokenID demo[/bold] — Azure OpenAI simulator at {sim.url}, journal {path}\n")
        console.print("[bold]Session support-bot[/bold] (sync client)")
        _sync_calls(sim.azure_endpoint, path)
        console.print("\n[bold]Session nightly-summaries[/bold] (async client)")
        asyncio.run(_async_calls(sim.azure_endpoint, path))
        console.print("\n[bold]Session guarded-bot[/bold] (enforcement: a token budget and a model ceiling)")
        _guarded_calls(sim.azure_endpoint, path)
    j = get_journal(path)
    j.flush()
    console.print()
    from . import print_report

    print_report(j, ["session", "deployment", "model"])
    console.print("\nExplore the demo's journal:")
    for command in ("sessions", "session show support-bot", "tail", "export --format csv"):
        console.print(f"  tokenid {command} --journal {path}", soft_wrap=True, highlight=False)
    console.print("\n[bold]Open the dashboard on the demo's journal[/bold] (then http://127.0.0.1:8050/ in a browser):")
    console.print(f"  tokenid dashboard --journal {path}", soft_wrap=True, highlight=False)
