"""Every billable endpoint, through the journaled clients over real HTTP against the simulator: journaled and priced.

Images, speech, transcriptions and translations, chat with audio, Responses built-in tools, Batch API output files
and fine-tuning jobs; sync and async, Azure OpenAI and OpenAI. Expected costs come from the request, what the caller
saw in the response, and the documented list prices below (openai.com/api/pricing), never from TokenID's pricing.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import math
import wave
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices
import pytest

from tokenid import Journal
from tokenid.simulator import Simulator
from tokenid.simulator.media import tiny_png

from conftest import DEPLOYMENTS, make_client

KINDS = ["azure", "openai", "async_azure", "async_openai"]
OPENAI_KINDS = ["openai", "async_openai"]
M = Decimal(1_000_000)

# the Azure deployments these tests call, mapped to the model each serves (the simulator's default deployments)
AZURE_DEPLOYMENTS: dict[str, Any] = {
    **DEPLOYMENTS,
    "dall-e-3": {"model": "dall-e-3", "type": "global"},
    "gpt-image-1": {"model": "gpt-image-1", "type": "global"},
    "tts": {"model": "tts-1"},
    "tts-hd": {"model": "tts-1-hd"},
    "gpt-4o-mini-tts": {"model": "gpt-4o-mini-tts"},
    "whisper": {"model": "whisper-1"},
    "gpt-4o-transcribe": {"model": "gpt-4o-transcribe"},
    "gpt-4o-audio": {"model": "gpt-4o-audio-preview", "version": "2024-12-17", "type": "global"},
    "gpt-4o-mini-batch": {"model": "gpt-4o-mini", "version": "2024-07-18", "type": "global_batch"},
}
# logical name -> (Azure deployment, OpenAI model, canonical model TokenID should price)
MODELS: dict[str, tuple[str, str, str]] = {
    "dall-e-3": ("dall-e-3", "dall-e-3", "dall-e-3"),
    "gpt-image-1": ("gpt-image-1", "gpt-image-1", "gpt-image-1"),
    "tts": ("tts", "tts-1", "tts-1"),
    "tts-hd": ("tts-hd", "tts-1-hd", "tts-1-hd"),
    "gpt-4o-mini-tts": ("gpt-4o-mini-tts", "gpt-4o-mini-tts", "gpt-4o-mini-tts"),
    "whisper": ("whisper", "whisper-1", "whisper-1"),
    "gpt-4o-transcribe": ("gpt-4o-transcribe", "gpt-4o-transcribe", "gpt-4o-transcribe"),
    "gpt-4o-audio": ("gpt-4o-audio", "gpt-4o-audio-preview", "gpt-4o-audio-preview"),
    "gpt-4o-mini": ("gpt-4o-mini", "gpt-4o-mini", "gpt-4o-mini"),
}

# ---- documented list prices (USD), openai.com/api/pricing
DALLE_PER_IMAGE = {
    ("dall-e-3", "standard", "1024x1024"): Decimal("0.040"),
    ("dall-e-3", "hd", "1024x1792"): Decimal("0.120"),
    ("dall-e-2", "standard", "1024x1024"): Decimal("0.020"),
    ("dall-e-2", "standard", "512x512"): Decimal("0.018"),
}
TTS_PER_M_CHARS = {"tts": Decimal(15), "tts-hd": Decimal(30)}
WHISPER_PER_SECOND = Decimal("0.006") / 60  # $0.006 / minute = $0.36 / hour
GPT_IMAGE_1 = {"text_in": Decimal(5), "image_in": Decimal(10), "out": Decimal(40)}  # per 1M tokens
MINI_TTS = {"text_in": Decimal("0.60"), "audio_out": Decimal(12)}
SPEECH_AUDIO_TOKENS_PER_MINUTE = 1250  # $0.015 / minute of gpt-4o-mini-tts audio at $12 / 1M audio tokens
TRANSCRIBE = {"text_in": Decimal("2.50"), "audio_in": Decimal(6), "out": Decimal(10)}
AUDIO_PREVIEW = {"text_in": Decimal("2.50"), "audio_in": Decimal(40), "text_out": Decimal(10), "audio_out": Decimal(80)}
TOOL_CALL = {"web_search": Decimal(10) / 1000, "file_search": Decimal("2.50") / 1000}
TRAINING_PER_M = {"gpt-4o-mini-2024-07-18": Decimal(3)}
BATCH_DISCOUNT = Decimal("0.5")

# the SDK marks dall-e-2 variations and audio translations deprecated (filterwarnings = error)
deprecated_in_sdk = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")


# ------------------------------------------------------------------------------------------------ helpers


class Api:
    """A journaled client of one kind, called the same way whether it is sync or async."""

    def __init__(self, kind: str, sim: Simulator, journal: Journal, session: str) -> None:
        self.kind = kind
        self.azure = kind.endswith("azure")
        self.is_async = kind.startswith("async")
        self.journal = journal
        self.session = session
        kw: dict[str, Any] = {"session_id": session, "tags": {"suite": "endpoints"}}
        if self.azure:
            kw["deployments"] = AZURE_DEPLOYMENTS
        self.client = make_client(kind, sim, journal, **kw)
        self.loop = asyncio.new_event_loop() if self.is_async else None

    def model(self, name: str) -> str:
        azure_name, openai_name, _ = MODELS[name]
        return azure_name if self.azure else openai_name

    def __call__(self, method: Any, /, **kw: Any) -> Any:
        result = method(**kw)
        return self.loop.run_until_complete(result) if self.loop is not None else result

    def streamed_body(self, resource: Any, /, **kw: Any) -> bytes:
        """The raw body of ``resource.create(**kw)`` read through ``with_streaming_response``."""
        if self.loop is not None:
            async def read() -> bytes:
                async with resource.with_streaming_response.create(**kw) as response:
                    return bytes(await response.read())
            return self.loop.run_until_complete(read())
        with resource.with_streaming_response.create(**kw) as response:
            return bytes(response.read())

    def stream(self, method: Any, /, **kw: Any) -> list[Any]:
        """Every item of a ``stream=True`` call."""
        if self.loop is not None:
            async def collect() -> list[Any]:
                return [item async for item in await method(stream=True, **kw)]
            return self.loop.run_until_complete(collect())
        return list(method(stream=True, **kw))

    def events(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        self.journal.flush()
        rows = self.journal.events()
        return [r for r in rows if endpoint is None or r["endpoint"] == endpoint]

    def one(self, endpoint: str) -> dict[str, Any]:
        rows = self.events(endpoint)
        assert len(rows) == 1, rows
        return rows[0]

    def close(self) -> None:
        if self.loop is not None:
            self.loop.run_until_complete(self.client.close())
            self.loop.close()
        else:
            self.client.close()


@pytest.fixture
def api(kind: str, sim: Simulator, journal: Journal, request: pytest.FixtureRequest) -> Iterator[Api]:
    client = Api(kind, sim, journal, session=request.node.name)
    yield client
    client.close()


def check_row(api: Api, row: dict[str, Any], *, endpoint: str, name: str, usage_source: str,
              cost: Decimal) -> None:
    """The fields every priced call's event must carry, whole."""
    model = api.model(name)
    assert row["endpoint"] == endpoint
    assert row["provider"] == ("azure_openai" if api.azure else "openai")
    assert row["session_id"] == api.session and row["tags"] == {"suite": "endpoints"}
    assert (row["status"], row["http_status"], row["error_type"], row["attempts"]) == ("ok", 200, None, 1)
    assert row["model_requested"] == model
    assert row["deployment"] == (model if api.azure else None)
    assert row["model_resolved_by"] in (("deployment_map",) if api.azure else ("request_model", "response_model"))
    assert row["canonical_model"] is not None and row["canonical_model"].startswith(MODELS[name][2])
    if api.azure:
        assert row["api_version"] == "2024-10-21" and row["deployment_type"] == "global"
    assert row["usage_source"] == usage_source
    assert row["unpriced_reason"] is None
    assert row["cost_usd"] is not None and Decimal(row["cost_usd"]) == cost, (row["cost_usd"], cost)
    assert cost > 0


