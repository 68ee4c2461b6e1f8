"""Session and tags blocks: nesting, threads, asyncio tasks; and the public names."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

import tokenid
from tokenid import ConfigError
from tokenid.context import current_session, current_tags


def test_nesting_merges_tags_and_restores() -> None:
    with tokenid.session("outer", tags={"team": "a", "user": "u1"}):
        with tokenid.tags(user="u2", feature=3):
            assert current_session() == "outer"
            assert current_tags() == {"team": "a", "user": "u2", "feature": "3"}
        with tokenid.session("inner"):
            assert current_session() == "inner"
        assert current_tags() == {"team": "a", "user": "u1"}
    assert current_session() is None and current_tags() == {}


def test_threads_do_not_share_blocks() -> None:
    seen: dict[str, object] = {}
    started = threading.Event()
    release = threading.Event()

    def other() -> None:
        started.set()
        release.wait(5)
        seen["other"] = current_session()

    with tokenid.session("main-thread"):
        t = threading.Thread(target=other)
        t.start()
        started.wait(5)
        release.set()
        t.join(5)
        seen["main"] = current_session()
        carried = contextvars.copy_context().run(current_session)
    assert seen == {"other": None, "main": "main-thread"}
    assert carried == "main-thread"


def test_asyncio_tasks_inherit_and_stay_separate() -> None:
    async def child(name: str) -> tuple[str | None, str | None]:
        before = current_session()
        with tokenid.session(name):
            await asyncio.sleep(0.001)
            return before, current_session()

    async def main() -> list[tuple[str | None, str | None]]:
        with tokenid.session("parent"):
            return await asyncio.gather(child("a"), child("b"))

    assert asyncio.run(main()) == [("parent", "a"), ("parent", "b")]


def test_bad_values_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="session_id"), tokenid.session(""):
        pass
    with pytest.raises(ConfigError, match="tag 'x'"), tokenid.tags(x=[1]):
        pass


def test_public_names_are_exactly_these() -> None:
    assert sorted(tokenid.__all__) == sorted([
        "AsyncJournaledAzureOpenAI", "AsyncJournaledOpenAI", "BudgetExceeded", "ConfigError", "EnforcementError",
        "Journal", "JournalError", "JournaledAzureOpenAI", "JournaledOpenAI", "ModelNotAllowed", "NoHealthyTarget",
        "RateLimitExceeded", "RoutingError", "TokenIDError", "Usage", "__version__", "default_journal_target",
        "get_journal", "session", "tags",
    ])
    for name in tokenid.__all__:
        assert hasattr(tokenid, name)
    import openai

    assert issubclass(tokenid.BudgetExceeded, openai.OpenAIError)
    assert issubclass(tokenid.BudgetExceeded, tokenid.TokenIDError)
