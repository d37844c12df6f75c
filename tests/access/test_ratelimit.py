"""Per-key rate limits over HTTP: headers, 429, accuracy across instances, Redis outages."""

from __future__ import annotations

import asyncio
import logging
import re
import time

import pytest
import redis.asyncio as aioredis
from access_routes import ROUTES, MakeGateway
from prometheus_client import REGISTRY

from adapters.ratelimit import RateLimit
from gateway.access.ratelimit import lease_size
from gateway.access.service import Access
from gateway.access.testing import issue_key
from gateway.api.testing import serve_in_process
from gateway.app import create_app


def rejections(scope: str) -> float:
    value = REGISTRY.get_sample_value("gateway_ratelimit_rejections_total", {"scope": scope})
    return value or 0.0


async def test_every_response_reports_the_limit(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    caller = await issue_key(gw, rate_limit=10)
    async with serve_in_process(create_app(gateway=gw, extra_routes=ROUTES)) as client:
        first = await client.get("/v1/test/whoami", headers=caller.headers)
        second = await client.get("/v1/test/whoami", headers=caller.headers)
    assert first.headers["X-RateLimit-Limit"] == "10"
    assert first.headers["X-RateLimit-Remaining"] == "9"
    assert second.headers["X-RateLimit-Remaining"] == "8"
    reset = int(first.headers["X-RateLimit-Reset"])
    assert time.time() - 1 <= reset <= time.time() + 61
    assert first.headers["RateLimit-Policy"] == '"key";q=10;w=60'
    match = re.fullmatch(r'"key";r=(\d+);t=(\d+)', second.headers["RateLimit"])
    assert match and match.group(1) == "8" and 1 <= int(match.group(2)) <= 60


async def test_errors_after_admission_carry_the_headers_too(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    caller = await issue_key(gw, scopes=["catalog:read"], rate_limit=10)
    async with serve_in_process(create_app(gateway=gw, extra_routes=ROUTES)) as client:
        ok = await client.get("/v1/test/whoami", headers=caller.headers)
        unauthenticated = await client.get("/v1/test/whoami")
    assert "X-RateLimit-Remaining" in ok.headers
    assert "X-RateLimit-Remaining" not in unauthenticated.headers


async def test_over_the_limit_is_429_with_retry_after(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    caller = await issue_key(gw, rate_limit=5)
    other = await issue_key(gw, rate_limit=5)
    before = rejections("catalog:read")
    async with serve_in_process(create_app(gateway=gw, extra_routes=ROUTES)) as client:
        statuses = [
            (await client.get("/v1/test/whoami", headers=caller.headers)).status_code
            for _ in range(5)
        ]
        limited = await client.get("/v1/test/whoami", headers=caller.headers)
        unaffected = await client.get("/v1/test/whoami", headers=other.headers)
    assert statuses == [200] * 5
    assert limited.status_code == 429
    error = limited.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["request_id"] == limited.headers["X-Request-ID"]
    assert 1 <= int(limited.headers["Retry-After"]) <= 12  # one slot is 60/5 = 12 s
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.headers["RateLimit"].startswith('"key";r=0;')
    assert unaffected.status_code == 200  # limits are per key
    assert rejections("catalog:read") == before + 1


async def test_three_instances_admit_the_limit_once_not_three_times(
    make_gateway: MakeGateway,
) -> None:
    """100/min across three instances sharing Redis: about 100 of 300 requests pass."""
    instances = [await make_gateway() for _ in range(3)]
    caller = await issue_key(instances[0], rate_limit=100)
    apps = [create_app(gateway=gw, extra_routes=ROUTES) for gw in instances]
    async with (
        serve_in_process(apps[0]) as a,
        serve_in_process(apps[1]) as b,
        serve_in_process(apps[2]) as c,
    ):
        clients = [a, b, c]

        async def call(i: int) -> int:
            response = await clients[i % 3].get("/v1/test/whoami", headers=caller.headers)
            return response.status_code

        started = time.monotonic()
        statuses = await asyncio.gather(*(call(i) for i in range(300)))
        elapsed = time.monotonic() - started
    admitted = statuses.count(200)
    assert statuses.count(200) + statuses.count(429) == 300
    # The bucket holds 100 and refills at 100/min while the test runs.
    assert 100 <= admitted <= 100 + int(elapsed * 100 / 60) + 1, (admitted, elapsed)


async def _dead_redis() -> aioredis.Redis:
    return aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)


@pytest.mark.parametrize(("fail_open_reads", "fail_open_writes"), [(True, False), (False, True)])
async def test_redis_unavailable_fails_open_or_closed_as_configured(
    make_gateway: MakeGateway,
    caplog: pytest.LogCaptureFixture,
    fail_open_reads: bool,
    fail_open_writes: bool,
) -> None:
    gw = await make_gateway(fail_open_reads=fail_open_reads, fail_open_writes=fail_open_writes)
    caller = await issue_key(gw, rate_limit=7)
    # Keys are readable, the limiter's Redis is not (a restart, a failover...).
    gw.services.access = Access.build(
        gw.redis, gw.keys, gw.settings.access, limiter_redis=await _dead_redis()
    )
    caplog.set_level(logging.WARNING, logger="gateway.access.ratelimit")
    async with serve_in_process(create_app(gateway=gw, extra_routes=ROUTES)) as client:
        read = await client.get("/v1/test/whoami", headers=caller.headers)
        write = await client.post("/v1/test/orders", headers=caller.headers)
    for response, fail_open in ((read, fail_open_reads), (write, fail_open_writes)):
        if fail_open:
            assert response.status_code in (200, 201)
            assert response.headers["X-RateLimit-Limit"] == "7"
            assert "X-RateLimit-Remaining" not in response.headers
        else:
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "rate_limiter_unavailable"
            assert response.headers["Retry-After"] == "1"
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "failing open for " in logged and "failing closed for " in logged


async def test_admission_costs_one_redis_round_trip(
    make_gateway: MakeGateway, redis_url: str
) -> None:
    """Cached authentication + at most one EVALSHA per request (fewer when the key's rate
    is high enough to lease several tokens per call): count what the limiter sends."""
    counted = aioredis.Redis.from_url(redis_url)
    sent: list[str] = []
    original = counted.execute_command

    async def counting(*args: object, **kwargs: object) -> object:
        sent.append(str(args[0]))
        return await original(*args, **kwargs)

    counted.execute_command = counting  # type: ignore[method-assign]
    gw = await make_gateway(key_cache_seconds=60)
    caller = await issue_key(gw)
    gw.services.access = Access.build(gw.redis, gw.keys, gw.settings.access, limiter_redis=counted)
    async with serve_in_process(create_app(gateway=gw, extra_routes=ROUTES)) as client:
        await client.get("/v1/test/whoami", headers=caller.headers)  # warms the cache
        sent.clear()
        for _ in range(10):
            response = await client.get("/v1/test/whoami", headers=caller.headers)
            assert response.status_code == 200
    await counted.aclose()
    assert set(sent) == {"EVALSHA"}
    expected = -(-10 // lease_size(caller_rate(gw)))  # ceil: one call per lease
    assert len(sent) == expected, sent


def caller_rate(gw: object) -> RateLimit:
    limit = gw.settings.access.default_rate_limit  # type: ignore[attr-defined]
    return RateLimit(limit=limit, period_seconds=60, burst=limit)


async def test_leases_never_admit_more_than_the_limit_across_instances(
    make_gateway: MakeGateway,
) -> None:
    """1,200/min (a lease of 5 tokens per Redis call) across three instances: 1,300 quick
    requests admit at most the bucket plus its refill, and lose at most one lease per
    instance to tokens still held when the test stops."""
    instances = [await make_gateway() for _ in range(3)]
    caller = await issue_key(instances[0], rate_limit=1200)
    assert lease_size(RateLimit(limit=1200, period_seconds=60, burst=1200)) == 5
    apps = [create_app(gateway=gw, extra_routes=ROUTES) for gw in instances]
    async with (
        serve_in_process(apps[0]) as a,
        serve_in_process(apps[1]) as b,
        serve_in_process(apps[2]) as c,
    ):
        clients = [a, b, c]

        async def call(i: int) -> int:
            response = await clients[i % 3].get("/v1/test/whoami", headers=caller.headers)
            return response.status_code

        started = time.monotonic()
        statuses: list[int] = []
        for start in range(0, 1300, 100):
            statuses += await asyncio.gather(*(call(i) for i in range(start, start + 100)))
        elapsed = time.monotonic() - started
    admitted = statuses.count(200)
    assert statuses.count(200) + statuses.count(429) == 1300
    refill = int(elapsed * 1200 / 60) + 1
    assert 1200 - 3 * 5 <= admitted <= 1200 + refill, (admitted, elapsed)
