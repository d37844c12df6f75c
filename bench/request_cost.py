"""What one search request costs the server, in-process: the gateway as shipped against
the bare endpoint, through uvicorn's own HTTP protocol but without sockets.

``bench.http_search`` measures throughput from outside, which is what a user sees but
is only as steady as the machine: on a shared or small VM, rounds differ by 10-20 %.
This benchmark measures what the server *does* per request, so two versions of the code
can be compared on a busy machine: it feeds raw HTTP requests to ``C`` connections of
the server's protocol class (``gateway.api.connections.GuardedHttpToolsProtocol`` over
the real app, ``gateway.app.create_app`` with the shipped settings: INFO, JSON access
log to standard error, here a file, metrics, authentication, the per-key limiter on a
real Redis), ``C`` requests per loop turn as ``wrk -c32`` keeps them in flight, and
collects the responses from a stand-in transport. What it leaves out is the kernel's
part (``recv``/``send``, ``epoll``), the same for both servers.

Run it under callgrind for instruction counts, which do not depend on the machine's
load (the figure is the difference between two request counts, so start-up cancels)::

    python -m bench request_cost                   # wall time per request, both apps
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python -m bench.request_cost gateway 3200  # then 6400: difference / 3200

The second form prints nothing useful by itself: the instruction counts come from
valgrind's summary (``Collected``), one run per request count.

Uses Redis at ``REDIS_URL`` under a throw-away key prefix, removed afterwards.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench import synthetic
from bench._serve import (
    SUPPLIER,
    cleanup,
    free_port,
    issue_key,
    new_prefix,
    publish_snapshot,
    redis_url,
)

CONNECTIONS = 32
PRODUCTS = int(os.environ.get("BENCH_PRODUCTS", 10_000))


class _Transport:
    """The little of ``asyncio.Transport`` uvicorn's protocol uses; keeps what is written."""

    def __init__(self) -> None:
        self.written = 0
        self.refused = 0  # responses other than 200
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default
        )

    def write(self, data: bytes) -> None:
        self.written += len(data)
        if data.startswith(b"HTTP/1.1 ") and not data.startswith(b"HTTP/1.1 200"):
            self.refused += 1

    def writelines(self, parts: Iterable[bytes]) -> None:
        for data in parts:
            self.write(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass


def _paths() -> list[str]:
    from bench.search_latency import queries

    texts = [t for kind in queries(PRODUCTS).values() for t in kind[:40]]
    return [f"/v1/search?q={quote(t)}&page_size=20" for t in texts]


def _requests(paths: list[str], token: str | None) -> list[bytes]:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return [(f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n{auth}\r\n").encode() for p in paths]


async def _serve(app: Any, requests: list[bytes], n: int) -> tuple[float, int]:
    """Answer ``n`` requests (plus a warm-up of as many) on ``CONNECTIONS`` connections;
    returns the seconds the measured ones took and the statuses other than 200 seen."""
    import uvicorn
    from uvicorn.lifespan.on import LifespanOn
    from uvicorn.server import ServerState

    from gateway.api.connections import GuardedHttpToolsProtocol
    from gateway.api.server import uvicorn_options
    from gateway.settings import Settings

    options = uvicorn_options(Settings())
    options.pop("http")
    config = uvicorn.Config(app, **options, lifespan="on")
    config.load()
    lifespan = LifespanOn(config)
    await lifespan.startup()
    if lifespan.should_exit:
        raise RuntimeError("the app did not start")
    gateway = getattr(app.state, "gateway", None) if hasattr(app, "state") else None
    if gateway is not None and gateway.services.catalog.state is None:
        raise RuntimeError("the gateway started without its catalog snapshot")
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] | None = None
    pending = 0

    class Protocol(GuardedHttpToolsProtocol):
        def on_response_complete(self) -> None:
            nonlocal pending
            super().on_response_complete()
            pending -= 1
            if pending == 0 and done is not None:
                done.set_result(None)

    state = ServerState()
    # The date and server headers uvicorn's server adds to every response (on_tick).
    date = formatdate(time.time(), usegmt=True).encode()
    state.default_headers = [(b"date", date), *config.encoded_headers]
    connections = []
    for _ in range(CONNECTIONS):
        protocol = Protocol(config, state, {}, loop)
        protocol.connection_made(_Transport())  # type: ignore[arg-type]
        connections.append(protocol)

    async def answer(count: int, offset: int) -> None:
        nonlocal done, pending
        sent = 0
        while sent < count:
            batch = connections[: min(CONNECTIONS, count - sent)]
            done = loop.create_future()
            pending = len(batch)
            for i, protocol in enumerate(batch):
                protocol.data_received(requests[(offset + sent + i) % len(requests)])
            await done
            sent += len(batch)

    await answer(n, 0)  # warm-up: page caches, lazy paths, the limiter's lease
    profile = None
    if os.environ.get("BENCH_PROFILE"):  # cProfile of the measured requests, to that file
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    _instrument("on")
    began = time.process_time()  # CPU time: less disturbed by other processes than wall
    await answer(n, n)
    seconds = time.process_time() - began
    _instrument("off")
    if profile is not None:
        profile.disable()
        profile.dump_stats(os.environ["BENCH_PROFILE"])
    bad = sum(protocol.transport.refused for protocol in connections)  # type: ignore[attr-defined]
    for protocol in connections:
        protocol.connection_lost(None)
    await lifespan.shutdown()
    return seconds, bad


def _instrument(switch: str) -> None:
    """Under ``valgrind --tool=callgrind --instr-atstart=no`` (``BENCH_CALLGRIND=1``):
    count instructions from here (``on``) or stop (``off``), through ``vgdb``."""
    if os.environ.get("BENCH_CALLGRIND") == "1":
        import subprocess

        command = ["vgdb", f"--pid={os.getpid()}", "instrumentation", switch]
        subprocess.run(command, check=True, capture_output=True)


def _gateway_app(prefix: str) -> Any:
    from cryptography.fernet import Fernet

    os.environ.update(
        {
            "GATEWAY_REDIS_URL": redis_url(),
            "GATEWAY_KEY_PREFIX": prefix,
            "GATEWAY_ORDERS__ENCRYPTION_KEYS": f'["{Fernet.generate_key().decode()}"]',
            "GATEWAY_SANDBOX": "off",
            f"GATEWAY_SUPPLIERS__{SUPPLIER.upper()}__BASE_URL": f"http://127.0.0.1:{free_port()}",
            f"GATEWAY_SUPPLIERS__{SUPPLIER.upper()}__API_KEY": "bench-unused",
            f"GATEWAY_SUPPLIERS__{SUPPLIER.upper()}__API_SECRET": "bench-unused",
        }
    )
    if os.environ.get("BENCH_CALLGRIND") == "1":
        # What happens per second rather than per request would happen some 40 times as
        # often per request under valgrind, and vary with the machine's load: background
        # loops are left out, and the key's cached look-up and its rate-limit lease are
        # made to last as long as they do in requests at native speed (a lease of 1,000
        # requests lasts a tenth of a second there, not its one-second expiry).
        from gateway.access import ratelimit

        os.environ["GATEWAY_ORDERS__INLINE_WORKERS"] = "false"
        os.environ["GATEWAY_ACCESS__KEY_CACHE_SECONDS"] = "3600"
        ratelimit.LEASE_SECONDS = 3600.0
    from gateway.app import create_app

    return create_app()


def _bare_app(body: bytes) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def page(request: Request) -> Response:
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/v1/search", page, methods=["GET"])])


def measure(which: str, n: int) -> dict[str, Any]:
    """Per-request wall time of ``which`` (``gateway`` or ``bare``) over ``n`` requests."""
    import uvloop

    paths = _paths()
    prefix = new_prefix("cost")
    log = Path(tempfile.mkstemp(prefix="bench-cost-", suffix=".log")[1])
    stderr = sys.stderr
    try:
        asyncio.run(publish_snapshot(prefix, synthetic.products(PRODUCTS), version=1))
        token = asyncio.run(issue_key(prefix))
        if which == "gateway":
            app, requests = _gateway_app(prefix), _requests(paths, token)
        else:
            body = b'{"data":[' + b"0," * 6000 + b"0]}"  # about a search page's size
            app, requests = _bare_app(body), _requests(paths, None)
        with log.open("w") as out:
            sys.stderr = out  # the gateway's log stream: a file, as for a collector
            seconds, bad = uvloop.run(_serve(app, requests, n))
        lines = sum(1 for line in log.read_text().splitlines() if '"gateway.http"' in line)
    finally:
        sys.stderr = stderr
        log.unlink(missing_ok=True)
        asyncio.run(cleanup(prefix))
    return {"us_per_request": seconds / n * 1e6, "non_200": bad, "access_lines": lines}


def run() -> dict[str, Any]:
    n = int(os.environ.get("BENCH_REQUESTS", 20_000))
    rounds = max(1, int(os.environ.get("BENCH_ROUNDS", 3)))
    result: dict[str, Any] = {}
    for which in ("gateway", "bare"):
        figures = [measure(which, n) for _ in range(rounds)]
        us = statistics.median(f["us_per_request"] for f in figures)
        result[which] = {"us_per_request": us, "rounds": figures}
        print(f"{which:>8}: {us:7.1f} us per request (median of {rounds} x {n:,})", flush=True)
    ratio = result["bare"]["us_per_request"] / result["gateway"]["us_per_request"]
    print(f"bare / gateway time per request: {ratio:.2f} (in-process; the kernel's part left out)")
    result["ratio"] = ratio
    return result


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "gateway"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000
    print(measure(which, count))
