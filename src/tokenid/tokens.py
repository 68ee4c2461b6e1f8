"""Token counting with OpenAI's real tokenizers, fully offline.

TokenID needs token counts when a response carries no usage (streams without
``include_usage``, aborted calls) and for pre-flight enforcement.  The counts
come from the real BPE ranks for ``o200k_base`` and ``cl100k_base``, which the
``bpe-openai`` wheel ships inside itself (byte-identical to the files OpenAI
publishes for ``tiktoken``), so nothing is downloaded at run time.

Prompt estimates follow OpenAI's documented counting scheme for chat requests
(3 tokens per message, the role and content tokens, 1 more per ``name``, 3 to
prime the reply) and its scheme for function definitions.  Two refinements
come from recorded traffic: the gpt-5 family primes the reply with 2 tokens,
and each assistant tool call costs a message's 3 tokens besides its name and
arguments.  Responses API input items count like chat messages.  The
estimators take untrusted request bodies and never raise: odd values are
skipped.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from functools import lru_cache
from types import ModuleType
from typing import Protocol

__all__ = [
    "CL100K_BASE",
    "IMAGE_TOKENS",
    "O200K_BASE",
    "count_chat_prompt_tokens",
    "count_input_tokens",
    "count_text_tokens",
    "encoding_name_for_model",
    "preload",
]

O200K_BASE = "o200k_base"
CL100K_BASE = "cl100k_base"

IMAGE_TOKENS = 85
"""Flat estimate for one image part (the cost of a low-detail image)."""

_TOKENS_PER_MESSAGE = 3
_TOKENS_PER_NAME = 1
_REPLY_PRIMING = 3

# Model-name prefixes served with cl100k_base; everything else uses o200k_base.
# Retired GPT-3 names (davinci, babbage, curie, ada: r50k/p50k) map here too, as the
# closest packaged encoding; Azure reports text-embedding-ada-002 as "ada".
_CL100K_PREFIXES = (
    "gpt-4-",
    "gpt-3.5",
    "gpt-35",
    "text-embedding-",
    "text-davinci",
    "text-curie",
    "text-babbage",
    "text-ada",
    "davinci",
    "babbage",
    "curie",
    "code-",
)
_CL100K_EXACT = frozenset({"gpt-4", "gpt-3.5", "gpt-35", "ada"})

# Keys that mark a request body as one endpoint or another when no hint is given.
_RESPONSES_KEYS = frozenset(
    {
        "instructions",
        "max_output_tokens",
        "previous_response_id",
        "reasoning",
        "text",
        "store",
        "include",
        "truncation",
        "background",
        "conversation",
        "tools",
        "stream",
    }
)
_EMBEDDINGS_KEYS = frozenset({"encoding_format", "dimensions"})


class _Counter(Protocol):
    """What a loaded tokenizer must offer: a token count for a string."""

    def count(self, text: str) -> int: ...


class _EncodeCounter:
    """Adapter over the public ``bpe_openai`` encoding for when the fast binding is missing."""

    def __init__(self, encode: Callable[[str], list[int]]) -> None:
        self._encode = encode

    def count(self, text: str) -> int:
        """Count by encoding, as the public API offers no count-only call."""
        return len(self._encode(text))


_BINDING = "bpe_openai._bindings"
_counters: dict[str, _Counter] = {}
_load_lock = threading.Lock()


def _load_binding() -> ModuleType | None:
    """Load ``bpe-openai``'s compiled tokenizer module on its own, without its package.

    Importing the ``bpe_openai`` package parses every rank file in Python at
    import time (about a second) and warns about a deprecated ``importlib``
    call; the compiled module alone carries the same ranks and loads in
    milliseconds.
    """
    loaded = sys.modules.get(_BINDING)
    if loaded is not None:
        return loaded
    package = importlib.util.find_spec("bpe_openai")
    if package is None or not package.submodule_search_locations:
        return None
    for folder in package.submodule_search_locations:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(folder, "_bindings" + suffix)
            if os.path.isfile(path):
                loader = importlib.machinery.ExtensionFileLoader(_BINDING, path)
                spec = importlib.util.spec_from_file_location(_BINDING, path, loader=loader)
                if spec is None:
                    return None
                module = importlib.util.module_from_spec(spec)
                loader.exec_module(module)
                return module
    return None


def _load_counter(encoding: str, *, fast: bool = True) -> _Counter:
    """Build a tokenizer for ``encoding`` from the ranks packaged in ``bpe-openai``.

    The compiled binding has the ranks built in; the public ``get_encoding``
    API is the fallback should a future release move or rename the binding.
    """
    if fast:
        try:
            binding = _load_binding()
            if binding is not None:
                counter: _Counter = binding.tokenizer_for_encoding(encoding)
                return counter
        except (ImportError, AttributeError, OSError):
            pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        package = importlib.import_module("bpe_openai")
        return _EncodeCounter(package.get_encoding(encoding).encode_ordinary)


def _counter(encoding: str) -> _Counter:
    """Return the cached tokenizer for ``encoding``, loading it once under a lock."""
    counter = _counters.get(encoding)
    if counter is None:
        with _load_lock:
            counter = _counters.get(encoding)
            if counter is None:
                counter = _load_counter(encoding)
                _counters[encoding] = counter
    return counter


def preload(*encodings: str) -> None:
    """Load tokenizers now (default: both) so the first count does not pay the ~0.5 s load."""
    for encoding in encodings or (O200K_BASE, CL100K_BASE):
        _counter(encoding)


def _count(text: str, encoding: str) -> int:
    """Count tokens of ``text`` as ordinary text (special-token strings are not special)."""
    if not text:
        return 0
    counter = _counter(encoding)
    try:
        return counter.count(text)
    except UnicodeEncodeError:
        # Lone surrogates cannot be UTF-8 encoded; replace them the way tiktoken does.
        return counter.count(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"))


def encoding_name_for_model(model: str | None) -> str:
    """Name the tokenizer encoding a model uses: ``o200k_base`` or ``cl100k_base``.

    Accepts OpenAI and Azure spellings (``gpt-35-turbo-16k``), dated snapshots,
    fine-tune ids (``ft:gpt-4o-mini:org::id``) and ``provider/model`` prefixes.
    Unknown models, ``None`` and non-strings get ``o200k_base``, the encoding
    of every current model family.
    """
    if not isinstance(model, str):
        return O200K_BASE
    return _encoding_for_name(model)


@lru_cache(maxsize=1024)
def _encoding_for_name(model: str) -> str:
    name = model.strip().lower()
    if name.startswith("ft:"):
        name = name[3:].split(":", 1)[0]
    name = name.rsplit("/", 1)[-1]
    if name in _CL100K_EXACT or name.startswith(_CL100K_PREFIXES):
        return CL100K_BASE
    return O200K_BASE


def count_text_tokens(text: str, model: str | None = None) -> int:
    """Count the tokens of ``text`` with the tokenizer of ``model``."""
    if not isinstance(text, str):
        return 0
    return _count(text, encoding_name_for_model(model))


def _content_tokens(content: object, encoding: str) -> int:
    """Tokens of a message ``content``: a string or a list of typed parts."""
    if isinstance(content, str):
        return _count(content, encoding)
    if not isinstance(content, list):
        return 0
    total = 0
    for part in content:
        if isinstance(part, str):
            total += _count(part, encoding)
        elif isinstance(part, Mapping):
            kind = part.get("type")
            if kind in ("image_url", "input_image", "image"):
                total += IMAGE_TOKENS
                continue
            for key in ("text", "refusal"):
                value = part.get(key)
                if isinstance(value, str):
                    total += _count(value, encoding)
    return total


def _call_tokens(call: object, encoding: str) -> int:
    """Tokens of one tool/function call: its name and argument text."""
    if not isinstance(call, Mapping):
        return 0
    function = call.get("function", call)
    if not isinstance(function, Mapping):
        return 0
    total = 0
    for key in ("name", "arguments"):
        value = function.get(key)
        if isinstance(value, str):
            total += _count(value, encoding)
    return total


def _message_tokens(message: Mapping[object, object], encoding: str) -> int:
    """Tokens of one chat message under the documented scheme, overhead included."""
    total = _TOKENS_PER_MESSAGE
    role = message.get("role")
    if isinstance(role, str):
        total += _count(role, encoding)
    total += _content_tokens(message.get("content"), encoding)
    name = message.get("name")
    if isinstance(name, str):
        total += _count(name, encoding) + _TOKENS_PER_NAME
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, list):
        # Each call is rendered to the model as a message of its own.
        for call in tool_calls:
            total += _TOKENS_PER_MESSAGE + _call_tokens(call, encoding)
    total += _call_tokens(message.get("function_call"), encoding)
    return total


def _strip_period(text: str) -> str:
    return text[:-1] if text.endswith(".") else text


def _tools_tokens(tools: object, encoding: str) -> int:
    """Estimate the tokens of tool definitions with OpenAI's published per-part constants."""
    if not isinstance(tools, list) or not tools:
        return 0
    func_init = 7 if encoding == O200K_BASE else 10
    prop_init, prop_key, enum_init, enum_item, func_end = 3, 3, -3, 3, 12
    total = 0
    for tool in tools:
        if not isinstance(tool, Mapping):
            continue
        function = tool.get("function", tool)
        if not isinstance(function, Mapping):
            continue
        name = function.get("name")
        description = function.get("description")
        total += func_init
        line = f"{name if isinstance(name, str) else ''}:"
        line += _strip_period(description) if isinstance(description, str) else ""
        total += _count(line, encoding)
        parameters = function.get("parameters")
        properties = parameters.get("properties") if isinstance(parameters, Mapping) else None
        if not isinstance(properties, Mapping) or not properties:
            continue
        total += prop_init
        for key, spec in properties.items():
            total += prop_key
            spec_map: Mapping[object, object] = spec if isinstance(spec, Mapping) else {}
            enum = spec_map.get("enum")
            if isinstance(enum, list):
                total += enum_init
                for item in enum:
                    total += enum_item + _count(str(item), encoding)
            kind = spec_map.get("type")
            desc = spec_map.get("description")
            desc_text = _strip_period(desc) if isinstance(desc, str) else ""
            total += _count(f"{key}:{kind if isinstance(kind, str) else ''}:{desc_text}", encoding)
    return total + func_end


