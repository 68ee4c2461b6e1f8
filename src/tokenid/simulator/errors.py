"""Error responses exactly as Azure OpenAI and OpenAI send them.

Bodies follow recorded traffic (the conformance corpus) and messages reported
verbatim by users of the real services; the simulator's clients must parse
the very bytes they will meet in production.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

AZURE_SUPPORT_LINK = "https://go.microsoft.com/fwlink/?linkid=2213926"
CONTENT_POLICY_LINK = "https://go.microsoft.com/fwlink/?linkid=2198766"

_OPERATIONS = {
    "chat.completions": "ChatCompletions_Create",
    "completions": "Completions_Create",
    "embeddings": "Embeddings_Create",
    "responses": "Responses_Create",
    "images.generate": "ImageGenerations_Create",
    "images.edit": "ImageEdits_Create",
    "audio.speech": "GenerateSpeechFromText",
    "audio.transcriptions": "Transcriptions_Create",
    "audio.translations": "Translations_Create",
}


@dataclass(frozen=True)
class ErrorReply:
    """An error to send: status, exact body bytes and any extra headers."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _openai_style(message: str, kind: str | None, param: str | None, code: str | None) -> bytes:
    """The ``{"error": {message, type, param, code}}`` shape both services use for model errors."""
    return json.dumps({"error": {"message": message, "type": kind, "param": param, "code": code}}, indent=2).encode()


def resource_not_found() -> ErrorReply:
    """Azure's answer to a path it does not route, e.g. a deployment call without ``api-version``."""
    return ErrorReply(404, b'{"error":{"code":"404","message": "Resource not found"}}')


def api_version_not_supported() -> ErrorReply:
    """Azure's answer to an ``api-version`` it does not know."""
    return ErrorReply(400, b'{"error":{"code":"BadRequest","message":"API version not supported"}}')


def deployment_not_found() -> ErrorReply:
    """Azure's answer to an unknown deployment name (body as recorded)."""
    return ErrorReply(
        404,
        b'{"error":{"code":"DeploymentNotFound", "message":"The API deployment for this resource does not exist. '
        b'If you created the deployment within the last 5 minutes, please wait a moment and try again."}}',
    )


def azure_unauthorized(*, missing: bool) -> ErrorReply:
    """Azure's 401 for a wrong (or absent) ``api-key``."""
    if missing:
        return ErrorReply(
            401,
            b'{"error":{"code":"401","message":"Access denied due to missing subscription key. '
            b'Make sure to include subscription key when making requests to an API."}}',
        )
    return ErrorReply(
        401,
        b'{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. '
        b"Make sure to provide a valid key for an active subscription and use a correct regional API endpoint "
        b'for your resource."}}',
    )


def mask_api_key(key: str) -> str:
    """Mask a key the way OpenAI echoes it: first 8 and last 4 characters around asterisks."""
    if len(key) < 12:
        return key
    return key[:8] + "*" * max(4, len(key) - 12) + key[-4:]


def openai_unauthorized(key: str | None) -> ErrorReply:
    """OpenAI's 401 for a wrong (or absent) bearer key."""
    if key is None:
        message = (
            "You didn't provide an API key. You need to provide your API key in an Authorization header using "
            "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if "
            "you're accessing the API from your browser and are getting a username prompt. You can obtain an API "
            "key from https://platform.openai.com/account/api-keys."
        )
        return ErrorReply(401, _openai_style(message, "invalid_request_error", None, None))
    message = (
        f"Incorrect API key provided: {mask_api_key(key)}. "
        "You can find your API key at https://platform.openai.com/account/api-keys."
    )
    return ErrorReply(401, _openai_style(message, "invalid_request_error", None, "invalid_api_key"))


def model_not_found(model: str) -> ErrorReply:
    """OpenAI's 404 for a model the key cannot use."""
    message = f"The model `{model}` does not exist or you do not have access to it."
    return ErrorReply(404, _openai_style(message, "invalid_request_error", None, "model_not_found"))


def stream_options_unrecognized() -> ErrorReply:
    """Azure's 400 for ``stream_options`` on an API version that predates it."""
    return ErrorReply(
        400,
        _openai_style("Unrecognized request argument supplied: stream_options", "invalid_request_error", None, None),
    )


def invalid_json() -> ErrorReply:
    """400 for a body that is not a JSON object."""
    message = (
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
        "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
    )
    return ErrorReply(400, _openai_style(message, "invalid_request_error", None, None))


def missing_parameter(name: str) -> ErrorReply:
    """400 for a required body field that is absent."""
    message = f"Missing required parameter: '{name}'."
    return ErrorReply(400, _openai_style(message, "invalid_request_error", name, "missing_required_parameter"))


def dimensions_not_supported() -> ErrorReply:
    """400 for ``dimensions`` on an embeddings model with a fixed size."""
    return ErrorReply(
        400, _openai_style("This model does not support specifying dimensions.", "invalid_request_error", None, None)
    )