def wav_file(seconds: float, rate: int = 16_000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(b"\0\0" * round(seconds * rate))
    return out.getvalue()


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as reader:
        return float(reader.getnframes() / reader.getframerate())


def sse_data(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[5:]) for line in body.splitlines() if line.startswith(b"data:") and line[5:].strip()]


def list_price(model: str, *, input_tokens: int, output_tokens: int = 0, cached: int = 0) -> Decimal:
    """The OpenAI list price of tokens, from genai-prices directly (independent of TokenID's pricer)."""
    calc = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=cached or None),
        model, provider_id="openai")
    return Decimal(calc.total_price)


# ------------------------------------------------------------------------------------------------ images


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("quality,size", [(None, None), ("standard", "1024x1024"), ("hd", "1024x1792")])
def test_dalle3_is_priced_per_image(api: Api, quality: str | None, size: str | None) -> None:
    kw = {k: v for k, v in {"quality": quality, "size": size}.items() if v is not None}
    reply = api(api.client.images.generate, model=api.model("dall-e-3"), prompt="a lighthouse at dusk", **kw)
    row = api.one("images.generate")
    n = len(reply.data)
    assert n == 1 and reply.data[0].revised_prompt
    per_image = DALLE_PER_IMAGE["dall-e-3", quality or "standard", size or "1024x1024"]  # the API's defaults
    check_row(api, row, endpoint="images.generate", name="dall-e-3", usage_source="missing", cost=per_image * n)
    assert row["units"] == {"images": n, **{f"image_{k}": v for k, v in kw.items()}}
    assert Decimal(row["units_cost_usd"]) == per_image * n
    assert row["input_tokens"] is None and row["output_tokens"] is None


