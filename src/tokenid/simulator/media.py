"""Images and audio: the bodies, bytes and usage the real endpoints send.

Rules, so tests can rely on them:

* **Speech** (``audio/speech``): ``len(input) / SPEECH_CHARS_PER_SECOND /
  speed`` seconds of 24 kHz mono 16-bit audio (a quiet 200 Hz tone).
  ``wav`` is a valid WAV file (``wave`` reads it) carrying the input text in a
  trailing ``LIST/INFO/ICMT`` chunk, so transcribing it returns that text;
  ``pcm`` is the same samples without a header, as the API sends them;
  ``mp3`` is real MPEG-2 Layer III frames (silent, 32 kbps CBR, 24 ms each);
  ``opus``, ``aac`` and ``flac`` answer with the WAV bytes under that
  format's content type (the simulator has no encoder for them).  The body
  is bare audio with no usage, as the API sends it for every TTS model;
  ``gpt-4o-mini-tts`` with ``stream_format="sse"`` streams
  ``speech.audio.delta`` events and a ``speech.audio.done`` event carrying
  ``usage`` (input text tokens; output audio tokens at
  :data:`OUTPUT_AUDIO_TOKENS_PER_SECOND`).
* **Transcriptions / translations**: the upload's duration comes from
  :mod:`wave`, else from the first MP3 frame's bitrate, else from
  :data:`FALLBACK_BYTES_PER_SECOND`.  The text is the WAV's ``ICMT`` text if
  present, else :data:`TRANSCRIPT_WORDS_PER_SECOND` one-token words per
  second.  ``whisper-1`` reports ``usage: {type: "duration", seconds:
  ceil(duration)}`` in ``json`` and ``verbose_json`` transcriptions on OpenAI
  routes only (Azure and translations send none).  The gpt-4o transcribe
  models report ``usage: {type: "tokens", ...}`` with audio input tokens at
  :data:`INPUT_AUDIO_TOKENS_PER_SECOND` (rounded up), ``prompt`` text
  tokens, and the transcript's tokens as output.
* **Images**: DALL·E answers ``{created, data}`` with no usage (url by
  default, served by this simulator under ``/simulator/images/``);
  dall-e-3 adds ``revised_prompt`` and allows only ``n=1``.  GPT image
  models answer ``b64_json`` and echo ``background``, ``output_format``,
  ``quality`` and ``size`` with ``usage``: prompt text tokens, input image
  tokens (edits) at :data:`IMAGE_BASE_TOKENS` + :data:`IMAGE_TILE_TOKENS`
  per 512 px tile, and output tokens from :data:`GPT_IMAGE_OUTPUT_TOKENS`.
  Every image is a tiny valid PNG whatever ``output_format`` says.
"""

from __future__ import annotations

import array
import base64
import binascii
import io
import json
import math
import re
import struct
import sys
import threading
import time
import uuid
import wave
import zlib
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache

from tokenid.simulator import errors
from tokenid.simulator.content import Reply, make_reply
from tokenid.simulator.errors import ErrorReply
from tokenid.simulator.payloads import AZURE_CHUNK_FILTER, HEX, ChatAudio, new_id, sse
from tokenid.simulator.wire import Answer, Call, form_bool, form_float, form_int, form_str
from tokenid.tokens import count_text_tokens

# ----------------------------------------------------------------------------- audio constants

SAMPLE_RATE = 24_000
SPEECH_CHARS_PER_SECOND = 15.0
SPEECH_MAX_CHARS = 4096
INPUT_AUDIO_TOKENS_PER_SECOND = 10
"""Audio input tokens per second (1 per 100 ms), for transcription and chat audio input."""
OUTPUT_AUDIO_TOKENS_PER_SECOND = 20
"""Audio output tokens per second (1 per 50 ms), for chat audio output and gpt-4o-mini-tts."""
TRANSCRIPT_WORDS_PER_SECOND = 2.5
FALLBACK_BYTES_PER_SECOND = 16_000
"""Duration estimate for uploads that are neither WAV nor MP3 (128 kbit/s)."""
SEGMENT_WORDS = 25

