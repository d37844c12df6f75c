"""Product detail: fetched from the supplier on first request, cached in two layers.

Only a supplier's detail endpoint returns description, terms, how-to-use and activation
details, and suppliers rate-limit it, so details are cached:

1. in process, a ``cachetools.TTLCache`` (``detail_memory_ttl_seconds``, at most
   ``detail_memory_size`` entries, least recently used evicted first): no Redis round
   trip for a popular product;
2. in Redis, one key per product holding the detail and when it was fetched. It is fresh
   for ``detail_ttl_seconds``, but the key lives ``STALE_FACTOR`` times longer: while the
   supplier is down (retriable error, open circuit) that older copy is served marked
   ``stale`` rather than failing the reseller's request.

Detail reads come after orders on the supplier's rate budget (``adapters.ratelimit``): when
the part not kept for orders, or the requesting reseller's share of it, is spent, the
adapter refuses at once (``UpstreamBusyError``, nothing sent) and the cached copy is served
marked ``stale``; without one the reseller gets ``503 supplier_busy`` with ``Retry-After``.
A detail read never queues behind the supplier's limit.

Concurrent requests for one product share one upstream call (single flight). A product
the supplier answers 404 for is gone (sold out, withdrawn) even if the snapshot still
lists it: the cached copies are dropped and the reseller gets 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache

from adapters.base import SupplierAdapter
from adapters.errors import NotFoundError, RetriableError, SupplierError, UpstreamBusyError
from adapters.models import Product, ProductDetail
from gateway.catalog import metrics
from gateway.errors import Unavailable
from gateway.redis_keys import RedisKeys

log = logging.getLogger("gateway.catalog.detail")

#: The Redis copy outlives its freshness by this factor, for serving stale.
STALE_FACTOR = 24


class DetailNotFound(LookupError):
    """The supplier says the product does not exist (any more)."""


class DetailUnavailable(RuntimeError):
    """The supplier cannot answer and no cached copy exists."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class DetailResult:
    detail: ProductDetail
    fetched_at: float
    #: Served from an expired copy because the supplier could not be reached.
    stale: bool = False


class DetailCache:
    def __init__(
        self,
        redis: Any,
        keys: RedisKeys,
        adapters: Mapping[str, SupplierAdapter],
        *,
        ttl_seconds: float,
        memory_ttl_seconds: float,
        memory_size: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._adapters = adapters
        self.ttl_seconds = ttl_seconds
        self.stale_ttl_ms = int(ttl_seconds * STALE_FACTOR * 1000)
        self._clock = clock
        self._memory: TTLCache[str, DetailResult] = TTLCache(
            maxsize=memory_size, ttl=memory_ttl_seconds
        )
        self._inflight: dict[str, asyncio.Future[DetailResult]] = {}

    async def get(self, product: Product, *, caller: str | None = None) -> DetailResult:
        """The detail of ``product`` (which the caller found in the served snapshot), for
        ``caller`` (a reseller id: its detail reads are bounded to a share of the
        supplier's rate). ``gateway.errors.Unavailable`` (``supplier_busy``) when the
        budget left for detail reads is spent and no copy is cached."""
        cached = self._memory.get(product.id)
        if cached is not None:
            metrics.DETAIL_CACHE.labels("memory", "hit").inc()
            return cached
        metrics.DETAIL_CACHE.labels("memory", "miss").inc()
        task = self._inflight.get(product.id)
        if task is None:
            task = asyncio.ensure_future(self._load(product, caller))
            self._inflight[product.id] = task
            task.add_done_callback(functools.partial(self._settle, product.id))
        # Shielded: one reseller hanging up must not cancel the fetch others wait on.
        return await asyncio.shield(task)

    def _settle(self, product_id: str, task: asyncio.Future[DetailResult]) -> None:
        self._inflight.pop(product_id, None)
        if not task.cancelled():
            task.exception()  # retrieved here so an unawaited failure is not logged twice

    async def _load(self, product: Product, caller: str | None) -> DetailResult:
        copy = await self._read_redis(product)
        if copy is not None and self._clock() - copy.fetched_at < self.ttl_seconds:
            metrics.DETAIL_CACHE.labels("redis", "hit").inc()
            self._memory[product.id] = copy
            return copy
        metrics.DETAIL_CACHE.labels("redis", "miss").inc()
        adapter = self._adapters.get(product.supplier)
        if adapter is None:
            return self._stale_or_raise(product, copy, "its supplier is not configured", None)
        try:
            detail = await adapter.get_product(product.upstream_id, caller=caller)
        except UpstreamBusyError as exc:
            if copy is None:
                metrics.DETAIL_CACHE.labels("redis", "busy").inc()
                raise Unavailable(
                    "supplier_busy",
                    f"{product.supplier}'s request budget is kept for orders right now and "
                    f"no copy of {product.id} is cached; try again later",
                    retry_after=max(1.0, exc.retry_after or 0.0),
                ) from exc
            return self._stale_or_raise(product, copy, str(exc), exc.retry_after)
        except NotFoundError as exc:
            await self.forget(product)
            raise DetailNotFound(f"{product.id} no longer exists at its supplier") from exc
        except RetriableError as exc:
            return self._stale_or_raise(product, copy, str(exc), getattr(exc, "retry_after", None))
        except SupplierError as exc:
            log.warning("detail of %s failed upstream: %s", product.id, exc)
            return self._stale_or_raise(product, copy, str(exc), None)
        if detail.id != product.id:
            log.warning("supplier answered %s for %s; not cached", detail.id, product.id)
            raise DetailUnavailable(f"the supplier answered a different product for {product.id}")
        result = DetailResult(detail, self._clock())
        self._memory[product.id] = result
        await self._write_redis(product, result)
        return result

    def _stale_or_raise(
        self,
        product: Product,
        copy: DetailResult | None,
        reason: str,
        retry_after: float | None,
    ) -> DetailResult:
        if copy is None:
            raise DetailUnavailable(
                f"{product.supplier} is unavailable and no copy of {product.id} is cached",
                retry_after=retry_after,
            )
        metrics.DETAIL_CACHE.labels("redis", "stale").inc()
        log.info("serving a stale detail of %s: %s", product.id, reason)
        return DetailResult(copy.detail, copy.fetched_at, stale=True)

    async def forget(self, product: Product) -> None:
        self._memory.pop(product.id, None)
        with contextlib.suppress(Exception):
            await self._redis.delete(
                self._keys.catalog_detail(product.supplier, product.upstream_id)
            )

    async def _read_redis(self, product: Product) -> DetailResult | None:
        key = self._keys.catalog_detail(product.supplier, product.upstream_id)
        try:
            raw = await self._redis.get(key)
        except Exception as exc:  # a Redis blip degrades to an upstream call
            log.warning("reading cached detail %s failed: %r", product.id, exc)
            return None
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return DetailResult(
                ProductDetail.model_validate(data["detail"]), float(data["fetched_at"])
            )
        except (ValueError, KeyError, TypeError) as exc:  # an old or corrupt entry: refetch
            log.warning("cached detail %s is unreadable: %r", product.id, exc)
            return None

    async def _write_redis(self, product: Product, result: DetailResult) -> None:
        key = self._keys.catalog_detail(product.supplier, product.upstream_id)
        payload = json.dumps(
            {
                "fetched_at": result.fetched_at,
                "detail": result.detail.model_dump(mode="json", exclude_defaults=True),
            },
            separators=(",", ":"),
        )
        try:
            await self._redis.set(key, payload, px=self.stale_ttl_ms)
        except Exception as exc:
            log.warning("caching detail %s failed: %r", product.id, exc)
