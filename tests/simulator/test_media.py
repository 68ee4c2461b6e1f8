"""Images, speech, transcriptions and chat audio, driven by the raw openai SDK over real HTTP."""

from __future__ import annotations

import base64
import io
import json
import math
import struct
import wave
from typing import Any

import httpx2
import openai
import pytest
from raw_sdk import close_raw_clients, raw_client
from raw_sdk import sim as sim_fixture

from tokenid.simulator import DEFAULT_DEPLOYMENTS, DEFAULT_REPLY_TOKENS, Simulator
from tokenid.simulator.media import (
    GPT_IMAGE_OUTPUT_TOKENS,
    INPUT_AUDIO_TOKENS_PER_SECOND,
    OUTPUT_AUDIO_TOKENS_PER_SECOND,
    SAMPLE_RATE,
    SPEECH_CHARS_PER_SECOND,
    image_input_tokens,
    tiny_png,
    wav_bytes,
)
from tokenid.tokens import count_input_tokens, count_text_tokens

sim = sim_fixture  # a simulator of this module's own
_close = close_raw_clients  # autouse: closes the clients each test made

KEY = "sk-simulator-media-key-0123456789"
API_VERSION = "2025-04-01-preview"
KINDS = ["openai", "azure", "azure_v1"]
PNG = b"\x89PNG\r\n\x1a\n"
SENTENCE = "The quick brown fox jumps over the lazy dog near the riverbank."  # 63 characters


def client(sim: Simulator, kind: str, **kw: Any) -> openai.OpenAI:
    return raw_client(sim, kind, key=KEY, api_version=API_VERSION, **kw)


def model_for(kind: str, deployment: str, model: str) -> str:
    """The deployment name on Azure, the model name on OpenAI."""
    return model if kind == "openai" else deployment


def wav_info(data: bytes) -> tuple[int, int, int, float]:
    with wave.open(io.BytesIO(data), "rb") as reader:
        frames, rate = reader.getnframes(), reader.getframerate()
        return reader.getnchannels(), reader.getsampwidth(), rate, frames / rate


