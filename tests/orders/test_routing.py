"""Routing an item ordered by a canonical variant id: the cheapest eligible offer is
chosen when the part is placed; out of stock, an open circuit, a price above the
accepted one each skip an offer; a refusal fails over under a new reference; an unknown
outcome is settled at the same supplier first; a pinned item never fails over.
Real Redis, both sandboxes over loopback HTTP."""

from __future__ import annotations

import json
import uuid
from typing import Any

from offers_support import (
    STEAM_DEU_50,
    catalog_with,
    equal_prices,
    gaming_goods_stock,
    offers,
    purchases_by_reference,
    with_cost,
)
from orders_harness import (
    Sandboxes,
    cli,
    make_settings,
    order_settings,
    wait_until,
)
from prometheus_client import REGISTRY

from adapters.models import Product
from gateway.orders.models import Attempt, AttemptOutcome, PartState
from gateway.orders.store import Effects
from gateway.settings import RoutingSettings


async def order(inst: Any, caller: Any, variant_id: str, quantity: int = 1, **extra: Any) -> Any:
    response = await inst.client.post(
        "/v1/orders",
        json={"items": [{"variant_id": variant_id, "quantity": quantity, **extra}]},
        headers={**caller.headers, "Idempotency-Key": str(uuid.uuid4()), "Prefer": "wait=15"},
    )
    assert response.status_code in (201, 202), response.text
    return response.json()["data"]


async def stored(inst: Any, order_id: str) -> Any:
    loaded = await inst.orders.store.load(order_id)
    assert loaded is not None
    return loaded.order


def decisions(supplier: str, outcome: str) -> float:
    labels = {"supplier": supplier, "outcome": outcome}
    return REGISTRY.get_sample_value("gateway_order_routing_decisions_total", labels) or 0.0


def failovers(source: str, target: str) -> float:
    labels = {"from_supplier": source, "to_supplier": target}
    return REGISTRY.get_sample_value("gateway_order_failovers_total", labels) or 0.0


