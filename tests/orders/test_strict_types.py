"""Money-moving fields take JSON integers only: ``"1"``, ``true`` or ``1.0`` is a 422
``validation_failed`` naming the field, and nothing is stored or bought."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from orders_harness import Picks, Sandboxes

from adapters.models import Product

SUPPLIERS = ("vouchers", "gaming_goods")
NOT_INTEGERS: list[Any] = ["1", True, 1.0, "0x1", None, [1]]


def _quantity(p: Picks, value: Any) -> dict[str, Any]:
    return {"items": [{"variant_id": p.game_key, "quantity": value}]}


def _face_value(p: Picks, value: Any) -> dict[str, Any]:
    money = {"amount": value, "currency": p.voucher_range_currency}
    return {"items": [{"variant_id": p.voucher_range, "quantity": 1, "face_value": money}]}


def _unit_price(p: Picks, value: Any) -> dict[str, Any]:
    money = {"amount": value, "currency": "EUR"}
    return {"items": [{"variant_id": p.game_key, "quantity": 1, "unit_price": money}]}


FIELDS: list[tuple[Callable[[Picks, Any], dict[str, Any]], str, Callable[[Picks], int]]] = [
    (_quantity, "items.0.quantity", lambda p: 1),
    (_face_value, "items.0.face_value.amount", lambda p: p.voucher_range_min),
    (_unit_price, "items.0.unit_price.amount", lambda p: 1),
]


async def _purchases(sandboxes: Sandboxes) -> dict[str, int]:
    return {name: len(await sandboxes.purchases(name)) for name in SUPPLIERS}


@pytest.mark.parametrize(("make_body", "field", "integer"), FIELDS)
async def test_money_moving_fields_refuse_anything_but_integers(
    make_instance: Any,
    sandboxes: Sandboxes,
    picks: Picks,
    make_body: Callable[[Picks, Any], dict[str, Any]],
    field: str,
    integer: Callable[[Picks], int],
) -> None:
    inst = await make_instance()
    caller = await inst.caller()
    before = await _purchases(sandboxes)
    for value in NOT_INTEGERS:
        response = await inst.client.post(
            "/v1/orders",
            json=make_body(picks, value),
            headers={**caller.headers, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert response.status_code == 422, (value, response.text)
        error = response.json()["error"]
        assert error["code"] == "validation_failed", (value, error)
        assert [d["field"] for d in error["details"]] == [field], (value, error)
    listed = await inst.client.get("/v1/orders", headers=caller.headers)
    assert listed.json()["data"]["total"] == 0, "a refused order was stored"
    assert await _purchases(sandboxes) == before, "a refused order reached a supplier"

    # The same body with a JSON integer gets past parsing (it is a valid order, or at
    # worst refused by the catalog checks with their own code, never validation_failed).
    response = await inst.client.post(
        "/v1/orders",
        json=make_body(picks, integer(picks)),
        headers={**caller.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code != 422 or response.json()["error"]["code"] != "validation_failed"


async def test_a_fixed_variants_own_face_value_is_still_accepted(
    make_instance: Any, picks: Picks, products: list[Product]
) -> None:
    """The strict input money compares equal to the catalog's (same amount, currency)."""
    variant = next(v for p in products for v in p.variants if v.id == picks.voucher_fixed)
    assert variant.face_value is not None
    inst = await make_instance(workers=False)
    caller = await inst.caller()
    face = {"amount": variant.face_value.amount, "currency": variant.face_value.currency}
    response = await inst.client.post(
        "/v1/orders",
        json={"items": [{"variant_id": variant.id, "quantity": 1, "face_value": face}]},
        headers={**caller.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    assert response.json()["data"]["items"][0]["face_value"] == face