@deprecated_in_sdk
@pytest.mark.parametrize("kind", OPENAI_KINDS)
def test_dalle2_generations_and_variations_count_every_image(api: Api) -> None:
    generated = api(api.client.images.generate, model="dall-e-2", prompt="three red boxes", n=3, size="512x512")
    variations = api(api.client.images.create_variation, model="dall-e-2", n=2,
                     image=("boxes.png", tiny_png(0x336699), "image/png"))
    gen, var = api.one("images.generate"), api.one("images.variation")
    assert gen["units"] == {"images": len(generated.data), "image_size": "512x512"} and len(generated.data) == 3
    assert Decimal(gen["cost_usd"]) == DALLE_PER_IMAGE["dall-e-2", "standard", "512x512"] * 3
    assert var["units"] == {"images": len(variations.data)} and len(variations.data) == 2
    assert Decimal(var["cost_usd"]) == DALLE_PER_IMAGE["dall-e-2", "standard", "1024x1024"] * 2
    for row in (gen, var):
        assert (row["status"], row["usage_source"], row["provider"], row["model_requested"]) == (
            "ok", "missing", "openai", "dall-e-2")


@pytest.mark.parametrize("kind", KINDS)
def test_gpt_image_generation_and_edit_are_priced_by_tokens(api: Api) -> None:
    model = api.model("gpt-image-1")
    generated = api(api.client.images.generate, model=model, prompt="a watercolor fox", quality="low",
                    size="1024x1536")
    edited = api(api.client.images.edit, model=model, prompt="give the fox a hat",
                 image=("fox.png", tiny_png(0xC0FFEE), "image/png"))
    for endpoint, reply in (("images.generate", generated), ("images.edit", edited)):
        row = api.one(endpoint)
        usage = reply.usage
        text_in = usage.input_tokens_details.text_tokens
        image_in = usage.input_tokens_details.image_tokens
        assert text_in + image_in == usage.input_tokens
        assert (row["input_tokens"], row["output_tokens"], row["image_input_tokens"], row["total_tokens"]) == (
            usage.input_tokens, usage.output_tokens, image_in, usage.total_tokens)
        assert row["units"] == {"images": len(reply.data), "image_size": reply.size, "image_quality": reply.quality}
        cost = (text_in * GPT_IMAGE_1["text_in"] + image_in * GPT_IMAGE_1["image_in"]
                + usage.output_tokens * GPT_IMAGE_1["out"]) / M
        check_row(api, row, endpoint=endpoint, name="gpt-image-1", usage_source="reported", cost=cost)
        assert row["units_cost_usd"] is None  # billed by tokens, not again per image
    assert generated.usage.input_tokens_details.image_tokens == 0
    assert edited.usage.input_tokens_details.image_tokens > 0  # the uploaded PNG was billed as image input


