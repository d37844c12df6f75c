"""From order to codes: routing to suppliers, upstream outcomes, webhooks, holding for
review and its resolution, an open circuit, a placement that never gets through."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from orders_harness import (
    Picks,
    Sandboxes,
    make_settings,
    order_settings,
    start_receiver,
    supplier_settings,
    wait_until,
)
from prometheus_client import REGISTRY

from gateway.orders.models import PartState
from gateway.orders.operations import Resolution, held_parts, resolve
from gateway.orders.webhooks import verify_signature


async def create(inst: Any, caller: Any, body: Any, **headers: str) -> Any:
    return await inst.client.post(
        "/v1/orders",
        json=body,
        headers={**caller.headers, "Idempotency-Key": str(uuid.uuid4()), **headers},
    )


async def purchases(sandboxes: Sandboxes, order_id: str) -> dict[str, list[dict[str, Any]]]:
    return {
        name: [
            p
            for p in await sandboxes.purchases(name)
            if str(p.get("reference") or "").startswith(order_id + "-")
        ]
        for name in ("vouchers", "gaming_goods")
    }


async def stored(inst: Any, order_id: str) -> Any:
    loaded = await inst.orders.store.load(order_id)
    assert loaded is not None
    return loaded.order


async def test_items_are_routed_one_upstream_order_per_supplier_and_line_limit(
    make_instance: Any, picks: Picks, sandboxes: Sandboxes
) -> None:
    inst = await make_instance()
    caller = await inst.caller()
    face = {"amount": picks.voucher_range_min + 1, "currency": picks.voucher_range_currency}
    body = {
        "reference": "my-ref-42",
        "items": [
            {"variant_id": picks.voucher_fixed, "quantity": 2},
            {"variant_id": picks.game_keys[0], "quantity": 1},
            {"variant_id": picks.voucher_range, "quantity": 1, "face_value": face},
            {"variant_id": picks.game_keys[1], "quantity": 2},
        ],
    }
    response = await create(inst, caller, body, Prefer="wait=10")
    assert response.status_code == 201, response.text
    order = response.json()["data"]
    assert order["status"] == "completed" and order["reference"] == "my-ref-42"
    assert [len(item["codes"]) for item in order["items"]] == [2, 1, 1, 2]
    assert order["items"][2]["face_value"] == face
    codes = [c["code"] for item in order["items"] for c in item["codes"]]
    assert len(set(codes)) == len(codes)

    bought = await purchases(sandboxes, order["id"])
    # vouchers take one line per order: two upstream orders; gaming goods one with 2 lines
    assert sorted(p["reference"] for p in bought["vouchers"]) == [
        f"{order['id']}-1",
        f"{order['id']}-2",
    ]
    assert [p["reference"] for p in bought["gaming_goods"]] == [f"{order['id']}-3"]
    assert len(bought["gaming_goods"][0]["lines"]) == 2
    # the snapshot: names and prices as they were at order time
    record = await stored(inst, order["id"])
    assert record.items[1].product_name == order["items"][1]["product_name"]
    assert order["totals"] == order["delivered_totals"]


async def test_partially_completed_with_a_signed_webhook(
    make_instance: Any, picks: Picks, sandboxes: Sandboxes
) -> None:
    receiver = start_receiver(script=[500, 503])  # the first two deliveries fail
    try:
        inst = await make_instance()
        caller = await inst.caller(webhook_url=receiver.url)
        await sandboxes.set_faults("gaming_goods", fulfilment_failure_rate=1.0)
        body = {
            "items": [
                {"variant_id": picks.voucher_fixed, "quantity": 1},
                {"variant_id": picks.game_keys[2], "quantity": 1},
            ]
        }
        response = await create(inst, caller, body, Prefer="wait=10")
        assert response.status_code == 201, response.text
        order = response.json()["data"]
        assert order["status"] == "partially_completed"
        voucher, game = order["items"]
        assert voucher["status"] == "delivered" and len(voucher["codes"]) == 1
        assert game["status"] == "failed" and game["codes"] == []
        assert game["failure"]["code"] == "supplier_failed"
        assert order["delivered_totals"] == [voucher["total"]]

        async def delivered() -> Any:
            got = await inst.client.get(f"/v1/orders/{order['id']}", headers=caller.headers)
            hook = got.json()["data"]["webhook"]
            return hook if hook["state"] == "delivered" else None

        hook = await wait_until(delivered, 10)
        assert hook is not None, "webhook not delivered"
        assert hook["attempts"] == 3 and hook["last_status"] == 200
        assert len(receiver.received) == 3
        bodies = {body for _, body in receiver.received}
        assert len(bodies) == 1  # the same event body on every attempt
        headers, raw = receiver.received[-1]
        assert verify_signature(
            caller.webhook_secret,
            body=raw,
            timestamp=headers["x-webhook-timestamp"],
            signature=headers["x-webhook-signature"],
        )
        assert not verify_signature(
            "wrong-secret",
            body=raw,
            timestamp=headers["x-webhook-timestamp"],
            signature=headers["x-webhook-signature"],
        )
        event = json.loads(raw)
        assert event["type"] == "order.partially_completed"
        assert event["id"] == headers["x-webhook-id"] == hook["event_id"]
        assert event["data"]["order"]["id"] == order["id"]
        assert event["data"]["order"]["status"] == "partially_completed"
        assert "codes" not in raw.decode()  # codes never travel in webhooks
        assert voucher["codes"][0]["code"] not in raw.decode()
    finally:
        receiver.server.stop()


async def test_webhooks_give_up_after_webhook_max_seconds(
    make_instance: Any, picks: Picks, sandboxes: Sandboxes, redis_url: str, key_prefix: str
) -> None:
    receiver = start_receiver(script=[500] * 1000)
    try:
        settings = make_settings(
            redis_url, key_prefix, sandboxes, orders=order_settings(webhook_max_seconds=0.4)
        )
        inst = await make_instance(settings)
        caller = await inst.caller(webhook_url=receiver.url)
        before = REGISTRY.get_sample_value(
            "gateway_orders_webhook_deliveries_total", {"outcome": "failed"}
        )
        response = await create(
            inst, caller, {"items": [{"variant_id": picks.voucher_fixed, "quantity": 1}]},
            Prefer="wait=5",
        )  # fmt: skip
        order_id = response.json()["data"]["id"]

        async def failed() -> Any:
            hook = (await stored(inst, order_id)).webhook
            return hook if hook.state.value == "failed" else None

        hook = await wait_until(failed, 10)
        assert hook is not None and hook.attempts >= 2 and hook.last_status == 500
        after = REGISTRY.get_sample_value(
            "gateway_orders_webhook_deliveries_total", {"outcome": "failed"}
        )
        assert (after or 0) == (before or 0) + 1
    finally:
        receiver.server.stop()


async def test_a_refused_order_fails_its_items_and_the_order(
    make_instance: Any, picks: Picks, sandboxes: Sandboxes
) -> None:
    inst = await make_instance()
    caller = await inst.caller()
    from gateway.orders.ports import PricedCatalog

    original: PricedCatalog = inst.orders.catalog
    find = original._find

    def unknown_stock(product_id: str) -> Any:
        product = find(product_id)
        return product.model_copy(update={"stock": None}) if product else None

    original._find = unknown_stock
    response = await create(
        inst, caller, {"items": [{"variant_id": picks.game_keys[3], "quantity": 100}]},
        Prefer="wait=5",
    )  # fmt: skip
    order = response.json()["data"]
    assert response.status_code == 201 and order["status"] == "failed"
    assert order["items"][0]["failure"]["code"] == "supplier_rejected_order"
    assert order["delivered_totals"] == [{"amount": 0, "currency": "EUR"}]


async def test_ambiguous_placement_is_held_never_resent_and_resolved_by_reconciling(
    make_instance: Any, picks: Picks, sandboxes: Sandboxes, redis_url: str, key_prefix: str
) -> None:
    """The voucher supplier does not answer (requests hang past our timeout), neither the
    order nor the look-ups: the outcome is unknown, so the part is held, listed for
    review, and not sent again. Once the supplier answers, reconciling shows it absent,
    and the operator's retry buys it once."""
    fast = supplier_settings(
        sandboxes, timeouts={"connect": 0.5, "read": 0.2, "total": 0.3}, reconcile_delay=0.01
    )
    settings = make_settings(redis_url, key_prefix, sandboxes, suppliers=fast)
    inst = await make_instance(settings)
    caller = await inst.caller()
    held_before = REGISTRY.get_sample_value(
        "gateway_orders_holds_total", {"supplier": "vouchers", "reason": "outcome_unknown"}
    )
    await sandboxes.set_faults(
        "vouchers", timeout_rate=1.0, hang_seconds=0.5, paths=["/api/v1/orders"]
    )
    response = await create(
        inst, caller, {"items": [{"variant_id": picks.voucher_fixed, "quantity": 1}]}
    )
    order_id = response.json()["data"]["id"]

    async def held() -> Any:
        order = await stored(inst, order_id)
        return order if order.parts[0].state is PartState.REVIEW else None

    order = await wait_until(held, 15)
    assert order is not None, "not held for review"
    assert order.parts[0].review_reason == "outcome_unknown"
    public = await inst.client.get(f"/v1/orders/{order_id}", headers=caller.headers)
    assert public.json()["data"]["status"] == "processing"
    assert public.json()["data"]["items"][0]["status"] == "processing"
    rows = await held_parts(inst.orders)
    assert [(r.order_id, r.part, r.reason) for r in rows] == [(order_id, 1, "outcome_unknown")]
    held_after = REGISTRY.get_sample_value(
        "gateway_orders_holds_total", {"supplier": "vouchers", "reason": "outcome_unknown"}
    )
    assert (held_after or 0) == (held_before or 0) + 1

    await sandboxes.reset()
    await asyncio.sleep(0.6)  # the hung requests complete inside the sandbox
    # The supplier never committed it (the hung request's body was never read), and the
    # gateway never sent it twice.
    assert (await purchases(sandboxes, order_id))["vouchers"] == []
    await resolve(inst.orders, order_id, 1, Resolution.RECONCILE)

    async def absent() -> Any:
        order = await stored(inst, order_id)
        return order if order.parts[0].review_reason == "absent_upstream" else None

    order = await wait_until(absent, 10)
    assert order is not None and order.parts[0].state is PartState.REVIEW
    # Absence confirmed by the supplier: the operator decides to send it again.
    await resolve(inst.orders, order_id, 1, Resolution.RETRY)

    async def settled() -> Any:
        order = await stored(inst, order_id)
        return order if order.status.is_final else None

    final = await wait_until(settled, 10)
    assert final is not None and final.status.value == "completed"
    bought = (await purchases(sandboxes, order_id))["vouchers"]
    assert [p["reference"] for p in bought] == [f"{order_id}-1"]
    assert final.parts[0].upstream_id == str(bought[0]["id"])
    assert await held_parts(inst.orders) == []


