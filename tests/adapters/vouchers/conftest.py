"""Fixtures for the voucher supplier tests: in-process sandbox clients, sandboxes served on
a real loopback port, and adapters wired to them with real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from adapters.sandbox_server import BackgroundServer
from adapters.vouchers import VouchersAdapter
from adapters.vouchers.sandbox import SANDBOX_API_KEY, SANDBOX_API_SECRET, create_sandbox
from adapters.vouchers.settings import VouchersSettings

#: Retries and reconciliation fast enough for tests; the client-side limiter opened wide
#: so that tests exercise the sandbox's limits, not the wait for the shared limiter.
FAST_SETTINGS: dict[str, Any] = {
    "retries": {
        "max_attempts": 3,
        "max_total_seconds": 5,
        "backoff_base": 0.01,
        "backoff_max": 0.1,
    },
    "timeouts": {"connect": 2, "read": 5, "total": 8},
    "reconcile_delay": 0.05,
    "rate_limits": {
        bucket: {"limit": 100_000, "period_seconds": 60, "burst": 1000}
        for bucket in VouchersAdapter.rate_limits
    },
}

ClientFactory = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def connect() -> AsyncIterator[ClientFactory]:
    """``connect(app, ip="127.0.0.1")``: an httpx client talking to the app in-process."""
    clients: list[httpx.AsyncClient] = []

    def make(app: Starlette, ip: str = "127.0.0.1") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(ip, 50_000))
        client = httpx.AsyncClient(transport=transport, base_url="http://vouchers.test")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def login(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post(
        "/auth/login", json={"username": SANDBOX_API_KEY, "password": SANDBOX_API_SECRET}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def authed() -> Callable[[httpx.AsyncClient], Awaitable[dict[str, str]]]:
    """``await authed(client)``: log in with the sandbox credentials, return headers."""
    return login


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[Starlette, BackgroundServer]]]:
    """``serve(**options)``: a fresh voucher sandbox on a real loopback port."""
    servers: list[BackgroundServer] = []

    def start(**options: Any) -> tuple[Starlette, BackgroundServer]:
        app = create_sandbox(**options)
        server = BackgroundServer(app).start()
        servers.append(server)
        return app, server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
async def make_adapter(
    redis: Any, key_prefix: str, serve: Any
) -> AsyncIterator[Callable[..., VouchersAdapter]]:
    """``make_adapter(server, **setting_overrides)``: an adapter on its own httpx client,
    real Redis under the test's key prefix; closed (logout) before the servers stop."""
    created: list[tuple[VouchersAdapter, httpx.AsyncClient]] = []

    def make(server: BackgroundServer, **overrides: Any) -> VouchersAdapter:
        values = {**VouchersAdapter.sandbox_settings(server.url), **FAST_SETTINGS, **overrides}
        settings = VouchersSettings.model_validate(values)
        http = httpx.AsyncClient()
        adapter = VouchersAdapter(settings, http=http, redis=redis, key_prefix=key_prefix)
        created.append((adapter, http))
        return adapter

    yield make
    for adapter, http in created:
        await adapter.aclose()
        await http.aclose()