# ------------------------------------------------------------------------------------------------ speech


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["tts", "tts-hd"])
def test_tts_is_priced_per_character(api: Api, name: str) -> None:
    text = "Grüße aus Göteborg — TokenID counts characters, not bytes."
    audio = api(api.client.audio.speech.create, model=api.model(name), voice="alloy", input=text)
    assert audio.content
    row = api.one("audio.speech")
    cost = len(text) * TTS_PER_M_CHARS[name] / M
    check_row(api, row, endpoint="audio.speech", name=name, usage_source="missing", cost=cost)
    assert row["units"] == {"characters": len(text)}
    assert Decimal(row["units_cost_usd"]) == cost
    assert row["input_tokens"] is None


@pytest.mark.parametrize("kind", KINDS)
def test_gpt_4o_mini_tts_reported_over_sse_and_estimated_from_bare_audio(api: Api) -> None:
    text = "The quick brown fox jumps over the lazy dog, twice over."
    model = api.model("gpt-4o-mini-tts")
    body = api.streamed_body(api.client.audio.speech, model=model, voice="alloy", input=text, stream_format="sse")
    done = [e for e in sse_data(body) if e["type"] == "speech.audio.done"]
    assert len(done) == 1
    seen = done[0]["usage"]
    sse_row = api.one("audio.speech")
    assert (sse_row["input_tokens"], sse_row["output_tokens"]) == (seen["input_tokens"], seen["output_tokens"])
    assert sse_row["units"] == {"characters": len(text)}
    cost = (seen["input_tokens"] * MINI_TTS["text_in"] + seen["output_tokens"] * MINI_TTS["audio_out"]) / M
    check_row(api, sse_row, endpoint="audio.speech", name="gpt-4o-mini-tts", usage_source="reported", cost=cost)

    audio = api(api.client.audio.speech.create, model=model, voice="alloy", input=text, response_format="wav")
    seconds = wav_seconds(audio.content)
    assert seconds == pytest.approx(len(text) / 15, abs=0.01)  # the simulated voice: 15 characters a second
    rows = api.events("audio.speech")
    assert len(rows) == 2
    est = next(r for r in rows if r["id"] != sse_row["id"])
    audio_out = round(seconds * SPEECH_AUDIO_TOKENS_PER_MINUTE / 60)
    # the text is counted with the tokenizer: the same count the service reported for the same text over SSE
    assert (est["input_tokens"], est["output_tokens"], est["audio_output_tokens"]) == (
        seen["input_tokens"], audio_out, audio_out)
    assert est["units"] == {"characters": len(text)}
    cost = (seen["input_tokens"] * MINI_TTS["text_in"] + audio_out * MINI_TTS["audio_out"]) / M
    check_row(api, est, endpoint="audio.speech", name="gpt-4o-mini-tts", usage_source="estimated", cost=cost)

    mp3 = api(api.client.audio.speech.create, model=model, voice="alloy", input=text)  # the default format
    assert mp3.content[:2] == b"\xff\xf3"
    (from_mp3,) = [r for r in api.events("audio.speech") if r["id"] not in (sse_row["id"], est["id"])]
    assert from_mp3["usage_source"] == "estimated" and from_mp3["input_tokens"] == seen["input_tokens"]
    # an MP3's length is known to a frame (24 ms), so its token estimate to about one token
    assert from_mp3["output_tokens"] == pytest.approx(len(text) / 15 * SPEECH_AUDIO_TOKENS_PER_MINUTE / 60, abs=1)
    assert Decimal(from_mp3["cost_usd"]) == (
        seen["input_tokens"] * MINI_TTS["text_in"] + from_mp3["output_tokens"] * MINI_TTS["audio_out"]) / M


# ------------------------------------------------------------------------------------------------ transcription


SHAPES = ["path_handle", "bytes_tuple", "bytesio", "raw_bytes"]


