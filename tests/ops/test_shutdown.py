"""Graceful shutdown: SIGTERM stops accepting, lets in-flight requests finish, in bounded time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import httpx
import pytest

from gateway.access.service import Access
from gateway.bootstrap import bootstrap
from gateway.catalog.service import CatalogService
from gateway.orders.queue import JobQueue
from tests.ops.conftest import ROOT, gateway_env
from tests.ops.support import within
from tests.support.net import free_port
from tests.support.settings import gateway_settings

SERVER = r"""
import asyncio, sys
import uvicorn
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from gateway.app import create_app
from gateway.api.server import uvicorn_options
from gateway.settings import Settings

async def slow(request):
    await asyncio.sleep(float(request.query_params["seconds"]))
    return PlainTextResponse("finished")

settings = Settings(http={"shutdown_grace_seconds": float(sys.argv[2])})
app = create_app(settings, extra_routes=[Route("/slow", slow)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), **uvicorn_options(settings))
"""


def _start(grace: float, redis_url: str, key_prefix: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    # No in-process order workers: their loops can outlive cancel() for a bounded time
    # (docs/operations.md; the bounded stops are tested below); this is about HTTP requests.
    env = gateway_env(
        redis_url, key_prefix, GATEWAY_LOG_LEVEL="INFO", GATEWAY_ORDERS__INLINE_WORKERS="false"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port), str(grace)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited early: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail("server did not start")


def _in_background(url: str, seconds: float) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def call() -> None:
        try:
            response = httpx.get(f"{url}/slow?seconds={seconds}", timeout=30)
            result["status"], result["body"] = response.status_code, response.text
        except httpx.HTTPError as exc:
            result["error"] = type(exc).__name__

    thread = threading.Thread(target=call)
    thread.start()
    return thread, result


def _wait_in_flight(url: str) -> None:
    """Until the slow request is being served (the in-flight gauge counts it)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = httpx.get(url + "/metrics", timeout=2).text
        for line in text.splitlines():
            if line.startswith("gateway_http_requests_in_flight ") and float(line.split()[1]) >= 2:
                return  # the slow request plus this scrape
        time.sleep(0.02)
    pytest.fail("the slow request never started")


def _wait_refused(url: str) -> None:
    """Until the server refuses new connections (its listener closed), at most 10 s."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/healthz", timeout=2)
        except httpx.ConnectError:
            return
        except httpx.HTTPError:
            pass  # accepted just before the listener closed, then dropped: not yet refusing
        time.sleep(0.02)
    pytest.fail("the server still accepted connections 10 s after SIGTERM")


def test_sigterm_lets_the_request_in_flight_finish_and_refuses_new_ones(
    redis_url: str, key_prefix: str, redis
) -> None:
    proc, url = _start(grace=20, redis_url=redis_url, key_prefix=key_prefix)
    try:
        thread, result = _in_background(url, seconds=1.5)
        _wait_in_flight(url)
        proc.send_signal(signal.SIGTERM)
        _wait_refused(url)
        assert thread.is_alive(), "refusing only once the request in flight had finished"
        with pytest.raises(httpx.ConnectError):  # no longer accepting
            httpx.get(url + "/healthz", timeout=2)
        thread.join(timeout=30)
        assert result == {"status": 200, "body": "finished"}
        # uvicorn re-raises the signal once it has shut down cleanly: dies "by SIGTERM".
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [json.loads(line) for line in (proc.stderr.read() if proc.stderr else "").splitlines()
             if line.startswith("{")]  # fmt: skip
    slow = [line for line in lines if line.get("route") == "/slow" and "status" in line]
    assert slow and slow[0]["status"] == 200  # the finished request was logged


def test_grace_period_bounds_how_long_a_stuck_request_holds_the_stop(
    redis_url: str, key_prefix: str, redis
) -> None:
    proc, url = _start(grace=0.5, redis_url=redis_url, key_prefix=key_prefix)
    try:
        thread, result = _in_background(url, seconds=25)
        _wait_in_flight(url)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)  # far less than the 25 s the request wanted
        thread.join(timeout=15)
        assert result.get("body") != "finished"
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_gateway_stop_returns_within_its_bound_when_a_service_never_stops(
    redis: Any,
    redis_url: str,
    key_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A service whose stop() swallows every cancellation and never returns (what a
    background loop on the Redis client can do, docs/operations.md) holds the gateway's
    stop for its bound, ``orders.shutdown_grace_seconds + 5`` s, and no longer: the
    overrun is logged and the services after it are still stopped."""
    release, entered, left = asyncio.Event(), asyncio.Event(), asyncio.Event()
    stopped: list[str] = []

    async def never_stops(self: CatalogService) -> None:
        entered.set()
        try:
            while not release.is_set():
                with contextlib.suppress(asyncio.CancelledError):
                    await release.wait()
        finally:
            left.set()

    async def access_stop(self: Access) -> None:
        stopped.append("access")

    monkeypatch.setattr(CatalogService, "stop", never_stops)
    monkeypatch.setattr(Access, "stop", access_stop)  # stopped after the catalog
    settings = gateway_settings(
        redis_url, key_prefix, orders={"shutdown_grace_seconds": 0, "inline_workers": False}
    )
    bound = settings.orders.shutdown_grace_seconds + 5.0
    async with httpx.AsyncClient() as http:
        gw = await bootstrap(settings, redis=redis, http=http, adapters={})
        started = time.monotonic()
        await within(gw.stop(), bound + 10, "Gateway.stop()")
        elapsed = time.monotonic() - started
    assert entered.is_set() and not left.is_set()  # the catalog's stop ran and overran
    assert bound <= elapsed < bound + 2
    assert "service catalog did not stop within 5 s; leaving it" in caplog.text
    assert stopped == ["access"]
    release.set()
    await within(left.wait(), 5, "the abandoned stop, once released")


