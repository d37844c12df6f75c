"""The GCRA limiter (``adapters/lua/gcra.lua``) against a real Redis.

Budgets that must not refill during a test use a long period (an interval of seconds), so
the counts asserted here do not depend on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
import redis.asyncio as aioredis

from adapters.ratelimit import RateLimit, RedisRateLimiter


def test_scaled_limit_keeps_at_least_one_request() -> None:
    rate = RateLimit(limit=100, period_seconds=60, burst=3)
    assert rate.scaled(0.95) == RateLimit(limit=95, period_seconds=60, burst=3)
    assert RateLimit(limit=1, period_seconds=1).scaled(0.5).limit == 1


async def test_deny_mode_admits_exactly_the_burst_at_once(redis: Any, key_prefix: str) -> None:
    limiter = RedisRateLimiter(redis)
    rate = RateLimit(limit=10, period_seconds=60, burst=10)
    decisions = [await limiter.decide(f"{key_prefix}:b", rate, mode="deny") for _ in range(15)]
    assert [d.allowed for d in decisions] == [True] * 10 + [False] * 5
    assert [d.remaining for d in decisions[:10]] == list(range(9, -1, -1))
    assert all(d.remaining == 0 for d in decisions[10:])
    interval = 60 / 10
    for denied in decisions[10:]:
        assert 0 < denied.wait_seconds <= interval  # one slot refills per interval
        assert denied.reset_seconds == pytest.approx(10 * interval, abs=0.5)
    assert decisions[0].wait_seconds == 0
    assert decisions[9].reset_seconds == pytest.approx(10 * interval, abs=0.5)


async def test_deny_mode_with_burst_one_spaces_requests(redis: Any, key_prefix: str) -> None:
    limiter = RedisRateLimiter(redis)
    rate = RateLimit(limit=10, period_seconds=60)
    first = await limiter.decide(f"{key_prefix}:b", rate, mode="deny")
    second = await limiter.decide(f"{key_prefix}:b", rate, mode="deny")
    assert first.allowed and not second.allowed
    assert first.remaining == 0
    assert 5.5 < second.wait_seconds <= 6.0


async def test_a_denied_request_takes_nothing_from_the_budget(redis: Any, key_prefix: str) -> None:
    limiter = RedisRateLimiter(redis)
    rate = RateLimit(limit=2, period_seconds=60, burst=2)
    for _ in range(2):
        assert (await limiter.decide(f"{key_prefix}:b", rate, mode="deny")).allowed
    before = await redis.get(f"{key_prefix}:b")
    for _ in range(3):
        assert not (await limiter.decide(f"{key_prefix}:b", rate, mode="deny")).allowed
    assert await redis.get(f"{key_prefix}:b") == before


async def test_cost_counts_several_requests(redis: Any, key_prefix: str) -> None:
    limiter = RedisRateLimiter(redis)
    rate = RateLimit(limit=10, period_seconds=60, burst=10)
    decision = await limiter.decide(f"{key_prefix}:b", rate, mode="deny", cost=3)
    assert decision.allowed and decision.remaining == 7
    assert not (await limiter.decide(f"{key_prefix}:b", rate, mode="deny", cost=8)).allowed


async def test_reserve_mode_spaces_requests_by_period_over_limit(
    redis: Any, key_prefix: str
) -> None:
    limiter = RedisRateLimiter(redis)
    rate = RateLimit(limit=10, period_seconds=1)
    decisions = [await limiter.decide(f"{key_prefix}:b", rate, mode="reserve") for _ in range(6)]
    assert all(d.allowed for d in decisions), "reserve mode queues, it never refuses"
    waits = [d.wait_seconds for d in decisions]
    assert waits[0] == 0
    for earlier, later in itertools.pairwise(waits):
        # Each reservation is one interval (0.1 s) after the previous one, less the
        # (small) real time that passed between the two calls.
        assert 0.05 < later - earlier <= 0.1 + 1e-6


async def test_reserve_with_burst_lets_the_burst_through_at_once(
    redis: Any, key_prefix: str
) -> None:
    limiter = RedisRateLimiter(redis)
    rate = RateLimit(limit=10, period_seconds=60, burst=3)
    waits = [
        (await limiter.decide(f"{key_prefix}:b", rate, mode="reserve")).wait_seconds
        for _ in range(4)
    ]
    assert waits[:3] == [0, 0, 0]
    assert 5.5 < waits[3] <= 6.0


async def test_acquire_sleeps_until_its_slot(redis: Any, key_prefix: str) -> None:
    limiter = RedisRateLimiter(redis)
    rate = RateLimit(limit=20, period_seconds=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    waited = [await limiter.acquire(f"{key_prefix}:b", rate) for _ in range(3)]
    assert waited[0] == 0 and waited[1] > 0 and waited[2] > 0
    assert loop.time() - started >= waited[2]


async def test_bucket_keys_expire_once_idle(redis: Any, key_prefix: str) -> None:
    limiter = RedisRateLimiter(redis)
    await limiter.decide(f"{key_prefix}:b", RateLimit(limit=10, period_seconds=60), mode="deny")
    ttl_ms = await redis.pttl(f"{key_prefix}:b")
    assert 0 < ttl_ms <= 6_000 + 1_000


async def test_two_limiters_on_one_redis_share_one_budget(
    redis: Any, redis_url: str, key_prefix: str
) -> None:
    """Two gateway instances (two Redis connections) admit the budget once, not twice."""
    other = aioredis.Redis.from_url(redis_url)
    try:
        limiters = [RedisRateLimiter(redis), RedisRateLimiter(other)]
        rate = RateLimit(limit=10, period_seconds=60, burst=10)
        decisions = await asyncio.gather(
            *(limiters[i % 2].decide(f"{key_prefix}:b", rate, mode="deny") for i in range(40))
        )
    finally:
        await other.aclose()
    assert sum(d.allowed for d in decisions) == 10
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(10))


async def test_separate_buckets_do_not_share(redis: Any, key_prefix: str) -> None:
    limiter = RedisRateLimiter(redis)
    rate = RateLimit(limit=1, period_seconds=60)
    assert (await limiter.decide(f"{key_prefix}:a", rate, mode="deny")).allowed
    assert (await limiter.decide(f"{key_prefix}:b", rate, mode="deny")).allowed