def _upload(shape: str, data: bytes, tmp_path: Path) -> tuple[Any, Any]:
    """The ``file=`` argument in one of the shapes the SDK accepts, and what to close afterwards."""
    if shape == "path_handle":
        path = tmp_path / "speech.wav"
        path.write_bytes(data)
        handle = open(path, "rb")  # noqa: SIM115 - closed by the caller after the call
        return handle, handle
    if shape == "bytes_tuple":
        return ("speech.wav", data, "audio/wav"), None
    if shape == "bytesio":
        buffer = io.BytesIO(data)
        buffer.name = "speech.wav"
        return buffer, None
    return data, None


def _transcribe(api: Api, shape: str, data: bytes, tmp_path: Path, **kw: Any) -> Any:
    upload, closing = _upload(shape, data, tmp_path)
    try:
        return api(api.client.audio.transcriptions.create, model=api.model("whisper"), file=upload, **kw)
    finally:
        if closing is not None:
            closing.close()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_whisper_is_priced_per_second_whatever_the_upload_shape(api: Api, shape: str, tmp_path: Path) -> None:
    data = wav_file(3.0)  # whole seconds: what OpenAI reports and what the file holds agree
    reply = _transcribe(api, shape, data, tmp_path)
    assert reply.text
    row = api.one("audio.transcriptions")
    seconds = wav_seconds(data)
    # OpenAI reports the duration it billed; Azure does not, so it is read back from the upload
    if api.azure:
        assert reply.usage is None
    else:
        assert reply.usage.type == "duration" and reply.usage.seconds == seconds
    assert row["units"] == {"audio_seconds": seconds, "audio_seconds_source": "file" if api.azure else "response"}
    cost = Decimal(str(seconds)) * WHISPER_PER_SECOND
    check_row(api, row, endpoint="audio.transcriptions", name="whisper", usage_source="missing", cost=cost)
    assert Decimal(row["units_cost_usd"]) == cost


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", ["json", "verbose_json", "text"])
def test_whisper_response_formats_take_seconds_from_the_response_else_the_file(api: Api, fmt: str,
                                                                                tmp_path: Path) -> None:
    data = wav_file(2.5)
    reply = _transcribe(api, "bytes_tuple", data, tmp_path, response_format=fmt)
    row = api.one("audio.transcriptions")
    usage = getattr(reply, "usage", None)
    if usage is not None:  # OpenAI json / verbose_json: whole seconds, rounded up, as billed
        assert not api.azure and fmt != "text"
        expected = {"audio_seconds": float(usage.seconds), "audio_seconds_source": "response"}
        assert usage.seconds == math.ceil(wav_seconds(data))
    elif fmt == "verbose_json":  # Azure: no usage, but the verbose body's duration
        assert api.azure
        expected = {"audio_seconds": reply.duration, "audio_seconds_source": "response"}
        assert reply.duration == wav_seconds(data)
    else:  # plain text, or Azure json: read back from the uploaded file
        assert isinstance(reply, str) or api.azure
        expected = {"audio_seconds": wav_seconds(data), "audio_seconds_source": "file"}
    assert row["units"] == expected
    cost = Decimal(str(expected["audio_seconds"])) * WHISPER_PER_SECOND
    check_row(api, row, endpoint="audio.transcriptions", name="whisper", usage_source="missing", cost=cost)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", ["path_handle", "bytesio"])
def test_whisper_without_usage_still_prices_from_the_file(api: Api, shape: str, tmp_path: Path) -> None:
    data = wav_file(2.5)
    reply = _transcribe(api, shape, data, tmp_path, extra_headers={"x-sim-fault": "no_usage"})
    assert reply.usage is None
    row = api.one("audio.transcriptions")
    seconds = wav_seconds(data)
    assert row["units"] == {"audio_seconds": seconds, "audio_seconds_source": "file"}
    check_row(api, row, endpoint="audio.transcriptions", name="whisper", usage_source="missing",
              cost=Decimal(str(seconds)) * WHISPER_PER_SECOND)


