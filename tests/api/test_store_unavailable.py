"""Redis gone mid-run: every request path answers 503 ``service_unavailable`` with
``Retry-After``, none a 500 (issue 15 #14: ``idempotency.begin`` raised into a 500).

A throw-away ``redis-server`` of the test's own is killed while the gateway runs; the
key was cached before, and catalog reads and order writes fail open at the rate limiter,
so the requests reach the order service's own Redis calls.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import redis
import redis.asyncio as aioredis
from cryptography.fernet import Fernet
from test_errors import assert_error

from gateway.access.testing import issue_key
from gateway.api.testing import serve_in_process
from gateway.app import create_app
from gateway.bootstrap import bootstrap
from gateway.settings import AccessSettings, OrderSettings, Settings
from tests.ops.conftest import free_port


@pytest.fixture
def doomed_redis(tmp_path: object) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A ``redis-server`` on a free loopback port, for this test alone."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            if redis.Redis.from_url(url).ping():
                break
        except redis.ConnectionError:
            pass
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    try:
        yield url, proc
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
async def client_and_store(
    doomed_redis: tuple[str, subprocess.Popen[bytes]],
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], subprocess.Popen[bytes]]]:
    url, proc = doomed_redis
    settings = Settings(
        redis_url=url,
        key_prefix="gw",
        sandbox="off",
        access=AccessSettings(key_cache_seconds=300, fail_open_writes=True),
        orders=OrderSettings(
            encryption_keys=[Fernet.generate_key().decode()], inline_workers=False
        ),
    )
    gw = await bootstrap(settings, redis=aioredis.Redis.from_url(url), adapters={})
    caller = await issue_key(gw)
    try:
        async with serve_in_process(create_app(gateway=gw)) as client:
            yield client, caller.headers, proc
    finally:
        await gw.aclose()


async def test_redis_down_mid_run_is_503_with_retry_after_on_every_path(
    client_and_store: tuple[httpx.AsyncClient, dict[str, str], subprocess.Popen[bytes]],
) -> None:
    client, headers, proc = client_and_store
    assert (await client.get("/v1/orders", headers=headers)).status_code == 200  # key cached
    proc.kill()
    proc.wait()
    body = {"items": [{"variant_id": "vouchers:1:a", "quantity": 1}]}
    responses = [
        await client.post("/v1/orders", json=body, headers={**headers, "Idempotency-Key": "k"}),
        await client.get("/v1/orders", headers=headers),
        await client.get("/v1/orders/ord_01J0000000000000000000000A", headers=headers),
    ]
    for response in responses:
        error = assert_error(response, 503, "service_unavailable")
        assert response.headers["Retry-After"] == "1", response.request.url
        assert "retry" in error["message"]
