"""Pieces of a call's description that are written for speed: they must say exactly what the slow way says."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import httpx2
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenid.call import _iso, api_version_of


def _slow_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def test_timestamps_are_formatted_as_datetime_formats_them() -> None:
    rng = random.Random(7)
    edges = [0.0, 0.0000005, 0.9999995, 0.9999994, 1.0000005, 1764670000.9999996, 1764670000.0000004,
             1764670000.0000005, 4102444799.999999]
    samples = [*edges, *(rng.uniform(0, 4.1e9) for _ in range(50_000)),
               *(1764670000 + rng.random() for _ in range(50_000))]
    for ts in samples:
        assert _iso(ts) == _slow_iso(ts), ts
    # the cached second is per second: a call in the next second never reuses the previous one's text
    assert _iso(1764670000.5).startswith("2025-12-02T10:06:40.")
    assert _iso(1764670001.5).startswith("2025-12-02T10:06:41.")


query_text = st.text(alphabet="abc-=&%+2019_ v.", max_size=40)


@settings(max_examples=500, deadline=None, database=None)
@given(st.lists(st.tuples(st.sampled_from(["api-version", "x", "api-versions", "API-version"]),
                          st.text(alphabet="0123456789-preview+% &=", max_size=14)), max_size=4), query_text)
def test_api_version_is_read_as_the_url_parser_reads_it(params: list[tuple[str, str]], noise: str) -> None:
    url = httpx2.URL("https://r.openai.azure.com/openai/deployments/d/chat/completions", params=params)
    assert api_version_of(url.query) == url.params.get("api-version")
    for query in (noise, "api-version&" + noise, noise + "&api-version", "api-version=" + noise):
        raw = httpx2.URL("https://r.openai.azure.com/x?" + query)
        assert api_version_of(raw.query) == raw.params.get("api-version"), query
