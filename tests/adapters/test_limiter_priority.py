"""The shared upstream limiter by priority, on real Redis: orders keep a reserve and queue
within a bound; detail reads take what is free or are refused; syncs wait without holding
a slot; one caller's detail reads stay within its share."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.ratelimit import Admission, Priority, RateLimit, RedisRateLimiter, SlotRefused

RATE = RateLimit(limit=600, period_seconds=60)  # one slot every 0.1 s, burst 1
RESERVE = 4


def admission(priority: Priority, **kw: Any) -> Admission:
    return Admission(priority=priority, reserve=RESERVE, **kw)


async def test_detail_reads_leave_the_reserve_to_orders(redis: Any, key_prefix: str) -> None:
    limiter = RedisRateLimiter(redis)
    key = f"{key_prefix}:rl:upstream:{{test}}:default"
    # A flood of ten at once: the free slot, the next one, and refusals for the rest.
    results = await asyncio.gather(
        *(limiter.acquire(key, RATE, admission(Priority.DETAIL)) for _ in range(10)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, SlotRefused)]
    assert len(refused) == 8 and all(r.wait_seconds > 0 for r in refused)
    # Orders still find RESERVE - 1 slots at once, the flood notwithstanding.
    waits = [
        await limiter.acquire(key, RATE, admission(Priority.ORDER, max_wait=5.0))
        for _ in range(RESERVE - 1)
    ]
    assert waits == [0.0] * (RESERVE - 1)
    with pytest.raises(SlotRefused):  # and detail reads wait their turn behind them
        await limiter.acquire(key, RATE, admission(Priority.DETAIL))


async def test_an_order_call_never_waits_longer_than_it_accepts(
    redis: Any, key_prefix: str
) -> None:
    limiter = RedisRateLimiter(redis)
    key = f"{key_prefix}:rl:upstream:{{test}}:default"
    slow = RateLimit(limit=1, period_seconds=60)
    await limiter.acquire(key, slow, Admission(priority=Priority.ORDER, max_wait=0.5))
    before = await redis.get(key)
    with pytest.raises(SlotRefused) as caught:
        await limiter.acquire(key, slow, Admission(priority=Priority.ORDER, max_wait=0.5))
    assert caught.value.wait_seconds > 50
    assert await redis.get(key) == before  # no slot was taken by the refused call


async def test_a_sync_waits_without_holding_a_slot_ahead_of_orders(
    redis: Any, key_prefix: str
) -> None:
    limiter = RedisRateLimiter(redis)
    key = f"{key_prefix}:rl:upstream:{{test}}:default"
    for _ in range(RESERVE):  # orders use the whole bucket, reserve included
        await limiter.acquire(key, RATE, admission(Priority.ORDER))
    sync = asyncio.create_task(limiter.acquire(key, RATE, admission(Priority.SYNC)))
    await asyncio.sleep(0)  # the sync is waiting now
    order_wait = await limiter.acquire(key, RATE, admission(Priority.ORDER, max_wait=5.0))
    synced = await sync
    # The order arriving after the sync still went first: the sync held no slot.
    assert synced > order_wait


async def test_one_callers_detail_reads_stay_within_its_share(redis: Any, key_prefix: str) -> None:
    limiter = RedisRateLimiter(redis)
    key = f"{key_prefix}:rl:upstream:{{test}}:default"
    wide = RateLimit(limit=600, period_seconds=60, burst=10)
    share = admission(Priority.DETAIL, caller="r-1", caller_share=0.1)
    # Its own bucket: 60/min, burst 2 (one read may take two calls), then one a second:
    # a call may wait for its own next slot, never queue beyond it.
    assert await limiter.acquire(key, wide, share) == 0
    assert await limiter.acquire(key, wide, share) == 0
    third, fourth = await asyncio.gather(
        limiter.acquire(key, wide, share),
        limiter.acquire(key, wide, share),
        return_exceptions=True,
    )
    assert isinstance(third, float) and 0.5 < third <= 1.0  # waited for its own next slot
    assert isinstance(fourth, SlotRefused) and "caller's share" in str(fourth)
    assert 1.0 < fourth.wait_seconds <= 2.0
    # Another caller still reads: the bucket itself had room.
    await limiter.acquire(key, wide, admission(Priority.DETAIL, caller="r-2", caller_share=0.1))
