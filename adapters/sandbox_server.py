"""Serve an ASGI app (a sandbox, or the gateway) on a real loopback port from a thread.

Tests, the ``gateway sandbox`` command and the demo run all need upstreams that answer
over real HTTP. A thread with its own event loop keeps the server independent of the
caller's loop, so a session-wide sandbox works with per-test event loops and with
synchronous callers alike.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp


class BackgroundServer:
    """``with BackgroundServer(app) as server: httpx.get(server.url + "/path")``."""

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto is
        # IPPROTO_TCP, and accepted sockets inherit proto 0 from a plain socket(). Without
        # it Nagle holds each response body behind its headers until the client's delayed
        # ACK (~40 ms per request on a kept-alive connection).
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="critical", access_log=False, lifespan="on", timeout_keep_alive=30
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"server:{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    def start(self) -> BackgroundServer:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"server on port {self.port} failed to start")
            threading.Event().wait(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
