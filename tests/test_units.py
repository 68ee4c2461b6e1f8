"""Reading non-token units from requests, responses and uploaded audio."""

from __future__ import annotations

import io
import wave
from pathlib import Path

from tokenid.units import AudioSource, audio_seconds, audio_source, units_of


def wav_bytes(seconds: float, rate: int = 16000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"\0\0" * int(seconds * rate))
    return out.getvalue()


def test_wav_duration_from_bytes_and_garbage_gives_none() -> None:
    assert audio_seconds(wav_bytes(2.5)) == 2.5
    assert audio_seconds(wav_bytes(1.0, rate=8000)) == 1.0
    assert audio_seconds(b"not audio at all") is None
    assert audio_seconds(b"RIFF\0\0\0\0WAVEjunk") is None


def test_audio_source_from_every_shape_the_sdk_passes(tmp_path: Path) -> None:
    data = wav_bytes(1.5)
    path = tmp_path / "a.wav"
    path.write_bytes(data)
    assert audio_source([("file", data)]).seconds() == 1.5  # type: ignore[union-attr]
    assert audio_source([("file", ("a.wav", data, "audio/wav"))]).seconds() == 1.5  # type: ignore[union-attr]
    assert audio_source({"file": io.BytesIO(data)}).seconds() == 1.5  # type: ignore[union-attr]
    with open(path, "rb") as fh:
        fh.read()  # the upload consumed it: the source re-reads by path
        source = audio_source([("file", fh)])
    assert source is not None and source.path == str(path) and source.seconds() == 1.5
    assert audio_source([("other", data)]) is None
    assert audio_source("nonsense") is None
    assert AudioSource(path=str(tmp_path / "gone.wav")).seconds() is None


def test_image_units_count_returned_images() -> None:
    units = units_of("images.generate", {"n": 2, "size": "1024x1792", "quality": "hd"},
                     {"data": [{"url": "u1"}, {"url": "u2"}]})
    assert units == {"images": 2, "image_size": "1024x1792", "image_quality": "hd"}
    assert units_of("images.edit", {}, {"data": [{}]}) == {"images": 1}


def test_speech_counts_characters_and_transcription_prefers_the_reported_duration() -> None:
    assert units_of("audio.speech", {"input": "héllo wörld"}, None) == {"characters": 11}
    reported = units_of("audio.transcriptions", {}, {"text": "x", "usage": {"type": "duration", "seconds": 7}},
                        AudioSource(data=wav_bytes(3)))
    assert reported == {"audio_seconds": 7.0, "audio_seconds_source": "response"}
    verbose = units_of("audio.translations", {}, {"text": "x", "duration": 4.25})
    assert verbose == {"audio_seconds": 4.25, "audio_seconds_source": "response"}
    from_file = units_of("audio.transcriptions", {}, None, AudioSource(data=wav_bytes(3)))
    assert from_file == {"audio_seconds": 3.0, "audio_seconds_source": "file"}


def test_responses_tool_calls_are_counted() -> None:
    response = {"output": [{"type": "web_search_call"}, {"type": "web_search_call"}, {"type": "file_search_call"},
                           {"type": "message"}]}
    assert units_of("responses", {}, response) == {"web_search_calls": 2, "file_search_calls": 1}
    assert units_of("chat.completions", {}, {"choices": []}) == {}
