"""Orders drawing on reseller accounts: holds with the order, 402 when not covered,
captures of delivered units and releases of the rest, through the real app, Redis and
the sandboxes."""

from __future__ import annotations

import uuid
from typing import Any

from orders_harness import (
    GENEROUS_LIMITS,
    Picks,
    Sandboxes,
    make_settings,
    supplier_settings,
    wait_until,
)
from prometheus_client import REGISTRY

from adapters.registry import discover
from adapters.sandbox_server import BackgroundServer
from gateway.accounts.models import EntryKind
from gateway.accounts.store import AccountStore
from gateway.orders.operations import Resolution, resolve
from gateway.settings import AccountSettings, Settings


def enforced(redis_url: str, key_prefix: str, sandboxes: Sandboxes, **kw: Any) -> Settings:
    return make_settings(
        redis_url, key_prefix, sandboxes, accounts=AccountSettings(enforce=True), **kw
    )


def store_of(inst: Any) -> AccountStore:
    return inst.gateway.services.accounts.store


async def create(inst: Any, caller: Any, body: Any, key: str | None = None, **h: str) -> Any:
    headers = {**caller.headers, "Idempotency-Key": key or str(uuid.uuid4()), **h}
    return await inst.client.post("/v1/orders", json=body, headers=headers)


async def fund(inst: Any, reseller_id: str, amount: int, currency: str) -> None:
    await store_of(inst).post(reseller_id, currency, EntryKind.TOPUP, amount, uuid.uuid4().hex)


async def unit_price(inst: Any, caller: Any, variant_id: str) -> tuple[int, str]:
    """The reseller's price of one unit, as the gateway quotes it (a refused order says)."""
    response = await create(inst, caller, {"items": [{"variant_id": variant_id, "quantity": 1}]})
    assert response.status_code == 402, response.text
    details = response.json()["error"]["details"]
    return details["required"], details["currency"]


async def kinds(inst: Any, reseller_id: str, currency: str) -> list[tuple[str, int]]:
    return [(e.kind.value, e.amount) for e in await store_of(inst).entries(reseller_id, currency)]


async def check_books(inst: Any, reseller_id: str, currency: str) -> Any:
    """The ledger sums to the account, and nothing is held once every order is final."""
    store = store_of(inst)
    account = await store.get(reseller_id, currency)
    entries = await store.entries(reseller_id, currency)
    assert account is not None
    assert sum(e.balance_change for e in entries) == account.balance
    assert sum(e.hold_change for e in entries) == account.held
    return account


async def test_an_order_holds_then_captures_its_value(
    make_instance: Any, picks: Picks, redis_url: str, key_prefix: str, sandboxes: Sandboxes
) -> None:
    inst = await make_instance(enforced(redis_url, key_prefix, sandboxes))
    caller = await inst.caller()
    price, currency = await unit_price(inst, caller, picks.voucher_fixed)
    await fund(inst, caller.reseller.id, 10 * price, currency)
    captured_before = (
        REGISTRY.get_sample_value("gateway_accounts_captured_minor_total", {"currency": currency})
        or 0
    )

    response = await create(
        inst,
        caller,
        {"items": [{"variant_id": picks.voucher_fixed, "quantity": 3}]},
        Prefer="wait=10",
    )
    assert response.status_code == 201, response.text
    order = response.json()["data"]
    assert order["status"] == "completed"
    account = await check_books(inst, caller.reseller.id, currency)
    assert account.balance == 7 * price and account.held == 0
    assert await kinds(inst, caller.reseller.id, currency) == [
        ("topup", 10 * price),
        ("hold", 3 * price),
        ("capture", 3 * price),
    ]
    entries = await store_of(inst).entries(caller.reseller.id, currency)
    assert {e.order_id for e in entries[1:]} == {order["id"]}
    assert await store_of(inst).open_holds() == 0
    captured = REGISTRY.get_sample_value(
        "gateway_accounts_captured_minor_total", {"currency": currency}
    )
    assert captured == captured_before + 3 * price

    seen = await inst.client.get("/v1/account", headers=caller.headers)
    assert seen.status_code == 200, seen.text
    (shown,) = seen.json()["data"]["accounts"]
    assert shown["balance"] == {"amount": 7 * price, "currency": currency}
    assert shown["available"]["amount"] == 7 * price and shown["held"]["amount"] == 0


