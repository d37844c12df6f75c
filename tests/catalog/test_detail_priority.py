"""Orders first on a supplier's request budget: one reseller flooding product-detail reads
against the Gaming Goods sandbox at its documented 100 requests a minute, over loopback
with real Redis, while another reseller's order is placed and polled to delivery."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from typing import Any

import httpx
from catalog_support import GG, adapter_values, start_sandbox

from adapters.gaming_goods import GamingGoodsAdapter, GamingGoodsSettings
from adapters.models import OrderLine, Product
from gateway.catalog.detail import DetailCache
from gateway.errors import Unavailable
from gateway.redis_keys import RedisKeys

DOCUMENTED = (100, 60.0)


async def bucket_full(redis: Any, key: str) -> bool:
    """Whether every slot of the limiter bucket is free again (its TAT has passed)."""
    tat = await redis.get(key)
    seconds, micros = await redis.time()
    return tat is None or float(tat) <= seconds * 1_000_000 + micros


async def wait_for(check: Any, within: float) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


async def test_a_detail_flood_by_one_reseller_leaves_another_resellers_order_on_time(
    redis: Any, key_prefix: str, http: httpx.AsyncClient
) -> None:
    box = start_sandbox(
        GG, seed=11, catalog_size=120, fulfil_delay=0.05, rate_limits={"default": DOCUMENTED}
    )
    try:
        limit, period = DOCUMENTED
        values = adapter_values(
            GG,
            box.url,
            page_size=100,
            rate_limits={"default": {"limit": limit, "period_seconds": period}},
        )
        adapter = GamingGoodsAdapter(
            GamingGoodsSettings.model_validate(values),
            http=http,
            redis=redis,
            key_prefix=key_prefix,
        )
        products: list[Product] = [
            p async for page in adapter.iter_catalog() for p in page.products if p.variants
        ]
        details = DetailCache(
            redis,
            RedisKeys(key_prefix),
            {GG: adapter},
            ttl_seconds=600,
            memory_ttl_seconds=600,
            memory_size=1000,
        )
        bucket = f"{key_prefix}:rl:upstream:{{{GG}}}:default"
        stocked = [p for p in products if p.available and (p.stock or 0) >= 10]

        async def instant_order(n: int) -> float:
            """Place and poll until delivered, from a full bucket; the seconds it took."""
            await wait_for(lambda: bucket_full(redis, bucket), 30)
            line = OrderLine(variant_id=stocked[n % len(stocked)].variants[0].id, quantity=1)
            started = time.perf_counter()
            order = await adapter.place_order(f"order-{n}", [line])
            while not order.state.is_final:
                await asyncio.sleep(0.05)
                order = await adapter.get_order(order.upstream_id)
            assert order.codes, "the order was not delivered"
            return time.perf_counter() - started

        normal = [await instant_order(n) for n in range(3)]

        outcomes: Counter[str] = Counter()
        refusals: list[Unavailable] = []
        stop = asyncio.Event()
        sandbox_before = box.requests
        flood_started = time.perf_counter()

        async def flood(worker: int) -> None:
            n = worker
            while not stop.is_set():
                product = products[n % len(products)]
                n += 4
                try:
                    result = await details.get(product, caller="flooder")
                except Unavailable as exc:
                    outcomes["busy"] += 1
                    refusals.append(exc)
                else:
                    outcomes["stale" if result.stale else "ok"] += 1
                await asyncio.sleep(0.02)

        flooders = [asyncio.create_task(flood(w)) for w in range(4)]
        try:
            await wait_for(lambda: _true(outcomes["busy"] > 0), 30)
            flooded = [await instant_order(n) for n in range(3, 6)]
        finally:
            stop.set()
            await asyncio.gather(*flooders)
        flood_seconds = time.perf_counter() - flood_started
        upstream_reads = box.requests - sandbox_before
    finally:
        box.server.stop()

    ratio = statistics.median(flooded) / statistics.median(normal)
    print(f"order latency normal {normal}, under flood {flooded}: ratio {ratio:.2f}; {outcomes}")
    assert ratio <= 2.0, f"orders took {ratio:.2f}x their normal time under a detail flood"
    # The flood was refused, not queued: answered 503 supplier_busy with a retry time...
    assert outcomes["busy"] > outcomes["ok"]
    assert all(e.code == "supplier_busy" and (e.retry_after or 0) >= 1 for e in refusals)
    # ...and the flooding reseller stayed within its share of the budget (orders aside).
    orders_calls = 3 * 4  # at most a checkout and three polls each
    share = limit * 0.95 * 0.5 / period
    assert upstream_reads - orders_calls <= share * flood_seconds + 2
    assert box.control.stats["rate_limited"] == 0, "the supplier's limit was met"


async def _true(value: bool) -> bool:
    return value


async def test_a_detail_read_of_several_calls_is_served_and_so_is_the_next(
    redis: Any, key_prefix: str, http: httpx.AsyncClient
) -> None:
    """A voucher product's detail takes two upstream calls (the product, its stock): the
    caller's share must admit a whole read, and the same reseller's next read a moment
    later (found in the demo: every voucher detail answered 503 supplier_busy)."""
    from catalog_support import VO

    from adapters.vouchers import VouchersAdapter
    from adapters.vouchers.settings import VouchersSettings

    box = start_sandbox(VO, seed=3, catalog_size=20)
    try:
        documented = {
            bucket: rate.model_dump() for bucket, rate in VouchersAdapter.rate_limits.items()
        }  # the limits the product ships with, not the suite's unlimited ones
        adapter = VouchersAdapter(
            VouchersSettings.model_validate(adapter_values(VO, box.url, rate_limits=documented)),
            http=http,
            redis=redis,
            key_prefix=key_prefix,
        )
        products = [p async for page in adapter.iter_catalog() for p in page.products]
        details = DetailCache(
            redis,
            RedisKeys(key_prefix),
            {VO: adapter},
            ttl_seconds=600,
            memory_ttl_seconds=600,
            memory_size=1000,
        )
        for product in products[:3]:  # distinct products: nothing is served from cache
            result = await details.get(product, caller="rs_one")
            assert result.detail.id == product.id
            assert not result.stale
    finally:
        box.server.stop()
