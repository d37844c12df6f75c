"""Demo mode never leaves a standing credential in a real Redis (issue 15 #2: the key
``gateway serve`` printed for the sandboxes still placed orders after a restart).

Without being asked, ``gateway serve`` writes no demo key to a real Redis; asked
(``--demo-key``), the key works from loopback only, expires, and the next start without a
demo key revokes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from access_routes import ROUTES
from cryptography.fernet import Fernet
from pydantic import ValidationError

from gateway.access.models import ApiKey
from gateway.access.service import DEMO_RESELLER_ID
from gateway.access.store import KeyStore
from gateway.access.tokens import new_token
from gateway.api.testing import serve_in_process
from gateway.app import create_app
from gateway.redis_keys import RedisKeys
from gateway.settings import AccessSettings, OrderSettings, Settings
from tests.ops.conftest import ROOT, free_port, gateway_env
from tests.support.processes import stop

KEY_LINE = re.compile(r"^demo API key\s+(\S+)")


@contextlib.contextmanager
def gateway_serve(redis_url: str, prefix: str, *args: str) -> Iterator[list[str]]:
    """``gateway serve`` with the sandbox suppliers (none configured) on a real Redis;
    yields its output lines as they come, once it answers."""
    port = free_port()
    env = gateway_env(redis_url, prefix, GATEWAY_LOG_LEVEL="WARNING")
    env |= {"GATEWAY_SANDBOX": "auto", "GATEWAY_ORDERS__INLINE_WORKERS": "false"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("gateway")), "serve", "--port", str(port), *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "gateway serve exited:\n" + "".join(lines)[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "gateway serve did not start"
            time.sleep(0.1)
        lines.append(f"url http://127.0.0.1:{port}\n")
        yield lines
    finally:
        stop(proc)


def printed_key(lines: list[str]) -> str | None:
    for line in lines:
        found = KEY_LINE.match(line)
        if found and found.group(1).startswith("gw_"):
            return found.group(1)
    return None


async def demo_keys(redis: aioredis.Redis, key_prefix: str) -> list[ApiKey]:
    return list(await KeyStore(redis, RedisKeys(key_prefix)).list_keys(DEMO_RESELLER_ID))


def test_a_demo_key_with_a_real_redis_is_refused_unless_asked() -> None:
    with pytest.raises(ValidationError, match="demo_in_redis"):
        Settings(redis_url="redis://127.0.0.1:6379/0", access=AccessSettings(demo_key="k"))
    Settings(redis_url=None, access=AccessSettings(demo_key="k"))  # the embedded store


async def test_gateway_serve_on_a_real_redis_writes_no_demo_key(
    redis: aioredis.Redis, redis_url: str, key_prefix: str
) -> None:
    with gateway_serve(redis_url, key_prefix) as lines:
        assert await demo_keys(redis, key_prefix) == []
    assert printed_key(lines) is None
    assert any(line.startswith("demo API key       none") for line in lines), lines


async def test_an_asked_for_demo_key_is_loopback_only_expires_and_is_revoked_later(
    redis: aioredis.Redis, redis_url: str, key_prefix: str
) -> None:
    with gateway_serve(redis_url, key_prefix, "--demo-key") as lines:
        deadline = time.monotonic() + 10
        while (token := printed_key(lines)) is None:
            assert time.monotonic() < deadline, lines
            await asyncio.sleep(0.05)
        url = next(line.split()[1] for line in lines if line.startswith("url "))
        async with httpx.AsyncClient(base_url=url) as client:
            mine = await client.get("/v1/orders", headers={"X-API-Key": token})
            assert mine.status_code == 200, mine.text
    (key,) = await demo_keys(redis, key_prefix)
    assert key.allowed_ips and all(net.is_loopback for net in key.allowed_ips)
    assert key.expires_at is not None
    lifetime = (key.expires_at - datetime.now(UTC)).total_seconds()
    assert 3000 < lifetime <= 3600

    scoped = app_for(redis_url, key_prefix, AccessSettings(demo_key=token, demo_in_redis=True))
    async with serve_in_process(scoped, client_ip="10.1.2.3") as remote:
        refused = await remote.get("/v1/test/whoami", headers={"X-API-Key": token})
        assert refused.status_code == 403, refused.text
    # A start without a demo key (a normal run on this Redis) revokes it.
    async with serve_in_process(app_for(redis_url, key_prefix, AccessSettings())) as client:
        after = await client.get("/v1/test/whoami", headers={"X-API-Key": token})
        assert after.status_code == 401
    assert [k.status for k in await demo_keys(redis, key_prefix)] == ["revoked"]


async def test_an_asked_for_demo_key_stops_working_when_it_expires(
    redis_url: str, key_prefix: str
) -> None:
    token = new_token()[1]
    access = AccessSettings(demo_key=token, demo_in_redis=True, demo_key_ttl_seconds=1)
    async with serve_in_process(app_for(redis_url, key_prefix, access)) as client:
        whoami = {"X-API-Key": token}
        assert (await client.get("/v1/test/whoami", headers=whoami)).status_code == 200
        deadline = time.monotonic() + 10
        while (status := (await client.get("/v1/test/whoami", headers=whoami)).status_code) == 200:
            assert time.monotonic() < deadline, "the demo key never expired"
            await asyncio.sleep(0.1)
        assert status == 401


def app_for(redis_url: str, key_prefix: str, access: AccessSettings) -> Any:
    """An app built from settings (its lifespan runs ``Access.start``, as a served
    process would) on the test's Redis prefix."""
    settings = Settings(
        redis_url=redis_url,
        key_prefix=key_prefix,
        sandbox="off",
        access=access,
        orders=OrderSettings(
            encryption_keys=[Fernet.generate_key().decode()], inline_workers=False
        ),
    )
    return create_app(settings, extra_routes=ROUTES)
