"""Helpers for tests of any ``/v1`` feature: a reseller with a key, and an app in-process.

    gw = await bootstrap(settings, redis=redis, adapters={})
    app = create_app(gateway=gw)
    async with serve_in_process(app) as client:
        caller = await issue_key(gw, scopes=["catalog:read"])
        response = await client.get("/v1/products", headers=caller.headers)

``serve_in_process`` runs the app's lifespan (so ``gateway.services`` start) and talks
to it through ``httpx.ASGITransport`` from a chosen client address (for allowlist and
proxy tests).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette

from gateway.access.models import ALL_SCOPES, ApiKey, Reseller, Scope
from gateway.access.store import KeyStore
from gateway.pricing import MarkupRule


@dataclass(frozen=True)
class TestCaller:
    __test__ = False  # not a pytest test class

    reseller: Reseller
    key: ApiKey
    token: str
    webhook_secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def store_of(gateway: Any) -> KeyStore:
    access = gateway.services.get("access")
    if access is not None:
        return access.store
    allow = gateway.settings.orders.webhook_allow_private_targets
    return KeyStore(gateway.redis, gateway.keys, allow_private_webhooks=allow)


async def issue_key(
    gateway: Any,
    *,
    scopes: Iterable[Scope] = ALL_SCOPES,
    rate_limit: int | None = None,
    allowed_ips: Iterable[str] = (),
    markup: MarkupRule | None = None,
    webhook_url: str | None = None,
    name: str = "test reseller",
) -> TestCaller:
    """A new reseller with one key, written to the gateway's Redis."""
    store = store_of(gateway)
    created = await store.create_reseller(name, markup=markup, webhook_url=webhook_url)
    issued = await store.create_key(
        created.reseller.id, scopes=scopes, rate_limit=rate_limit, allowed_ips=list(allowed_ips)
    )
    return TestCaller(
        reseller=created.reseller,
        key=issued.key,
        token=issued.token.get_secret_value(),
        webhook_secret=created.webhook_secret.get_secret_value(),
    )


@contextlib.asynccontextmanager
async def serve_in_process(
    app: Starlette, *, client_ip: str = "127.0.0.1", base_url: str = "http://gateway.test"
) -> AsyncIterator[httpx.AsyncClient]:
    """An ``httpx.AsyncClient`` talking to ``app`` in-process, lifespan included."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(client_ip, 40000))
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client
