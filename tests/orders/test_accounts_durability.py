"""Accounts under concurrency, faults and crashes: two gateway processes and separate
worker processes on one Redis, the sandboxes counting every real purchase.

* 200 concurrent orders over two gateways against an account covering exactly 50 (and
  100 against a credit line covering 25): exactly that many accepted, the rest 402, the
  account never below zero (or below minus its limit) at any point of its ledger;
* 200 orders through supplier faults on more than 20% of calls, with a worker SIGKILLed
  mid-run: every hold captured or released exactly once, the ledger summing to the
  balance, and what was captured equal to the value of what the suppliers sold.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from orders_harness import (
    Picks,
    Process,
    Sandboxes,
    make_settings,
    order_settings,
    start_worker,
    supplier_settings,
    wait_until,
)
from test_durability import _at_rest, by_reference, load

from gateway.access.testing import TestCaller
from gateway.accounts.models import EntryKind, LedgerEntry
from gateway.accounts.store import AccountStore
from gateway.orders.models import PartState, StoredOrder
from gateway.redis_keys import RedisKeys
from gateway.settings import AccountSettings, Settings
from tests.support.keys import issue_key_in


@pytest.fixture(scope="module")
def module_settings(sandboxes: Sandboxes, module_prefix: str, redis_url: str) -> Settings:
    suppliers = supplier_settings(sandboxes, timeouts={"connect": 1.0, "read": 1.0, "total": 1.5})
    orders = order_settings(review_reconcile_seconds=0.5, inline_workers=False)
    return make_settings(
        redis_url,
        module_prefix,
        sandboxes,
        suppliers=suppliers,
        orders=orders,
        accounts=AccountSettings(enforce=True),
    )


async def quote(client: httpx.AsyncClient, caller: TestCaller, body: Any) -> tuple[int, str]:
    """The order's value, as the 402 of a reseller without funds states it."""
    headers = {**caller.headers, "Idempotency-Key": str(uuid.uuid4())}
    response = await client.post("/v1/orders", json=body, headers=headers)
    assert response.status_code == 402, response.text
    details = response.json()["error"]["details"]
    return int(details["required"]), str(details["currency"])


def assert_books(entries: list[LedgerEntry], balance: int, held: int, floor: int) -> None:
    """The ledger sums to the account, and no entry ever left available below ``floor``."""
    assert sum(e.balance_change for e in entries) == balance
    assert sum(e.hold_change for e in entries) == held
    lowest = min(e.available_after for e in entries)
    assert lowest >= floor, f"available went down to {lowest}"


