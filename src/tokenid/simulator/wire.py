"""Reading requests, and what the app hands the endpoint modules and they hand back.

The app parses a request (JSON or multipart), authenticates it and resolves
the deployment into a :class:`Call`; an endpoint module (text generation in
the app, :mod:`~tokenid.simulator.media`, :mod:`~tokenid.simulator.batch`)
answers with an :class:`Answer` or an :class:`~tokenid.simulator.errors.ErrorReply`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request

AZURE_DEPLOYMENT = "azure-deployment"
"""``/openai/deployments/{deployment}/...?api-version=<date>``"""
AZURE_V1 = "azure-v1"
"""``/openai/v1/...`` (model = deployment name in the body)"""
AZURE_RESPONSES = "azure-responses"
"""``/openai/<resource>?api-version=<date>``: Responses, files, batches, fine-tuning"""
OPENAI = "openai"
"""``/v1/...``"""

MAX_FIELD_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Upload:
    """One file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class Call:
    """One request as a handler sees it once routing and auth are done."""

    flavor: str
    endpoint: str
    api_version: str | None
    deployment: str | None
    model: str
    body: dict[str, Any]
    headers: dict[str, str]
    started: float
    files: Mapping[str, list[Upload]] = field(default_factory=dict)
    origin: str = ""
    """Scheme, host and port the caller used, e.g. ``http://127.0.0.1:8000`` (for URLs in answers)."""
    query: Mapping[str, str] = field(default_factory=dict)

    @property
    def azure(self) -> bool:
        return self.flavor != OPENAI

    def upload(self, *names: str) -> Upload | None:
        """The first file sent under any of ``names`` (``image`` also matches ``image[]``)."""
        for name in names:
            for key in (name, name + "[]"):
                parts = self.files.get(key)
                if parts:
                    return parts[0]
        return None


@dataclass(frozen=True)
class Answer:
    """A successful answer: a body of some media type, or an event stream.

    ``tokens`` feeds the rate-limit headers; ``events``, when set, is sent
    as ``text/event-stream`` instead of ``body``.
    """

    body: bytes = b""
    media_type: str = "application/json"
    tokens: int = 0
    events: Iterator[bytes] | None = None


def form_int(value: object, default: int) -> int:
    """An integer field from JSON (int) or multipart (decimal string)."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return default
    return default


def form_float(value: object, default: float) -> float:
    """A number field from JSON or multipart."""
    if isinstance(value, bool):
        return default
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return default
    return default


def form_bool(value: object) -> bool:
    """A boolean field from JSON (true) or multipart ("true")."""
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() == "true"


def form_str(value: object, default: str) -> str:
    """A string field, or ``default`` when absent or not a string."""
    return value if isinstance(value, str) and value else default


async def read_body(request: Request) -> tuple[dict[str, Any], dict[str, list[Upload]]] | None:
    """The body's fields and uploaded files: JSON, or multipart form data; None if unreadable.

    Multipart fields named ``name[]`` are gathered into a list under ``name``.
    """
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        try:
            form = await request.form(max_part_size=MAX_FIELD_BYTES)
        except MultiPartException:
            return None
        fields: dict[str, Any] = {}
        files: dict[str, list[Upload]] = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read()
                upload = Upload(value.filename or "", value.content_type or "", data)
                files.setdefault(key, []).append(upload)
            elif key.endswith("[]"):
                fields.setdefault(key[:-2], []).append(value)
            else:
                fields[key] = value
        await form.close()
        return fields, files
    raw = await request.body()
    if not raw.strip():
        return {}, {}  # e.g. the bodiless POST of a cancel
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return (body, {}) if isinstance(body, dict) else None
