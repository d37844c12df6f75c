"""Wiring: one place that builds the gateway's parts from settings (and accepts fakes)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from adapters.base import SupplierAdapter
from gateway.access.service import Access
from gateway.accounts.service import AccountsService
from gateway.catalog.service import CatalogService
from gateway.orders.service import OrdersService
from gateway.orders.wiring import build_orders_service
from gateway.redis_keys import RedisKeys
from gateway.settings import Settings
from gateway.store import connect
from gateway.suppliers import build_adapters

log = logging.getLogger("gateway")


class Service(Protocol):
    """What the gateway runs: idempotent ``start()`` and ``stop()``."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Services:
    """The gateway's services, in start order (each may use those before it: orders read
    the catalog and the resellers of access)."""

    access: Access
    catalog: CatalogService
    accounts: AccountsService
    orders: OrdersService

    def in_start_order(self) -> Iterator[tuple[str, Service]]:
        yield "access", self.access
        yield "catalog", self.catalog
        yield "accounts", self.accounts
        yield "orders", self.orders


@dataclass
class Gateway:
    """Everything a running gateway instance holds; handed to routes via ``app.state``."""

    settings: Settings
    redis: Any
    keys: RedisKeys
    http: httpx.AsyncClient
    adapters: dict[str, SupplierAdapter]
    services: Services
    _owns_http: bool = True

    async def start(self) -> None:
        """Start the services' background work (each ``start()`` is idempotent)."""
        for _, service in self.services.in_start_order():
            await service.start()

    async def stop(self) -> None:
        """Stop the services' background work, last started first (idempotent).

        Each stop is bounded: a service that does not finish in time is logged and left
        behind, so a shutdown never hangs (unfinished order work stays in the stream)."""
        limit = self.settings.orders.shutdown_grace_seconds + 5.0
        for name, service in reversed(list(self.services.in_start_order())):
            task = asyncio.ensure_future(service.stop())
            done, _ = await asyncio.wait({task}, timeout=limit)
            if not done:
                task.cancel()
                log.warning("service %s did not stop within %.0f s; leaving it", name, limit)
            elif task.exception() is not None:
                log.warning("service %s failed while stopping: %r", name, task.exception())

    async def aclose(self) -> None:
        await self.stop()
        for adapter in self.adapters.values():
            await adapter.aclose()
        if self._owns_http:
            await self.http.aclose()
        await self.redis.aclose()


async def bootstrap(
    settings: Settings,
    *,
    redis: Any = None,
    http: httpx.AsyncClient | None = None,
    adapters: dict[str, SupplierAdapter] | None = None,
) -> Gateway:
    redis = redis if redis is not None else await connect(settings)
    owns_http = http is None
    http = http or httpx.AsyncClient(
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        headers={"User-Agent": "digital-goods-gateway/0.1"},
    )
    if adapters is None:
        adapters = build_adapters(settings, http=http, redis=redis)
    keys = RedisKeys(settings.key_prefix)
    access = Access.build(
        redis,
        keys,
        settings.access,
        allow_private_webhooks=settings.orders.webhook_allow_private_targets,
    )
    catalog = CatalogService(redis=redis, keys=keys, adapters=adapters, settings=settings.catalog)
    accounts = AccountsService(redis, keys, settings)
    orders = build_orders_service(
        settings,
        redis=redis,
        keys=keys,
        adapters=adapters,
        catalog=catalog,
        access=access,
        accounts=accounts,
    )
    return Gateway(
        settings=settings,
        redis=redis,
        keys=keys,
        http=http,
        adapters=adapters,
        services=Services(access=access, catalog=catalog, accounts=accounts, orders=orders),
        _owns_http=owns_http,
    )