async def test_resolve_retry_and_fail(
    make_instance: Any, picks: Picks, sandboxes: Sandboxes
) -> None:
    inst = await make_instance()
    caller = await inst.caller()
    ids = []
    for _ in range(2):
        response = await create(
            inst, caller, {"items": [{"variant_id": picks.voucher_fixed, "quantity": 1}]},
            Prefer="wait=5",
        )  # fmt: skip
        ids.append(response.json()["data"]["id"])
    # put both back on hold by hand, as a crash-looping job would have
    for order_id in ids:

        def hold(order: Any, now: float) -> Any:
            from gateway.orders.store import Effects
            from gateway.orders.transitions import hold_part

            part = order.parts[0]
            part.state = PartState.PENDING
            order.final_at = None
            hold_part(part, "job_failed_repeatedly", now)
            return Effects()

        await inst.orders.processor.commit(order_id, None, hold)
    assert {r.order_id for r in await held_parts(inst.orders)} == set(ids)
    import pytest

    from gateway.orders.operations import ResolveError

    with pytest.raises(ResolveError):
        await resolve(inst.orders, ids[0], 7, Resolution.FAIL)
    retried = await resolve(inst.orders, ids[0], 1, Resolution.RETRY)
    assert retried.parts[0].state is PartState.PENDING
    failed = await resolve(inst.orders, ids[1], 1, Resolution.FAIL)
    assert failed.status.value == "failed"
    with pytest.raises(ResolveError, match="not held"):
        await resolve(inst.orders, ids[1], 1, Resolution.FAIL)

    async def completed() -> Any:
        return (await stored(inst, ids[0])).status.value == "completed"

    assert await wait_until(completed, 10)
    # retried under the same reference: the supplier recognised it, nothing bought twice
    assert len((await purchases(sandboxes, ids[0]))["vouchers"]) == 1
    assert await held_parts(inst.orders) == []


