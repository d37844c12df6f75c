"""Shared fixtures: a real Redis under a key prefix of the test's own, cleaned up after.

``REDIS_URL`` is set by ``scripts/test.sh`` (the README's test command), which starts a
throw-away server when none answers. Tests never touch keys outside their prefix, so the
suite can run against a shared Redis.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from tests.support.settings import REDIS_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The suite's Redis (session-scoped, so module and session fixtures can use it)."""
    return REDIS_URL


@pytest.fixture
def key_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


async def delete_prefix(client: aioredis.Redis, prefix: str) -> None:
    batch: list[bytes] = []
    async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        batch.append(key)
        if len(batch) >= 500:
            await client.delete(*batch)
            batch.clear()
    if batch:
        await client.delete(*batch)


@pytest.fixture
async def redis(key_prefix: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:  # pragma: no cover - the test command guarantees a server
        pytest.fail(f"no Redis at {REDIS_URL}: run the suite with `make test` ({exc})")
    yield client
    await delete_prefix(client, key_prefix)
    await client.aclose()
