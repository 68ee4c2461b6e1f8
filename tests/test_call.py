"""Pieces of a call's description that are written for speed: they must say exactly what the slow way says."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import httpx2
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenid.call import _WANTED_HEADERS, _iso, _pick_headers, api_version_of


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


_HEADER_NAMES = st.sampled_from(["x-ms-region", "X-MS-Region", "x-request-id", "X-Request-ID", "apim-request-id",
                                 "Content-Type", "content-type", "api-key", "Authorization", "date", "x-other"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_HEADER_NAMES, st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=12)),
                max_size=12))
def test_the_picked_headers_are_what_the_public_headers_api_gives(pairs: list[tuple[str, str]]) -> None:
    # the pick reads httpx2's lower-cased names directly; it must agree with the public items, case and repeats
    headers = httpx2.Headers([(name.encode(), value.encode("latin-1")) for name, value in pairs])
    expected = {k.lower(): v.decode("latin-1") for k, v in headers.raw if k.lower() in _WANTED_HEADERS}
    assert _pick_headers(headers) == expected
    assert not {b"api-key", b"authorization"} & set(_pick_headers(headers))


def test_headers_of_another_kind_are_picked_through_the_public_api() -> None:
    class Plain:  # a Headers-like object without httpx2's internal list (a websocket library's, say)
        def __init__(self) -> None:
            self.raw = [(b"X-MS-Region", b"swedencentral"), (b"Authorization", b"Bearer x")]

    assert _pick_headers(Plain()) == {b"x-ms-region": "swedencentral"}  # type: ignore[arg-type]
