"""Fixtures for the Gaming Goods tests: small sandboxes, in-process and on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from gaming_goods_helpers import AUTH, adapter_settings, small_sandbox
from starlette.applications import Starlette

from adapters.gaming_goods import GamingGoodsAdapter
from adapters.sandbox_server import BackgroundServer


@pytest.fixture
def app() -> Starlette:
    return small_sandbox()


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """The sandbox in-process, authenticated."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox", headers=AUTH) as c:
        yield c


@pytest.fixture
def server(app: Starlette) -> Iterator[BackgroundServer]:
    with BackgroundServer(app) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


@pytest.fixture
def adapter(
    server: BackgroundServer, http: httpx.AsyncClient, redis: Any, key_prefix: str
) -> GamingGoodsAdapter:
    """The adapter against the sandbox on a real loopback port, with real Redis."""
    return GamingGoodsAdapter(
        adapter_settings(server.url), http=http, redis=redis, key_prefix=key_prefix
    )