async def test_concurrent_orders_never_overdraw(
    gateways: list[Process],
    module_settings: Settings,
    module_redis: aioredis.Redis,
    sandboxes: Sandboxes,
    picks: Picks,
    tmp_path: Any,
) -> None:
    prefix = module_settings.key_prefix
    store = AccountStore(module_redis, RedisKeys(prefix))
    prepaid = await issue_key_in(module_redis, prefix, rate_limit=100_000)
    credit = await issue_key_in(module_redis, prefix, rate_limit=100_000)
    body = {"items": [{"variant_id": picks.voucher_fixed, "quantity": 1}]}
    async with httpx.AsyncClient(base_url=gateways[0].url, timeout=30) as client:
        price, currency = await quote(client, prepaid, body)
    await store.post(prepaid.reseller.id, currency, EntryKind.TOPUP, 50 * price, "fund-50")
    await store.set_limits(credit.reseller.id, currency, credit_limit=25 * price)

    lowest = {prepaid.reseller.id: 50 * price, credit.reseller.id: 25 * price}
    sending = True

    async def watch() -> None:  # an outside view while the orders race
        while sending:
            for rid in lowest:
                account = await store.get(rid, currency)
                assert account is not None
                lowest[rid] = min(lowest[rid], account.available)
            await asyncio.sleep(0.005)

    async def send(client: httpx.AsyncClient, caller: TestCaller) -> httpx.Response:
        headers = {**caller.headers, "Idempotency-Key": str(uuid.uuid4())}
        return await client.post("/v1/orders", json=body, headers=headers)

    worker = start_worker(module_settings, tmp_path / "worker.log")
    limits = httpx.Limits(max_connections=150)
    try:
        watcher = asyncio.create_task(watch())
        async with (
            httpx.AsyncClient(base_url=gateways[0].url, limits=limits, timeout=60) as a,
            httpx.AsyncClient(base_url=gateways[1].url, limits=limits, timeout=60) as b,
        ):
            callers = [prepaid] * 200 + [credit] * 100
            random.Random(3).shuffle(callers)
            responses = await asyncio.gather(
                *(send(a if i % 2 else b, c) for i, c in enumerate(callers))
            )
        sending = False
        await watcher
        outcome = Counter(
            (c.reseller.id, r.status_code) for c, r in zip(callers, responses, strict=True)
        )
        assert outcome == {
            (prepaid.reseller.id, 202): 50,
            (prepaid.reseller.id, 402): 150,
            (credit.reseller.id, 202): 25,
            (credit.reseller.id, 402): 75,
        }, outcome
        for response in responses:
            if response.status_code == 402:
                assert response.json()["error"]["code"] == "insufficient_funds"
        accepted = [r.json()["data"]["id"] for r in responses if r.status_code == 202]

        async def settled() -> bool:
            orders = [await load(module_redis, prefix, o) for o in accepted]
            return all(order.status.is_final for order in orders)

        assert await wait_until(settled, 60, interval=0.2), "orders left unfinished"
    finally:
        worker.terminate()
    bought = by_reference(await sandboxes.purchases("vouchers"))
    assert all(bought[f"{order_id}-1"] == 1 for order_id in accepted)
    assert lowest == {prepaid.reseller.id: 0, credit.reseller.id: 0}
    for rid, floor in ((prepaid.reseller.id, 0), (credit.reseller.id, 0)):
        account = await store.get(rid, currency)
        assert account is not None and account.available == 0 and account.held == 0
        entries = await store.entries(rid, currency)
        assert_books(entries, account.balance, account.held, floor)
        assert Counter(e.kind for e in entries)[EntryKind.HOLD] == (
            50 if rid == prepaid.reseller.id else 25
        )
    credit_account = await store.get(credit.reseller.id, currency)
    assert credit_account is not None and credit_account.balance == -25 * price


