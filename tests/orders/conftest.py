"""Fixtures of the order tests: sandboxes (one pair per session: starting them is the
slow part), the products they sell, in-process gateways on the test's Redis prefix, and
for the multi-process tests (durability, accounts) a module's prefix, its two gateway
processes and a Redis client, over the ``module_settings`` each such module defines."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from orders_harness import (
    Picks,
    Process,
    Sandboxes,
    load_products,
    make_settings,
    pick,
    start_gateway,
    start_sandboxes,
    static_catalog,
)

from adapters.models import Product
from gateway.access.testing import TestCaller, issue_key
from gateway.app import create_app
from gateway.bootstrap import Gateway, bootstrap
from gateway.settings import Settings
from gateway.suppliers import build_adapters


@pytest.fixture(scope="session")
def sandboxes() -> Iterator[Sandboxes]:
    boxes = start_sandboxes()
    yield boxes
    boxes.stop()


@pytest.fixture(scope="session")
def products(sandboxes: Sandboxes, redis_url: str) -> list[Product]:
    async def load() -> list[Product]:
        settings = make_settings(redis_url, "test-orders-products", sandboxes)
        client = aioredis.Redis.from_url(redis_url)
        async with httpx.AsyncClient() as http:
            try:
                return await load_products(build_adapters(settings, http=http, redis=client))
            finally:
                await client.aclose()

    return asyncio.run(load())


@pytest.fixture(scope="session")
def picks(products: list[Product]) -> Picks:
    return pick(products)


@pytest.fixture(autouse=True)
async def _clean_faults(sandboxes: Sandboxes) -> AsyncIterator[None]:
    await sandboxes.reset()
    yield
    await sandboxes.reset()


@dataclass
class Instance:
    gateway: Gateway
    client: httpx.AsyncClient

    @property
    def orders(self) -> Any:
        return self.gateway.services.orders

    async def caller(self, **kwargs: Any) -> TestCaller:
        return await issue_key(self.gateway, **kwargs)


@pytest.fixture
async def make_instance(
    redis_url: str, key_prefix: str, sandboxes: Sandboxes, products: list[Product]
) -> AsyncIterator[Any]:
    """``await make_instance(settings=None, workers=True)``: a gateway in this process on
    the test's Redis prefix, served through ``httpx.ASGITransport``."""
    stack: list[Any] = []

    async def make(settings: Settings | None = None, *, workers: bool = True) -> Instance:
        settings = settings or make_settings(redis_url, key_prefix, sandboxes)
        settings.orders.inline_workers = workers
        gateway = await bootstrap(settings)
        # Orders validate against the sandboxes' products (``static_catalog``): the
        # catalog service's own sync and watcher would only add load here.
        catalog = gateway.services.catalog
        catalog.sync_enabled = catalog.watch_enabled = False
        gateway.services.orders.catalog = static_catalog(products)
        app = create_app(gateway=gateway)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        transport = httpx.ASGITransport(app=app)
        client = httpx.AsyncClient(transport=transport, base_url="http://gateway.test")
        stack.append((gateway, lifespan, client))
        return Instance(gateway, client)

    yield make
    for gateway, lifespan, client in reversed(stack):
        await client.aclose()
        async with asyncio.timeout(30):  # a stuck shutdown fails here, naming the step
            await lifespan.__aexit__(None, None, None)
            await gateway.aclose()


# ------------------------------------------------ multi-process modules (module_settings)


@pytest.fixture(scope="module")
def module_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    import redis as sync_redis

    client = sync_redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture(scope="module")
def gateways(
    module_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Process]]:
    """Two gateway processes over the module's ``module_settings``."""
    logs = tmp_path_factory.mktemp("gateways")

    async def start() -> list[Process]:
        return list(
            await asyncio.gather(
                start_gateway(module_settings, logs / "gateway-a.log"),
                start_gateway(module_settings, logs / "gateway-b.log"),
            )
        )

    processes = asyncio.run(start())
    yield processes
    for process in processes:
        process.terminate()


@pytest.fixture
async def module_redis(module_settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(module_settings.redis_url or "")
    yield client
    await client.aclose()
