"""Fixtures for the access tests: gateways on real Redis under the test's key prefix,
each with its own Redis connection (as separate instances would have)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from access_routes import MakeGateway

from gateway.bootstrap import Gateway, bootstrap
from gateway.settings import AccessSettings
from tests.support.settings import gateway_settings


@pytest.fixture
async def make_gateway(
    redis: aioredis.Redis, redis_url: str, key_prefix: str
) -> AsyncIterator[MakeGateway]:
    """``await make_gateway(**access_settings)``: a new instance sharing the test's Redis
    (closed after the test, before the test's keys are deleted)."""
    made: list[Gateway] = []

    async def make(*, redis: Any = None, **access: Any) -> Gateway:
        settings = gateway_settings(redis_url, key_prefix, access=AccessSettings(**access))
        client = redis if redis is not None else aioredis.Redis.from_url(redis_url)
        gateway = await bootstrap(settings, redis=client, adapters={})
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        await gateway.aclose()
