"""The gateway unchanged on a three-node Redis Cluster: hash tags keep each script on one slot."""

from __future__ import annotations

import json

import httpx
import pytest
from redis.asyncio.cluster import RedisCluster

from adapters.ratelimit import RateLimit, RedisRateLimiter
from gateway.app import create_app
from gateway.bootstrap import bootstrap
from gateway.redis_keys import RedisKeys
from gateway.settings import Settings
from gateway.store import connect
from tests.ops.support import bounded, within
from tests.support.settings import ENCRYPTION_KEY


@pytest.fixture
async def cluster(redis_cluster, key_prefix: str):  # type: ignore[no-untyped-def]
    client = RedisCluster.from_url(redis_cluster.url)
    await client.initialize()
    yield client
    for node in client.get_primaries():
        keys = [k async for k in client.scan_iter(match=f"{key_prefix}:*", target_nodes=node)]
        for key in keys:
            await client.delete(key)
    await client.aclose()


async def test_cluster_has_three_masters_sharing_the_slots(cluster) -> None:
    assert len(cluster.get_primaries()) == 3
    info = await cluster.cluster_info()
    assert info["cluster_state"] == "ok" and int(info["cluster_slots_assigned"]) == 16384


async def test_shared_gcra_limiter_on_the_cluster(cluster, redis_cluster, key_prefix: str) -> None:
    """The upstream limiter's keys spread over the nodes; each decision is one script on
    one slot, and the budget is shared by every client, whatever node it lands on."""
    keys = RedisKeys(key_prefix)
    suppliers = [f"supplier{i}" for i in range(12)]
    names = [keys.upstream_rate(name, "reads") for name in suppliers]
    slots = {cluster.keyslot(name) for name in names}
    nodes = {cluster.get_node_from_key(name).name for name in names}
    assert len(slots) > 1 and len(nodes) > 1, "the test keys should land on several nodes"

    limiter = RedisRateLimiter(cluster)
    # Another instance, entering the cluster through another node.
    other = RedisCluster(host="127.0.0.1", port=redis_cluster.ports[2])
    second = RedisRateLimiter(other)
    rate = RateLimit(limit=3, period_seconds=60, burst=3)
    for name in names:
        decisions = [await limiter.decide(name, rate, mode="deny") for _ in range(2)]
        decisions.append(await second.decide(name, rate, mode="deny"))
        decisions.append(await second.decide(name, rate, mode="deny"))
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert decisions[-1].wait_seconds > 0
    reserve = await limiter.acquire(keys.upstream_rate("reserve", "orders"), rate)
    assert reserve == 0
    await other.aclose()


def _cluster_env(monkeypatch: pytest.MonkeyPatch, url: str, key_prefix: str) -> Settings:
    monkeypatch.setenv("GATEWAY_REDIS_URL", url)
    monkeypatch.setenv("GATEWAY_REDIS_CLUSTER", "true")
    monkeypatch.setenv("GATEWAY_KEY_PREFIX", key_prefix)
    monkeypatch.setenv("GATEWAY_SANDBOX", "off")
    monkeypatch.setenv("GATEWAY_ORDERS__ENCRYPTION_KEYS", json.dumps([ENCRYPTION_KEY]))
    return Settings()


async def test_gateway_bootstraps_and_serves_on_the_cluster(
    redis_cluster, key_prefix: str, monkeypatch: pytest.MonkeyPatch, cluster
) -> None:
    """Settings from the environment, ``connect``, ``bootstrap``, every service started,
    the app answering health, readiness and metrics."""
    settings = _cluster_env(monkeypatch, redis_cluster.url, key_prefix)
    assert settings.redis_cluster is True
    client = await within(connect(settings), 20, "connecting to the cluster")
    assert isinstance(client, RedisCluster)
    gw = await bootstrap(settings, redis=client, adapters={})
    app = create_app(gateway=gw)
    app.state.gateway, app.state.access = gw, gw.services.access
    try:
        await within(gw.start(), 20, "starting the services")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            health = await within(http.get("/healthz"), 10, "/healthz")
            ready = await within(http.get("/readyz"), 10, "/readyz")
            metrics = await within(http.get("/metrics"), 10, "/metrics")
        assert health.status_code == 200
        assert ready.json()["checks"]["redis"] == "ok", ready.text
        assert metrics.status_code == 200
    finally:
        # Bounded: on the cluster the order worker's read loop (XREADGROUP BLOCK) can
        # survive cancel() for a while and stop() waits up to its bound (docs/operations.md,
        # "Stopping despite a Redis client that swallows cancellation"); seen here about one
        # run in three.
        await bounded(gw.aclose(), 10)
