"""An ASGI app served by uvicorn on a loopback socket in a daemon thread: the simulator, and the local fakes
and servers the tests start (Cost Management, the dashboard)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

import uvicorn

__all__ = ["BackgroundServer"]

_START_TIMEOUT_S = 10.0


class BackgroundServer:
    """``config(port)`` served on ``host:port`` (0: any free port) until :meth:`stop`."""

    def __init__(self, config: Callable[[int], uvicorn.Config], *, host: str = "127.0.0.1", port: int = 0,
                 name: str = "asgi") -> None:
        self._config = config
        self.host = host
        self.requested_port = port
        self.name = name
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The bound port (only known once started)."""
        if self._port is None:
            raise RuntimeError(f"{self.name} is not running; call start() first")
        return self._port

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> BackgroundServer:
        """Bind, serve in a daemon thread, and return once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP proto: asyncio sets NODELAY
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.requested_port))
        sock.set_inheritable(True)
        port = sock.getsockname()[1]
        server = uvicorn.Server(self._config(port))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"{self.name}-{port}",
                                  daemon=True)
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise RuntimeError(f"{self.name} failed to start on {self.host}:{port}")
            time.sleep(0.002)
        self._server, self._thread, self._socket, self._port = server, thread, sock, port
        return self

    def stop(self) -> None:
        """Shut the server down and wait for its thread."""
        server, thread, sock = self._server, self._thread, self._socket
        self._server = self._thread = self._socket = None
        self._port = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout=10)
        if sock is not None:
            sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
