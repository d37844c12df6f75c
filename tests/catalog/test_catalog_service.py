"""One instance's catalog service: loading at start, picking up new snapshots published
by another instance, swapping atomically, and readiness."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from catalog_support import (
    GG,
    VO,
    AdapterFactory,
    Sandbox,
    ServiceFactory,
    catalog_gateway_settings,
    catalog_settings,
    in_process_app,
    reader_token,
    start_sandbox,
)

from adapters.base import SupplierAdapter
from adapters.models import CatalogPage
from adapters.sandbox_server import BackgroundServer
from gateway.app import create_app
from gateway.catalog.index import SearchQuery
from gateway.catalog.service import CatalogService
from gateway.catalog.snapshot import SnapshotStore
from gateway.catalog.sync import CatalogSync
from gateway.redis_keys import RedisKeys


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def publish(adapter: SupplierAdapter, redis: Any, key_prefix: str, **kw: Any) -> Any:
    """Sync ``adapter`` into Redis as "another instance" would."""
    sync = CatalogSync(
        adapter,
        SnapshotStore(redis, RedisKeys(key_prefix)),
        lock_seconds=30,
        interval_seconds=3600,
    )
    report = await sync.run(force=True, **kw)
    return report


def listed_ids(service: CatalogService) -> set[str]:
    """Every listing row the served index holds (canonical and supplier products)."""
    index = service.index
    assert index is not None
    return set(index.search(SearchQuery(limit=len(index))).ids)


def supplier_ids(service: CatalogService, supplier: str) -> set[str]:
    index = service.index
    assert index is not None
    snap = service.state.snapshots[supplier]  # type: ignore[union-attr]
    return {p.id for p in snap.products()}


async def test_a_new_instance_serves_at_once_from_a_populated_redis(
    sandboxes: dict[str, Sandbox],
    adapters: dict[str, SupplierAdapter],
    make_service: ServiceFactory,
    redis: Any,
    key_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for adapter in adapters.values():
        assert (await publish(adapter, redis, key_prefix)).outcome == "published"
    requests_before = {name: box.requests for name, box in sandboxes.items()}

    service = make_service(adapters, sync_enabled=True)
    first_waits: dict[str, float] = {}  # each sync loop's first decision: seconds to wait
    for name, sync in service.syncs.items():

        def recording(status: Any, name: str = name, due_in: Any = sync.due_in) -> float:
            wait = float(due_in(status))
            first_waits.setdefault(name, wait)
            return wait

        monkeypatch.setattr(sync, "due_in", recording)
    await service.start()
    assert service.ready
    index = service.index
    assert index is not None
    expected = sum(box.control.info["products"] for box in sandboxes.values())
    assert index.supplier_products() == expected
    assert len(index) < expected  # matched products are listed through canonical ones
    assert index.suppliers() == {n: b.control.info["products"] for n, b in sandboxes.items()}
    # It served from Redis: not one upstream call (the sync loop found nothing due).
    await eventually(lambda: first_waits.keys() == adapters.keys())
    assert all(wait > 0 for wait in first_waits.values()), first_waits
    assert {name: box.requests for name, box in sandboxes.items()} == requests_before
    assert service.readiness()["suppliers"][GG]["catalog"] == "loaded"


async def test_a_second_instance_picks_up_a_new_snapshot(
    sandboxes: dict[str, Sandbox],
    adapters: dict[str, SupplierAdapter],
    make_adapter: AdapterFactory,
    make_service: ServiceFactory,
    redis: Any,
    key_prefix: str,
) -> None:
    for adapter in adapters.values():
        await publish(adapter, redis, key_prefix)
    watcher = make_service(adapters)
    await watcher.start()
    old_version = watcher.state.versions[GG]  # type: ignore[union-attr]
    old_ids = supplier_ids(watcher, GG)

    other = start_sandbox(GG, seed=8, catalog_size=40)  # the supplier's catalog changed
    try:
        report = await publish(make_adapter(GG, other.url), redis, key_prefix)
    finally:
        other.server.stop()
    assert report.outcome == "published"

    await eventually(lambda: watcher.state.versions[GG] == report.version)  # type: ignore[union-attr]
    new_ids = supplier_ids(watcher, GG)
    assert new_ids != old_ids and len(new_ids) == report.products
    assert watcher.state.versions[GG] > old_version  # type: ignore[union-attr]
    assert watcher.index.suppliers()[GG] == report.products  # type: ignore[union-attr]
    # The other supplier's snapshot is still served, unchanged.
    assert watcher.index.suppliers()[VO] == sandboxes[VO].control.info["products"]  # type: ignore[union-attr]


async def test_a_failed_supplier_keeps_serving_while_the_other_updates(
    sandboxes: dict[str, Sandbox],
    adapters: dict[str, SupplierAdapter],
    make_adapter: AdapterFactory,
    make_service: ServiceFactory,
    redis: Any,
    key_prefix: str,
) -> None:
    for adapter in adapters.values():
        await publish(adapter, redis, key_prefix)
    service = make_service(adapters)
    await service.start()
    gg_ids = supplier_ids(service, GG)

    def break_gg(page: CatalogPage, products: int) -> None:
        if page.page == 2:
            sandboxes[GG].faults(error_rate=1.0)

    failed = await service.sync(GG, force=True, progress=break_gg)
    assert failed.outcome == "failed"
    other = start_sandbox(VO, seed=9, catalog_size=30)
    try:
        updated = await publish(make_adapter(VO, other.url), redis, key_prefix)
    finally:
        other.server.stop()

    await eventually(lambda: service.state.versions[VO] == updated.version)  # type: ignore[union-attr]
    assert supplier_ids(service, GG) == gg_ids
    assert service.index.suppliers() == {GG: len(gg_ids), VO: 30}  # type: ignore[union-attr]
    statuses = await service.statuses()
    assert statuses[GG].stale_flag and not statuses[VO].stale_flag
    assert service.ready  # one supplier's failure does not make the instance unready


async def test_an_empty_redis_syncs_first_and_readyz_waits_for_it(
    sandboxes: dict[str, Sandbox], redis: Any, key_prefix: str, redis_url: str
) -> None:
    """A real gateway process (uvicorn on loopback, bootstrapped from settings) with an
    empty Redis: /readyz says 503 "loading" until its own sync has loaded the catalog."""
    sandboxes[GG].faults(latency_ms=80, paths=["/products"])
    settings = catalog_gateway_settings(sandboxes, key_prefix, redis_url)
    with BackgroundServer(create_app(settings)) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            first = await client.get("/readyz")
            assert first.status_code == 503
            assert first.json()["checks"]["catalog"] == "loading"
            products = await client.get("/v1/products")
            assert products.status_code in (401, 503)  # loading (or, with auth on, no key)
            deadline = time.monotonic() + 15
            while (ready := await client.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, ready.json()
                await asyncio.sleep(0.05)
        checks = ready.json()["checks"]
        assert checks["catalog"] == "ready"
        assert checks["suppliers"][GG]["catalog"] == "loaded"
        assert checks["catalog_products"] == sum(
            b.control.info["products"] for b in sandboxes.values()
        )


async def test_ready_when_one_supplier_fails_with_nothing_to_serve(
    sandboxes: dict[str, Sandbox],
    adapters: dict[str, SupplierAdapter],
    make_service: ServiceFactory,
) -> None:
    sandboxes[VO].faults(error_rate=1.0)
    service = make_service(adapters, sync_enabled=True)
    await service.start()
    await eventually(lambda: service.ready)
    report = service.readiness()
    assert report["suppliers"][VO] == {"catalog": "failed"}
    assert report["suppliers"][GG]["catalog"] == "loaded"
    assert service.index.suppliers() == {GG: sandboxes[GG].control.info["products"]}  # type: ignore[union-attr]


async def test_the_index_swap_is_atomic_for_concurrent_requests(
    sandboxes: dict[str, Sandbox],
    make_adapter: AdapterFactory,
    make_service: ServiceFactory,
    redis: Any,
    key_prefix: str,
    http: httpx.AsyncClient,
) -> None:
    """Readers list the whole Gaming Goods catalog (one page of 100) over and over while
    its snapshot flips between two different catalogs: every answer is entirely one
    catalog or entirely the other, with that catalog's total."""
    other = start_sandbox(GG, seed=8, catalog_size=45)
    try:
        small, large = make_adapter(GG, other.url), make_adapter(GG, sandboxes[GG].url)
        await publish(large, redis, key_prefix)
        service = make_service({GG: large})
        await service.start()
        catalogs = {frozenset(listed_ids(service))}
        app = in_process_app(redis, key_prefix, {GG: large}, service, http)
        transport = httpx.ASGITransport(app=app)
        auth = {"Authorization": f"Bearer {await reader_token(redis, key_prefix)}"}
        stop = asyncio.Event()
        answers: list[tuple[int, frozenset[str]]] = []

        async def reader() -> None:
            async with httpx.AsyncClient(
                transport=transport, base_url="http://gw", headers=auth
            ) as client:
                while not stop.is_set():
                    response = await client.get("/v1/products", params={"page_size": 100})
                    data = response.json()["data"]
                    answers.append((data["total"], frozenset(p["id"] for p in data["products"])))
                    # The in-process transport does no I/O, and an admitted request may not
                    # touch Redis at all (leased rate-limit tokens): yield, as a socket
                    # read does in a real server, so the snapshot watcher gets to run.
                    await asyncio.sleep(0)

        async def flipper() -> None:
            for i in range(6):
                report = await publish(small if i % 2 == 0 else large, redis, key_prefix)
                await eventually(
                    lambda v=report.version: service.state.versions[GG] == v  # type: ignore[union-attr]
                )
                catalogs.add(frozenset(listed_ids(service)))
                await asyncio.sleep(0.05)
            stop.set()

        await asyncio.gather(flipper(), *(reader() for _ in range(3)))
    finally:
        other.server.stop()

    assert len(catalogs) == 2 and len(answers) > 20
    sizes = {len(c): c for c in catalogs}
    for total, ids in answers:
        assert total in sizes, total
        catalog = sizes[total]
        assert ids <= catalog and len(ids) == min(total, 100)
    assert {total for total, _ in answers} == set(sizes)  # both were really served


