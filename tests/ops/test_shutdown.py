"""Graceful shutdown: SIGTERM stops accepting, lets in-flight requests finish, in bounded time."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import httpx
import pytest

from tests.ops.conftest import ROOT, free_port, gateway_env

SERVER = r"""
import asyncio, sys
import uvicorn
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from gateway.app import create_app
from gateway.observability.shutdown import uvicorn_options
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
    # No in-process order workers: their loops can outlive cancel() and hold the stop
    # (test_redis_client_honours_cancellation below); this is about HTTP requests.
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


def test_sigterm_lets_the_request_in_flight_finish_and_refuses_new_ones(
    redis_url: str, key_prefix: str, redis
) -> None:
    proc, url = _start(grace=20, redis_url=redis_url, key_prefix=key_prefix)
    try:
        thread, result = _in_background(url, seconds=1.5)
        _wait_in_flight(url)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
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


@pytest.mark.xfail(
    strict=True,
    reason="redis-py 5.3 on Python 3.11 with socket_timeout set (gateway/store.py) now and "
    "then swallows a task's cancellation that lands during a command; a background loop "
    "that relies on cancel() alone then survives stop() (docs/operations.md). "
    "Remove this mark once the client or the loops are fixed.",
)
async def test_redis_client_honours_cancellation(redis_url: str, key_prefix: str) -> None:
    """A loop of Redis commands on the gateway's own client (``store.connect``) stops when
    cancelled, every time: graceful shutdown cancels the services' loops this way."""
    import asyncio

    from gateway.store import connect
    from tests.ops.conftest import gateway_settings

    client = await connect(gateway_settings(redis_url, key_prefix))

    async def loop() -> None:
        while True:
            await client.get(f"{key_prefix}:probe")
            await asyncio.sleep(0.001)

    survived = 0
    try:
        for i in range(300):
            task = asyncio.create_task(loop())
            await asyncio.sleep(0.003 + (i % 7) * 0.0007)
            task.cancel()
            try:
                async with asyncio.timeout(0.5):
                    await task
            except asyncio.CancelledError:
                continue
            except TimeoutError:
                survived += 1
                # Cancel again until it takes, for a bounded time: a loop that swallows
                # every cancellation (and pytest-timeout's exception with it) must not
                # hang the suite; a survivor is abandoned to the closing event loop.
                for _ in range(100):
                    if task.done():
                        break
                    task.cancel()
                    await asyncio.sleep(0.01)
                if survived >= 3:
                    break
    finally:
        await client.aclose()
    assert survived == 0, f"{survived} cancelled loops kept running"


async def test_a_task_that_swallows_its_cancellation_is_abandoned_in_bounded_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What the Redis client sometimes does to a background loop: the stop must still
    return, say so, and not wait for the loop (nor raise what a stopped task raised)."""
    import asyncio
    import contextlib

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