async def test_not_enough_funds_is_402_and_writes_nothing(
    make_instance: Any, picks: Picks, redis_url: str, key_prefix: str, sandboxes: Sandboxes
) -> None:
    inst = await make_instance(enforced(redis_url, key_prefix, sandboxes))
    caller = await inst.caller()
    body = {"items": [{"variant_id": picks.voucher_fixed, "quantity": 2}]}
    key = str(uuid.uuid4())
    no_account = await create(inst, caller, body, key)
    assert no_account.status_code == 402
    error = no_account.json()["error"]
    assert error["code"] == "insufficient_funds"
    price = error["details"]["required"] // 2
    currency = error["details"]["currency"]
    assert error["details"]["available"] == 0

    await fund(inst, caller.reseller.id, 2 * price - 1, currency)
    short = await create(inst, caller, body, key)  # the same key: not used up by a 402
    assert short.status_code == 402
    assert short.json()["error"]["details"] == {
        "currency": currency,
        "required": 2 * price,
        "available": 2 * price - 1,
    }
    listed = await inst.client.get("/v1/orders", headers=caller.headers)
    assert listed.json()["data"]["total"] == 0
    assert await kinds(inst, caller.reseller.id, currency) == [("topup", 2 * price - 1)]
    assert await store_of(inst).open_holds() == 0

    await fund(inst, caller.reseller.id, 1, currency)
    paid = await create(inst, caller, body, key, Prefer="wait=10")
    assert paid.status_code == 201, paid.text
    account = await check_books(inst, caller.reseller.id, currency)
    assert account.balance == 0 and account.available == 0


async def test_a_replayed_key_never_debits_twice_and_refusals_leave_no_entry(
    make_instance: Any, picks: Picks, redis_url: str, key_prefix: str, sandboxes: Sandboxes
) -> None:
    inst = await make_instance(enforced(redis_url, key_prefix, sandboxes))
    caller = await inst.caller()
    price, currency = await unit_price(inst, caller, picks.voucher_fixed)
    await fund(inst, caller.reseller.id, 5 * price, currency)
    body = {"items": [{"variant_id": picks.voucher_fixed, "quantity": 1}]}
    key = str(uuid.uuid4())
    first = await create(inst, caller, body, key, Prefer="wait=10")
    assert first.status_code == 201
    for _ in range(3):
        again = await create(inst, caller, body, key)
        assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    before = await kinds(inst, caller.reseller.id, currency)
    assert before == [("topup", 5 * price), ("hold", price), ("capture", price)]

    refused = [
        {"items": [{"variant_id": picks.voucher_fixed, "quantity": 0}]},  # validation
        {"items": [{"variant_id": "vouchers:999999:fv1", "quantity": 1}]},  # no variant
        {
            "items": [
                {
                    "variant_id": picks.voucher_fixed,
                    "quantity": 1,
                    "unit_price": {"amount": price - 1, "currency": currency},
                }
            ]
        },
    ]
    for bad in refused:
        response = await create(inst, caller, bad)
        assert response.status_code in (409, 422), response.text
    assert await kinds(inst, caller.reseller.id, currency) == before
    await check_books(inst, caller.reseller.id, currency)