async def test_faults_and_a_killed_worker_settle_every_hold_once(
    gateways: list[Process],
    module_settings: Settings,
    module_redis: aioredis.Redis,
    sandboxes: Sandboxes,
    picks: Picks,
    tmp_path: Any,
) -> None:
    prefix = module_settings.key_prefix
    store = AccountStore(module_redis, RedisKeys(prefix))
    caller = await issue_key_in(module_redis, prefix, rate_limit=100_000)
    rid = caller.reseller.id
    for currency in ("EUR", "USD", "GBP", "CAD", "JPY", "AED", "AUD", "BHD"):
        await store.post(rid, currency, EntryKind.TOPUP, 10**12, f"fund-{currency}")
    faults = {
        "error_rate": 0.18, "rate_limit_burst": 25, "timeout_rate": 0.02, "hang_seconds": 1.2,
        "commit_then_drop_rate": 0.12, "error_after_commit_rate": 0.12, "latency_ms": 2,
        "seed": 13,
    }  # fmt: skip
    for supplier in ("vouchers", "gaming_goods"):
        await sandboxes.set_faults(supplier, **faults)
    rng = random.Random(8)
    games = picks.game_keys[10:-3]
    bodies = []
    for i in range(200):
        items = [{"variant_id": picks.voucher_fixed, "quantity": rng.randint(1, 3)}]
        if i % 5 < 2:
            items.append({"variant_id": games[i % len(games)], "quantity": 1})
        bodies.append({"items": items})

    workers = [start_worker(module_settings, tmp_path / f"worker-{n}.log") for n in (1, 2)]
    created: list[str] = []
    gate = asyncio.Semaphore(24)
    busy = asyncio.Event()  # enough orders in flight to kill a worker in the middle

    async def place(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
        headers = {**caller.headers, "Idempotency-Key": str(uuid.uuid4())}
        async with gate:
            for _ in range(50):
                try:
                    response = await client.post("/v1/orders", json=body, headers=headers)
                except httpx.HTTPError:
                    response = None
                if response is not None and response.status_code in (201, 202):
                    created.append(response.json()["data"]["id"])
                    if len(created) >= 60:
                        busy.set()
                    return
                await asyncio.sleep(0.1)
        raise AssertionError("an order could not be created")

    async def kill_one_worker() -> None:
        await busy.wait()
        workers[0].kill()  # SIGKILL mid-run: its jobs are reclaimed by the others
        workers.append(start_worker(module_settings, tmp_path / "worker-3.log"))

    try:
        async with (
            httpx.AsyncClient(base_url=gateways[0].url, timeout=30) as a,
            httpx.AsyncClient(base_url=gateways[1].url, timeout=30) as b,
        ):
            await asyncio.gather(
                kill_one_worker(),
                *(place(a if i % 2 else b, body) for i, body in enumerate(bodies)),
            )
        assert len(set(created)) == 200

        async def settled() -> bool:
            for order_id in created:
                order = await load(module_redis, prefix, order_id)
                if not (order.status.is_final or all(_at_rest(p) for p in order.parts)):
                    return False
            return True

        assert await wait_until(settled, 120, interval=0.5), "orders left unfinished"
    finally:
        for worker in workers:
            worker.terminate()
    async with httpx.AsyncClient() as client:
        stats = [
            (await client.get(sandboxes.url(s) + "/_sandbox/stats")).json()
            for s in ("vouchers", "gaming_goods")
        ]
    await sandboxes.reset()
    requests = sum(s["requests"] for s in stats)
    faulted = sum(s["rate_limited"] + s["errors"] + s["drops"] for s in stats)
    assert faulted / requests >= 0.2, f"only {faulted} of {requests} upstream calls faulted"

    orders = {o: await load(module_redis, prefix, o) for o in created}
    bought = {s: await sandboxes.purchases(s) for s in ("vouchers", "gaming_goods")}
    units: Counter[str] = Counter()
    for purchases in bought.values():
        for purchase in purchases:
            units[str(purchase.get("reference"))] += sum(
                int(line["quantity"]) for line in purchase["lines"]
            )
    counts = {s: by_reference(p) for s, p in bought.items()}

    currencies = await store.currencies(rid)
    by_order: dict[str, Counter[str]] = {}
    captured_by_part: Counter[str] = Counter()
    for currency in currencies:
        account = await store.get(rid, currency)
        entries = await store.entries(rid, currency)
        assert account is not None
        assert_books(entries, account.balance, account.held, 0)
        for entry in entries:
            if entry.order_id is None:
                continue
            by_order.setdefault(entry.order_id, Counter())[entry.kind.value] += entry.amount
            if entry.kind is EntryKind.CAPTURE:
                captured_by_part[f"{entry.order_id}-{entry.part}"] += entry.amount
        # what is still held is exactly what parts awaiting review hold
        open_value = sum(_unsettled_value(order, currency) for order in orders.values())
        assert account.held == open_value, currency

    held_parts = 0
    for order_id, order in orders.items():
        moved = by_order[order_id]
        total = sum(item.unit_price.amount * item.quantity for item in order.items)
        assert moved["hold"] == total  # held once, whatever the retries
        settled_value = moved["capture"] + moved["release"]
        if order.status.is_final:
            assert settled_value == total, order_id  # resolved exactly once
        else:
            assert settled_value < total
        for part in order.parts:
            reference = part.reference
            (item,) = [order.items[i] for i in part.items]
            assert counts[part.supplier][reference] <= 1, f"{reference} bought twice"
            if part.state in (PartState.DELIVERED, PartState.PARTIALLY_DELIVERED):
                # captured = what the supplier sold us, at the reseller's accepted price
                assert captured_by_part[reference] == units[reference] * item.unit_price.amount
                assert part.settled
            elif part.state is PartState.FAILED:
                assert captured_by_part[reference] == 0 and part.settled
            else:
                held_parts += 1
                assert captured_by_part[reference] == 0 and not part.settled
    assert await store.open_holds() == sum(
        1 for o in orders.values() for h in o.holds if h.open > 0
    )
    print("held for review:", held_parts, "faulted:", faulted, "of", requests)


def _unsettled_value(order: StoredOrder, currency: str) -> int:
    return sum(
        order.items[i].unit_price.amount * order.items[i].quantity
        for part in order.parts
        if not part.settled
        for i in part.items
        if order.items[i].unit_price.currency == currency
    )
