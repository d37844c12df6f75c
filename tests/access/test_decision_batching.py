"""The limiter's batching: concurrent decisions share round trips, and stay exact."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from adapters.ratelimit import RateLimit, RedisRateLimiter
from gateway.access.ratelimit import DecisionBatcher


async def test_concurrent_decisions_are_batched_and_exact(
    redis: aioredis.Redis, key_prefix: str
) -> None:
    limiter = RedisRateLimiter(redis)
    round_trips: list[int] = []
    decide, decide_many = limiter.decide, limiter.decide_many

    async def one(*args: object, **kwargs: object) -> object:
        round_trips.append(1)
        return await decide(*args, **kwargs)  # type: ignore[arg-type]

    async def many(calls: list[object], **kwargs: object) -> object:
        round_trips.append(len(calls))
        return await decide_many(calls, **kwargs)  # type: ignore[arg-type]

    limiter.decide, limiter.decide_many = one, many  # type: ignore[method-assign]
    batcher = DecisionBatcher(limiter)
    rate = RateLimit(limit=40, period_seconds=60, burst=40)
    keys = [f"{key_prefix}:rl:a", f"{key_prefix}:rl:b"]
    decisions = await asyncio.gather(*(batcher.decide(keys[i % 2], rate) for i in range(100)))
    assert sum(round_trips) == 100  # every decision made once...
    assert len(round_trips) < 10  # ... in a few round trips
    for key in keys:
        mine = [d for i, d in enumerate(decisions) if keys[i % 2] == key]
        assert sum(d.allowed for d in mine) == 40
    # Idle again: the next decision goes alone.
    round_trips.clear()
    await batcher.decide(keys[0], rate)
    assert round_trips == [1]


async def test_a_failure_reaches_every_waiter_and_the_batcher_recovers(
    redis: aioredis.Redis, key_prefix: str
) -> None:
    dead = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    batcher = DecisionBatcher(RedisRateLimiter(dead))
    rate = RateLimit(limit=5, period_seconds=60, burst=5)
    results = await asyncio.gather(
        *(batcher.decide(f"{key_prefix}:rl:x", rate) for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(r, Exception) for r in results)
    await dead.aclose()
    batcher._limiter = RedisRateLimiter(redis)  # Redis is back
    assert (await batcher.decide(f"{key_prefix}:rl:x", rate)).allowed


async def test_decide_many_survives_a_redis_that_forgot_the_script(
    redis: aioredis.Redis, key_prefix: str
) -> None:
    limiter = RedisRateLimiter(redis)
    rate = RateLimit(limit=3, period_seconds=60, burst=3)
    await redis.script_flush()  # as after a restart or failover
    decisions = await limiter.decide_many([(f"{key_prefix}:rl:y", rate)] * 4, mode="deny")
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]


@pytest.mark.parametrize("size", [0, 1])
async def test_decide_many_of_few(redis: aioredis.Redis, key_prefix: str, size: int) -> None:
    limiter = RedisRateLimiter(redis)
    rate = RateLimit(limit=3, period_seconds=60, burst=3)
    assert (
        len(await limiter.decide_many([(f"{key_prefix}:rl:z", rate)] * size, mode="deny")) == size
    )
