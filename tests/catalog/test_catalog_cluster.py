"""The catalog on a three-node Redis Cluster: every script touches one slot per supplier
(hash tag ``{catalog:<supplier>}``), the suppliers' keys spread over the nodes, and sync,
fencing, loading and detail caching work unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from catalog_support import GG, VO, AdapterFactory, Sandbox, catalog_settings
from redis.asyncio.cluster import RedisCluster

from gateway.catalog.service import CatalogService
from gateway.catalog.snapshot import SnapshotStore
from gateway.catalog.sync import CatalogSync, SupplierLock
from gateway.redis_keys import RedisKeys
from tests.ops.conftest import redis_cluster  # noqa: F401  (the session's cluster)


@pytest.fixture
async def cluster(redis_cluster: Any, key_prefix: str) -> AsyncIterator[RedisCluster]:  # noqa: F811
    client = RedisCluster.from_url(redis_cluster.url)
    await client.initialize()
    yield client
    for node in client.get_primaries():
        async for key in client.scan_iter(match=f"{key_prefix}:*", target_nodes=node):
            await client.delete(key)
    await client.aclose()


async def test_sync_fencing_and_serving_on_a_cluster(
    cluster: RedisCluster,
    sandboxes: dict[str, Sandbox],
    make_adapter: AdapterFactory,
    key_prefix: str,
) -> None:
    keys = RedisKeys(key_prefix)
    for supplier in (GG, VO):
        tagged = [
            keys.catalog_current(supplier),
            keys.catalog_lock(supplier),
            keys.catalog_fence(supplier),
            keys.catalog_status(supplier),
            keys.catalog_version(supplier, 12),
            keys.catalog_detail(supplier, "1"),
        ]
        assert len({cluster.keyslot(k) for k in tagged}) == 1
    assert cluster.keyslot(keys.catalog_current(GG)) != cluster.keyslot(keys.catalog_current(VO))

    adapters = {name: make_adapter(name, box.url) for name, box in sandboxes.items()}
    store = SnapshotStore(cluster, keys)
    for adapter in adapters.values():
        sync = CatalogSync(adapter, store, lock_seconds=30, interval_seconds=3600)
        report = await sync.run()
        assert report.outcome == "published", report.error
        assert (await sync.status()).products == report.products

    # Fencing: a holder whose token is older than the published version is refused.
    lock = SupplierLock(store, GG, 30)
    stale = await lock.acquire()
    assert stale is not None and await lock.release(stale)
    newer = await CatalogSync(adapters[GG], store, lock_seconds=30, interval_seconds=1).run(
        force=True
    )
    assert newer.outcome == "published" and newer.version > stale  # type: ignore[operator]
    writer = store.writer(GG, stale, staging_ttl_seconds=30)
    await writer.finish(pages=0)
    refused = await store.publish(GG, stale)
    assert (refused.published, refused.reason) == (False, "stale_token")

    service = CatalogService(
        redis=cluster,
        keys=keys,
        adapters=adapters,
        settings=catalog_settings(),
        sync_enabled=False,
        watch_enabled=False,
    )
    await service.start()
    try:
        assert service.ready
        assert service.index is not None
        assert service.index.suppliers() == {
            name: box.control.info["products"] for name, box in sandboxes.items()
        }
        product = service.find(next(iter(service.state.snapshots[VO].products())).id)  # type: ignore[union-attr]
        assert product is not None
        fetched = await service.details.get(product)
        assert fetched.detail.id == product.id
        assert await cluster.exists(keys.catalog_detail(VO, product.upstream_id))
    finally:
        await service.stop()