_TONE_PERIOD = 120  # samples: 200 Hz at 24 kHz
_TONE_AMPLITUDE = 3000
_MP3_FRAME = bytes([0xFF, 0xF3, 0x44, 0xC0]) + bytes(92)  # MPEG-2 Layer III, 32 kbit/s, 24 kHz, mono, silent
_MP3_FRAME_SECONDS = 576 / SAMPLE_RATE

SPEECH_MEDIA_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}

_LANGUAGES = {
    "en": "english",
    "de": "german",
    "es": "spanish",
    "fr": "french",
    "it": "italian",
    "ja": "japanese",
    "nl": "dutch",
    "pt": "portuguese",
    "sv": "swedish",
    "zh": "chinese",
}

# ----------------------------------------------------------------------------- image constants

IMAGE_BASE_TOKENS = 65
IMAGE_TILE_TOKENS = 129
GPT_IMAGE_OUTPUT_TOKENS: dict[str, dict[str, int]] = {
    "low": {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
    "medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
    "high": {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
}
"""Output image tokens per image by quality and size, as OpenAI documents them for gpt-image-1."""
MAX_IMAGES = 10
_SIZES = {
    "dall-e-2": ["256x256", "512x512", "1024x1024"],
    "dall-e-3": ["1024x1024", "1792x1024", "1024x1792"],
    "gpt-image": ["1024x1024", "1536x1024", "1024x1536", "auto"],
}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_AZURE_IMAGE_PROMPT_FILTER: dict[str, object] = {
    **AZURE_CHUNK_FILTER,
    "jailbreak": {"filtered": False, "detected": False},
    "profanity": {"filtered": False, "detected": False},
}


# ============================================================================= audio bytes


@lru_cache(maxsize=1)
def _tone_period() -> bytes:
    samples = array.array(
        "h", (round(_TONE_AMPLITUDE * math.sin(2 * math.pi * i / _TONE_PERIOD)) for i in range(_TONE_PERIOD))
    )
    if sys.byteorder != "little":
        samples.byteswap()
    return samples.tobytes()


def speech_seconds(text: str, speed: float = 1.0) -> float:
    """How long the simulated voice takes to say ``text``."""
    return len(text) / SPEECH_CHARS_PER_SECOND / speed


def pcm_bytes(seconds: float) -> bytes:
    """``seconds`` of 24 kHz mono signed 16-bit little-endian samples."""
    count = max(1, round(seconds * SAMPLE_RATE))
    period = _tone_period()
    repeats = count // _TONE_PERIOD + 1
    return (period * repeats)[: count * 2]


def wav_bytes(seconds: float, transcript: str | None = None) -> bytes:
    """A WAV file of ``seconds`` of tone; ``transcript`` rides along in a ``LIST/INFO/ICMT`` chunk."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(SAMPLE_RATE)
        writer.writeframes(pcm_bytes(seconds))
    data = buffer.getvalue()
    if not transcript:
        return data
    text = transcript.encode("utf-8") + b"\0"
    if len(text) % 2:
        text += b"\0"
    info = b"INFO" + b"ICMT" + struct.pack("<I", len(text)) + text
    data += b"LIST" + struct.pack("<I", len(info)) + info
    return data[:4] + struct.pack("<I", len(data) - 8) + data[8:]


def mp3_bytes(seconds: float) -> bytes:
    """``seconds`` of silent constant-bitrate MP3 frames (MPEG-2 Layer III, 32 kbit/s, 24 kHz mono)."""
    return _MP3_FRAME * max(1, math.ceil(seconds / _MP3_FRAME_SECONDS))


def encode_audio(seconds: float, fmt: str, transcript: str | None = None) -> bytes:
    """Audio bytes in ``fmt`` (see the module rules for what each format holds)."""
    if fmt in ("pcm", "pcm16"):
        return pcm_bytes(seconds)
    if fmt == "mp3":
        return mp3_bytes(seconds)
    return wav_bytes(seconds, transcript)


_MP3_BITRATES = {
    3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1 Layer III
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2 Layer III
    0: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2.5 Layer III
}


def _mp3_seconds(data: bytes) -> float | None:
    """Duration of a constant-bitrate MP3 from its first frame header, or None if it is not one."""
    offset = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        size = data[6] << 21 | data[7] << 14 | data[8] << 7 | data[9]
        offset = 10 + size
    if len(data) < offset + 4 or data[offset] != 0xFF or data[offset + 1] & 0xE0 != 0xE0:
        return None
    version = (data[offset + 1] >> 3) & 3
    layer = (data[offset + 1] >> 1) & 3
    table = _MP3_BITRATES.get(version)
    index = data[offset + 2] >> 4
    if layer != 1 or table is None or not 0 < index < 15:
        return None
    return (len(data) - offset) * 8 / (table[index] * 1000)


def audio_seconds(data: bytes) -> float:
    """Duration of uploaded audio: WAV via :mod:`wave`, CBR MP3 by its header, else by size."""
    try:
        with wave.open(io.BytesIO(data), "rb") as reader:
            rate = reader.getframerate()
            if rate > 0:
                return reader.getnframes() / rate
    except (wave.Error, EOFError, struct.error):
        pass
    mp3 = _mp3_seconds(data)
    if mp3 is not None:
        return mp3
    return len(data) / FALLBACK_BYTES_PER_SECOND


def wav_transcript(data: bytes) -> str | None:
    """The text of a WAV's ``LIST/INFO/ICMT`` chunk (what :func:`wav_bytes` embeds), if any."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(data):
        kind = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        if kind == b"LIST" and data[pos + 8 : pos + 12] == b"INFO":
            inner, end = pos + 12, min(len(data), pos + 8 + size)
            while inner + 8 <= end:
                (sub_size,) = struct.unpack("<I", data[inner + 4 : inner + 8])
                if data[inner : inner + 4] == b"ICMT":
                    return data[inner + 8 : inner + 8 + sub_size].rstrip(b"\0").decode("utf-8", "replace")
                inner += 8 + sub_size + (sub_size & 1)
        pos += 8 + size + (size & 1)
    return None


def input_audio_tokens(seconds: float) -> int:
    """Audio input tokens for ``seconds`` of audio (at least 1 for any audio)."""
    return max(1, math.ceil(seconds * INPUT_AUDIO_TOKENS_PER_SECOND - 1e-9))


def output_audio_tokens(seconds: float) -> int:
    """Audio output tokens for ``seconds`` of generated audio."""
    return max(1, math.ceil(seconds * OUTPUT_AUDIO_TOKENS_PER_SECOND - 1e-9))


# ============================================================================= image bytes


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


@lru_cache(maxsize=256)
def tiny_png(seed: int, side: int = 8) -> bytes:
    """A valid ``side``×``side`` RGB PNG of one colour derived from ``seed``."""
    colour = bytes(((seed >> 16) & 0xFF, (seed >> 8) & 0xFF, seed & 0xFF))
    rows = b"".join(b"\0" + colour * side for _ in range(side))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR, or None for other data."""
    if data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR" or len(data) < 24:
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def image_input_tokens(width: int, height: int) -> int:
    """Tokens of one input image: fit in 2048², shortest side to 768, then base + tiles of 512 px."""
    if width <= 0 or height <= 0:
        width = height = 1024
    scale = min(1.0, 2048 / max(width, height))
    w, h = width * scale, height * scale
    scale = min(1.0, 768 / min(w, h))
    w, h = w * scale, h * scale
    tiles = math.ceil(w / 512) * math.ceil(h / 512)
    return IMAGE_BASE_TOKENS + IMAGE_TILE_TOKENS * tiles


class ImageShelf:
    """The PNGs behind the ``url`` answers, so a client can download what it was given."""

    def __init__(self, capacity: int = 256) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._images: OrderedDict[str, bytes] = OrderedDict()

    def put(self, name: str, data: bytes) -> None:
        with self._lock:
            self._images[name] = data
            while len(self._images) > self._capacity:
                self._images.popitem(last=False)

    def get(self, name: str) -> bytes | None:
        with self._lock:
            return self._images.get(name)


# ============================================================================= images


def _dumps(value: object, *, azure: bool) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=azure).encode()


def image_family(model: str) -> str:
    """``dall-e-2``, ``dall-e-3`` or ``gpt-image`` (any GPT image model)."""
    name = model.lower()
    if "dall-e-3" in name:
        return "dall-e-3"
    if "dall-e-2" in name:
        return "dall-e-2"
    return "gpt-image"


def _revised_prompt(prompt: str) -> str:
    """dall-e-3's rewrite of the prompt: deterministic and a little more elaborate."""
    subject = prompt.strip().rstrip(".")
    return f"{subject}, rendered in rich detail with soft natural lighting and a balanced composition."


def _gpt_image_choice(value: object, allowed: Sequence[str], auto: str) -> str:
    text = value if isinstance(value, str) else "auto"
    return auto if text == "auto" or text not in allowed else text


def images(
    call: Call, shelf: ImageShelf, *, edit: bool, with_usage: bool, variation: bool = False
) -> Answer | ErrorReply:
    """``images/generations``, ``images/edits`` (DALL·E and GPT image models) and ``images/variations`` (dall-e-2)."""
    body = call.body
    prompt = body.get("prompt")
    if variation:
        source = call.upload("image")
        if source is None:
            return errors.missing_parameter("image")
        if image_family(call.model) != "dall-e-2":
            return errors.not_one_of(call.model, ["dall-e-2"], "model")
        prompt = f"variation-{zlib.crc32(source.data):08x}"
    elif not isinstance(prompt, str) or not prompt:
        return errors.missing_parameter("prompt")
    family = image_family(call.model)
    n = form_int(body.get("n"), 1)
    if family == "dall-e-3" and n != 1:
        return errors.image_n_must_be_one()
    if n > MAX_IMAGES:
        return errors.integer_above_max("n", MAX_IMAGES, n)
    if n < 1:
        return errors.invalid_request(f"Invalid 'n': integer below minimum value. Expected a value >= 1, but got {n}.")
    size = body.get("size")
    if isinstance(size, str) and size not in _SIZES[family]:
        return errors.not_one_of(size, _SIZES[family], "size")
    if family == "dall-e-2" and "quality" in body:
        return errors.unknown_parameter("quality")
    if family == "gpt-image" and "response_format" in body:
        return errors.unknown_parameter("response_format")
    inputs = [part for key in ("image", "image[]") for part in call.files.get(key, [])]
    if (edit or variation) and not inputs:
        return errors.missing_parameter("image")
    seed = zlib.crc32(prompt.encode("utf-8", "replace"))
    created = int(time.time())
    if family == "gpt-image":
        return _gpt_image(call, prompt, seed, n, created, [part.data for part in inputs], with_usage=with_usage)
    return _dalle(call, shelf, prompt, seed, n, created, family)


def _dalle(call: Call, shelf: ImageShelf, prompt: str, seed: int, n: int, created: int, family: str) -> Answer:
    as_b64 = call.body.get("response_format") == "b64_json"
    data: list[dict[str, object]] = []
    for index in range(n):
        png = tiny_png((seed + index) & 0xFFFFFF)
        item: dict[str, object] = {}
        if family == "dall-e-3":
            item["revised_prompt"] = _revised_prompt(prompt)
        if as_b64:
            item["b64_json"] = base64.b64encode(png).decode("ascii")
        else:
            name = f"{uuid.uuid4()}/generated_{index:02d}.png" if call.azure else new_id("img-", 24) + ".png"
            shelf.put(name, png)
            item["url"] = f"{call.origin}/simulator/images/{name}"
        if call.azure:
            item["content_filter_results"] = AZURE_CHUNK_FILTER
            item["prompt_filter_results"] = _AZURE_IMAGE_PROMPT_FILTER
        data.append(item)
    return Answer(_dumps({"created": created, "data": data}, azure=call.azure))


def _gpt_image(
    call: Call, prompt: str, seed: int, n: int, created: int, inputs: list[bytes], *, with_usage: bool
) -> Answer:
    body = call.body
    quality = _gpt_image_choice(body.get("quality"), ("low", "medium", "high"), "high")
    size = _gpt_image_choice(body.get("size"), ("1024x1024", "1536x1024", "1024x1536"), "1024x1024")
    background = _gpt_image_choice(body.get("background"), ("transparent", "opaque"), "opaque")
    output_format = form_str(body.get("output_format"), "png")
    text_tokens = count_text_tokens(prompt, call.model)
    image_tokens = 0
    for data in inputs:
        width, height = png_size(data) or (1024, 1024)
        image_tokens += image_input_tokens(width, height)
    mask = call.upload("mask")
    if mask is not None:
        width, height = png_size(mask.data) or (1024, 1024)
        image_tokens += image_input_tokens(width, height)
    output_tokens = GPT_IMAGE_OUTPUT_TOKENS[quality][size] * n
    items = [{"b64_json": base64.b64encode(tiny_png((seed + index) & 0xFFFFFF)).decode("ascii")} for index in range(n)]
    result: dict[str, object] = {
        "created": created,
        "background": background,
        "data": items,
        "output_format": output_format,
        "quality": quality,
        "size": size,
    }
    input_tokens = text_tokens + image_tokens
    if with_usage:
        result["usage"] = {
            "input_tokens": input_tokens,
            "input_tokens_details": {"image_tokens": image_tokens, "text_tokens": text_tokens},
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        }
    return Answer(_dumps(result, azure=call.azure), tokens=input_tokens + output_tokens)


# ============================================================================= speech


def _is_gpt_tts(model: str) -> bool:
    """The gpt-4o TTS models (which can stream SSE with usage), not tts-1 / tts-1-hd."""
    return "gpt" in model.lower()


def speech(call: Call, *, with_usage: bool) -> Answer | ErrorReply:
    """``audio/speech``: bare audio bytes (see the module rules), or SSE for gpt-4o-mini-tts."""
    body = call.body
    text = body.get("input")
    if not isinstance(text, str):
        return errors.missing_parameter("input")
    if "voice" not in body:
        return errors.missing_parameter("voice")
    if len(text) > SPEECH_MAX_CHARS:
        return errors.string_too_long("input", SPEECH_MAX_CHARS, len(text))
    fmt = form_str(body.get("response_format"), "mp3")
    if fmt not in SPEECH_MEDIA_TYPES:
        return errors.not_one_of(fmt, list(SPEECH_MEDIA_TYPES), "response_format")
    speed = min(4.0, max(0.25, form_float(body.get("speed"), 1.0)))
    seconds = speech_seconds(text, speed)
    audio = encode_audio(seconds, fmt, transcript=text)
    if body.get("stream_format") == "sse" and _is_gpt_tts(call.model):
        instructions = body.get("instructions")
        input_tokens = count_text_tokens(text, call.model)
        if isinstance(instructions, str):
            input_tokens += count_text_tokens(instructions, call.model)
        usage = {
            "input_tokens": input_tokens,
            "output_tokens": output_audio_tokens(seconds),
            "total_tokens": input_tokens + output_audio_tokens(seconds),
        }
        return Answer(events=_speech_events(audio, usage if with_usage else None), tokens=usage["total_tokens"])
    return Answer(audio, media_type=SPEECH_MEDIA_TYPES[fmt], tokens=len(text))


def _speech_events(audio: bytes, usage: dict[str, int] | None) -> Iterator[bytes]:
    step = SAMPLE_RATE * 2  # about a second of 16-bit audio per event
    for start in range(0, len(audio), step):
        chunk = base64.b64encode(audio[start : start + step]).decode("ascii")
        yield sse(json.dumps({"type": "speech.audio.delta", "audio": chunk}, separators=(",", ":")))
    done: dict[str, object] = {"type": "speech.audio.done"}
    if usage is not None:
        done["usage"] = usage
    yield sse(json.dumps(done, separators=(",", ":")))


# ============================================================================= transcriptions


def _is_whisper(model: str) -> bool:
    return "whisper" in model.lower()


def transcript_text(data: bytes, seconds: float) -> str:
    """What the simulated listener hears: the WAV's own transcript, else deterministic words."""
    embedded = wav_transcript(data)
    if embedded:
        return embedded
    words = max(1, round(seconds * TRANSCRIPT_WORDS_PER_SECOND))
    return make_reply(zlib.crc32(data), words + 1, "gpt-4o").text  # n + 1 one-token pieces make n words


def _timeline(text: str, seconds: float) -> list[tuple[str, float, float]]:
    """Words with start/end times proportional to their character offsets."""
    words = re.findall(r"\S+", text) or [text]
    total = sum(len(word) for word in words) or 1
    timeline: list[tuple[str, float, float]] = []
    offset = 0
    for word in words:
        start = seconds * offset / total
        offset += len(word)
        timeline.append((word, round(start, 2), round(seconds * offset / total, 2)))
    return timeline


def _segments(text: str, seconds: float, model: str) -> list[dict[str, object]]:
    timeline = _timeline(text, seconds)
    segments: list[dict[str, object]] = []
    for index in range(0, len(timeline), SEGMENT_WORDS):
        group = timeline[index : index + SEGMENT_WORDS]
        segment_text = " " + " ".join(word for word, _, _ in group)
        count = count_text_tokens(segment_text, model)
        segments.append(
            {
                "id": len(segments),
                "seek": int(group[0][1] * 100),
                "start": group[0][1],
                "end": group[-1][2],
                "text": segment_text,
                "tokens": [50365 + i for i in range(count)],  # placeholder ids
                "temperature": 0.0,
                "avg_logprob": -0.25,
                "compression_ratio": 1.2,
                "no_speech_prob": 0.01,
            }
        )
    return segments


def _clock(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _subtitles(segments: list[dict[str, object]], *, vtt: bool) -> str:
    lines = ["WEBVTT", ""] if vtt else []
    for segment in segments:
        start, end = float(str(segment["start"])), float(str(segment["end"]))
        if not vtt:
            lines.append(str(int(str(segment["id"])) + 1))
        separator = "." if vtt else ","
        lines.append(f"{_clock(start, separator)} --> {_clock(end, separator)}")
        lines.append(str(segment["text"]).strip())
        lines.append("")
    return "\n".join(lines) + "\n"


def transcription(call: Call, *, translate: bool, with_usage: bool) -> Answer | ErrorReply:
    """``audio/transcriptions`` and ``audio/translations`` in every ``response_format``."""
    upload = call.upload("file")
    if upload is None:
        return errors.missing_parameter("file")
    body = call.body
    fmt = form_str(body.get("response_format"), "json")
    whisper = _is_whisper(call.model)
    if not whisper and fmt not in ("json", "text"):
        return errors.response_format_incompatible(fmt, call.model)
    if fmt not in ("json", "text", "srt", "verbose_json", "vtt"):
        return errors.not_one_of(fmt, ["json", "text", "srt", "verbose_json", "vtt"], "response_format")
    seconds = audio_seconds(upload.data)
    text = transcript_text(upload.data, seconds)
    usage: dict[str, object] | None = None
    tokens = 0
    if not whisper:
        prompt = body.get("prompt")
        text_tokens = count_text_tokens(prompt, call.model) if isinstance(prompt, str) else 0
        audio_tokens = input_audio_tokens(seconds)
        output_tokens = count_text_tokens(text, call.model)
        tokens = text_tokens + audio_tokens + output_tokens
        usage = {
            "type": "tokens",
            "total_tokens": tokens,
            "input_tokens": text_tokens + audio_tokens,
            "input_token_details": {"text_tokens": text_tokens, "audio_tokens": audio_tokens},
            "output_tokens": output_tokens,
        }
    elif not translate and not call.azure and fmt in ("json", "verbose_json"):
        usage = {"type": "duration", "seconds": math.ceil(seconds - 1e-9)}
    if not with_usage:
        usage = None

    if not whisper and form_bool(body.get("stream")):
        return Answer(events=_transcript_events(text, usage), tokens=tokens)
    if fmt == "text":
        return Answer((text + "\n").encode(), media_type="text/plain", tokens=tokens)
    if fmt == "json":
        result: dict[str, object] = {"text": text}
        if usage is not None:
            result["usage"] = usage
        return Answer(_dumps(result, azure=False), tokens=tokens)
    segments = _segments(text, seconds, call.model)
    if fmt in ("srt", "vtt"):
        return Answer(_subtitles(segments, vtt=fmt == "vtt").encode(), media_type="text/plain")
    language = "english" if translate else _LANGUAGES.get(form_str(body.get("language"), "en"), "english")
    verbose: dict[str, object] = {
        "task": "translate" if translate else "transcribe",
        "language": language,
        "duration": round(seconds, 2),
        "text": text,
    }
    granularities = body.get("timestamp_granularities")
    wanted = granularities if isinstance(granularities, list) else [granularities]
    if "segment" in wanted or "word" not in wanted:
        verbose["segments"] = segments
    if "word" in wanted:
        verbose["words"] = [{"word": w, "start": s, "end": e} for w, s, e in _timeline(text, seconds)]
    if usage is not None:
        verbose["usage"] = usage
    return Answer(_dumps(verbose, azure=False))


def _transcript_events(text: str, usage: dict[str, object] | None) -> Iterator[bytes]:
    """The ``transcript.text.delta`` / ``transcript.text.done`` stream of the gpt-4o transcribe models."""
    for piece in re.findall(r"\s*\S+", text):
        yield sse(json.dumps({"type": "transcript.text.delta", "delta": piece}, separators=(",", ":")))
    done: dict[str, object] = {"type": "transcript.text.done", "text": text}
    if usage is not None:
        done["usage"] = usage
    yield sse(json.dumps(done, separators=(",", ":")))


# ============================================================================= chat audio


def chat_input_audio_tokens(body: Mapping[str, object]) -> int:
    """Audio input tokens of a chat request's ``input_audio`` parts (by each clip's duration)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return 0
    total = 0
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        if not isinstance(content, list):
            continue
        for part in content:
            clip = part.get("input_audio") if isinstance(part, Mapping) and part.get("type") == "input_audio" else None
            data = clip.get("data") if isinstance(clip, Mapping) else None
            if not isinstance(data, str):
                continue
            try:
                raw = base64.b64decode(data, validate=False)
            except (binascii.Error, ValueError):
                continue
            total += input_audio_tokens(audio_seconds(raw))
    return total


CHAT_AUDIO_EXPIRES_S = 3600


def chat_audio(replies: Sequence[Reply], body: Mapping[str, object]) -> tuple[ChatAudio, ...]:
    """The spoken answers for a chat request whose ``modalities`` include ``audio`` (else none)."""
    modalities = body.get("modalities")
    if not isinstance(modalities, list) or "audio" not in modalities:
        return ()
    options = body.get("audio")
    fmt = form_str(options.get("format") if isinstance(options, Mapping) else None, "wav")
    expires = int(time.time()) + CHAT_AUDIO_EXPIRES_S
    spoken: list[ChatAudio] = []
    for reply in replies:
        seconds = speech_seconds(reply.text)
        data = base64.b64encode(encode_audio(seconds, fmt, reply.text)).decode("ascii")
        ident = new_id("audio_", 32, HEX)
        spoken.append(ChatAudio(ident, data, expires, reply.text, output_audio_tokens(seconds)))
    return tuple(spoken)
