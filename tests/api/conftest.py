"""Fixtures for the API-face tests: one gateway on real Redis under the test's prefix,
the app with the test-only operations, an in-process client and a caller with a key."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
from api_routes import FAILING_ROUTES, MAX_BODY_BYTES, ROUTES
from cryptography.fernet import Fernet

from gateway.access.testing import TestCaller, issue_key
from gateway.api.testing import serve_in_process
from gateway.app import create_app
from gateway.bootstrap import Gateway, bootstrap
from gateway.settings import HttpSettings, OrderSettings, Settings


@pytest.fixture
async def gateway(redis: aioredis.Redis, redis_url: str, key_prefix: str) -> AsyncIterator[Gateway]:
    settings = Settings(
        redis_url=redis_url,
        key_prefix=key_prefix,
        sandbox="off",
        orders=OrderSettings(encryption_keys=[Fernet.generate_key().decode()]),
        http=HttpSettings(max_body_bytes=MAX_BODY_BYTES),
    )
    gw = await bootstrap(settings, redis=aioredis.Redis.from_url(redis_url), adapters={})
    yield gw
    await gw.aclose()


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(gateway=gateway, extra_routes=[*ROUTES, *FAILING_ROUTES])
    async with serve_in_process(app) as client:
        yield client


@pytest.fixture
async def caller(gateway: Gateway) -> TestCaller:
    return await issue_key(gateway)