async def unknown_outcome_order(
    inst: Any, products: list[Product], sandboxes: Sandboxes, supplier: str
) -> str:
    """An order for the Steam card (both offers at one price) whose purchase at
    ``supplier`` gets a 500, as do its look-ups by reference: its outcome is unknown."""
    inst.orders.catalog = catalog_with(products, equal_prices(products, [STEAM_DEU_50]))
    caller = await inst.caller()
    paths = {"vouchers": ["/api/v1/orders"], "gaming_goods": ["/checkout", "/orders"]}
    await sandboxes.set_faults(supplier, error_rate=1.0, paths=paths[supplier])
    response = await inst.client.post(
        "/v1/orders",
        json={"items": [{"variant_id": STEAM_DEU_50, "quantity": 1}]},
        headers={**caller.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["data"]["id"])


async def bought(sandboxes: Sandboxes, order_id: str) -> dict[str, list[str]]:
    """Supplier -> references bought for ``order_id``, from both purchase logs."""
    result: dict[str, list[str]] = {}
    for reference, rows in (await purchases_by_reference(sandboxes)).items():
        if reference.startswith(order_id + "-"):
            for row in rows:
                result.setdefault(row["supplier"], []).append(reference)
    return result


async def test_the_cheapest_offer_is_chosen_and_the_item_says_so(
    make_instance: Any, products: list[Product], sandboxes: Sandboxes
) -> None:
    cheap, _dear = offers(products, STEAM_DEU_50)
    inst = await make_instance()
    caller = await inst.caller()
    before = decisions(cheap.supplier, "chosen")
    data = await order(inst, caller, STEAM_DEU_50)
    assert data["status"] == "completed", data
    item = data["items"][0]
    assert item["canonical_variant_id"] == STEAM_DEU_50
    assert item["supplier"] == cheap.supplier and item["variant_id"] == cheap.variant.id
    assert item["unit_price"] == {"amount": -(-cheap.cost * 110 // 100), "currency": "EUR"}
    assert len(item["codes"]) == 1
    assert await bought(sandboxes, data["id"]) == {cheap.supplier: [f"{data['id']}-1"]}
    part = (await stored(inst, data["id"])).parts[0]
    assert part.routed and [(t.supplier, t.outcome) for t in part.tries] == [
        (cheap.supplier, AttemptOutcome.PLACED)
    ]
    assert part.tries[0].cost == cheap.cost
    assert decisions(cheap.supplier, "chosen") == before + 1


async def test_a_sent_price_below_the_cheapest_offer_is_refused(
    make_instance: Any, products: list[Product]
) -> None:
    cheap, _ = offers(products, STEAM_DEU_50)
    inst = await make_instance()
    caller = await inst.caller()
    price = -(-cheap.cost * 110 // 100)
    response = await inst.client.post(
        "/v1/orders",
        json={
            "items": [
                {
                    "variant_id": STEAM_DEU_50,
                    "quantity": 1,
                    "unit_price": {"amount": price - 1, "currency": "EUR"},
                }
            ]
        },
        headers={**caller.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "price_changed"
    assert error["details"][0]["current"] == {"amount": price, "currency": "EUR"}


async def test_out_of_stock_skips_an_offer(
    make_instance: Any, products: list[Product], sandboxes: Sandboxes
) -> None:
    cheap, dear = offers(products, STEAM_DEU_50)
    gaming_goods_stock(
        sandboxes, dear.product.id, 1000
    ) if dear.supplier == "gaming_goods" else None
    inst = await make_instance()
    caller = await inst.caller()
    prices = equal_prices(products, [STEAM_DEU_50])
    # Accepted while both are in stock; the cheaper one sold out before placement.
    inst.orders.catalog = catalog_with(products, prices)
    await inst.orders.stop()  # no worker yet: accept first, then change the catalog
    response = await inst.client.post(
        "/v1/orders",
        json={"items": [{"variant_id": STEAM_DEU_50, "quantity": 1}]},
        headers={**caller.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    order_id = response.json()["data"]["id"]
    inst.orders.catalog = catalog_with(products, prices, **{cheap.product.id: 0})
    skipped = decisions(cheap.supplier, "out_of_stock")
    await inst.orders.start(workers=True)
    final = await inst.orders.wait_final(order_id, 15)
    assert final.status.value == "completed", final.parts
    assert final.items[0].supplier == dear.supplier
    assert await bought(sandboxes, order_id) == {dear.supplier: [f"{order_id}-1"]}
    assert decisions(cheap.supplier, "out_of_stock") == skipped + 1


async def test_an_open_circuit_skips_an_offer(
    make_instance: Any, products: list[Product], sandboxes: Sandboxes
) -> None:
    cheap, dear = offers(products, STEAM_DEU_50)
    if dear.supplier == "gaming_goods":
        gaming_goods_stock(sandboxes, dear.product.id, 1000)
    inst = await make_instance()
    inst.orders.catalog = catalog_with(products, equal_prices(products, [STEAM_DEU_50]))
    caller = await inst.caller()
    breaker = inst.orders.adapters[cheap.supplier].breaker
    for _ in range(breaker.failure_threshold):
        breaker.record_failure()
    try:
        skipped = decisions(cheap.supplier, "circuit_open")
        data = await order(inst, caller, STEAM_DEU_50)
    finally:
        breaker.record_success()
    assert data["status"] == "completed", data
    assert data["items"][0]["supplier"] == dear.supplier
    assert await bought(sandboxes, data["id"]) == {dear.supplier: [f"{data['id']}-1"]}
    assert decisions(cheap.supplier, "circuit_open") == skipped + 1


async def test_a_refusal_fails_over_under_a_new_reference(
    make_instance: Any,
    products: list[Product],
    sandboxes: Sandboxes,
    redis_url: str,
    key_prefix: str,
) -> None:
    cheap, dear = offers(products, STEAM_DEU_50)
    if dear.supplier == "gaming_goods":
        gaming_goods_stock(sandboxes, dear.product.id, 1000)
    settings = make_settings(redis_url, key_prefix, sandboxes)
    inst = await make_instance(settings)
    inst.orders.catalog = catalog_with(products, equal_prices(products, [STEAM_DEU_50]))
    caller = await inst.caller()
    await sandboxes.set_faults(cheap.supplier, refuse_rate=1.0)
    moved = failovers(cheap.supplier, dear.supplier)
    data = await order(inst, caller, STEAM_DEU_50)
    assert data["status"] == "completed", data
    item = data["items"][0]
    assert item["supplier"] == dear.supplier and len(item["codes"]) == 1
    oid = data["id"]
    # Nothing bought at the refusing supplier; the second attempt's own reference at the
    # second supplier, once.
    assert await bought(sandboxes, oid) == {dear.supplier: [f"{oid}-1.2"]}
    part = (await stored(inst, oid)).parts[0]
    assert [(t.supplier, t.reference, t.outcome) for t in part.tries] == [
        (cheap.supplier, f"{oid}-1", AttemptOutcome.REFUSED),
        (dear.supplier, f"{oid}-1.2", AttemptOutcome.PLACED),
    ]
    assert part.tries[0].code == "supplier_rejected_order"
    assert failovers(cheap.supplier, dear.supplier) == moved + 1

    # Operators see every attempt (and never a code) with `gateway orders show`.
    shown = await cli(settings, "orders", "show", oid)
    assert shown.exit_code == 0, shown.output
    lines = [line.strip() for line in shown.output.splitlines()]
    assert any(
        line.startswith(f"attempt 1: {cheap.supplier} {cheap.variant.id}  ref {oid}-1  refused")
        and "code supplier_rejected_order" in line
        for line in lines
    ), shown.output
    assert any(
        line.startswith(f"attempt 2: {dear.supplier} {dear.variant.id}  ref {oid}-1.2  placed")
        for line in lines
    ), shown.output
    as_json = json.loads((await cli(settings, "orders", "show", oid, "--json")).output)
    tries = as_json["parts"][0]["tries"]
    assert [(t["supplier"], t["outcome"]) for t in tries] == [
        (cheap.supplier, "refused"),
        (dear.supplier, "placed"),
    ]
    codes = [c["code"] for c in item["codes"] if c.get("code")]
    assert codes and not any(code in shown.output for code in codes)


async def test_a_price_above_the_accepted_one_skips_an_offer_and_the_item_fails_with_the_refusal(
    make_instance: Any,
    products: list[Product],
    sandboxes: Sandboxes,
    redis_url: str,
    key_prefix: str,
) -> None:
    cheap, dear = offers(products, STEAM_DEU_50)
    # One markup for both: the dearer offer costs the reseller more, and the operator
    # chose not to absorb the difference.
    strict = order_settings(routing=RoutingSettings(absorb_price_difference=False))
    inst = await make_instance(make_settings(redis_url, key_prefix, sandboxes, orders=strict))
    caller = await inst.caller()
    await sandboxes.set_faults(cheap.supplier, refuse_rate=1.0)
    skipped = decisions(dear.supplier, "price_above_accepted")
    data = await order(inst, caller, STEAM_DEU_50)
    assert data["status"] == "failed", data
    assert data["items"][0]["failure"]["code"] == "supplier_rejected_order"
    assert await bought(sandboxes, data["id"]) == {}
    # weighed (and skipped) at both choices: the first, and the one after the refusal
    assert decisions(dear.supplier, "price_above_accepted") == skipped + 2
    part = (await stored(inst, data["id"])).parts[0]
    assert part.state is PartState.FAILED
    assert [t.outcome for t in part.tries] == [AttemptOutcome.REFUSED]


async def test_a_pinned_item_never_fails_over(
    make_instance: Any, products: list[Product], sandboxes: Sandboxes
) -> None:
    cheap, _dear = offers(products, STEAM_DEU_50)
    inst = await make_instance()
    inst.orders.catalog = catalog_with(products, equal_prices(products, [STEAM_DEU_50]))
    caller = await inst.caller()
    await sandboxes.set_faults(cheap.supplier, refuse_rate=1.0)
    data = await order(inst, caller, cheap.variant.id)  # the supplier's own variant id
    assert data["status"] == "failed", data
    assert data["items"][0]["canonical_variant_id"] is None
    assert await bought(sandboxes, data["id"]) == {}
    part = (await stored(inst, data["id"])).parts[0]
    assert not part.routed
    assert [(t.supplier, t.outcome) for t in part.tries] == [
        (cheap.supplier, AttemptOutcome.FAILED)
    ]


async def test_an_unknown_outcome_is_settled_at_the_same_supplier_first(
    make_instance: Any,
    products: list[Product],
    sandboxes: Sandboxes,
    redis_url: str,
    key_prefix: str,
) -> None:
    """The cheaper supplier answers 500 to the purchase and to every look-up: the outcome
    is unknown, the part is held. Once the supplier answers again, the look-up by the same
    reference finds nothing there and the part is sent again *to that supplier under that
    reference*, although the other offer was eligible all along."""
    cheap, _dear = offers(products, STEAM_DEU_50)
    inst = await make_instance(
        make_settings(
            redis_url,
            key_prefix,
            sandboxes,
            orders=order_settings(review_reconcile_seconds=0.3, review_reconcile_attempts=5),
        )
    )
    oid = await unknown_outcome_order(inst, products, sandboxes, cheap.supplier)

    async def held() -> Any:
        part = (await stored(inst, oid)).parts[0]
        return part if part.state is PartState.REVIEW else None

    part = await wait_until(held, 15)
    assert part is not None, "the unknown outcome was not held"
    assert [(t.supplier, t.outcome, t.was_unknown) for t in part.tries] == [
        (cheap.supplier, AttemptOutcome.UNKNOWN, True)
    ]
    await sandboxes.set_faults(cheap.supplier)  # answering again
    final = await inst.orders.wait_final(oid, 15)
    assert final.status.value == "completed"
    assert await bought(sandboxes, oid) == {cheap.supplier: [f"{oid}-1"]}
    tries = final.parts[0].tries
    assert [(t.supplier, t.reference, t.outcome) for t in tries] == [
        (cheap.supplier, f"{oid}-1", AttemptOutcome.PLACED)
    ]


async def test_a_refusal_after_an_unknown_outcome_is_held_not_failed_over(
    make_instance: Any,
    products: list[Product],
    sandboxes: Sandboxes,
    redis_url: str,
    key_prefix: str,
) -> None:
    """The first send's outcome is unknown; the look-up later finds nothing, the resend
    under the same reference is refused. The first request could still commit, so the
    refusal is not "nothing bought": the part is held, never sent to the other supplier."""
    cheap, dear = offers(products, STEAM_DEU_50)
    inst = await make_instance(
        make_settings(
            redis_url,
            key_prefix,
            sandboxes,
            orders=order_settings(review_reconcile_seconds=0.2, review_reconcile_attempts=1),
        )
    )
    oid = await unknown_outcome_order(inst, products, sandboxes, cheap.supplier)

    async def held(reason: str) -> Any:
        part = (await stored(inst, oid)).parts[0]
        return part if part.review_reason == reason else None

    assert await wait_until(lambda: held("outcome_unknown"), 15) is not None
    await sandboxes.set_faults(cheap.supplier, refuse_rate=1.0)
    part = await wait_until(lambda: held("refused_after_unknown"), 15)
    assert part is not None, "the refused resend was not held"
    assert [(t.supplier, t.reference) for t in part.tries] == [(cheap.supplier, f"{oid}-1")]
    assert part.tries[0].outcome is AttemptOutcome.UNKNOWN
    assert await bought(sandboxes, oid) == {}
    assert dear.supplier not in {t.supplier for t in part.tries}


async def refused(inst: Any, caller: Any, item: dict[str, Any]) -> dict[str, Any]:
    response = await inst.client.post(
        "/v1/orders",
        json={"items": [item]},
        headers={**caller.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code in (409, 422), response.text
    return dict(response.json()["error"])


async def accepted(inst: Any, caller: Any, item: dict[str, Any]) -> dict[str, Any]:
    response = await inst.client.post(
        "/v1/orders",
        json={"items": [item]},
        headers={**caller.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    return dict(response.json()["data"]["items"][0])


async def test_a_canonical_item_is_accepted_in_the_variants_currency_or_the_one_sent(
    make_instance: Any, products: list[Product]
) -> None:
    """Gaming Goods prices the US Steam card in EUR, the voucher supplier in USD: the
    card's own currency wins, unless the reseller sends a unit_price in the other one.
    Nothing is converted."""
    inst = await make_instance(workers=False)
    caller = await inst.caller()
    canonical = "gift-steam-wallet-usa-usd:fv5000"
    found = inst.orders.catalog.offers(canonical)
    by_currency = {v.unit_cost(v.face_value).currency: p.supplier for p, v in found}
    assert set(by_currency) == {"USD", "EUR"}
    in_usd = await accepted(inst, caller, {"variant_id": canonical, "quantity": 1})
    assert in_usd["unit_price"]["currency"] == "USD"
    assert in_usd["supplier"] == by_currency["USD"]
    sent = {"amount": 10**6, "currency": "EUR"}
    in_eur = await accepted(
        inst, caller, {"variant_id": canonical, "quantity": 1, "unit_price": sent}
    )
    assert in_eur["unit_price"]["currency"] == "EUR" and in_eur["unit_price"]["amount"] < 10**6
    assert in_eur["supplier"] == by_currency["EUR"]
    gbp = {
        "variant_id": canonical,
        "quantity": 1,
        "unit_price": {"amount": 10**6, "currency": "GBP"},
    }
    assert (await refused(inst, caller, gbp))["code"] == "currency_mismatch"


async def test_canonical_items_are_refused_like_supplier_ones(
    make_instance: Any, products: list[Product]
) -> None:
    inst = await make_instance(workers=False)
    caller = await inst.caller()
    cheap, dear = offers(products, STEAM_DEU_50)
    ranged = "gift-battle-net-balance-deu-eur:range"
    assert inst.orders.catalog.offers(ranged)
    item = await accepted(
        inst,
        caller,
        {"variant_id": ranged, "quantity": 1, "face_value": {"amount": 2000, "currency": "EUR"}},
    )
    assert item["face_value"] == {"amount": 2000, "currency": "EUR"}
    assert item["canonical_variant_id"] == ranged
    low = {"variant_id": ranged, "quantity": 1, "face_value": {"amount": 1, "currency": "EUR"}}
    assert (await refused(inst, caller, low))["code"] == "face_value_out_of_range"
    bare = {"variant_id": ranged, "quantity": 1}
    assert (await refused(inst, caller, bare))["code"] == "face_value_required"
    unknown = {"variant_id": "gift-steam-wallet-xyz-eur:fv5000", "quantity": 1}
    assert (await refused(inst, caller, unknown))["code"] == "variant_not_found"
    # out of stock only when no offer can cover the quantity
    inst.orders.catalog = catalog_with(products, **{cheap.product.id: 0, dear.product.id: 3})
    four = {"variant_id": STEAM_DEU_50, "quantity": 4}
    assert (await refused(inst, caller, four))["code"] == "out_of_stock"
    three = await accepted(inst, caller, {"variant_id": STEAM_DEU_50, "quantity": 3})
    assert three["supplier"] == dear.supplier


async def test_a_choice_committed_before_a_crash_is_sent_as_chosen(
    make_instance: Any, products: list[Product], sandboxes: Sandboxes
) -> None:
    """A worker chose the dearer offer (say the cheaper one's circuit was open then),
    committed the attempt and died before sending. Whoever runs the job next sends that
    attempt, to that supplier under its reference: never a new choice, although the
    cheaper offer is eligible again."""
    cheap, dear = offers(products, STEAM_DEU_50)
    if dear.supplier == "gaming_goods":
        gaming_goods_stock(sandboxes, dear.product.id, 1000)
    inst = await make_instance(workers=False)
    inst.orders.catalog = catalog_with(products, equal_prices(products, [STEAM_DEU_50]))
    caller = await inst.caller()
    item = await accepted(inst, caller, {"variant_id": STEAM_DEU_50, "quantity": 1})
    assert item["supplier"] == cheap.supplier
    loaded = await inst.orders.store.list_for_reseller(caller.reseller.id, None, 0, 1)
    oid = loaded[1][0].id

    def chosen_then_crashed(order: Any, now: float) -> Effects:
        part, it = order.parts[0], order.items[0]
        part.tries.append(
            Attempt(
                n=1,
                supplier=dear.supplier,
                variant_id=dear.variant.id,
                reference=f"{oid}-1",
                at=now,
                face_value=dear.variant.face_value,
            )
        )
        part.supplier, it.supplier, it.variant_id = dear.supplier, dear.supplier, dear.variant.id
        return Effects()

    await inst.orders.processor.commit(oid, None, chosen_then_crashed)
    await inst.orders.stop()
    await inst.orders.start(workers=True)
    final = await inst.orders.wait_final(oid, 15)
    assert final.status.value == "completed", final.parts
    assert await bought(sandboxes, oid) == {dear.supplier: [f"{oid}-1"]}
    assert [(t.supplier, t.outcome) for t in final.parts[0].tries] == [
        (dear.supplier, AttemptOutcome.PLACED)
    ]


async def test_a_placement_that_never_got_through_and_is_absent_fails_over(
    make_instance: Any,
    products: list[Product],
    sandboxes: Sandboxes,
    redis_url: str,
    key_prefix: str,
) -> None:
    """Gaming Goods (made the cheaper offer in our catalog) answers every checkout with
    429: nothing is sent through. Past the placement deadline the reference is looked up,
    positively absent: the part moves to the voucher supplier under its next reference."""
    steam = {o.supplier: o for o in offers(products, STEAM_DEU_50)}
    gg, vouchers = steam["gaming_goods"], steam["vouchers"]
    gaming_goods_stock(sandboxes, gg.product.id, 1000)
    cheap_gg = with_cost(products, gg.variant.id, vouchers.cost - 100)
    settings = make_settings(
        redis_url,
        key_prefix,
        sandboxes,
        orders=order_settings(placement_timeout_seconds=0.3),
    )
    inst = await make_instance(settings)
    inst.orders.catalog = catalog_with(cheap_gg, equal_prices(cheap_gg, [STEAM_DEU_50]))
    caller = await inst.caller()
    await sandboxes.set_faults("gaming_goods", rate_limit_burst=100_000, paths=["/checkout"])
    data = await order(inst, caller, STEAM_DEU_50)
    oid = data["id"]
    assert data["status"] == "completed", data
    assert data["items"][0]["supplier"] == "vouchers"
    assert await bought(sandboxes, oid) == {"vouchers": [f"{oid}-1.2"]}
    tries = (await stored(inst, oid)).parts[0].tries
    assert [(t.supplier, t.reference, t.outcome) for t in tries] == [
        ("gaming_goods", f"{oid}-1", AttemptOutcome.ABSENT),
        ("vouchers", f"{oid}-1.2", AttemptOutcome.PLACED),
    ]
    assert tries[0].code == "supplier_unavailable"


async def test_stock_exhausted_at_the_supplier_fails_over(
    make_instance: Any, products: list[Product], sandboxes: Sandboxes
) -> None:
    """Our catalog still shows Gaming Goods' card in stock (made the cheaper offer), but
    its last unit is gone: the checkout answers 409 out_of_stock, nothing is bought there,
    and the voucher supplier sells it under the next reference."""
    steam = {o.supplier: o for o in offers(products, STEAM_DEU_50)}
    gg, vouchers = steam["gaming_goods"], steam["vouchers"]
    cheap_gg = with_cost(products, gg.variant.id, vouchers.cost - 100)
    inst = await make_instance()
    inst.orders.catalog = catalog_with(cheap_gg, equal_prices(cheap_gg, [STEAM_DEU_50]))
    caller = await inst.caller()
    gaming_goods_stock(sandboxes, gg.product.id, 0)
    try:
        data = await order(inst, caller, STEAM_DEU_50)
    finally:
        gaming_goods_stock(sandboxes, gg.product.id, 1000)
    oid = data["id"]
    assert data["status"] == "completed", data
    assert await bought(sandboxes, oid) == {"vouchers": [f"{oid}-1.2"]}
    tries = (await stored(inst, oid)).parts[0].tries
    assert [(t.supplier, t.outcome, t.code) for t in tries] == [
        ("gaming_goods", AttemptOutcome.REFUSED, "supplier_rejected_order"),
        ("vouchers", AttemptOutcome.PLACED, None),
    ]
