"""A local Azure OpenAI + OpenAI compatible server for tests, demos and benchmarks.

It answers the chat completions, completions, embeddings and Responses APIs
(with built-in web / file search tool calls and chat audio), images and audio
(:mod:`~tokenid.simulator.media`), and files, batches and fine-tuning jobs
(:mod:`~tokenid.simulator.batch`) on Azure (deployment, v1 and resource
routes) and OpenAI paths with the real response shapes, headers and error
bodies, counts tokens with the real tokenizers, and injects faults on request
(see :mod:`tokenid.simulator.app`).
"""

from tokenid.simulator.app import STREAM_OPTIONS_MIN_API_VERSION, SimulatorApp
from tokenid.simulator.content import (
    CACHE_INCREMENT,
    CACHE_MIN_TOKENS,
    DEFAULT_REPLY_TOKENS,
    MAX_REPLY_TOKENS,
    REASONING_TOKENS,
)
from tokenid.simulator.server import DEFAULT_DEPLOYMENTS, Simulator, run

__all__ = [
    "CACHE_INCREMENT",
    "CACHE_MIN_TOKENS",
    "DEFAULT_DEPLOYMENTS",
    "DEFAULT_REPLY_TOKENS",
    "MAX_REPLY_TOKENS",
    "REASONING_TOKENS",
    "STREAM_OPTIONS_MIN_API_VERSION",
    "Simulator",
    "SimulatorApp",
    "run",
]