@pytest.mark.parametrize("kind", KINDS)
def test_gpt_4o_transcribe_is_priced_by_its_audio_and_text_tokens(api: Api) -> None:
    data = wav_file(4.0)
    reply = api(api.client.audio.transcriptions.create, model=api.model("gpt-4o-transcribe"),
                file=("clip.wav", data, "audio/wav"), prompt="A short clip about pricing.")
    usage = reply.usage
    assert usage.type == "tokens"
    audio_in, text_in = usage.input_token_details.audio_tokens, usage.input_token_details.text_tokens
    assert audio_in > 0 and text_in > 0 and audio_in + text_in == usage.input_tokens
    row = api.one("audio.transcriptions")
    assert (row["input_tokens"], row["audio_input_tokens"], row["output_tokens"], row["total_tokens"]) == (
        usage.input_tokens, audio_in, usage.output_tokens, usage.total_tokens)
    # the duration is described, not billed a second time
    assert row["units"] == {"audio_seconds": wav_seconds(data), "audio_seconds_source": "file"}
    cost = (text_in * TRANSCRIBE["text_in"] + audio_in * TRANSCRIBE["audio_in"]
            + usage.output_tokens * TRANSCRIBE["out"]) / M
    check_row(api, row, endpoint="audio.transcriptions", name="gpt-4o-transcribe", usage_source="reported",
              cost=cost)
    assert row["units_cost_usd"] is None


@deprecated_in_sdk
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", ["json", "verbose_json"])
def test_translations_are_priced_per_second(api: Api, fmt: str) -> None:
    data = wav_file(3.5)
    reply = api(api.client.audio.translations.create, model=api.model("whisper"),
                file=("sv.wav", data, "audio/wav"), response_format=fmt)
    assert reply.text
    row = api.one("audio.translations")
    seconds = wav_seconds(data)
    # translations report no usage on either service; verbose_json carries the duration
    source = "response" if fmt == "verbose_json" else "file"
    assert row["units"] == {"audio_seconds": seconds, "audio_seconds_source": source}
    check_row(api, row, endpoint="audio.translations", name="whisper", usage_source="missing",
              cost=Decimal(str(seconds)) * WHISPER_PER_SECOND)


# ------------------------------------------------------------------------------------------------ chat audio


@pytest.mark.parametrize("kind", KINDS)
def test_chat_with_audio_in_and_out_uses_the_audio_token_rates(api: Api) -> None:
    clip = base64.b64encode(wav_file(2.0)).decode()
    reply = api(api.client.chat.completions.create, model=api.model("gpt-4o-audio"),
                modalities=["text", "audio"], audio={"voice": "alloy", "format": "wav"},
                messages=[{"role": "user", "content": [
                    {"type": "text", "text": "Answer what you hear."},
                    {"type": "input_audio", "input_audio": {"data": clip, "format": "wav"}}]}])
    assert reply.choices[0].message.audio.data
    usage = reply.usage
    audio_in = usage.prompt_tokens_details.audio_tokens
    audio_out = usage.completion_tokens_details.audio_tokens
    assert audio_in > 0 and audio_out > 0 and not usage.prompt_tokens_details.cached_tokens
    row = api.one("chat.completions")
    assert (row["input_tokens"], row["output_tokens"], row["audio_input_tokens"], row["audio_output_tokens"],
            row["cached_input_tokens"]) == (usage.prompt_tokens, usage.completion_tokens, audio_in, audio_out, 0)
    assert row["model_served"] == reply.model
    cost = ((row["input_tokens"] - row["audio_input_tokens"]) * AUDIO_PREVIEW["text_in"]
            + row["audio_input_tokens"] * AUDIO_PREVIEW["audio_in"]
            + (row["output_tokens"] - row["audio_output_tokens"]) * AUDIO_PREVIEW["text_out"]
            + row["audio_output_tokens"] * AUDIO_PREVIEW["audio_out"]) / M
    check_row(api, row, endpoint="chat.completions", name="gpt-4o-audio", usage_source="reported", cost=cost)


