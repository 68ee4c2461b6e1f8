"""Regions for routing tests: three real simulators on 127.0.0.1, each its own Azure region (import the fixture)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tokenid import Journal, JournaledAzureOpenAI
from tokenid.simulator import Simulator

from conftest import AZURE_VERSION, DEPLOYMENTS

MSG = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="session")
def regions() -> Iterator[dict[str, Simulator]]:
    sims = {name: Simulator(region=name) for name in ("swedencentral", "eastus2", "francecentral")}
    for sim in sims.values():
        sim.start()
    yield sims
    for sim in sims.values():
        sim.stop()


def azure_target(name: str, sim: Simulator, **kw: Any) -> dict[str, Any]:
    """A routing target for one simulator region, authenticated with a literal key."""
    return {"name": name, "azure_endpoint": sim.azure_endpoint, "api_version": AZURE_VERSION,
            "auth": {"type": "api_key", "api_key": f"key-{name}-SECRET"}, **kw}


def fault(kind: str, times: int | None = None, **extra: str) -> dict[str, str]:
    """Simulator headers that make a target fail with ``kind`` (the first ``times`` requests only, if given)."""
    headers = {"x-sim-fault": kind, **extra}
    if times is not None:
        headers["x-sim-fail-times"] = str(times)
        headers["x-sim-fault-key"] = uuid.uuid4().hex
    return headers


def routed(journal: Journal, routing: dict[str, Any], cls: Any = JournaledAzureOpenAI, **kw: Any) -> Any:
    kw.setdefault("max_retries", 0)
    return cls(journal=journal, routing=routing, deployments=DEPLOYMENTS, **kw)


def events(journal: Journal) -> list[dict[str, Any]]:
    journal.flush()
    return journal.events()