async def test_an_open_circuit_pauses_placement_without_losing_it(
    make_instance: Any, picks: Picks, sandboxes: Sandboxes, redis_url: str, key_prefix: str
) -> None:
    suppliers = supplier_settings(sandboxes, breaker={"failure_threshold": 2, "reset_timeout": 0.5})
    settings = make_settings(redis_url, key_prefix, sandboxes, suppliers=suppliers)
    inst = await make_instance(settings)
    caller = await inst.caller()
    breaker = inst.gateway.adapters["gaming_goods"].breaker
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state.value == "open"
    response = await create(
        inst, caller, {"items": [{"variant_id": picks.game_keys[4], "quantity": 1}]},
        Prefer="wait=0",
    )  # fmt: skip
    order_id = response.json()["data"]["id"]

    async def settled() -> Any:
        order = await stored(inst, order_id)
        return order if order.status.is_final else None

    order = await wait_until(settled, 10)
    assert order is not None and order.status.value == "completed"
    assert order.parts[0].attempts >= 2
    assert len((await purchases(sandboxes, order_id))["gaming_goods"]) == 1


async def test_a_placement_that_never_gets_through_fails_once_confirmed_absent(
    make_instance: Any, picks: Picks, sandboxes: Sandboxes, redis_url: str, key_prefix: str
) -> None:
    settings = make_settings(
        redis_url, key_prefix, sandboxes, orders=order_settings(placement_timeout_seconds=0.5)
    )
    inst = await make_instance(settings)
    caller = await inst.caller()
    await sandboxes.set_faults("gaming_goods", rate_limit_burst=100_000, paths=["/checkout"])
    response = await create(
        inst, caller, {"items": [{"variant_id": picks.game_keys[5], "quantity": 1}]}
    )
    order_id = response.json()["data"]["id"]

    async def settled() -> Any:
        order = await stored(inst, order_id)
        return order if order.status.is_final else None

    order = await wait_until(settled, 15)
    assert order is not None and order.status.value == "failed"
    assert order.items[0].failure.code == "supplier_unavailable"
    assert order.parts[0].attempts >= 2
    assert (await purchases(sandboxes, order_id))["gaming_goods"] == []


