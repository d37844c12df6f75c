"""Wiring: one place that builds the gateway's parts from settings (and accepts fakes)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx

from adapters.base import SupplierAdapter
from gateway.access.service import Access
from gateway.accounts.service import AccountsService
from gateway.catalog.service import CatalogService
from gateway.orders.wiring import build_orders_service
from gateway.redis_keys import RedisKeys
from gateway.settings import Settings
from gateway.store import connect
from gateway.suppliers import build_adapters

log = logging.getLogger("gateway")


@dataclass
class Gateway:
    """Everything a running gateway instance holds; handed to routes via ``app.state``."""

    settings: Settings
    redis: Any
    keys: RedisKeys
    http: httpx.AsyncClient
    adapters: dict[str, SupplierAdapter]
    services: dict[str, Any] = field(default_factory=dict)
    _owns_http: bool = True

    async def start(self) -> None:
        """Start the services' background work (each ``start()`` is idempotent)."""
        for service in self.services.values():
            start = getattr(service, "start", None)
            if start is not None:
                await start()

    async def stop(self) -> None:
        """Stop the services' background work, last started first (idempotent).

        Each stop is bounded: a service that does not finish in time is logged and left
        behind, so a shutdown never hangs (unfinished order work stays in the stream)."""
        limit = self.settings.orders.shutdown_grace_seconds + 5.0
        for name, service in reversed(list(self.services.items())):
            stop = getattr(service, "stop", None)
            if stop is None:
                continue
            task = asyncio.ensure_future(stop())
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
    gateway = Gateway(
        settings=settings,
        redis=redis,
        keys=RedisKeys(settings.key_prefix),
        http=http,
        adapters=adapters,
        _owns_http=owns_http,
    )
    gateway.services["access"] = Access.build(redis, gateway.keys, settings.access)
    gateway.services["catalog"] = CatalogService(
        redis=redis, keys=gateway.keys, adapters=adapters, settings=settings.catalog
    )
    gateway.services["accounts"] = AccountsService(redis, gateway.keys, settings)
    gateway.services["orders"] = build_orders_service(gateway)
    return gateway