def png_dimensions(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_default_media_deployments() -> None:
    assert DEFAULT_DEPLOYMENTS["dall-e-3"] == "dall-e-3"
    assert DEFAULT_DEPLOYMENTS["gpt-image-1"] == "gpt-image-1"
    assert DEFAULT_DEPLOYMENTS["tts"] == "tts-1"
    assert DEFAULT_DEPLOYMENTS["tts-hd"] == "tts-1-hd"
    assert DEFAULT_DEPLOYMENTS["whisper"] == "whisper-1"
    assert DEFAULT_DEPLOYMENTS["gpt-4o-transcribe"] == "gpt-4o-transcribe"
    assert DEFAULT_DEPLOYMENTS["gpt-4o-mini-tts"] == "gpt-4o-mini-tts"
    assert DEFAULT_DEPLOYMENTS["gpt-4o-audio"].startswith("gpt-4o-audio-preview")
    assert DEFAULT_DEPLOYMENTS["gpt-4o-mini-batch"] == "gpt-4o-mini-2024-07-18"


# ------------------------------------------------------------------------------- images


@pytest.mark.parametrize("kind", KINDS)
def test_dalle3_url_revised_prompt_and_no_usage(sim: Simulator, kind: str) -> None:
    raw = client(sim, kind).images.with_raw_response.generate(
        model="dall-e-3", prompt="A lighthouse at dawn", size="1024x1792", quality="hd"
    )
    result = raw.parse()
    assert result.usage is None
    assert result.data is not None and len(result.data) == 1
    image = result.data[0]
    assert image.revised_prompt and image.revised_prompt.startswith("A lighthouse at dawn")
    assert image.url is not None and image.b64_json is None
    fetched = httpx2.get(image.url)
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "image/png"
    assert png_dimensions(fetched.content) == (8, 8)
    body = json.loads(raw.http_response.text)
    assert "usage" not in body
    if kind == "openai":
        assert set(body) == {"created", "data"}
        assert set(body["data"][0]) == {"revised_prompt", "url"}
        assert raw.headers["x-request-id"].startswith("req_")
    else:
        assert body["data"][0]["content_filter_results"]["violence"] == {"filtered": False, "severity": "safe"}
        assert "jailbreak" in body["data"][0]["prompt_filter_results"]
        assert raw.headers["x-ms-region"] == sim.region
        assert raw.headers["apim-request-id"]
        assert raw.headers["x-ms-deployment-name"] == "dall-e-3"


@pytest.mark.parametrize("kind", ["openai", "azure"])
def test_dalle3_rejects_n_2(sim: Simulator, kind: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(sim, kind, max_retries=0).images.generate(model="dall-e-3", prompt="two cats", n=2)
    assert caught.value.status_code == 400
    assert caught.value.response.json() == {
        "error": {
            "message": "You must provide n=1 for this model.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }


def test_dalle2_b64_many_images(sim: Simulator) -> None:
    result = client(sim, "openai").images.generate(
        model="dall-e-2", prompt="a white siamese cat", n=3, size="256x256", response_format="b64_json"
    )
    assert result.usage is None
    assert result.data is not None and len(result.data) == 3
    for image in result.data:
        assert image.url is None and image.revised_prompt is None
        assert png_dimensions(base64.b64decode(image.b64_json or "")) == (8, 8)


def test_dalle2_is_the_openai_default_and_rejects_quality(sim: Simulator) -> None:
    url = sim.openai_base_url + "/images/generations"
    plain = httpx2.post(url, json={"prompt": "a cat", "size": "256x256"}, headers={"authorization": f"Bearer {KEY}"})
    assert plain.status_code == 200
    assert "revised_prompt" not in plain.json()["data"][0]
    with pytest.raises(openai.BadRequestError) as caught:
        client(sim, "openai").images.generate(model="dall-e-2", prompt="a cat", quality="standard")
    assert caught.value.response.json()["error"]["code"] == "unknown_parameter"
    with pytest.raises(openai.BadRequestError) as bad_size:
        client(sim, "openai").images.generate(model="dall-e-3", prompt="a cat", size="256x256")
    assert "'256x256' is not one of" in bad_size.value.response.json()["error"]["message"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("quality", "size", "n"), [("low", "1024x1024", 2), ("high", "1536x1024", 1)])
def test_gpt_image_usage_and_echo(sim: Simulator, kind: str, quality: Any, size: Any, n: int) -> None:
    prompt = "A watercolor map of an imaginary archipelago"
    result = client(sim, kind).images.generate(
        model="gpt-image-1", prompt=prompt, quality=quality, size=size, n=n, background="transparent"
    )
    assert result.data is not None and len(result.data) == n
    assert all(png_dimensions(base64.b64decode(item.b64_json or "")) == (8, 8) for item in result.data)
    assert (result.quality, result.size, result.background, result.output_format) == (
        quality,
        size,
        "transparent",
        "png",
    )
    usage = result.usage
    assert usage is not None
    text_tokens = count_text_tokens(prompt, "gpt-image-1")
    assert usage.input_tokens_details.text_tokens == text_tokens
    assert usage.input_tokens_details.image_tokens == 0
    assert usage.input_tokens == text_tokens
    assert usage.output_tokens == GPT_IMAGE_OUTPUT_TOKENS[quality][size] * n
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


def test_gpt_image_defaults_and_rejects_response_format(sim: Simulator) -> None:
    result = client(sim, "openai").images.generate(model="gpt-image-1-mini", prompt="a red square")
    assert (result.quality, result.size, result.background, result.output_format) == (
        "high",
        "1024x1024",
        "opaque",
        "png",
    )
    assert result.usage is not None
    assert result.usage.output_tokens == GPT_IMAGE_OUTPUT_TOKENS["high"]["1024x1024"]
    with pytest.raises(openai.BadRequestError) as caught:
        client(sim, "openai").images.generate(model="gpt-image-1", prompt="x", response_format="url")
    assert caught.value.response.json()["error"]["param"] == "response_format"


@pytest.mark.parametrize("kind", ["openai", "azure", "azure_v1"])
def test_gpt_image_edit_counts_input_image_tokens(sim: Simulator, kind: str) -> None:
    square, wide = tiny_png(7, side=1024), tiny_png(9, side=512)
    result = client(sim, kind).images.edit(
        model="gpt-image-1",
        prompt="Add a small boat",
        image=[("a.png", square, "image/png"), ("b.png", wide, "image/png")],
        quality="medium",
    )
    usage = result.usage
    assert usage is not None
    expected_images = image_input_tokens(1024, 1024) + image_input_tokens(512, 512)
    assert expected_images == 65 + 129 * 4 + 65 + 129 * 1
    assert usage.input_tokens_details.image_tokens == expected_images
    assert usage.input_tokens_details.text_tokens == count_text_tokens("Add a small boat", "gpt-image-1")
    assert usage.input_tokens == expected_images + usage.input_tokens_details.text_tokens
    assert usage.output_tokens == GPT_IMAGE_OUTPUT_TOKENS["medium"]["1024x1024"]
    assert result.data is not None and result.data[0].b64_json


def test_dalle2_edit_has_no_usage(sim: Simulator) -> None:
    result = client(sim, "openai").images.edit(
        model="dall-e-2", prompt="Add a hat", image=("cat.png", tiny_png(1, side=256), "image/png")
    )
    assert result.usage is None
    assert result.data is not None and result.data[0].url


def test_dalle2_variations(sim: Simulator) -> None:
    with pytest.warns(DeprecationWarning):  # the SDK deprecates variations with dall-e-2
        result = client(sim, "openai").images.create_variation(
            image=("cat.png", tiny_png(3, side=256), "image/png"), n=2, size="256x256", response_format="b64_json"
        )
    assert result.usage is None
    assert result.data is not None and len(result.data) == 2
    assert png_dimensions(base64.b64decode(result.data[0].b64_json or "")) == (8, 8)


def test_images_no_usage_fault(sim: Simulator) -> None:
    result = client(sim, "azure").images.generate(
        model="gpt-image-1", prompt="x", quality="low", extra_headers={"x-sim-fault": "no_usage"}
    )
    assert result.usage is None
    assert result.data is not None and result.data[0].b64_json


async def test_async_images(sim: Simulator) -> None:
    async with openai.AsyncAzureOpenAI(
        azure_endpoint=sim.azure_endpoint, api_key=KEY, api_version=API_VERSION
    ) as azure_client:
        result = await azure_client.images.generate(model="gpt-image-1", prompt="a tiny robot", quality="low")
        assert result.usage is not None
        assert result.usage.output_tokens == GPT_IMAGE_OUTPUT_TOKENS["low"]["1024x1024"]
    async with openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key=KEY) as openai_client:
        plain = await openai_client.images.generate(model="dall-e-3", prompt="a tiny robot")
        assert plain.usage is None
        assert plain.data is not None and plain.data[0].revised_prompt


# ------------------------------------------------------------------------------- speech


def expected_seconds(text: str, speed: float = 1.0) -> float:
    return round(len(text) / SPEECH_CHARS_PER_SECOND / speed * SAMPLE_RATE) / SAMPLE_RATE


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("deployment", "model"), [("tts", "tts-1"), ("gpt-4o-mini-tts", "gpt-4o-mini-tts")])
def test_speech_wav_duration_scales_with_characters(sim: Simulator, kind: str, deployment: str, model: str) -> None:
    speech = client(sim, kind).audio.speech.create(
        model=model_for(kind, deployment, model), voice="alloy", input=SENTENCE, response_format="wav"
    )
    assert speech.response.headers["content-type"] == "audio/wav"
    channels, width, rate, seconds = wav_info(speech.read())
    assert (channels, width, rate) == (1, 2, SAMPLE_RATE)
    assert seconds == pytest.approx(expected_seconds(SENTENCE))
    assert seconds == pytest.approx(63 / 15)
    if kind != "openai":
        assert speech.response.headers["x-ms-region"] == sim.region


def test_speech_duration_rule(sim: Simulator) -> None:
    speak = client(sim, "openai").audio.speech.create
    long_text = SENTENCE * 4
    assert wav_info(speak(model="tts-1", voice="nova", input=long_text, response_format="wav").read())[3] == (
        pytest.approx(len(long_text) / 15)
    )
    fast = speak(model="tts-1-hd", voice="nova", input=SENTENCE, response_format="wav", speed=2.0).read()
    assert wav_info(fast)[3] == pytest.approx(expected_seconds(SENTENCE, 2.0))


def test_speech_formats(sim: Simulator) -> None:
    speak = client(sim, "openai").audio.speech.create
    pcm = speak(model="tts-1", voice="alloy", input=SENTENCE, response_format="pcm")
    assert pcm.response.headers["content-type"] == "audio/pcm"
    assert len(pcm.read()) == 2 * round(len(SENTENCE) / SPEECH_CHARS_PER_SECOND * SAMPLE_RATE)
    mp3 = speak(model="tts-1", voice="alloy", input="x" * 150)  # mp3 is the default
    assert mp3.response.headers["content-type"] == "audio/mpeg"
    data = mp3.read()
    assert data[:2] == b"\xff\xf3"
    frames = len(data) // 96
    assert len(data) == frames * 96
    assert frames * 0.024 == pytest.approx(10.0, abs=0.024)
    flac = speak(model="tts-1", voice="alloy", input=SENTENCE, response_format="flac")
    assert flac.response.headers["content-type"] == "audio/flac"
    assert wav_info(flac.read())[3] == pytest.approx(expected_seconds(SENTENCE))  # documented: WAV bytes


def test_speech_body_has_no_usage_and_sse_reports_it(sim: Simulator) -> None:
    speech = client(sim, "openai").audio.speech.create(
        model="gpt-4o-mini-tts", voice="ash", input=SENTENCE, instructions="Speak calmly.", response_format="pcm"
    )
    assert not speech.read().startswith(b"{")
    response = httpx2.post(
        sim.openai_base_url + "/audio/speech",
        json={
            "model": "gpt-4o-mini-tts",
            "voice": "ash",
            "input": SENTENCE,
            "instructions": "Speak calmly.",
            "response_format": "pcm",
            "stream_format": "sse",
        },
        headers={"authorization": f"Bearer {KEY}"},
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert {event["type"] for event in events[:-1]} == {"speech.audio.delta"}
    audio = b"".join(base64.b64decode(event["audio"]) for event in events[:-1])
    assert len(audio) == 2 * round(len(SENTENCE) / SPEECH_CHARS_PER_SECOND * SAMPLE_RATE)
    done = events[-1]
    assert done["type"] == "speech.audio.done"
    input_tokens = count_text_tokens(SENTENCE, "gpt-4o-mini-tts") + count_text_tokens("Speak calmly.", "gpt-4o")
    output_tokens = math.ceil(len(SENTENCE) / SPEECH_CHARS_PER_SECOND * OUTPUT_AUDIO_TOKENS_PER_SECOND)
    assert done["usage"] == {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def test_speech_input_too_long(sim: Simulator) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(sim, "azure").audio.speech.create(model="tts", voice="alloy", input="a" * 4097)
    error = caught.value.response.json()["error"]
    assert error["code"] == "string_above_max_length"
    assert "4096" in error["message"]


# ------------------------------------------------------------------------ transcriptions


def speech_wav(sim: Simulator, text: str = SENTENCE) -> bytes:
    return (
        client(sim, "openai")
        .audio.speech.create(model="tts-1", voice="alloy", input=text, response_format="wav")
        .read()
    )


@pytest.mark.parametrize("kind", KINDS)
def test_whisper_json(sim: Simulator, kind: str) -> None:
    audio = speech_wav(sim)
    seconds = wav_info(audio)[3]
    result = client(sim, kind).audio.transcriptions.create(
        model=model_for(kind, "whisper", "whisper-1"), file=("speech.wav", audio, "audio/wav")
    )
    assert result.text == SENTENCE  # the simulator's WAVs carry their text
    if kind == "openai":
        assert result.usage is not None
        assert result.usage.type == "duration"
        assert result.usage.seconds == math.ceil(seconds)
    else:
        assert result.usage is None


@pytest.mark.parametrize("kind", ["openai", "azure"])
def test_whisper_verbose_json(sim: Simulator, kind: str) -> None:
    text = "One two three. " * 20
    audio = speech_wav(sim, text)
    seconds = wav_info(audio)[3]
    raw = client(sim, kind).audio.transcriptions.with_raw_response.create(
        model=model_for(kind, "whisper", "whisper-1"),
        file=("speech.wav", audio, "audio/wav"),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        language="en",
    )
    result = raw.parse()
    assert result.text == text
    assert result.duration == pytest.approx(seconds, abs=0.01)
    assert result.language == "english"
    body = json.loads(raw.http_response.text)
    assert list(body)[:5] == ["task", "language", "duration", "text", "segments"]
    assert body["task"] == "transcribe"
    assert result.segments is not None and len(result.segments) == 3  # 60 words, 25 per segment
    assert result.segments[0].start == 0.0
    assert result.segments[-1].end == pytest.approx(seconds, abs=0.01)
    assert result.words is not None and len(result.words) == 60
    if kind == "openai":
        assert result.usage is not None and result.usage.seconds == math.ceil(seconds)
    else:
        assert result.usage is None


def test_whisper_text_srt_vtt(sim: Simulator) -> None:
    audio = speech_wav(sim)
    transcribe = client(sim, "openai").audio.transcriptions.create
    text = transcribe(model="whisper-1", file=("a.wav", audio, "audio/wav"), response_format="text")
    assert text == SENTENCE + "\n"
    srt = transcribe(model="whisper-1", file=("a.wav", audio, "audio/wav"), response_format="srt")
    assert srt == f"1\n00:00:00,000 --> 00:00:04,200\n{SENTENCE}\n\n"
    vtt = transcribe(model="whisper-1", file=("a.wav", audio, "audio/wav"), response_format="vtt")
    assert vtt == f"WEBVTT\n\n00:00:00.000 --> 00:00:04.200\n{SENTENCE}\n\n"


@pytest.mark.parametrize("kind", KINDS)
def test_gpt4o_transcribe_token_usage(sim: Simulator, kind: str) -> None:
    audio = speech_wav(sim)
    seconds = wav_info(audio)[3]
    result = client(sim, kind).audio.transcriptions.create(
        model=model_for(kind, "gpt-4o-transcribe", "gpt-4o-transcribe"),
        file=("speech.wav", audio, "audio/wav"),
        prompt="Animals and rivers.",
    )
    usage = result.usage
    assert usage is not None and usage.type == "tokens"
    audio_tokens = math.ceil(seconds * INPUT_AUDIO_TOKENS_PER_SECOND)
    text_tokens = count_text_tokens("Animals and rivers.", "gpt-4o-transcribe")
    assert usage.input_token_details is not None
    assert usage.input_token_details.audio_tokens == audio_tokens
    assert usage.input_token_details.text_tokens == text_tokens
    assert usage.input_tokens == audio_tokens + text_tokens
    assert usage.output_tokens == count_text_tokens(SENTENCE, "gpt-4o-transcribe")
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


def test_gpt4o_transcribe_wire_shape_and_formats(sim: Simulator) -> None:
    audio = speech_wav(sim)
    raw = client(sim, "openai").audio.transcriptions.with_raw_response.create(
        model="gpt-4o-mini-transcribe", file=("speech.wav", audio, "audio/wav")
    )
    body = json.loads(raw.http_response.text)
    assert list(body) == ["text", "usage"]
    assert list(body["usage"]) == ["type", "total_tokens", "input_tokens", "input_token_details", "output_tokens"]
    with pytest.raises(openai.BadRequestError) as caught:
        client(sim, "openai").audio.transcriptions.create(
            model="gpt-4o-transcribe", file=("speech.wav", audio, "audio/wav"), response_format="verbose_json"
        )
    assert caught.value.response.json()["error"]["param"] == "response_format"


def test_gpt4o_transcribe_stream(sim: Simulator) -> None:
    audio = speech_wav(sim)
    stream = client(sim, "openai").audio.transcriptions.create(
        model="gpt-4o-transcribe", file=("speech.wav", audio, "audio/wav"), stream=True
    )
    events = list(stream)
    assert [event.type for event in events[:-1]] == ["transcript.text.delta"] * len(SENTENCE.split())
    done = events[-1]
    assert done.type == "transcript.text.done"
    assert done.text == SENTENCE
    assert "".join(event.delta for event in events[:-1] if event.type == "transcript.text.delta") == SENTENCE
    assert done.usage is not None
    assert done.usage.input_tokens == math.ceil(wav_info(audio)[3] * INPUT_AUDIO_TOKENS_PER_SECOND)


def test_transcription_duration_of_other_audio(sim: Simulator) -> None:
    mp3 = client(sim, "openai").audio.speech.create(model="tts-1", voice="alloy", input="y" * 150).read()
    result = client(sim, "openai").audio.transcriptions.create(
        model="whisper-1", file=("speech.mp3", mp3, "audio/mpeg"), response_format="verbose_json"
    )
    assert result.duration == pytest.approx(10.0, abs=0.03)  # from the MP3 frame header's bitrate
    unknown = bytes(range(256)) * 125  # 32,000 bytes of neither WAV nor MP3: 16 kB/s
    other = client(sim, "openai").audio.transcriptions.create(
        model="whisper-1", file=("clip.ogg", unknown, "audio/ogg"), response_format="verbose_json"
    )
    assert other.duration == pytest.approx(2.0)
    assert len(other.text.split()) == 5  # 2.5 words per second


def test_transcription_of_plain_wav_is_deterministic(sim: Simulator) -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16_000)
        writer.writeframes(b"\x01\x00" * 16_000 * 4)
    audio = buffer.getvalue()
    first = client(sim, "openai").audio.transcriptions.create(model="whisper-1", file=("a.wav", audio, "audio/wav"))
    again = client(sim, "azure").audio.transcriptions.create(model="whisper", file=("a.wav", audio, "audio/wav"))
    assert first.text == again.text
    assert len(first.text.split()) == 10  # 4 s at 2.5 words per second
    assert first.usage is not None and first.usage.type == "duration" and first.usage.seconds == 4


@pytest.mark.parametrize("kind", ["openai", "azure"])
def test_translations(sim: Simulator, kind: str) -> None:
    audio = speech_wav(sim)
    translations = client(sim, kind).audio.translations
    model = model_for(kind, "whisper", "whisper-1")
    with pytest.warns(DeprecationWarning):
        plain = translations.create(model=model, file=("a.wav", audio, "audio/wav"))
    assert plain.text == SENTENCE
    assert "usage" not in plain.model_dump(exclude_none=True)
    with pytest.warns(DeprecationWarning):
        verbose = translations.create(model=model, file=("a.wav", audio, "audio/wav"), response_format="verbose_json")
    assert verbose.language == "english"
    assert verbose.duration == pytest.approx(wav_info(audio)[3], abs=0.01)
    assert (verbose.model_extra or {}).get("task") == "translate"


def test_audio_no_usage_fault(sim: Simulator) -> None:
    audio = speech_wav(sim)
    headers = {"x-sim-fault": "no_usage"}
    transcribe = client(sim, "openai").audio.transcriptions.create
    whisper = transcribe(model="whisper-1", file=("a.wav", audio, "audio/wav"), extra_headers=headers)
    assert whisper.usage is None
    tokens = transcribe(model="gpt-4o-transcribe", file=("a.wav", audio, "audio/wav"), extra_headers=headers)
    assert tokens.usage is None
    assert tokens.text == SENTENCE


def test_audio_faults_and_deployments(sim: Simulator) -> None:
    audio = speech_wav(sim)
    azure_client = client(sim, "azure", max_retries=0)
    with pytest.raises(openai.NotFoundError) as missing:
        azure_client.audio.transcriptions.create(model="no-such-whisper", file=("a.wav", audio, "audio/wav"))
    assert missing.value.response.json()["error"]["code"] == "DeploymentNotFound"
    with pytest.raises(openai.RateLimitError) as limited:
        azure_client.audio.speech.create(
            model="tts", voice="alloy", input="hi", extra_headers={"x-sim-fault": "429", "x-sim-retry-after-ms": "5"}
        )
    assert "GenerateSpeechFromText" in limited.value.response.json()["error"]["message"]
    no_version = httpx2.post(
        f"{sim.url}/openai/deployments/whisper/audio/transcriptions",
        files={"file": ("a.wav", audio, "audio/wav")},
        headers={"api-key": KEY},
    )
    assert no_version.status_code == 404


async def test_async_audio(sim: Simulator) -> None:
    async with openai.AsyncAzureOpenAI(
        azure_endpoint=sim.azure_endpoint, api_key=KEY, api_version=API_VERSION
    ) as azure_client:
        speech = await azure_client.audio.speech.create(
            model="tts-hd", voice="alloy", input=SENTENCE, response_format="wav"
        )
        audio = speech.read()
        assert wav_info(audio)[3] == pytest.approx(expected_seconds(SENTENCE))
        result = await azure_client.audio.transcriptions.create(
            model="gpt-4o-transcribe", file=("a.wav", audio, "audio/wav")
        )
        assert result.text == SENTENCE
        assert result.usage is not None and result.usage.type == "tokens"
    async with openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key=KEY) as openai_client:
        whisper = await openai_client.audio.transcriptions.create(model="whisper-1", file=("a.wav", audio, "audio/wav"))
        assert whisper.usage is not None and whisper.usage.type == "duration"


# --------------------------------------------------------------------------- chat audio


def audio_message(seconds: float, text: str = "What is said here?") -> list[Any]:
    clip = base64.b64encode(wav_bytes(seconds)).decode("ascii")
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": text},
                {"type": "input_audio", "input_audio": {"data": clip, "format": "wav"}},
            ],
        }
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_chat_audio_output_and_input(sim: Simulator, kind: str) -> None:
    messages = audio_message(2.0)
    result = client(sim, kind).chat.completions.create(
        model=model_for(kind, "gpt-4o-audio", "gpt-4o-audio-preview"),
        modalities=["text", "audio"],
        audio={"voice": "alloy", "format": "wav"},
        messages=messages,
    )
    message = result.choices[0].message
    assert message.content is None
    assert message.audio is not None
    assert message.audio.id.startswith("audio_")
    assert message.audio.expires_at > result.created
    transcript = message.audio.transcript
    assert count_text_tokens(transcript, "gpt-4o") == DEFAULT_REPLY_TOKENS
    seconds = wav_info(base64.b64decode(message.audio.data))[3]
    assert seconds == pytest.approx(expected_seconds(transcript))
    usage = result.usage
    assert usage is not None
    assert usage.prompt_tokens_details is not None and usage.completion_tokens_details is not None
    text_in = count_input_tokens({"messages": messages}, "gpt-4o", endpoint="chat.completions")
    assert usage.prompt_tokens_details.audio_tokens == 2 * INPUT_AUDIO_TOKENS_PER_SECOND
    assert usage.prompt_tokens_details.text_tokens == text_in
    assert usage.prompt_tokens == text_in + 20
    audio_out = math.ceil(len(transcript) / SPEECH_CHARS_PER_SECOND * OUTPUT_AUDIO_TOKENS_PER_SECOND)
    assert usage.completion_tokens_details.audio_tokens == audio_out
    assert usage.completion_tokens_details.text_tokens == DEFAULT_REPLY_TOKENS
    assert usage.completion_tokens == DEFAULT_REPLY_TOKENS + audio_out
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_chat_audio_input_only(sim: Simulator) -> None:
    result = client(sim, "openai").chat.completions.create(
        model="gpt-4o-mini-audio-preview", messages=audio_message(0.2, "Respond with just the word hello.")
    )
    assert result.choices[0].message.content
    assert result.choices[0].message.audio is None
    usage = result.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.audio_tokens == 2
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.audio_tokens == 0
    assert usage.completion_tokens_details.text_tokens == DEFAULT_REPLY_TOKENS