async def test_a_held_order_is_looked_up_again_by_itself_and_continues_when_found(
    make_instance: Any, picks: Picks, sandboxes: Sandboxes, redis_url: str, key_prefix: str
) -> None:
    """Gaming Goods commits the checkout, then answers 500; its order list answers 500
    too, so the outcome stays unknown and the part is held. Later look-ups (automatic,
    by reference, never a new checkout) find the order once the list answers again."""
    settings = make_settings(
        redis_url,
        key_prefix,
        sandboxes,
        orders=order_settings(review_reconcile_seconds=0.2, review_reconcile_attempts=6),
    )
    inst = await make_instance(settings)
    caller = await inst.caller()
    await sandboxes.set_faults(
        "gaming_goods", error_after_commit_rate=1.0, error_rate=1.0, paths=["/orders"]
    )
    response = await create(
        inst, caller, {"items": [{"variant_id": picks.game_keys[-1], "quantity": 1}]}
    )
    order_id = response.json()["data"]["id"]

    async def held() -> Any:
        order = await stored(inst, order_id)
        return order if order.parts[0].state is PartState.REVIEW else None

    order = await wait_until(held, 15)
    assert order is not None and order.parts[0].review_reason in (
        "outcome_unknown",
        "reconcile_failed",
    )
    assert len((await purchases(sandboxes, order_id))["gaming_goods"]) == 1
    await sandboxes.reset()

    async def settled() -> Any:
        order = await stored(inst, order_id)
        return order if order.status.is_final else None

    final = await wait_until(settled, 15)
    assert final is not None and final.status.value == "completed"
    assert final.parts[0].reconciles >= 1
    assert len((await purchases(sandboxes, order_id))["gaming_goods"]) == 1
    assert await held_parts(inst.orders) == []