async def test_order_worker_loops_end_on_their_stop_flag_when_a_command_swallows_cancel(
    redis: Any,
    redis_url: str,
    key_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The order worker's read loop is cancelled mid-command by a client that swallows
    the cancellation (redis-py does, now and then): the command ends normally and the loop
    stops on the worker's stop flag, so it ends with the stop instead of being abandoned."""
    reading, swallowed = asyncio.Event(), asyncio.Event()

    async def read(self: JobQueue, consumer: str, count: int, block_ms: int) -> list[Any]:
        reading.set()
        try:
            await asyncio.sleep(block_ms / 1000)  # as XREADGROUP BLOCK waits for entries
        except asyncio.CancelledError:
            swallowed.set()  # and the command returns as if it had timed out
        return []

    monkeypatch.setattr(JobQueue, "read", read)
    settings = gateway_settings(
        redis_url, key_prefix, orders={"shutdown_grace_seconds": 0, "inline_workers": True}
    )
    async with httpx.AsyncClient() as http:
        gw = await bootstrap(settings, redis=redis, http=http, adapters={})
        await within(gw.start(), 20, "starting the services")
        (read_loop,) = [t for t in asyncio.all_tasks() if t.get_name() == "orders:read"]
        await within(reading.wait(), 10, "the read loop's first command")
        await within(gw.stop(), 30, "Gateway.stop()")
    assert swallowed.is_set(), "the stop never cancelled the read loop mid-command"
    assert read_loop.done() and not read_loop.cancelled()  # it returned: the flag ended it
    overran = [r.getMessage() for r in caplog.records if "did not stop" in r.getMessage()]
    assert not [line for line in overran if line.startswith("order worker")], overran


async def test_a_task_that_swallows_its_cancellation_is_abandoned_in_bounded_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What the Redis client sometimes does to a background loop: the stop must still
    return, say so, and not wait for the loop (nor raise what a stopped task raised)."""
    from gateway.observability.shutdown import cancel_and_wait

    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):  # as redis-py does, now and then
                await asyncio.sleep(0.01)

    async def failing() -> None:
        raise RuntimeError("ended badly before the stop")

    async def obedient() -> None:
        await asyncio.sleep(60)

    stuck, failed, fine = (asyncio.create_task(f()) for f in (stubborn, failing, obedient))
    await asyncio.sleep(0.02)
    started = time.monotonic()
    await cancel_and_wait([stuck, failed, fine], within=0.3, what="test loops")
    assert 0.3 <= time.monotonic() - started < 2
    assert fine.cancelled() and failed.done() and not stuck.done()
    assert "test loops did not stop within 0.3 s; abandoning 1 task(s)" in caplog.text
    release.set()
    await stuck
