"""Worker log lines name the order they are about: every line written while a job runs
(the processor's own, and the adapter's upstream calls) carries the order id, the part,
the job kind and the supplier, as the request id does for a request."""

from __future__ import annotations

import uuid
from typing import Any

from orders_harness import Picks, Sandboxes, wait_until

from gateway.orders.models import PartState
from tests.ops import conftest as ops_fixtures

captured_logs = ops_fixtures.captured_logs  # the gateway's real log handler, as ops reads it


async def _order(inst: Any, variant_id: str) -> str:
    caller = await inst.caller()
    response = await inst.client.post(
        "/v1/orders",
        json={"items": [{"variant_id": variant_id, "quantity": 1}]},
        headers={**caller.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code in (201, 202), response.text
    return str(response.json()["data"]["id"])


async def _part_state(inst: Any, order_id: str, states: set[PartState]) -> Any:
    async def reached() -> Any:
        loaded = await inst.orders.store.load(order_id)
        return loaded if loaded and loaded.order.parts[0].state in states else None

    return await wait_until(reached, 15)


async def test_upstream_calls_made_by_a_job_carry_its_order(
    make_instance: Any, picks: Picks, captured_logs: Any
) -> None:
    inst = await make_instance()
    order_id = await _order(inst, picks.voucher_fixed)
    assert await _part_state(inst, order_id, {PartState.DELIVERED}), "not delivered"
    calls = [
        line
        for line in captured_logs.by_logger("adapters.upstream")
        if line.get("order_id") == order_id
    ]
    operations = {line["operation"] for line in calls}
    assert "create_order" in operations, operations
    for line in calls:
        assert line["part"] == 1 and line["supplier"] == "vouchers"
        assert line["job"] in ("place", "poll")
    # Lines written outside any job carry no job context.
    http = captured_logs.by_logger("gateway.http")
    assert http and all("job" not in line and "part" not in line for line in http)


async def test_a_held_placement_logs_its_order_on_every_line(
    make_instance: Any, picks: Picks, sandboxes: Sandboxes, captured_logs: Any
) -> None:
    inst = await make_instance()
    await sandboxes.set_faults("vouchers", error_rate=1.0, paths=["/api/v1/orders"])
    order_id = await _order(inst, picks.voucher_fixed)
    assert await _part_state(inst, order_id, {PartState.REVIEW}), "not held for review"
    failed = [
        line
        for line in captured_logs.by_logger("adapters.upstream")
        if line["operation"] == "create_order" and line["outcome"] == "5xx"
    ]
    assert failed, "the refused placement was not logged"
    for line in failed:
        assert line["level"] == "warning"
        assert (line["order_id"], line["part"], line["job"]) == (order_id, 1, "place")
        assert line["supplier"] == "vouchers"
    (held,) = [
        line
        for line in captured_logs.by_logger("gateway.orders.worker")
        if line["message"] == "upstream order held for review"
    ]
    assert (held["order_id"], held["part"], held["job"]) == (order_id, 1, "place")
    assert held["reason"] == "outcome_unknown" and held["supplier"] == "vouchers"
