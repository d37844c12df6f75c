"""The sync job against both sandboxes over loopback HTTP, with real Redis: full syncs,
mid-sync failures, one syncer at a time, and fencing of a stalled lock holder."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from catalog_support import GG, VO, AdapterFactory, Sandbox

from adapters.base import SupplierAdapter
from adapters.models import CatalogPage
from gateway.catalog.snapshot import SnapshotStore
from gateway.catalog.sync import CatalogSync
from gateway.redis_keys import RedisKeys


def syncer(adapter: SupplierAdapter, redis: Any, key_prefix: str, **kw: Any) -> CatalogSync:
    kw.setdefault("lock_seconds", 30)
    kw.setdefault("interval_seconds", 600)
    return CatalogSync(adapter, SnapshotStore(redis, RedisKeys(key_prefix)), **kw)


class Stalled(CatalogSync):
    """A holder that stops renewing its lock: what a paused or partitioned process is."""

    async def _keep_lock(self, token: int, lost: asyncio.Event) -> None:
        return


async def test_full_sync_publishes_every_product(
    sandboxes: dict[str, Sandbox], adapters: dict[str, SupplierAdapter], redis: Any, key_prefix: str
) -> None:
    for name, box in sandboxes.items():
        sync = syncer(adapters[name], redis, key_prefix)
        pages: list[int] = []
        report = await sync.run(progress=lambda page, n, seen=pages: seen.append(page.page))
        assert report.outcome == "published", report.error
        assert report.products == box.control.info["products"]
        assert report.pages == len(pages) > 1
        assert report.requests >= report.pages and report.rate_limited == 0

        snapshot = await sync.store.load_current(name)
        assert snapshot is not None and snapshot.meta.version == report.version
        ids = [p.id for p in snapshot.products()]
        assert len(ids) == len(set(ids)) == report.products

        status = await sync.status()
        assert status.version == report.version and status.products == report.products
        assert status.outcome == "ok" and not status.stale_flag and status.last_error is None
        assert not status.syncing

        # Not due again for an interval, unless forced.
        assert (await sync.run()).outcome == "not_due"
        forced = await sync.run(force=True)
        assert forced.outcome == "published" and forced.version > report.version


async def test_a_supplier_failing_mid_sync_keeps_its_last_snapshot(
    sandboxes: dict[str, Sandbox], adapters: dict[str, SupplierAdapter], redis: Any, key_prefix: str
) -> None:
    gg, vo = syncer(adapters[GG], redis, key_prefix), syncer(adapters[VO], redis, key_prefix)
    first = await gg.run()
    assert first.outcome == "published"
    before = [p.id for p in (await gg.store.load_current(GG)).products()]  # type: ignore[union-attr]

    def break_after_two_pages(page: CatalogPage, products: int) -> None:
        if page.page == 2:
            sandboxes[GG].faults(error_rate=1.0)

    failed = await gg.run(force=True, progress=break_after_two_pages)
    assert failed.outcome == "failed" and failed.pages == 2
    assert failed.error and "RetriableError" in failed.error

    # Readers still get the whole previous version; the status says stale, with why.
    assert await gg.store.current_version(GG) == first.version
    after = [p.id for p in (await gg.store.load_current(GG)).products()]  # type: ignore[union-attr]
    assert after == before
    status = await gg.status()
    assert status.stale_flag and status.outcome == "failed"
    assert status.last_error == failed.error and status.last_success_at is not None
    assert status.products == first.products  # the served snapshot's figures stay
    assert status.is_stale(now=status.last_attempt_at or 0, interval_seconds=600, lock_seconds=30)
    # The failed attempt's staged version is gone, not left to linger.
    assert not await redis.exists(RedisKeys(key_prefix).catalog_version(GG, failed.version))

    # The other supplier is unaffected.
    other = await vo.run()
    assert other.outcome == "published"
    assert not (await vo.status()).stale_flag

    # Once the supplier recovers, a sync clears the stale mark.
    sandboxes[GG].faults()
    healed = await gg.run(force=True)
    assert healed.outcome == "published"
    assert not (await gg.status()).stale_flag


async def test_an_adapter_raising_mid_iteration_publishes_nothing(
    sandboxes: dict[str, Sandbox], adapters: dict[str, SupplierAdapter], redis: Any, key_prefix: str
) -> None:
    sync = syncer(adapters[VO], redis, key_prefix)

    def explode(page: CatalogPage, products: int) -> None:
        if page.page == 2:
            raise ValueError("mapping bug on page 2")

    report = await sync.run(progress=explode)
    assert report.outcome == "failed" and "mapping bug" in (report.error or "")
    assert await sync.store.current_version(VO) is None
    status = await sync.status()
    assert status.outcome == "failed" and status.version is None
    assert not status.is_stale(now=0, interval_seconds=1, lock_seconds=1)  # nothing served


async def test_an_empty_catalog_does_not_replace_a_full_one(
    sandboxes: dict[str, Sandbox],
    adapters: dict[str, SupplierAdapter],
    make_adapter: AdapterFactory,
    redis: Any,
    key_prefix: str,
) -> None:
    from catalog_support import start_sandbox

    assert (await syncer(adapters[GG], redis, key_prefix).run()).outcome == "published"
    empty = start_sandbox(GG, seed=7, catalog_size=0)
    try:
        sync = syncer(make_adapter(GG, empty.url), redis, key_prefix)
        report = await sync.run(force=True)
    finally:
        empty.server.stop()
    assert report.outcome == "failed" and "empty catalog" in (report.error or "")
    snapshot = await sync.store.load_current(GG)
    assert snapshot is not None and snapshot.meta.products == sandboxes[GG].control.info["products"]


async def test_two_instances_never_sync_a_supplier_at_once(
    sandboxes: dict[str, Sandbox], make_adapter: AdapterFactory, redis: Any, key_prefix: str
) -> None:
    """Two instances (own adapters, own stores, one Redis) try to sync together: one
    syncs, the other finds the lock held, and the upstream is walked once."""
    box = sandboxes[GG]
    box.faults(latency_ms=30, paths=["/products"])
    one = syncer(make_adapter(GG, box.url), redis, key_prefix)
    two = syncer(make_adapter(GG, box.url), redis, key_prefix)

    reports = await asyncio.gather(one.run(force=True), two.run(force=True))
    assert sorted(r.outcome for r in reports) == ["busy", "published"]
    published = next(r for r in reports if r.outcome == "published")
    assert box.requests == published.requests  # nobody else paged the catalog

    # While one runs, the lock is visible in the status as "syncing".
    started = asyncio.Event()
    statuses = []

    def note(page: CatalogPage, products: int) -> None:
        started.set()

    task = asyncio.create_task(one.run(force=True, progress=note))
    await started.wait()
    statuses.append(await two.status())
    assert (await two.run(force=True)).outcome == "busy"
    assert (await task).outcome == "published"
    assert statuses[0].syncing and not (await two.status()).syncing


async def test_a_long_sync_keeps_its_lock_by_renewing_it(
    sandboxes: dict[str, Sandbox], make_adapter: AdapterFactory, redis: Any, key_prefix: str
) -> None:
    box = sandboxes[VO]
    box.faults(latency_ms=300, paths=["/api/v1/products"])
    # 7 pages of 300 ms: about 2 s, twice the lock's lifetime.
    slow = syncer(make_adapter(VO, box.url, page_size=10), redis, key_prefix, lock_seconds=1.0)
    other = syncer(make_adapter(VO, box.url), redis, key_prefix, lock_seconds=1.0)
    task = asyncio.create_task(slow.run(force=True))
    await asyncio.sleep(1.3)  # longer than the lock's lifetime: only renewal keeps it
    assert (await other.run(force=True)).outcome == "busy"
    assert (await task).outcome == "published"


async def test_a_stalled_holder_cannot_overwrite_a_newer_snapshot(
    sandboxes: dict[str, Sandbox], make_adapter: AdapterFactory, redis: Any, key_prefix: str
) -> None:
    """Holder A stalls past its lock's expiry; B takes over and publishes; when A wakes
    up and tries to publish its older data, the fencing token refuses it."""
    box = sandboxes[GG]
    keys = RedisKeys(key_prefix)
    a = Stalled(
        make_adapter(GG, box.url),
        SnapshotStore(redis, keys),
        lock_seconds=1.0,
        interval_seconds=600,
    )
    b = syncer(make_adapter(GG, box.url), redis, key_prefix, lock_seconds=30)
    a_paused, a_resume = asyncio.Event(), asyncio.Event()
    original = a.adapter.iter_catalog

    async def frozen_iter() -> Any:
        async for page in original():
            yield page
            if page.page == 1:  # A freezes between two pages
                a_paused.set()
                await a_resume.wait()

    a.adapter.iter_catalog = frozen_iter  # type: ignore[method-assign]
    task_a = asyncio.create_task(a.run(force=True))
    await a_paused.wait()
    await asyncio.sleep(1.2)  # A's lock expires; A, stalled, did not renew it
    report_b = await b.run(force=True)
    assert report_b.outcome == "published"
    a_resume.set()
    report_a = await task_a
    assert report_a.outcome == "failed"
    assert "publish refused" in (report_a.error or "") and "stale_token" in (report_a.error or "")
    assert report_a.version is not None and report_a.version < report_b.version  # type: ignore[operator]
    assert await b.store.current_version(GG) == report_b.version
    # A's late failure does not mark B's fresh snapshot stale.
    assert not (await b.status()).stale_flag
    # And A released nothing of B's: B's lock was already gone, A's release is a no-op.
    assert not await redis.exists(keys.catalog_lock(GG))


async def test_a_stalled_holder_is_refused_even_before_the_new_holder_publishes(
    sandboxes: dict[str, Sandbox], make_adapter: AdapterFactory, redis: Any, key_prefix: str
) -> None:
    keys = RedisKeys(key_prefix)
    store = SnapshotStore(redis, keys)
    a = Stalled(make_adapter(GG, sandboxes[GG].url), store, lock_seconds=1.0, interval_seconds=60)
    original = a.adapter.iter_catalog

    async def slow_iter() -> Any:
        async for page in original():
            yield page
            if page.page == 1:
                await asyncio.sleep(1.2)  # the lock expires meanwhile
                # ... and another instance takes it (and is still syncing)
                assert await b_lock.acquire() is not None

    from gateway.catalog.sync import SupplierLock

    b_lock = SupplierLock(store, GG, 30)
    a.adapter.iter_catalog = slow_iter  # type: ignore[method-assign]
    report = await a.run(force=True)
    assert report.outcome == "failed" and "lock_lost" in (report.error or "")
    assert await store.current_version(GG) is None


async def test_sandbox_is_reachable_over_real_http(sandboxes: dict[str, Sandbox]) -> None:
    """Guard: these tests talk to the sandboxes over loopback TCP, not in-process."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{sandboxes[GG].url}/_sandbox/stats")
    assert response.status_code == 200 and response.json()["products"] > 0