def rate_limited(*, azure: bool, endpoint: str, api_version: str | None, model: str, retry_after_ms: int) -> ErrorReply:
    """A 429 with ``retry-after`` / ``retry-after-ms`` and the service's own wording."""
    seconds = max(1, -(-retry_after_ms // 1000))
    unit = "second" if seconds == 1 else "seconds"
    headers = {
        "retry-after": str(seconds),
        "retry-after-ms": str(retry_after_ms),
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-remaining-tokens": "0",
    }
    if azure:
        operation = _OPERATIONS.get(endpoint, "ChatCompletions_Create")
        version = api_version or "v1"
        message = (
            f"Requests to the {operation} Operation under Azure OpenAI API version {version} have exceeded token "
            f"rate limit of your current OpenAI S0 pricing tier. Please retry after {seconds} {unit}. Please go "
            "here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit."
        )
        body = json.dumps({"error": {"code": "429", "message": message}}).encode()
        return ErrorReply(429, body, headers)
    message = (
        f"Rate limit reached for {model} in organization org-simulated on requests per min (RPM): Limit 3, Used 3, "
        f"Requested 1. Please try again in {seconds}s. Visit https://platform.openai.com/account/rate-limits to "
        "learn more."
    )
    return ErrorReply(429, _openai_style(message, "requests", None, "rate_limit_exceeded"), headers)


def server_error(*, azure: bool, request_id: str) -> ErrorReply:
    """A 500 as each service words it, naming the request id."""
    where = f"an Azure support request at: {AZURE_SUPPORT_LINK}" if azure else "our help center at help.openai.com"
    message = (
        f"The server had an error while processing your request. Sorry about that! You can retry your request, "
        f"or contact us through {where} if the error persists. (Please include the request ID {request_id} in "
        "your message.)"
    )
    return ErrorReply(500, _openai_style(message, "server_error", None, None))


def overloaded(*, azure: bool, request_id: str) -> ErrorReply:
    """A 503 "model overloaded", as each service words it."""
    where = f"an Azure support request at: {AZURE_SUPPORT_LINK}" if azure else "our help center at help.openai.com"
    message = (
        f"That model is currently overloaded with other requests. You can retry your request, or contact us "
        f"through {where} if the error persists. (Please include the request ID {request_id} in your message.)"
    )
    return ErrorReply(503, _openai_style(message, "server_error", None, None))


def content_filtered() -> ErrorReply:
    """Azure's 400 when the prompt trips its content filter (violence, medium)."""
    safe = {"filtered": False, "severity": "safe"}
    body = {
        "error": {
            "message": (
                "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
                "Please modify your prompt and retry. To learn more about our content filtering policies please "
                f"read our documentation: {CONTENT_POLICY_LINK}"
            ),
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {
                    "hate": safe,
                    "jailbreak": {"filtered": False, "detected": False},
                    "self_harm": safe,
                    "sexual": safe,
                    "violence": {"filtered": True, "severity": "medium"},
                },
            },
        }
    }
    return ErrorReply(400, json.dumps(body).encode())


# ------------------------------------------------------------------ request validation (images, audio)


def unknown_parameter(name: str) -> ErrorReply:
    """400 for a parameter the model does not take (as recorded for ``quality`` on dall-e-2)."""
    return ErrorReply(
        400, _openai_style(f"Unknown parameter: '{name}'.", "invalid_request_error", name, "unknown_parameter")
    )


def image_n_must_be_one() -> ErrorReply:
    """dall-e-3's 400 for ``n`` other than 1 (message as users report it verbatim)."""
    return ErrorReply(400, _openai_style("You must provide n=1 for this model.", "invalid_request_error", None, None))


def not_one_of(value: str, allowed: list[str], param: str) -> ErrorReply:
    """400 for an enum value the model does not accept, in the schema validator's wording."""
    message = f"'{value}' is not one of {allowed!r} - '{param}'"
    return ErrorReply(400, _openai_style(message, "invalid_request_error", None, None))


def integer_above_max(param: str, maximum: int, got: int) -> ErrorReply:
    """400 for an integer above its maximum (e.g. ``n``)."""
    message = f"Invalid '{param}': integer above maximum value. Expected a value <= {maximum}, but got {got} instead."
    return ErrorReply(400, _openai_style(message, "invalid_request_error", param, "integer_above_max_value"))


def string_too_long(param: str, maximum: int, got: int) -> ErrorReply:
    """400 for a string above its maximum length (e.g. speech ``input`` over 4096 characters)."""
    message = (
        f"Invalid '{param}': string too long. Expected a string with maximum length {maximum}, "
        f"but got a string with length {got} instead."
    )
    return ErrorReply(400, _openai_style(message, "invalid_request_error", param, "string_above_max_length"))


def response_format_incompatible(response_format: str, model: str) -> ErrorReply:
    """400 for a transcription format the gpt-4o transcribe models do not produce."""
    message = (
        f"response_format '{response_format}' is not compatible with model '{model}'. Use 'json' or 'text' instead."
    )
    return ErrorReply(400, _openai_style(message, "invalid_request_error", "response_format", "unsupported_value"))


# ---------------------------------------------------------------------- files, batches, fine-tuning


def object_not_found(kind: str, ident: str, *, azure: bool) -> ErrorReply:
    """404 for an unknown file, batch or fine-tuning job id."""
    if azure:
        body = {"error": {"code": "notFound", "message": f"{kind} with id '{ident}' not found."}}
        return ErrorReply(404, json.dumps(body).encode())
    message = f"No such {kind} object: {ident}"
    return ErrorReply(404, _openai_style(message, "invalid_request_error", "id", None))


def invalid_request(message: str, param: str | None = None, code: str | None = None) -> ErrorReply:
    """A plain 400 ``invalid_request_error``."""
    return ErrorReply(400, _openai_style(message, "invalid_request_error", param, code))
