"""Versioned snapshots in real Redis: publish, fencing, expiry of old versions, and the
switch seen by concurrent readers."""

from __future__ import annotations

import asyncio
from typing import Any

from adapters.models import Money, Product, Variant
from gateway.catalog.snapshot import SnapshotMissing, SnapshotStore
from gateway.redis_keys import RedisKeys

SUPPLIER = "acme"


def products(version: int, count: int) -> list[Product]:
    """Products whose names carry the version that wrote them."""
    return [
        Product(
            id=f"{SUPPLIER}:{i}",
            supplier=SUPPLIER,
            upstream_id=str(i),
            name=f"v{version} product {i}",
            currency="EUR",
            variants=(
                Variant(
                    id=f"{SUPPLIER}:{i}:std",
                    name="std",
                    cost=Money(amount=100 + i, currency="EUR"),
                ),
            ),
        )
        for i in range(count)
    ]


async def stage(store: SnapshotStore, version: int, count: int) -> None:
    writer = store.writer(SUPPLIER, version, staging_ttl_seconds=60)
    await writer.add(products(version, count))
    await writer.finish(pages=1)


async def take_lock(redis: Any, keys: RedisKeys, token: int) -> None:
    await redis.set(keys.catalog_lock(SUPPLIER), token, px=60_000)


async def test_publish_makes_the_whole_version_current(redis: Any, key_prefix: str) -> None:
    keys = RedisKeys(key_prefix)
    store = SnapshotStore(redis, keys, grace_seconds=30, chunk_size=7)
    assert await store.load_current(SUPPLIER) is None

    await stage(store, 1, 20)
    # Staged but unpublished: invisible, and expiring by itself.
    assert await store.current_version(SUPPLIER) is None
    assert await redis.pttl(keys.catalog_version(SUPPLIER, 1)) > 0

    result = await store.publish(SUPPLIER, 1, {"products": 20})
    assert (result.published, result.reason, result.previous) == (True, "published", None)
    assert await redis.pttl(keys.catalog_version(SUPPLIER, 1)) == -1  # kept while current
    loaded = await store.load_current(SUPPLIER)
    assert loaded is not None
    assert loaded.meta.version == 1 and loaded.meta.chunks == 3
    assert list(loaded.products()) == products(1, 20)
    assert await redis.hget(keys.catalog_status(SUPPLIER), "products") == b"20"

    await stage(store, 2, 5)
    result = await store.publish(SUPPLIER, 2)
    assert (result.published, result.previous) == (True, 1)
    # The replaced version stays readable for the grace period, then goes.
    ttl = await redis.pttl(keys.catalog_version(SUPPLIER, 1))
    assert 0 < ttl <= 30_000
    assert [p.name for p in (await store.load_current(SUPPLIER)).products()] == [  # type: ignore[union-attr]
        f"v2 product {i}" for i in range(5)
    ]


async def test_publish_is_fenced(redis: Any, key_prefix: str) -> None:
    keys = RedisKeys(key_prefix)
    store = SnapshotStore(redis, keys)
    await stage(store, 5, 3)
    assert (await store.publish(SUPPLIER, 5)).published

    # An older token cannot publish over a newer version.
    await stage(store, 4, 3)
    refused = await store.publish(SUPPLIER, 4)
    assert (refused.published, refused.reason, refused.previous) == (False, "stale_token", 5)

    # A newer token whose lock is now held by somebody else is refused too.
    await take_lock(redis, keys, 7)
    await stage(store, 6, 3)
    refused = await store.publish(SUPPLIER, 6)
    assert (refused.published, refused.reason) == (False, "lock_lost")

    # A staged version that expired (a sync slower than its staging TTL) cannot publish.
    refused = await store.publish(SUPPLIER, 7)
    assert (refused.published, refused.reason) == (False, "missing")
    assert await store.current_version(SUPPLIER) == 5


async def test_loading_an_expired_version_says_so(redis: Any, key_prefix: str) -> None:
    store = SnapshotStore(redis, RedisKeys(key_prefix))
    try:
        await store.load(SUPPLIER, 99)
    except SnapshotMissing as exc:
        assert "99" in str(exc)
    else:
        raise AssertionError("loading a missing version must fail")


async def test_readers_never_see_a_mix_of_two_versions(redis: Any, key_prefix: str) -> None:
    """Publishers replace the snapshot again and again (with a grace period so short that
    replaced versions vanish under the readers) while readers load the current one: every
    load is one whole version, never part of two, and never a partial one."""
    keys = RedisKeys(key_prefix)
    store = SnapshotStore(redis, keys, grace_seconds=0.001, chunk_size=3)  # several HMGETs
    await stage(store, 1, 50)
    assert (await store.publish(SUPPLIER, 1)).published
    stop = asyncio.Event()
    seen_versions: set[int] = set()

    async def publisher() -> None:
        for version in range(2, 30):
            await stage(store, version, 30 + version % 3 * 10)
            assert (await store.publish(SUPPLIER, version)).published
            await asyncio.sleep(0)
        stop.set()

    async def reader() -> None:
        while not stop.is_set():
            try:
                loaded = await store.load_current(SUPPLIER)
            except SnapshotMissing:
                continue  # it kept moving five times in a row: allowed, just try again
            assert loaded is not None
            names = [p.name for p in loaded.products()]
            version = loaded.meta.version
            assert len(names) == loaded.meta.products
            assert all(name.startswith(f"v{version} ") for name in names), version
            seen_versions.add(version)

    await asyncio.gather(publisher(), *(reader() for _ in range(4)))
    assert len(seen_versions) > 3  # the readers really did overlap several switches
