"""Reclaiming a dead worker's jobs on real Redis when many live, renewed jobs sit ahead of
them in the stream: ``XAUTOCLAIM`` examines at most ten entries per requested one, so the
sweep must resume where the last one stopped rather than start at ``0-0`` each time."""

from __future__ import annotations

import math
from typing import Any

from gateway.orders.queue import Job, JobKind, JobQueue
from gateway.orders.scripts import OrderScripts
from gateway.redis_keys import RedisKeys

LEASE_MS = 10_000


async def _add(queue: JobQueue, job: Job) -> None:
    """Put a job on the stream as the order scripts do (one ``j`` field)."""
    await queue.redis.xadd(queue.stream, {"j": job.encode()})


async def _read_all(queue: JobQueue, consumer: str, count: int) -> list[str]:
    delivered = await queue.read(consumer, count, 10)
    assert len(delivered) == count
    return [d.entry_id for d in delivered]


async def test_dead_jobs_behind_many_renewed_ones_are_reclaimed_in_bounded_sweeps(
    redis: Any, key_prefix: str
) -> None:
    queue = JobQueue(redis, RedisKeys(key_prefix), OrderScripts.register(redis))
    await queue.ensure_group()
    live_count, dead_count = 40, 5
    for n in range(live_count):
        await _add(queue, Job.new(JobKind.POLL, f"live-{n}", 1))
    live = await _read_all(queue, "alive", live_count)
    for n in range(dead_count):
        await _add(queue, Job.new(JobKind.POLL, f"dead-{n}", 1))
    dead = await _read_all(queue, "crashed", dead_count)
    # The dead worker's lease ran out; the live worker keeps renewing its own.
    await queue.release("crashed", dead, LEASE_MS + 1)

    reclaimed: list[str] = []
    calls = 0
    # One free slot per sweep: each call may examine only 10 pending entries.
    bound = math.ceil((live_count + dead_count) / 10) + dead_count + 1
    while len(reclaimed) < dead_count and calls < bound:
        await queue.renew("alive", live)
        calls += 1
        reclaimed += [d.entry_id for d in await queue.reclaim("survivor", LEASE_MS, 1)]
    assert sorted(reclaimed) == sorted(dead), f"after {calls} sweeps: {reclaimed}"
    assert not set(reclaimed) & set(live), "a live, renewed job was taken over"

    # Once the sweep went round, it starts again from the beginning and finds new ones.
    await queue.release("alive", live[:1], LEASE_MS + 1)
    again: list[str] = []
    for _ in range(bound):
        again += [d.entry_id for d in await queue.reclaim("survivor", LEASE_MS, 1)]
        if again:
            break
    assert again == live[:1]
