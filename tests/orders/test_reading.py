"""Reading orders: one's own only, codes only on single reads, lists newest first with
pagination and a status filter, Prefer: wait answering when the order is final."""

from __future__ import annotations

import time
import uuid
from typing import Any

from orders_harness import Picks, Sandboxes, make_settings, order_settings, static_catalog

from adapters.models import Product
from gateway.orders.schemas import OrderEnvelope, OrderListEnvelope


async def create(inst: Any, caller: Any, body: Any, **headers: str) -> Any:
    return await inst.client.post(
        "/v1/orders",
        json=body,
        headers={**caller.headers, "Idempotency-Key": str(uuid.uuid4()), **headers},
    )


def one(variant: str, quantity: int = 1) -> dict[str, Any]:
    return {"items": [{"variant_id": variant, "quantity": quantity}]}


async def test_owner_reads_codes_another_reseller_gets_404(
    make_instance: Any, picks: Picks
) -> None:
    inst = await make_instance()
    owner, stranger = await inst.caller(), await inst.caller()
    created = await create(inst, owner, one(picks.voucher_fixed, 2), Prefer="wait=5")
    order_id = created.json()["data"]["id"]
    mine = await inst.client.get(f"/v1/orders/{order_id}", headers=owner.headers)
    assert mine.status_code == 200
    OrderEnvelope.model_validate(mine.json())  # the documented schema
    assert mine.json()["data"]["items"][0]["codes"] == created.json()["data"]["items"][0]["codes"]
    assert len(mine.json()["data"]["items"][0]["codes"]) == 2
    theirs = await inst.client.get(f"/v1/orders/{order_id}", headers=stranger.headers)
    assert theirs.status_code == 404
    assert theirs.json()["error"]["code"] == "order_not_found"
    for bogus in ("ord_nope", "x", order_id[:-1] + ("0" if order_id[-1] != "0" else "1")):
        missing = await inst.client.get(f"/v1/orders/{bogus}", headers=owner.headers)
        assert missing.status_code == 404
    anonymous = await inst.client.get(f"/v1/orders/{order_id}")
    assert anonymous.status_code == 401


async def test_list_is_newest_first_paginated_filtered_and_without_codes(
    make_instance: Any, picks: Picks, products: list[Product]
) -> None:
    inst = await make_instance()
    caller, other = await inst.caller(), await inst.caller()
    ids = []
    for _ in range(5):
        response = await create(inst, caller, one(picks.voucher_fixed), Prefer="wait=5")
        assert response.status_code == 201
        ids.append(response.json()["data"]["id"])
    await create(inst, other, one(picks.voucher_fixed))
    # The catalog does not know the stock; the supplier has fewer units and refuses.
    inst.orders.catalog = static_catalog([p.model_copy(update={"stock": None}) for p in products])
    failed = await create(inst, caller, one(picks.game_key, 100), Prefer="wait=5")
    assert failed.json()["data"]["status"] == "failed"
    ids.append(failed.json()["data"]["id"])

    page1 = await inst.client.get("/v1/orders?page_size=4", headers=caller.headers)
    page2 = await inst.client.get("/v1/orders?page_size=4&page=2", headers=caller.headers)
    OrderListEnvelope.model_validate(page1.json())
    data1, data2 = page1.json()["data"], page2.json()["data"]
    assert data1["total"] == data2["total"] == 6
    listed = [o["id"] for o in data1["orders"] + data2["orders"]]
    assert listed == list(reversed(ids))
    assert all("codes" not in item for o in data1["orders"] for item in o["items"])

    completed = await inst.client.get("/v1/orders?status=completed", headers=caller.headers)
    assert [o["id"] for o in completed.json()["data"]["orders"]] == list(reversed(ids[:5]))
    only_failed = await inst.client.get("/v1/orders?status=failed", headers=caller.headers)
    assert [o["id"] for o in only_failed.json()["data"]["orders"]] == [ids[5]]
    failure = only_failed.json()["data"]["orders"][0]["items"][0]["failure"]
    assert failure["code"] == "supplier_rejected_order"
    for bad in ("page=0", "page_size=101", "status=done", "page=x"):
        response = await inst.client.get(f"/v1/orders?{bad}", headers=caller.headers)
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] == "invalid_parameter"


async def test_prefer_wait_on_get_returns_the_final_order(
    make_instance: Any, picks: Picks, sandboxes: Sandboxes
) -> None:
    inst = await make_instance()
    caller = await inst.caller()
    await sandboxes.set_faults("gaming_goods", fulfil_delay_seconds=0.6)
    created = await create(inst, caller, one(picks.game_key))
    assert created.status_code == 202
    order = created.json()["data"]
    assert order["status"] in ("pending", "processing")
    assert "preference-applied" not in created.headers
    started = time.monotonic()
    waited = await inst.client.get(
        f"/v1/orders/{order['id']}", headers={**caller.headers, "Prefer": "wait=10"}
    )
    assert waited.headers["preference-applied"] == "wait=10"
    assert waited.json()["data"]["status"] == "completed"
    assert waited.json()["data"]["items"][0]["codes"]
    assert time.monotonic() - started < 5  # answered when final, not after 10 s


async def test_prefer_wait_is_bounded_by_max_wait(
    make_instance: Any, picks: Picks, sandboxes: Sandboxes, redis_url: str, key_prefix: str
) -> None:
    settings = make_settings(
        redis_url, key_prefix, sandboxes, orders=order_settings(max_wait_seconds=0.3)
    )
    inst = await make_instance(settings)
    caller = await inst.caller()
    await sandboxes.set_faults("gaming_goods", fulfil_delay_seconds=3)
    started = time.monotonic()
    created = await create(inst, caller, one(picks.game_key), Prefer="wait=100")
    assert time.monotonic() - started < 2
    assert created.status_code == 202
    assert created.headers["preference-applied"] == "wait=0.3"
    assert created.json()["data"]["status"] == "processing"
    asynchronous = await create(inst, caller, one(picks.game_key), Prefer="respond-async, wait=5")
    assert asynchronous.status_code == 202
    assert asynchronous.headers["preference-applied"] == "respond-async"


async def test_waiting_on_one_instance_for_work_done_by_another(
    make_instance: Any, picks: Picks, sandboxes: Sandboxes
) -> None:
    """The instance answering does not run workers: the order is placed by another
    instance's worker, and the answer comes through Redis pub/sub, not polling."""
    front = await make_instance(workers=False)
    await make_instance(workers=True)
    caller = await front.caller()
    started = time.monotonic()
    created = await create(front, caller, one(picks.voucher_fixed), Prefer="wait=10")
    assert created.status_code == 201, created.text
    assert created.json()["data"]["status"] == "completed"
    assert time.monotonic() - started < 5


async def test_orders_in_the_openapi_document(make_instance: Any) -> None:
    inst = await make_instance()
    document = (await inst.client.get("/openapi.json")).json()
    create_op = document["paths"]["/v1/orders"]["post"]
    assert create_op["operationId"] == "createOrder"
    headers = {p["name"]: p for p in create_op["parameters"] if p["in"] == "header"}
    assert headers["Idempotency-Key"]["required"] is True
    assert "Prefer" in headers
    assert {"201", "202", "409", "422"} <= set(create_op["responses"])
    assert document["paths"]["/v1/orders"]["get"]["operationId"] == "listOrders"
    assert document["paths"]["/v1/orders/{order_id}"]["get"]["operationId"] == "getOrder"