# ------------------------------------------------------------------------------------------------ Responses tools


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("tool", ["web_search", "file_search"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_responses_tool_calls_are_priced_on_top_of_tokens(api: Api, tool: str, stream: bool) -> None:
    spec: dict[str, Any] = {"type": tool}
    if tool == "file_search":
        spec["vector_store_ids"] = ["vs_handbook"]
    kw = {"model": "gpt-4o-mini", "input": "What does the travel policy say about trains?", "tools": [spec]}
    if stream:
        items = api.stream(api.client.responses.create, **kw)
        response = next(i.response for i in items if i.type == "response.completed")
    else:
        response = api(api.client.responses.create, **kw)
    calls = sum(1 for item in response.output if item.type == f"{tool}_call")
    assert calls == 1
    row = api.one("responses")
    usage = response.usage
    cached = usage.input_tokens_details.cached_tokens
    assert (row["input_tokens"], row["output_tokens"], row["cached_input_tokens"]) == (
        usage.input_tokens, usage.output_tokens, cached)
    assert row["units"] == {f"{tool}_calls": calls}
    assert row["stream"] is stream
    assert row["canonical_model"] == row["model_served"] == response.model
    assert Decimal(row["units_cost_usd"]) == calls * TOOL_CALL[tool]
    tokens = list_price("gpt-4o-mini", input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                        cached=cached)
    check_row(api, row, endpoint="responses", name="gpt-4o-mini", usage_source="reported",
              cost=tokens + calls * TOOL_CALL[tool])


# ------------------------------------------------------------------------------------------------ Batch API


def _batch_input(api: Api, endpoint: str, n: int) -> tuple[str, bytes]:
    url = "/v1/chat/completions" if endpoint == "chat.completions" else "/v1/embeddings"
    if endpoint == "chat.completions":
        model = "gpt-4o-mini-batch" if api.azure else "gpt-4o-mini"
        bodies = [{"model": model, "messages": [{"role": "user", "content": f"Summarise ticket {i}"}]}
                  for i in range(n)]
    else:
        bodies = [{"model": "text-embedding-3-small", "input": f"ticket {i} text"} for i in range(n)]
    lines = [{"custom_id": f"req-{i}", "method": "POST", "url": url, "body": body} for i, body in enumerate(bodies)]
    return url, "\n".join(json.dumps(line) for line in lines).encode() + b"\n"


def _run_batch(api: Api, endpoint: str, n: int) -> tuple[Any, bytes]:
    url, data = _batch_input(api, endpoint, n)
    uploaded = api(api.client.files.create, file=("input.jsonl", data, "application/jsonl"), purpose="batch")
    created = api(api.client.batches.create, input_file_id=uploaded.id, endpoint=url, completion_window="24h")
    batch = api(api.client.batches.retrieve, batch_id=created.id)
    assert batch.status == "completed" and batch.output_file_id and batch.request_counts.completed == n
    first = api(api.client.files.content, file_id=batch.output_file_id).content
    again = api(api.client.files.content, file_id=batch.output_file_id).content
    assert first == again
    return batch, first


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("endpoint", ["chat.completions", "embeddings"])
def test_batch_output_lines_are_journaled_once_each_at_the_batch_price(api: Api, endpoint: str) -> None:
    n = 3
    batch, output = _run_batch(api, endpoint, n)
    lines = [json.loads(raw) for raw in output.splitlines() if raw.strip()]
    assert len(lines) == n
    rows = [r for r in api.events(endpoint) if r["batch_id"] is not None]
    assert len(rows) == n, rows  # the output file was read twice: no line journaled twice
    by_custom_id = {r["route"]["custom_id"]: r for r in rows}
    for number, line in enumerate(lines, 1):
        row = by_custom_id[line["custom_id"]]
        body = line["response"]["body"]
        usage = body["usage"]
        input_tokens = usage["prompt_tokens"]
        output_tokens = usage.get("completion_tokens", 0)
        assert row["batch_id"] == batch.id
        assert row["route"] == {"batch_id": batch.id, "custom_id": line["custom_id"], "line": number,
                                "batch_request_id": line["id"]}
        assert (row["endpoint"], row["provider"], row["status"], row["http_status"], row["usage_source"]) == (
            endpoint, "azure_openai" if api.azure else "openai", "ok", 200, "reported")
        assert row["request_id"] == line["response"]["request_id"]
        assert (row["input_tokens"], row["output_tokens"]) == (input_tokens, output_tokens)
        assert row["model_served"] == body["model"]
        assert row["session_id"] == api.session and row["tags"] == {"suite": "endpoints"}
        assert row["deployment_type"] == ("global_batch" if api.azure else None)
        full = list_price(body["model"], input_tokens=input_tokens, output_tokens=output_tokens)
        assert full > 0
        assert row["cost_usd"] is not None and Decimal(row["cost_usd"]) == full * BATCH_DISCOUNT
        assert row["unpriced_reason"] is None
    contents = api.events("files.content")
    assert len(contents) == 2
    assert all(r["cost_usd"] is None and r["batch_id"] is None for r in contents)
    assert all(f"{n} request lines journaled" in r["unpriced_reason"] for r in contents)


@pytest.mark.parametrize("kind", KINDS)
def test_the_batch_job_events_themselves_are_not_priced(api: Api) -> None:
    _run_batch(api, "chat.completions", 2)
    jobs = api.events("batches")
    assert [r["method"] for r in jobs] == ["POST", "GET"]
    for row in jobs:
        assert (row["status"], row["http_status"]) == ("ok", 200)
        assert row["cost_usd"] is None, row
        assert row["unpriced_reason"] is not None and "billed per request line" in row["unpriced_reason"]
    assert sum(Decimal(r["cost_usd"]) for r in api.events() if r["cost_usd"] is not None) == sum(
        Decimal(r["cost_usd"]) for r in api.events("chat.completions"))


# ------------------------------------------------------------------------------------------------ fine-tuning


@pytest.mark.parametrize("kind", KINDS)
def test_a_succeeded_fine_tuning_job_adds_one_training_event(api: Api) -> None:
    base = "gpt-4o-mini-2024-07-18"
    examples = [{"messages": [{"role": "user", "content": f"Where is order {i}?"},
                              {"role": "assistant", "content": f"Order {i} ships tomorrow."}]} for i in range(4)]
    data = "\n".join(json.dumps(e) for e in examples).encode() + b"\n"
    training = api(api.client.files.create, file=("train.jsonl", data), purpose="fine-tune")
    created = api(api.client.fine_tuning.jobs.create, model=base, training_file=training.id,
                  hyperparameters={"n_epochs": 2})
    assert created.status == "queued" and created.trained_tokens is None
    assert api.events("fine_tuning.training") == []  # nothing trained yet
    job = api(api.client.fine_tuning.jobs.retrieve, fine_tuning_job_id=created.id)
    again = api(api.client.fine_tuning.jobs.retrieve, fine_tuning_job_id=created.id)
    api(api.client.fine_tuning.jobs.list)
    assert job.status == again.status == "succeeded"
    assert job.trained_tokens and job.trained_tokens == again.trained_tokens and job.trained_tokens % 2 == 0
    trained = api.events("fine_tuning.training")
    # listing reports every job the (shared) simulator ran, each journaled once; this job's polled three times
    assert len({r["route"]["fine_tuning_job"] for r in trained}) == len(trained)
    (row,) = [r for r in trained if r["route"]["fine_tuning_job"] == job.id]
    assert row["units"] == {"training_tokens": job.trained_tokens}
    assert row["route"] == {"fine_tuning_job": job.id, "fine_tuned_model": job.fine_tuned_model}
    assert (row["provider"], row["status"], row["usage_source"]) == (
        "azure_openai" if api.azure else "openai", "ok", "reported")
    assert row["model_requested"] == row["model_served"] == base
    assert row["request_id"] == job.id
    assert row["session_id"] == api.session and row["tags"] == {"suite": "endpoints"}
    cost = job.trained_tokens * TRAINING_PER_M[base] / M
    assert row["cost_usd"] is not None and Decimal(row["cost_usd"]) == cost
    assert Decimal(row["units_cost_usd"]) == cost and row["unpriced_reason"] is None
    polls = [r for r in api.events("fine_tuning.jobs") if r["method"] == "GET"]
    assert len(polls) == 3 and all(r["cost_usd"] is None for r in polls)
    retrieves = [r for r in polls if r["path"].endswith(job.id)]
    assert len(retrieves) == 2 and all("trained tokens" in r["unpriced_reason"] for r in retrieves)
