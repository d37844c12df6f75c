"""A retry with the same Idempotency-Key after the first answer replays the order as it
is now: a reseller whose 202 got lost learns in that one call that the order completed."""

from __future__ import annotations

import uuid
from typing import Any

from orders_harness import Picks, Sandboxes, wait_until


def _body(picks: Picks, quantity: int = 1) -> dict[str, Any]:
    return {"items": [{"variant_id": picks.voucher_fixed, "quantity": quantity}]}


async def _purchases(sandboxes: Sandboxes, order_id: str) -> int:
    found = [p for name in ("vouchers", "gaming_goods") for p in await sandboxes.purchases(name)]
    return sum(1 for p in found if str(p.get("reference") or "").startswith(order_id + "-"))


async def test_a_retry_after_completion_answers_the_completed_order(
    make_instance: Any, picks: Picks, sandboxes: Sandboxes
) -> None:
    inst = await make_instance()
    caller = await inst.caller()
    key = str(uuid.uuid4())
    headers = {**caller.headers, "Idempotency-Key": key}

    first = await inst.client.post(
        "/v1/orders", json=_body(picks, 2), headers={**headers, "Prefer": "respond-async"}
    )
    assert first.status_code == 202, first.text
    order_id = first.json()["data"]["id"]
    assert first.json()["data"]["status"] == "pending"

    async def completed() -> Any:
        got = await inst.client.get(f"/v1/orders/{order_id}", headers=caller.headers)
        return got if got.json()["data"]["status"] == "completed" else None

    now = await wait_until(completed, 15)
    assert now is not None, "the order did not complete"

    again = await inst.client.post("/v1/orders", json=_body(picks, 2), headers=headers)
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == f"/v1/orders/{order_id}"
    replayed = again.json()["data"]
    assert replayed == now.json()["data"]  # the order as it is, codes included
    assert replayed["status"] == "completed"
    assert len(replayed["items"][0]["codes"]) == 2
    assert await _purchases(sandboxes, order_id) == 1  # replaying buys nothing

    # The key rules still hold: another body with this key is refused.
    other = await inst.client.post("/v1/orders", json=_body(picks, 3), headers=headers)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reuse"
    listed = await inst.client.get("/v1/orders", headers=caller.headers)
    assert listed.json()["data"]["total"] == 1


async def test_a_retry_of_a_pending_order_waits_as_asked(make_instance: Any, picks: Picks) -> None:
    """The replay honours ``Prefer: wait`` like the first request: an order that
    completes during the wait is answered 201."""
    inst = await make_instance(workers=False)  # nobody places it yet: it stays pending
    caller = await inst.caller()
    headers = {**caller.headers, "Idempotency-Key": str(uuid.uuid4())}
    first = await inst.client.post("/v1/orders", json=_body(picks), headers=headers)
    assert first.status_code == 202, first.text

    pending = await inst.client.post("/v1/orders", json=_body(picks), headers=headers)
    assert pending.status_code == 202 and pending.headers["idempotent-replayed"] == "true"
    assert pending.json()["data"]["status"] == "pending"

    await make_instance()  # an instance with workers turns up and places it
    done = await inst.client.post(
        "/v1/orders", json=_body(picks), headers={**headers, "Prefer": "wait=15"}
    )
    assert done.status_code == 201, done.text
    assert done.headers["idempotent-replayed"] == "true"
    assert done.json()["data"]["status"] == "completed"
