"""Run the simulator: in a background thread for tests and benchmarks, or blocking for the CLI."""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Mapping
from types import TracebackType

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from tokenid.simulator.app import SimulatedDisconnect, SimulatorApp
from tokenid.simulator.background import BackgroundServer
from tokenid.simulator.realtime import WS_PROTOCOL
from tokenid.tokens import preload

DEFAULT_DEPLOYMENTS: Mapping[str, str] = {
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "my-gpt4-deployment": "gpt-4o-2024-08-06",
    "text-embedding-3-small": "text-embedding-3-small",
    "o3-mini": "o3-mini-2025-01-31",
    "gpt-35-turbo": "gpt-35-turbo",
    "embeddings": "text-embedding-ada-002",
    # images
    "dall-e-3": "dall-e-3",
    "gpt-image-1": "gpt-image-1",
    "gpt-image-1-mini": "gpt-image-1-mini",
    # audio
    "tts": "tts-1",
    "tts-hd": "tts-1-hd",
    "gpt-4o-mini-tts": "gpt-4o-mini-tts",
    "whisper": "whisper-1",
    "gpt-4o-transcribe": "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe": "gpt-4o-mini-transcribe",
    "gpt-4o-audio": "gpt-4o-audio-preview-2024-12-17",
    "gpt-4o-mini-audio": "gpt-4o-mini-audio-preview-2024-12-17",
    # global-batch deployments (name them as ``body.model`` in batch input lines)
    "gpt-4o-batch": "gpt-4o-2024-08-06",
    "gpt-4o-mini-batch": "gpt-4o-mini-2024-07-18",
}
"""Deployment name -> served model used when none are given.

The audio deployments serve OpenAI's model names (``tts`` -> ``tts-1``,
``whisper`` -> ``whisper-1``) so prices resolve the same on both services.
"""



class _QuietDisconnects(logging.Filter):
    """Drop uvicorn's error record for a disconnect the simulator caused on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not _is_simulated(exc)


class _QuietClientGone(logging.Filter):
    """Drop asyncio's warning for writes to a client that already left (it broke out of a stream)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("socket.send() raised exception")


def _is_simulated(exc: BaseException | None) -> bool:
    if isinstance(exc, SimulatedDisconnect):
        return True
    inner = getattr(exc, "exceptions", None)  # an exception group (3.11+ or the backport)
    if isinstance(inner, tuple) and inner:
        return all(_is_simulated(item) for item in inner if isinstance(item, BaseException))
    return False


_filter_lock = threading.Lock()
_filter_installed = False


def _install_log_filter() -> None:
    global _filter_installed
    with _filter_lock:
        if not _filter_installed:
            logging.getLogger("uvicorn.error").addFilter(_QuietDisconnects())
            logging.getLogger("asyncio").addFilter(_QuietClientGone())
            _filter_installed = True


def _config(app: SimulatorApp, host: str, port: int, *, foreground: bool) -> uvicorn.Config:
    """A quiet, lean uvicorn config: no access log, no lifespan, WebSockets only for Realtime, no server header.

    In the background it leaves the host program's logging alone (warnings only);
    in the foreground it uses uvicorn's own console logging.
    """
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info" if foreground else "warning",
        access_log=False,
        lifespan="off",
        ws=WS_PROTOCOL,
        http="auto",
        loop="auto",
        server_header=False,
        timeout_graceful_shutdown=1,
        log_config=LOGGING_CONFIG if foreground else None,
    )


class Simulator:
    """A local Azure OpenAI + OpenAI compatible server on 127.0.0.1.

    ``deployments`` maps Azure deployment names to the model each serves (also
    used to resolve OpenAI model aliases); ``api_keys`` None accepts any key;
    ``latency_s`` delays every answer.  Use as a context manager or call
    :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        *,
        deployments: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = "swedencentral",
        api_keys: Collection[str] | None = None,
        latency_s: float = 0.0,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.app = SimulatorApp(
            deployments=DEFAULT_DEPLOYMENTS if deployments is None else deployments,
            region=region,
            api_keys=api_keys,
            latency_s=latency_s,
        )
        self._served = BackgroundServer(lambda port: _config(self.app, host, port, foreground=False), host=host,
                                        port=port, name="tokenid-sim")

    @property
    def deployments(self) -> Mapping[str, str]:
        """Deployment name -> served model."""
        return self.app.deployments

    @property
    def region(self) -> str:
        """The region's display name, as sent in ``x-ms-region`` (e.g. "Sweden Central")."""
        return self.app.region

    @property
    def port(self) -> int:
        """The bound port (only known once started)."""
        if not self._served.running:
            raise RuntimeError("Simulator is not running; call start() first")
        return self._served.port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def azure_endpoint(self) -> str:
        """What to pass as ``azure_endpoint`` to ``openai.AzureOpenAI``."""
        return self.url

    @property
    def openai_base_url(self) -> str:
        """What to pass as ``base_url`` to ``openai.OpenAI``."""
        return self.url + "/v1"

    def start(self) -> Simulator:
        """Serve in a daemon thread; return once the port accepts connections."""
        if self._served.running:
            raise RuntimeError("Simulator is already running")
        _install_log_filter()
        # Loading the tokenizers takes ~0.5 s once per process: do it beside the server, not in the first request.
        threading.Thread(target=preload, name="tokenid-sim-preload", daemon=True).start()
        try:
            self._served.start()
        except RuntimeError as exc:
            raise RuntimeError(f"Simulator failed to start on {self.host}:{self.requested_port}") from exc
        return self

    def stop(self) -> None:
        """Shut the server down and wait for its thread."""
        self._served.stop()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def run(
    host: str = "127.0.0.1",
    port: int = 8000,
    deployments: Mapping[str, str] | None = None,
    region: str = "swedencentral",
) -> None:
    """Serve in the foreground until interrupted (what ``tokenid simulate`` calls)."""
    _install_log_filter()
    app = SimulatorApp(
        deployments=DEFAULT_DEPLOYMENTS if deployments is None else deployments,
        region=region,
        api_keys=None,
        latency_s=0.0,
    )
    uvicorn.Server(_config(app, host, port, foreground=True)).run()