@pytest.mark.parametrize("kind", ["openai", "azure"])
def test_chat_audio_stream(sim: Simulator, kind: str) -> None:
    chunks = list(
        client(sim, kind).chat.completions.create(
            model=model_for(kind, "gpt-4o-audio", "gpt-4o-audio-preview"),
            modalities=["text", "audio"],
            audio={"voice": "alloy", "format": "pcm16"},
            messages=[{"role": "user", "content": "Say something."}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    audio = [chunk.choices[0].delta.audio for chunk in chunks if chunk.choices and chunk.choices[0].delta.audio]
    transcript = "".join(delta.transcript or "" for delta in audio)
    pcm = b"".join(base64.b64decode(delta.data) for delta in audio if delta.data)
    assert count_text_tokens(transcript, "gpt-4o") == DEFAULT_REPLY_TOKENS
    assert len(pcm) == 2 * round(len(transcript) / SPEECH_CHARS_PER_SECOND * SAMPLE_RATE)
    assert audio[0].id is not None and audio[0].id.startswith("audio_")
    assert audio[-1].model_dump(exclude_none=True) == {"expires_at": audio[-1].expires_at}
    assert chunks[-2].choices[0].finish_reason == "stop"
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.audio_tokens == math.ceil(
        len(transcript) / SPEECH_CHARS_PER_SECOND * OUTPUT_AUDIO_TOKENS_PER_SECOND
    )
