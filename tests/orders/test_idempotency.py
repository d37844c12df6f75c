"""Idempotency-Key semantics of POST /v1/orders, through the real app and Redis."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from orders_harness import Picks, Sandboxes, make_settings, order_settings, wait_until
from prometheus_client import REGISTRY

from gateway.orders.schemas import CreateOrderRequest


def body_for(picks: Picks, quantity: int = 1) -> dict[str, Any]:
    return {"items": [{"variant_id": picks.voucher_fixed, "quantity": quantity}]}


async def post(inst: Any, caller: Any, body: Any, key: str | None, **headers: str) -> Any:
    sent = dict(caller.headers, **headers)
    if key is not None:
        sent["Idempotency-Key"] = key
    return await inst.client.post("/v1/orders", json=body, headers=sent)


async def purchases_for(sandboxes: Sandboxes, order_id: str) -> list[dict[str, Any]]:
    return [
        p
        for name in ("vouchers", "gaming_goods")
        for p in await sandboxes.purchases(name)
        if str(p.get("reference") or "").startswith(order_id + "-")
    ]


async def test_missing_or_invalid_key_is_400(make_instance: Any, picks: Picks) -> None:
    inst = await make_instance()
    caller = await inst.caller()
    missing = await post(inst, caller, body_for(picks), None)
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "idempotency_key_missing"
    too_long = await post(inst, caller, body_for(picks), "k" * 256)
    assert too_long.status_code == 400
    assert too_long.json()["error"]["code"] == "idempotency_key_invalid"
    listed = await inst.client.get("/v1/orders", headers=caller.headers)
    assert listed.json()["data"]["total"] == 0


async def test_same_key_after_completion_replays_the_completed_order(
    make_instance: Any, picks: Picks, sandboxes: Sandboxes
) -> None:
    inst = await make_instance()
    caller = await inst.caller()
    key = str(uuid.uuid4())
    replays_before = REGISTRY.get_sample_value("gateway_orders_idempotent_replays_total") or 0
    first = await post(inst, caller, body_for(picks, 2), key, Prefer="wait=5")
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    order = first.json()["data"]
    assert order["status"] == "completed" and len(order["items"][0]["codes"]) == 2

    again = await post(inst, caller, body_for(picks, 2), key)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert again.headers["location"] == f"/v1/orders/{order['id']}"
    replays = REGISTRY.get_sample_value("gateway_orders_idempotent_replays_total") or 0
    assert replays == replays_before + 1
    assert len(await purchases_for(sandboxes, order["id"])) == 1
    listed = await inst.client.get("/v1/orders", headers=caller.headers)
    assert listed.json()["data"]["total"] == 1


async def test_a_still_pending_order_replays_as_202(make_instance: Any, picks: Picks) -> None:
    inst = await make_instance(workers=False)  # nobody places it: it stays pending
    caller = await inst.caller()
    key = str(uuid.uuid4())
    first = await post(inst, caller, body_for(picks), key)
    assert first.status_code == 202 and first.json()["data"]["status"] == "pending"
    again = await post(inst, caller, body_for(picks), key, Prefer="wait=1")
    assert again.status_code == 202 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"


async def test_same_key_with_another_body_is_422(make_instance: Any, picks: Picks) -> None:
    inst = await make_instance()
    caller = await inst.caller()
    key = str(uuid.uuid4())
    assert (await post(inst, caller, body_for(picks, 1), key)).status_code in (201, 202)
    other = await post(inst, caller, body_for(picks, 3), key)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reuse"
    # formatting differences are the same request
    same = await inst.client.post(
        "/v1/orders",
        content=f'{{ "items": [ {{ "quantity": 1, "variant_id": "{picks.voucher_fixed}" }} ] }}',
        headers={**caller.headers, "Idempotency-Key": key, "Content-Type": "application/json"},
    )
    assert same.headers.get("idempotent-replayed") == "true"


async def test_same_key_while_the_first_is_in_flight_is_409(
    make_instance: Any, picks: Picks, sandboxes: Sandboxes
) -> None:
    inst = await make_instance()
    caller = await inst.caller()
    key = str(uuid.uuid4())
    await sandboxes.set_faults("vouchers", latency_ms=600)
    first = asyncio.create_task(post(inst, caller, body_for(picks), key, Prefer="wait=5"))
    claim = inst.orders.idempotency.redis_key(caller.reseller.id, key)

    async def claimed() -> bool:  # by the first request, which has not answered yet
        return await inst.gateway.redis.hget(claim, "state") in (b"in_flight", b"created")

    assert await wait_until(claimed, 10), "the first request never claimed the key"
    assert not first.done()
    second = await post(inst, caller, body_for(picks), key)
    other_body = await post(inst, caller, body_for(picks, 4), key)
    done = await first
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "idempotency_request_in_progress"
    assert second.headers["retry-after"] == "1"
    assert other_body.status_code == 422  # a different body is refused even in flight
    assert done.status_code == 201
    after = await post(inst, caller, body_for(picks), key)
    assert after.content == done.content


async def test_keys_are_scoped_per_reseller(
    make_instance: Any, picks: Picks, sandboxes: Sandboxes
) -> None:
    inst = await make_instance()
    alice, bob = await inst.caller(name="alice"), await inst.caller(name="bob")
    key = "shared-key-123"
    a = await post(inst, alice, body_for(picks), key, Prefer="wait=5")
    b = await post(inst, bob, body_for(picks), key, Prefer="wait=5")
    assert a.status_code == b.status_code == 201
    assert "idempotent-replayed" not in b.headers
    assert a.json()["data"]["id"] != b.json()["data"]["id"]
    # a different body under bob's key is not a reuse of alice's
    c = await post(inst, bob, body_for(picks, 2), "another-key")
    assert c.status_code in (201, 202)


async def test_a_refused_request_does_not_use_the_key_up(
    make_instance: Any, picks: Picks, sandboxes: Sandboxes
) -> None:
    inst = await make_instance()
    caller = await inst.caller()
    key = str(uuid.uuid4())
    body = {
        "items": [
            {
                "variant_id": picks.voucher_fixed,
                "quantity": 1,
                "unit_price": {"amount": 1, "currency": "EUR"},
            }
        ]
    }
    refused = await post(inst, caller, body, key)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "price_changed"
    current = refused.json()["error"]["details"][0]["current"]
    body["items"][0]["unit_price"] = current
    accepted = await post(inst, caller, body, key, Prefer="wait=5")
    assert accepted.status_code == 201, accepted.text
    assert "idempotent-replayed" not in accepted.headers


async def test_a_request_that_died_after_creating_its_order_is_answered_by_the_next(
    make_instance: Any,
    picks: Picks,
    redis_url: str,
    key_prefix: str,
    sandboxes: Sandboxes,
) -> None:
    """The instance answering the first request crashed between storing the order and
    storing its answer: once its lease runs out, a retry gets the order (not a new one)."""
    settings = make_settings(
        redis_url,
        key_prefix,
        sandboxes,
        orders=order_settings(idempotency_lease_seconds=0.3, max_wait_seconds=0),
    )
    inst = await make_instance(settings)
    caller = await inst.caller()
    service = inst.orders
    request = CreateOrderRequest.model_validate(body_for(picks))
    from gateway.orders.idempotency import fingerprint

    claim = await service.idempotency.begin(
        caller.reseller.id, "crash-key", fingerprint(request), 0.3
    )
    order = await service._create(claim, caller.reseller, request)  # then "crash"
    busy = await post(inst, caller, body_for(picks), "crash-key")
    assert busy.status_code == 409
    await asyncio.sleep(0.35)  # the crashed holder's 0.3 s lease runs out: what is tested
    taken = await post(inst, caller, body_for(picks), "crash-key")
    assert taken.status_code in (201, 202)
    assert taken.headers["idempotent-replayed"] == "true"
    assert taken.json()["data"]["id"] == order.id
    listed = await inst.client.get("/v1/orders", headers=caller.headers)
    assert listed.json()["data"]["total"] == 1
