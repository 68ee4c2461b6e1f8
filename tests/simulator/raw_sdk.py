"""Raw ``openai`` SDK clients for the simulator's own tests: one per route family, closed after each test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tokenid.simulator import Simulator

_open: list[openai.OpenAI] = []


@pytest.fixture(autouse=True)
def close_raw_clients() -> Iterator[None]:
    """Import into a test module to close the clients its tests made."""
    yield
    while _open:
        _open.pop().close()


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    """A simulator of the module's own (its tests may change its state, such as files and batches)."""
    with Simulator() as server:
        yield server


def raw_client(sim: Simulator, kind: str, *, key: str, api_version: str, **kw: Any) -> openai.OpenAI:
    """openai: /v1 · azure: deployment routes with api-version · azure_v1: /openai/v1."""
    made: openai.OpenAI
    if kind == "azure":
        made = openai.AzureOpenAI(azure_endpoint=sim.azure_endpoint, api_key=key, api_version=api_version, **kw)
    elif kind == "azure_v1":
        made = openai.OpenAI(base_url=sim.url + "/openai/v1", api_key=key, **kw)
    else:
        made = openai.OpenAI(base_url=sim.openai_base_url, api_key=key, **kw)
    _open.append(made)
    return made