def _reply_priming(model: object) -> int:
    """Tokens that prime the reply: 3 in OpenAI's scheme, 2 as recorded for the gpt-5 family."""
    if isinstance(model, str) and model.strip().lower().rsplit("/", 1)[-1].startswith("gpt-5"):
        return _REPLY_PRIMING - 1
    return _REPLY_PRIMING


def count_chat_prompt_tokens(messages: object, model: str | None = None, tools: object = None) -> int:
    """Estimate the prompt tokens of a chat request's ``messages`` (and ``tools``).

    Follows OpenAI's published scheme; image parts count a flat 85 tokens.
    Never raises: anything that is not a list of message objects counts 0.
    """
    encoding = encoding_name_for_model(model)
    try:
        if not isinstance(messages, list):
            return 0
        total = 0
        for message in messages:
            if isinstance(message, Mapping):
                total += _message_tokens(message, encoding)
        return total + _reply_priming(model) + _tools_tokens(tools, encoding)
    except Exception:  # a best-effort estimate must not break the caller
        return 0


def _prompt_tokens(prompt: object, encoding: str) -> int:
    """Tokens of a completions/embeddings input: text, token ids, or lists of either."""
    if isinstance(prompt, str):
        return _count(prompt, encoding)
    if not isinstance(prompt, list):
        return 0
    if all(isinstance(item, int) for item in prompt):
        return len(prompt)
    return sum(_prompt_tokens(item, encoding) for item in prompt if isinstance(item, (str, list)))