async def test_catalog_reads_say_loading_until_a_catalog_is_loaded(
    sandboxes: dict[str, Sandbox],
    adapters: dict[str, SupplierAdapter],
    make_service: ServiceFactory,
    redis: Any,
    key_prefix: str,
    http: httpx.AsyncClient,
) -> None:
    service = make_service(adapters)  # not started: nothing loaded yet
    app = in_process_app(redis, key_prefix, adapters, service, http)
    auth = {"Authorization": f"Bearer {await reader_token(redis, key_prefix)}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw", headers=auth) as c:
        for path in ("/v1/products", "/v1/search?q=steam", "/v1/categories", "/v1/products/x:1"):
            response = await c.get(path)
            assert response.status_code == 503, path
            assert response.json()["error"]["code"] == "catalog_loading"
            assert response.headers["retry-after"] == "5"
        statuses = (await c.get("/v1/suppliers")).json()["data"]
        assert {s["name"]: s["version"] for s in statuses} == {GG: None, VO: None}
        for adapter in adapters.values():
            await publish(adapter, redis, key_prefix)
        await service.refresh()
        assert (await c.get("/v1/products")).status_code == 200


@pytest.mark.parametrize("in_child", [False, True], ids=["built-here", "built-in-a-child"])
async def test_an_undecodable_snapshot_leaves_the_previous_one_serving(
    sandboxes: dict[str, Sandbox],
    adapters: dict[str, SupplierAdapter],
    make_service: ServiceFactory,
    redis: Any,
    key_prefix: str,
    in_child: bool,
) -> None:
    """A version this instance cannot read (corrupt, or written by a newer gateway whose
    model it refuses) must not take its supplier out of the catalog, wherever the index
    is built (``catalog.build_process_min_products``)."""
    import zlib

    from gateway.catalog.snapshot import chunk_field
    from gateway.catalog.sync import SupplierLock

    for adapter in adapters.values():
        await publish(adapter, redis, key_prefix)
    service = make_service(
        adapters, catalog_settings(build_process_min_products=0 if in_child else 10**9)
    )
    await service.start()
    good = supplier_ids(service, GG)
    served = service.state.versions[GG]  # type: ignore[union-attr]

    store = SnapshotStore(redis, RedisKeys(key_prefix))
    token = await SupplierLock(store, GG, 30).acquire()
    assert token is not None
    writer = store.writer(GG, token, staging_ttl_seconds=60)
    await writer.finish(pages=1)
    key = RedisKeys(key_prefix).catalog_version(GG, token)
    future = b'[{"id": "gaming_goods:1", "a_field_from_the_future": 1}]'
    await redis.hset(key, chunk_field(0), zlib.compress(future))
    meta = await store.meta(GG, token)
    await redis.hset(key, "meta", meta.to_json().replace('"chunks": 0', '"chunks": 1'))
    assert (await store.publish(GG, token)).published

    await service.refresh()
    assert service.state.versions[GG] == served  # type: ignore[union-attr]
    assert supplier_ids(service, GG) == good
    assert service.index.suppliers()[GG] == len(good)  # type: ignore[union-attr]
    # That version is not fetched and decoded again on every poll.
    assert await service.refresh() is False
