"""The job stream and schedule on real Redis: delayed jobs move when due, a dead worker's
job is taken over, a job that keeps failing is stopped and its part held."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from orders_harness import Picks, Sandboxes, make_settings, order_settings

from gateway.orders.models import PartState
from gateway.orders.queue import Job, JobKind
from gateway.orders.store import Effects


async def pending_order(inst: Any, picks: Picks) -> str:
    caller = await inst.caller()
    response = await inst.client.post(
        "/v1/orders",
        json={"items": [{"variant_id": picks.voucher_fixed, "quantity": 1}]},
        headers={**caller.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202
    return str(response.json()["data"]["id"])


async def test_delayed_jobs_enter_the_stream_only_when_due(
    make_instance: Any, picks: Picks
) -> None:
    inst = await make_instance(workers=False)
    order_id = await pending_order(inst, picks)
    queue, processor = inst.orders.queue, inst.orders.processor
    await queue.read("probe", 10, 10)  # take the placement job out of the way
    soon, later = Job.new(JobKind.POLL, order_id, 1), Job.new(JobKind.POLL, order_id, 1)

    def schedule(order: Any, now: float) -> Effects:
        return Effects(later=[(0.2, soon), (30.0, later)])

    await processor.commit(order_id, None, schedule, touch=False)
    assert await queue.read("probe", 10, 10) == []
    wait = await queue.promote()
    assert wait is not None and 0 < wait <= 0.2
    await asyncio.sleep(0.25)  # until the 0.2 s job is due: the delay is what is tested
    wait = await queue.promote()
    assert wait is not None and 29 < wait <= 30
    delivered = await queue.read("probe", 10, 10)
    assert [d.job for d in delivered] == [soon]
    assert (await queue.backlog())["scheduled"] == 1


async def test_a_dead_workers_job_is_taken_over_and_a_poisonous_one_is_held(
    make_instance: Any, picks: Picks, sandboxes: Sandboxes, redis_url: str, key_prefix: str
) -> None:
    settings = make_settings(
        redis_url, key_prefix, sandboxes, orders=order_settings(job_max_deliveries=2)
    )
    inst = await make_instance(settings, workers=False)
    order_id = await pending_order(inst, picks)
    queue, processor = inst.orders.queue, inst.orders.processor
    first = await queue.read("crashed-1", 10, 10)
    assert len(first) == 1 and first[0].job is not None
    assert first[0].job.kind is JobKind.PLACE
    # nobody renews it: another worker takes it over (here with no idle time to wait)
    second = await queue.reclaim("crashed-2", 0, 10)
    assert [d.entry_id for d in second] == [first[0].entry_id]
    assert second[0].deliveries == 2
    third = await queue.reclaim("survivor", 0, 10)
    assert third[0].deliveries == 3 > settings.orders.job_max_deliveries
    await processor.handle(third[0])
    loaded = await inst.orders.store.load(order_id)
    assert loaded is not None
    part = loaded.order.part(1)
    assert part.state is PartState.REVIEW and part.review_reason == "job_failed_repeatedly"
    assert await queue.reclaim("survivor", 0, 10) == []  # acknowledged
    bought = await sandboxes.purchases("vouchers")
    assert not any(str(p["reference"]).startswith(order_id) for p in bought)