def _response_item_tokens(item: object, encoding: str) -> int:
    """Tokens of one Responses API input item (message, function call or its output)."""
    if isinstance(item, str):
        return _TOKENS_PER_MESSAGE + _count(item, encoding)
    if not isinstance(item, Mapping):
        return 0
    kind = item.get("type", "message")
    if kind == "message" or "role" in item:
        return _message_tokens(item, encoding)
    if kind in ("function_call", "custom_tool_call"):
        total = _TOKENS_PER_MESSAGE + _call_tokens(item, encoding)
        value = item.get("input")
        return total + (_count(value, encoding) if isinstance(value, str) else 0)
    if kind in ("function_call_output", "custom_tool_call_output"):
        output = item.get("output")
        return _TOKENS_PER_MESSAGE + _content_tokens(output, encoding)
    return 0


def _responses_tokens(body: Mapping[str, object], model: str | None, encoding: str) -> int:
    """Estimate a Responses API request: ``instructions`` plus ``input`` as chat messages."""
    total = _reply_priming(model)
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        total += _TOKENS_PER_MESSAGE + _count("system", encoding) + _count(instructions, encoding)
    value = body.get("input")
    if isinstance(value, str):
        total += _TOKENS_PER_MESSAGE + _count("user", encoding) + _count(value, encoding)
    elif isinstance(value, list):
        total += sum(_response_item_tokens(item, encoding) for item in value)
    return total + _tools_tokens(body.get("tools"), encoding)


def _looks_like_embeddings(body: Mapping[str, object], model: str | None) -> bool:
    """Decide whether an ``input`` body is an embeddings request rather than a Responses one."""
    if any(key in body for key in _EMBEDDINGS_KEYS):
        return True
    if any(key in body for key in _RESPONSES_KEYS):
        return False
    if isinstance(model, str) and "embedding" in model.lower():
        return True
    value = body.get("input")
    if isinstance(value, list):
        return not any(isinstance(item, Mapping) for item in value)
    return False


def count_input_tokens(body: Mapping[str, object], model: str | None = None, *, endpoint: str | None = None) -> int:
    """Best-effort prompt token count for any request body.

    Handles chat ``messages``, completions ``prompt``, embeddings ``input`` and
    Responses ``input``/``instructions``.  ``model`` defaults to the body's
    ``model``.  ``endpoint`` ("chat.completions", "completions", "embeddings",
    "responses") settles what the body is when the caller knows; otherwise the
    body's keys decide.  Never raises.
    """
    try:
        if not isinstance(body, Mapping):
            return 0
        if model is None:
            body_model = body.get("model")
            model = body_model if isinstance(body_model, str) else None
        encoding = encoding_name_for_model(model)
        if endpoint in ("chat.completions", "chat") or (endpoint is None and "messages" in body):
            tools = body.get("tools")
            if tools is None:
                tools = body.get("functions")
            return count_chat_prompt_tokens(body.get("messages"), model, tools)
        if endpoint == "completions" or (endpoint is None and "prompt" in body):
            return _prompt_tokens(body.get("prompt"), encoding)
        if endpoint == "embeddings" or (endpoint is None and _looks_like_embeddings(body, model)):
            return _prompt_tokens(body.get("input"), encoding)
        if endpoint == "responses" or "input" in body or "instructions" in body:
            return _responses_tokens(body, model, encoding)
        return 0
    except Exception:  # a best-effort estimate must not break the caller
        return 0
