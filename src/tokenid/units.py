"""Non-token billing units of a call: images, characters, audio seconds, tool calls, training tokens.

Some endpoints bill by something other than tokens (DALL·E per image, tts-1 per character, whisper per
minute of audio, Responses tools per call). These are read from the request and response on the journal's
writer thread and stored in the event's ``units`` object; :mod:`tokenid.pricing` prices them.

Keys of a ``units`` object (absent when not applicable):

``images``, ``image_size``, ``image_quality``
    images returned by ``images.generate`` / ``edit`` / ``variation``, and the size and quality billed.
``characters``
    characters of ``audio.speech`` input text.
``audio_seconds``, ``audio_seconds_source``
    length of the audio a transcription or translation processed; ``"response"`` when the API reported it,
    ``"file"`` when read from the uploaded file.
``web_search_calls``, ``file_search_calls``
    Responses API tool calls in the output.
``training_tokens``
    tokens a finished fine-tuning job trained on (epochs included).
"""

from __future__ import annotations

import io
import logging
import os
import wave
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["AudioSource", "audio_seconds", "audio_source", "units_of"]

log = logging.getLogger("tokenid")

_IMAGE_ENDPOINTS = frozenset({"images.generate", "images.edit", "images.variation"})
_AUDIO_IN_ENDPOINTS = frozenset({"audio.transcriptions", "audio.translations", "realtime.transcription"})
_TOOL_CALL_KEYS = {"web_search_call": "web_search_calls", "file_search_call": "file_search_calls"}


class AudioSource:
    """Where the audio of a transcription request can be read again: its bytes or its file's path.

    Built on the caller's thread from references only (no copy, no read); the duration is worked out on the
    writer thread, and only when the response did not report it.
    """

    __slots__ = ("data", "name", "path")

    def __init__(self, *, data: bytes | None = None, path: str | None = None, name: str | None = None) -> None:
        self.data = data
        self.path = path
        self.name = name

    def seconds(self) -> float | None:
        """Duration in seconds, or None when the format is unknown or the file is gone."""
        try:
            if self.data is not None:
                return audio_seconds(self.data, self.name)
            if self.path is not None:
                with open(self.path, "rb") as fh:
                    return audio_seconds(fh.read(), self.path)
        except OSError as exc:
            log.warning("tokenid: cannot read the transcribed audio again (%s)", exc)
        return None


def audio_source(files: object) -> AudioSource | None:
    """The ``file`` part of a multipart request as the SDK passes it on (bytes, ``(name, content, ...)``, IO)."""
    items: Sequence[tuple[str, Any]]
    if isinstance(files, Mapping):
        items = list(files.items())
    elif isinstance(files, list | tuple):
        items = [item for item in files if isinstance(item, tuple) and len(item) == 2]
    else:
        return None
    for key, value in items:
        if key != "file":
            continue
        name = None
        if isinstance(value, tuple) and value:
            name = value[0] if isinstance(value[0], str) else None
            value = value[1] if len(value) > 1 else None
        if isinstance(value, bytes | bytearray | memoryview):
            return AudioSource(data=bytes(value), name=name)
        if isinstance(value, io.BytesIO):
            return AudioSource(data=value.getvalue(), name=name)
        path = getattr(value, "name", None)
        if isinstance(path, str) and os.path.isfile(path):
            return AudioSource(path=path, name=name or path)
    return None


def audio_seconds(data: bytes, name: str | None = None) -> float | None:
    """Duration of an audio file's bytes: WAV by the standard library, other formats with mutagen."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        try:
            with wave.open(io.BytesIO(data)) as wav:
                rate = wav.getframerate()
                return wav.getnframes() / rate if rate else None
        except (wave.Error, EOFError):
            pass
    try:
        import mutagen

        found = mutagen.File(io.BytesIO(data))
    except Exception:  # mutagen raises its own error types for every corrupt format
        return None
    info = getattr(found, "info", None)
    length = getattr(info, "length", None)
    return float(length) if isinstance(length, int | float) and length > 0 else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def units_of(endpoint: str, request: Mapping[str, Any] | None, response: Mapping[str, Any] | None,
             audio: AudioSource | None = None) -> dict[str, Any]:
    """The non-token units a successful call of ``endpoint`` billed (empty when it billed tokens only)."""
    request = request or {}
    if endpoint in _IMAGE_ENDPOINTS:
        return _image_units(request, response or {})
    if endpoint == "audio.speech":
        text = request.get("input")
        return {"characters": len(text)} if isinstance(text, str) else {}
    if endpoint in _AUDIO_IN_ENDPOINTS:
        return _audio_in_units(response, audio)
    if endpoint == "responses" and response is not None:
        return _tool_units(response)
    return {}


def _image_units(request: Mapping[str, Any], response: Mapping[str, Any]) -> dict[str, Any]:
    data = response.get("data")
    count = len(data) if isinstance(data, list) else _int(request.get("n")) or 1
    units: dict[str, Any] = {"images": count}
    size = response.get("size") or request.get("size")
    quality = response.get("quality") or request.get("quality")
    if isinstance(size, str) and size:
        units["image_size"] = size
    if isinstance(quality, str) and quality:
        units["image_quality"] = quality
    return units


def _audio_in_units(response: Mapping[str, Any] | None, audio: AudioSource | None) -> dict[str, Any]:
    if response is not None:
        usage = response.get("usage")
        if isinstance(usage, Mapping) and usage.get("type") == "duration":
            seconds = _number(usage.get("seconds"))
            if seconds is not None:
                return {"audio_seconds": seconds, "audio_seconds_source": "response"}
        seconds = _number(response.get("duration"))  # verbose_json
        if seconds is not None:
            return {"audio_seconds": round(seconds, 3), "audio_seconds_source": "response"}
    if audio is not None:
        seconds = audio.seconds()
        if seconds is not None:
            return {"audio_seconds": round(seconds, 3), "audio_seconds_source": "file"}
    return {}


def _tool_units(response: Mapping[str, Any]) -> dict[str, Any]:
    units: dict[str, Any] = {}
    output = response.get("output")
    if isinstance(output, list):
        for item in output:
            kind = item.get("type") if isinstance(item, Mapping) else None
            key = _TOOL_CALL_KEYS.get(kind) if isinstance(kind, str) else None
            if key is not None:
                units[key] = units.get(key, 0) + 1
    return units
