"""200 orders for a canonical variant while the cheaper supplier refuses about 30 % of
purchases and both suppliers lose answers (order committed, then the connection dropped
or a 500 sent; requests that hang past the client's timeout and are processed later):
every order completes or is held for review, no unit is bought twice across both
suppliers (every purchase in both sandboxes' logs is mapped to its part's attempts), none
is lost, and no reseller is charged above the price its order was accepted at."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter, defaultdict
from typing import Any

from offers_support import (
    STEAM_DEU_50,
    catalog_with,
    gaming_goods_stock,
    offers,
    purchases_by_reference,
)
from orders_harness import Sandboxes, make_settings, order_settings, supplier_settings
from prometheus_client import REGISTRY

from adapters.models import Product
from gateway.accounts.models import EntryKind
from gateway.orders.models import AttemptOutcome, PartState, StoredOrder
from gateway.settings import AccountSettings

ORDERS = 200
#: Faults on every purchase request (both suppliers); the refusals only at the cheaper.
AMBIGUOUS = {
    "commit_then_drop_rate": 0.1,  # committed, connection dropped
    "error_after_commit_rate": 0.1,  # committed, 500 answered
    "timeout_rate": 0.05,  # hangs past the client's timeout, then processed
    "hang_seconds": 2.0,  # longer than timeout + look-ups: the resend races the first
    "error_rate": 0.2,  # 500 before anything is done: unknown to the client too
}
#: Purchases and look-ups by reference (so some reconciliations fail as well).
ORDER_PATHS = {"vouchers": ["/api/v1/orders"], "gaming_goods": ["/checkout", "/orders"]}


def settled(order: StoredOrder) -> bool:
    """Final, or held for review with nothing more scheduled (an operator's turn)."""
    if order.status.is_final:
        return True
    return all(
        p.state.is_final or (p.state is PartState.REVIEW and p.job is None) for p in order.parts
    )


async def test_200_orders_fail_over_without_buying_twice(
    make_instance: Any,
    products: list[Product],
    sandboxes: Sandboxes,
    redis_url: str,
    key_prefix: str,
) -> None:
    started = time.monotonic()
    ambiguous_before = _ambiguous()
    cheap, dear = offers(products, STEAM_DEU_50)
    if dear.supplier == "gaming_goods":
        gaming_goods_stock(sandboxes, dear.product.id, 100_000)
    suppliers = supplier_settings(
        sandboxes,
        timeouts={"connect": 1.0, "read": 0.6, "total": 1.0},
        reconcile_attempts=3,
        reconcile_delay=0.1,
    )
    # The Gaming Goods sandbox honours Idempotency-Key as the platform's v1 API documents:
    # an unknown checkout is sent again under its key instead of being attributed from the
    # order list (which, among many identical orders, rightly refuses to guess: with the
    # default a share of them would wait for an operator instead of completing).
    suppliers["gaming_goods"]["idempotency_key_honoured"] = True
    settings = make_settings(
        redis_url,
        key_prefix,
        sandboxes,
        accounts=AccountSettings(enforce=True),
        orders=order_settings(
            review_reconcile_seconds=0.3,
            review_reconcile_attempts=4,
            worker_concurrency=24,
            # A 30 % refusal rate is what this test fails over from; the success tracker
            # (tested on its own) would otherwise stop sending to that supplier at all.
            routing={"min_success_rate": 0.2},
        ),
        suppliers=suppliers,
    )
    inst = await make_instance(settings)
    # One markup for every supplier, as shipped: the dearer supplier takes over at the
    # accepted price (routing.absorb_price_difference, the default).
    inst.orders.catalog = catalog_with(products)
    caller = await inst.caller()
    accounts = inst.gateway.services.accounts.store
    await accounts.post(caller.reseller.id, "EUR", EntryKind.TOPUP, 10**9, uuid.uuid4().hex)
    for name in ("vouchers", "gaming_goods"):
        refuse = 0.3 if name == cheap.supplier else 0.0
        await sandboxes.set_faults(
            name, refuse_rate=refuse, paths=ORDER_PATHS[name], seed=13, **AMBIGUOUS
        )

    rng = random.Random(5)
    quantities = [rng.choice((1, 1, 2)) for _ in range(ORDERS)]
    gate = asyncio.Semaphore(24)

    async def place(quantity: int) -> dict[str, Any]:
        async with gate:
            response = await inst.client.post(
                "/v1/orders",
                json={"items": [{"variant_id": STEAM_DEU_50, "quantity": quantity}]},
                headers={**caller.headers, "Idempotency-Key": str(uuid.uuid4())},
            )
        assert response.status_code in (201, 202), response.text
        return dict(response.json()["data"])

    created = await asyncio.gather(*(place(q) for q in quantities))
    accepted = {o["id"]: o["items"][0]["unit_price"] for o in created}

    async def load_all() -> dict[str, StoredOrder]:
        loaded = await asyncio.gather(*(inst.orders.store.load(oid) for oid in accepted))
        assert all(v is not None for v in loaded), "an order was lost"
        return {v.order.id: v.order for v in loaded if v is not None}

    deadline = time.monotonic() + 45
    while True:
        orders = await load_all()
        if all(settled(o) for o in orders.values()) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    for name in ("vouchers", "gaming_goods"):
        await sandboxes.set_faults(name)  # quiet, before reading the logs
    unsettled = [o.id for o in orders.values() if not settled(o)]
    assert not unsettled, f"{len(unsettled)} orders neither final nor held: {unsettled[:3]}"

    # ---- purchases: every one mapped to exactly one part, at most one per part
    by_reference = await purchases_by_reference(sandboxes)
    owner: dict[str, tuple[str, int]] = {}
    for order in orders.values():
        for part in order.parts:
            for attempt in part.tries:
                assert attempt.reference not in owner, "a reference was used twice"
                owner[attempt.reference] = (order.id, part.n)
    ours = {r: rows for r, rows in by_reference.items() if r.split("-")[0] in accepted}
    strays = [r for r in ours if r not in owner]
    assert not strays, f"purchases under references no attempt made: {strays[:3]}"
    per_part: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for reference, rows in ours.items():
        per_part[owner[reference]].extend(rows)
    twice = {k: v for k, v in per_part.items() if len(v) > 1}
    assert not twice, f"bought twice: {list(twice.items())[:2]}"

    outcome: Counter[str] = Counter()
    for order in orders.values():
        part = order.parts[0]
        item = order.items[0]
        bought = per_part.get((order.id, part.n), [])
        units = sum(line["quantity"] for p in bought for line in _lines(p))
        assert units <= item.quantity, f"{order.id}: {units} units for {item.quantity}"
        # no charge above the accepted price, and the accepted price is the quoted one
        assert item.unit_price.model_dump() == accepted[order.id]
        if part.state is PartState.DELIVERED:
            assert len(bought) == 1, f"{order.id} delivered without a purchase in the logs"
            placed = [t for t in part.tries if t.outcome is AttemptOutcome.PLACED]
            assert [t.reference for t in placed] == [bought[0]["reference"]]
            assert bought[0]["supplier"] == part.supplier == item.supplier
            outcome[f"delivered at {part.supplier}"] += 1
        elif part.state is PartState.FAILED:
            assert not bought, f"{order.id} failed but was bought: lost purchase"
            outcome["failed"] += 1
        else:
            assert part.state is PartState.REVIEW
            outcome["held for review"] += 1
            outcome[f"held: {part.review_reason} at {part.supplier}"] += 1
        if len(part.tries) > 1:
            outcome["failed over"] += 1
        if any(t.was_unknown for t in part.tries):
            outcome["had an unknown outcome"] += 1

    # ---- the reseller's ledger: captures are exactly delivered units x accepted price
    entries = await accounts.entries(caller.reseller.id, "EUR")
    captured: Counter[str] = Counter()
    for entry in entries:
        if entry.kind is EntryKind.CAPTURE and entry.order_id is not None:
            captured[entry.order_id] += entry.amount
    for order in orders.values():
        item = order.items[0]
        assert captured[order.id] == item.delivered_quantity * item.unit_price.amount
        assert captured[order.id] <= item.quantity * accepted[order.id]["amount"]

    stats = {name: await _stats(sandboxes, name) for name in ("vouchers", "gaming_goods")}
    ambiguous = _ambiguous() - ambiguous_before
    print(
        f"\n{ORDERS} orders in {time.monotonic() - started:.1f}s: {dict(outcome)}; "
        f"refusals {stats[cheap.supplier]['refusals']}, unknown outcomes {ambiguous:.0f}, "
        f"purchases {sum(len(v) for v in per_part.values())}, bought twice 0"
    )
    # The refusals really moved parts (fewer than refused: a refusal of an attempt that
    # was once unknown is held and settled at the same supplier, never failed over).
    assert outcome["failed over"] >= ORDERS // 8, outcome
    assert outcome[f"delivered at {dear.supplier}"] >= ORDERS // 8, outcome
    assert stats[cheap.supplier]["refusals"] >= ORDERS // 5, stats
    assert ambiguous >= ORDERS // 5, ambiguous  # >= 20 % of orders met an unknown outcome
    assert outcome["had an unknown outcome"] >= 5, outcome  # some only settled by the worker
    assert outcome["failed"] + outcome["held for review"] <= ORDERS // 10, outcome


def _ambiguous() -> float:
    """Placements whose outcome was unknown to the adapter (however it was resolved)."""
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name == "gateway_upstream_ambiguous_outcomes":
            total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    return total


def _lines(purchase: dict[str, Any]) -> list[dict[str, Any]]:
    """A purchase's lines in either sandbox's log shape."""
    if "lines" in purchase:
        return list(purchase["lines"])
    return [{"quantity": purchase["quantity"]}]


async def _stats(sandboxes: Sandboxes, name: str) -> dict[str, int]:
    import httpx

    async with httpx.AsyncClient() as client:
        response = await client.get(sandboxes.url(name) + "/_sandbox/stats")
        return dict(response.json())