async def test_a_failed_part_releases_and_a_delivered_part_captures(
    make_instance: Any, picks: Picks, redis_url: str, key_prefix: str, sandboxes: Sandboxes
) -> None:
    inst = await make_instance(enforced(redis_url, key_prefix, sandboxes))
    caller = await inst.caller()
    voucher, voucher_currency = await unit_price(inst, caller, picks.voucher_fixed)
    game, game_currency = await unit_price(inst, caller, picks.game_keys[3])
    for currency in {voucher_currency, game_currency}:
        await fund(inst, caller.reseller.id, 100 * max(voucher, game), currency)
    await sandboxes.set_faults("gaming_goods", fulfilment_failure_rate=1.0)
    body = {
        "items": [
            {"variant_id": picks.voucher_fixed, "quantity": 2},
            {"variant_id": picks.game_keys[3], "quantity": 1},
        ]
    }
    response = await create(inst, caller, body, Prefer="wait=10")
    order = response.json()["data"]
    assert order["status"] == "partially_completed", response.text
    moves = [
        (e.kind.value, e.amount, e.part)
        for c in sorted({voucher_currency, game_currency})
        for e in await store_of(inst).entries(caller.reseller.id, c)
        if e.kind is not EntryKind.TOPUP
    ]
    assert ("capture", 2 * voucher, 1) in moves and ("release", game, 2) in moves
    assert not any(kind == "capture" and part == 2 for kind, _, part in moves)
    for currency in {voucher_currency, game_currency}:
        account = await check_books(inst, caller.reseller.id, currency)
        assert account.held == 0
    # every order fails: everything is released, the balance is untouched
    failed = await create(
        inst,
        caller,
        {"items": [{"variant_id": picks.game_keys[3], "quantity": 2}]},
        Prefer="wait=10",
    )
    assert failed.json()["data"]["status"] == "failed"
    entries = await store_of(inst).entries(caller.reseller.id, game_currency)
    mine = [(e.kind.value, e.amount) for e in entries if e.order_id == failed.json()["data"]["id"]]
    assert mine == [("hold", 2 * game), ("release", 2 * game)]


async def test_a_short_delivery_captures_only_the_delivered_units(
    make_instance: Any, picks: Picks, redis_url: str, key_prefix: str, sandboxes: Sandboxes
) -> None:
    """A voucher sandbox that delivers fewer codes than ordered (asynchronous orders,
    above its inline limit of 5)."""
    app = discover()["vouchers"].create_sandbox(
        catalog_size=60,
        seed=7,
        fulfil_delay=0.05,
        rate_limits=GENEROUS_LIMITS["vouchers"],
        partial_delivery_rate=1.0,
    )
    short = BackgroundServer(app).start()
    try:
        suppliers = supplier_settings(sandboxes)
        suppliers["vouchers"].update(discover()["vouchers"].sandbox_settings(short.url))
        inst = await make_instance(enforced(redis_url, key_prefix, sandboxes, suppliers=suppliers))
        caller = await inst.caller()
        price, currency = await unit_price(inst, caller, picks.voucher_fixed)
        await fund(inst, caller.reseller.id, 10 * price, currency)
        response = await create(
            inst,
            caller,
            {"items": [{"variant_id": picks.voucher_fixed, "quantity": 8}]},
            Prefer="wait=15",
        )
        order = response.json()["data"]
        assert order["status"] == "partially_completed", response.text
        delivered = order["items"][0]["delivered_quantity"]
        assert 0 < delivered < 8
        assert await kinds(inst, caller.reseller.id, currency) == [
            ("topup", 10 * price),
            ("hold", 8 * price),
            ("capture", delivered * price),
            ("release", (8 - delivered) * price),
        ]
        account = await check_books(inst, caller.reseller.id, currency)
        assert account.balance == (10 - delivered) * price
    finally:
        short.stop()


