"""Orders are checked against the live catalog before anything is bought: every refusal
is a 4xx in the unified error shape, with a stable code, and buys nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from orders_harness import Picks, Sandboxes, static_catalog

from adapters.ids import product_id_of
from adapters.models import Product


async def create(inst: Any, caller: Any, body: Any, **headers: str) -> Any:
    return await inst.client.post(
        "/v1/orders",
        json=body,
        headers={**caller.headers, "Idempotency-Key": str(uuid.uuid4()), **headers},
    )


def range_item(picks: Picks, amount: int | None, currency: str | None = None) -> dict[str, Any]:
    line: dict[str, Any] = {"variant_id": picks.voucher_range, "quantity": 1}
    if amount is not None:
        line["face_value"] = {
            "amount": amount,
            "currency": currency or picks.voucher_range_currency,
        }
    return line


@pytest.fixture
async def setup(make_instance: Any, sandboxes: Sandboxes) -> Any:
    inst = await make_instance()
    caller = await inst.caller()
    before = {name: len(await sandboxes.purchases(name)) for name in ("vouchers", "gaming_goods")}
    yield inst, caller
    after = {name: len(await sandboxes.purchases(name)) for name in ("vouchers", "gaming_goods")}
    listed = await inst.client.get("/v1/orders", headers=caller.headers)
    assert listed.json()["data"]["total"] == 0, "a refused order was stored"
    assert after == before, "a refused order reached a supplier"


@pytest.mark.parametrize(
    ("make_body", "status", "code"),
    [
        (lambda p: {"items": [{"variant_id": "vouchers:999999:fv1", "quantity": 1}]}, 422,
         "variant_not_found"),
        (lambda p: {"items": [{"variant_id": "nobody:1:std", "quantity": 1}]}, 422,
         "variant_not_found"),
        (lambda p: {"items": [range_item(p, None)]}, 422, "face_value_required"),
        (lambda p: {"items": [range_item(p, p.voucher_range_max + 1)]}, 422,
         "face_value_out_of_range"),
        (lambda p: {"items": [range_item(p, p.voucher_range_min - 1)]}, 422,
         "face_value_out_of_range"),
        (lambda p: {"items": [range_item(p, p.voucher_range_min, "XXX")]}, 422,
         "currency_mismatch"),
        (lambda p: {"items": [{"variant_id": p.voucher_fixed, "quantity": 1,
                               "face_value": {"amount": 1, "currency": "EUR"}}]}, 422,
         "face_value_not_allowed"),
        (lambda p: {"items": [{"variant_id": p.voucher_fixed, "quantity": 101}]}, 422,
         "quantity_out_of_range"),
        (lambda p: {"items": [{"variant_id": p.voucher_fixed, "quantity": 1}] * 51}, 422,
         "too_many_items"),
        (lambda p: {"items": [{"variant_id": p.voucher_fixed, "quantity": 0}]}, 422,
         "validation_failed"),
        (lambda p: {"items": []}, 422, "validation_failed"),
        (lambda p: {"items": [{"variant_id": p.voucher_fixed, "quantity": 1}], "extra": 1}, 422,
         "validation_failed"),
        (lambda p: {"items": [{"variant_id": p.game_key, "quantity": 1,
                               "unit_price": {"amount": 1, "currency": "EUR"}}]}, 409,
         "price_changed"),
        (lambda p: {"items": [{"variant_id": p.game_key, "quantity": 1,
                               "unit_price": {"amount": 10**9, "currency": "USD"}}]}, 422,
         "currency_mismatch"),
    ],
)  # fmt: skip
async def test_invalid_orders_are_refused_before_anything_is_bought(
    setup: Any, picks: Picks, make_body: Any, status: int, code: str
) -> None:
    inst, caller = setup
    response = await create(inst, caller, make_body(picks))
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["request_id"] and error["message"]


async def test_every_problem_is_listed_and_price_changed_shows_the_current_price(
    setup: Any, picks: Picks
) -> None:
    inst, caller = setup
    body = {
        "items": [
            {"variant_id": picks.voucher_fixed, "quantity": 1},
            {
                "variant_id": picks.game_key,
                "quantity": 1,
                "unit_price": {"amount": 1, "currency": "EUR"},
            },
            {"variant_id": "vouchers:1:nope", "quantity": 1},
        ]
    }
    response = await create(inst, caller, body)
    error = response.json()["error"]
    assert response.status_code == 422 and error["code"] == "variant_not_found"
    codes = {d["item"]: d["code"] for d in error["details"]}
    assert codes == {1: "price_changed", 2: "variant_not_found"}
    changed = next(d for d in error["details"] if d["code"] == "price_changed")
    assert changed["seen"] == {"amount": 1, "currency": "EUR"}
    assert changed["current"]["amount"] > 1


async def test_out_of_stock_is_409(setup: Any, picks: Picks, products: list[Product]) -> None:
    inst, caller = setup
    gone = product_id_of(picks.game_key)
    low = product_id_of(picks.game_keys[1])
    changed = [
        p.model_copy(update={"available": False}) if p.id == gone
        else p.model_copy(update={"stock": 2}) if p.id == low
        else p
        for p in products
    ]  # fmt: skip
    inst.orders.catalog = static_catalog(changed)
    unavailable = await create(
        inst, caller, {"items": [{"variant_id": picks.game_key, "quantity": 1}]}
    )
    assert unavailable.status_code == 409
    assert unavailable.json()["error"]["code"] == "out_of_stock"
    # two lines of the same product count together against its stock
    too_many = await create(
        inst, caller, {"items": [{"variant_id": picks.game_keys[1], "quantity": 2}] * 2}
    )
    assert too_many.status_code == 409
    assert too_many.json()["error"]["details"][0]["in_stock"] == 2


async def test_malformed_requests(setup: Any) -> None:
    inst, caller = setup
    headers = {**caller.headers, "Idempotency-Key": "k1"}
    not_json = await inst.client.post(
        "/v1/orders", content=b"{oops", headers={**headers, "Content-Type": "application/json"}
    )
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "malformed_json"
    wrong_type = await inst.client.post(
        "/v1/orders", content=b"items=1", headers={**headers, "Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415


async def test_catalog_not_loaded_is_503(setup: Any, picks: Picks, products: list[Product]) -> None:
    inst, caller = setup
    from gateway.orders.ports import PricedCatalog
    from gateway.pricing import MarkupRule, PriceList

    inst.orders.catalog = PricedCatalog(
        find=lambda _id: None, prices=PriceList(MarkupRule()), ready=lambda: False
    )
    response = await create(
        inst, caller, {"items": [{"variant_id": picks.game_key, "quantity": 1}]}
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "catalog_not_ready"
    assert response.headers["retry-after"]


async def test_a_lower_current_price_is_accepted_and_charged(
    make_instance: Any, picks: Picks
) -> None:
    inst = await make_instance()
    caller = await inst.caller()
    body = {
        "items": [
            {
                "variant_id": picks.voucher_fixed,
                "quantity": 1,
                "unit_price": {"amount": 10**7, "currency": "EUR"},
            }
        ]
    }
    response = await create(inst, caller, body, Prefer="wait=5")
    assert response.status_code == 201, response.text
    assert response.json()["data"]["items"][0]["unit_price"]["amount"] < 10**7