async def test_a_part_held_for_review_keeps_its_hold_until_resolved(
    make_instance: Any, picks: Picks, redis_url: str, key_prefix: str, sandboxes: Sandboxes
) -> None:
    inst = await make_instance(enforced(redis_url, key_prefix, sandboxes))
    caller = await inst.caller()
    price, currency = await unit_price(inst, caller, picks.game_keys[4])
    await fund(inst, caller.reseller.id, 3 * price, currency)
    # every create answers 500 after committing and every look-up fails: unknown outcome
    await sandboxes.set_faults("gaming_goods", error_rate=1.0)
    response = await create(
        inst, caller, {"items": [{"variant_id": picks.game_keys[4], "quantity": 1}]}
    )
    order_id = response.json()["data"]["id"]

    async def held() -> bool:
        loaded = await inst.orders.store.load(order_id)
        return loaded.order.parts[0].state.value == "review"

    assert await wait_until(held, 20), "the part was never held"
    account = await store_of(inst).get(caller.reseller.id, currency)
    assert account is not None and account.held == price and account.available == 2 * price
    assert await store_of(inst).open_holds() == 1
    await sandboxes.reset()
    await resolve(inst.orders, order_id, 1, Resolution.FAIL)
    account = await check_books(inst, caller.reseller.id, currency)
    assert account.held == 0 and account.balance == 3 * price
    assert await kinds(inst, caller.reseller.id, currency) == [
        ("topup", 3 * price),
        ("hold", price),
        ("release", price),
    ]
    assert await store_of(inst).open_holds() == 0


async def test_order_and_daily_caps(
    make_instance: Any, picks: Picks, redis_url: str, key_prefix: str, sandboxes: Sandboxes
) -> None:
    inst = await make_instance(enforced(redis_url, key_prefix, sandboxes))
    caller = await inst.caller()
    price, currency = await unit_price(inst, caller, picks.voucher_fixed)
    rid = caller.reseller.id
    await fund(inst, rid, 100 * price, currency)
    await store_of(inst).set_limits(rid, currency, order_cap=2 * price, day_cap=3 * price)
    big = await create(
        inst, caller, {"items": [{"variant_id": picks.voucher_fixed, "quantity": 3}]}
    )
    assert big.status_code == 402
    assert big.json()["error"]["code"] == "order_limit_exceeded"
    assert big.json()["error"]["details"]["limit"] == 2 * price
    two = {"items": [{"variant_id": picks.voucher_fixed, "quantity": 2}]}
    assert (await create(inst, caller, two, Prefer="wait=10")).status_code == 201
    over = await create(inst, caller, two)
    assert over.status_code == 402 and over.json()["error"]["code"] == "daily_limit_exceeded"
    assert over.json()["error"]["details"]["remaining_today"] == price
    one = {"items": [{"variant_id": picks.voucher_fixed, "quantity": 1}]}
    assert (await create(inst, caller, one, Prefer="wait=10")).status_code == 201
    await check_books(inst, rid, currency)


async def test_credit_limit_lets_the_balance_go_negative_down_to_the_limit(
    make_instance: Any, picks: Picks, redis_url: str, key_prefix: str, sandboxes: Sandboxes
) -> None:
    inst = await make_instance(enforced(redis_url, key_prefix, sandboxes))
    caller = await inst.caller()
    price, currency = await unit_price(inst, caller, picks.voucher_fixed)
    rid = caller.reseller.id
    await store_of(inst).set_limits(rid, currency, credit_limit=2 * price)
    one = {"items": [{"variant_id": picks.voucher_fixed, "quantity": 1}]}
    for _ in range(2):
        assert (await create(inst, caller, one, Prefer="wait=10")).status_code == 201
    third = await create(inst, caller, one)
    assert third.status_code == 402 and third.json()["error"]["details"]["available"] == 0
    account = await check_books(inst, rid, currency)
    assert account.balance == -2 * price and account.available == 0


async def test_without_enforcement_a_reseller_without_account_buys_freely(
    make_instance: Any, picks: Picks, redis_url: str, key_prefix: str, sandboxes: Sandboxes
) -> None:
    settings = make_settings(redis_url, key_prefix, sandboxes)  # enforce = false
    inst = await make_instance(settings)
    caller = await inst.caller()
    one = {"items": [{"variant_id": picks.voucher_fixed, "quantity": 1}]}
    response = await create(inst, caller, one, Prefer="wait=10")
    assert response.status_code == 201
    currency = response.json()["data"]["totals"][0]["currency"]
    assert await store_of(inst).get(caller.reseller.id, currency) is None
    # an account, once it exists, is held against even so
    await store_of(inst).set_limits(caller.reseller.id, currency, credit_limit=0)
    refused = await create(inst, caller, one)
    assert refused.status_code == 402
