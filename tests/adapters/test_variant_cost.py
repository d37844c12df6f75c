"""``Variant.unit_cost``, the one cost rule the catalog lists by and orders are charged by,
and the validator that refuses the variant shapes on which that rule would be ambiguous."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.models import Money, Product, Variant
from gateway.catalog.records import variant_cost
from gateway.orders.ports import PricedCatalog
from gateway.pricing import MarkupRule, PriceList


def usd(amount: int) -> Money:
    return Money(amount=amount, currency="USD")


def variant(**fields: Any) -> Variant:
    return Variant(id="vouchers:1:x", name="x", **fields)


GAME_KEY = variant(cost=usd(1999))
FIXED = variant(cost=usd(4825), face_value=usd(5000), discount_percent=Decimal("3.5"))
FACE_ONLY = variant(face_value=usd(999), discount_percent=Decimal("3.5"))
RANGE = variant(face_min=usd(500), face_max=usd(10000), discount_percent=Decimal("3.5"))


# ------------------------------------------------------------------ unit_cost


def test_a_stated_cost_wins() -> None:
    assert GAME_KEY.unit_cost() == usd(1999)
    # Even where the face less the discount would differ: the supplier's word is the cost.
    assert variant(cost=usd(1), face_value=usd(5000), discount_percent=1).unit_cost() == usd(1)


def test_a_face_value_without_cost_is_discounted_and_rounded_up() -> None:
    # 999 × 0.965 = 964.035 → 965: over-estimating the cost by less than a cent is what
    # keeps a price computed from it from ever selling below cost.
    assert FACE_ONLY.unit_cost() == usd(965)
    assert variant(face_value=usd(999)).unit_cost() == usd(999)  # no discount means none
    assert variant(face_value=usd(1000), discount_percent=Decimal("12.5")).unit_cost() == usd(
        875
    )  # exact: no rounding


def test_a_fixed_variant_is_costed_at_its_own_face_only() -> None:
    assert FIXED.unit_cost(usd(5000)) == usd(4825)
    with pytest.raises(ValueError, match="fixed variant"):
        FIXED.unit_cost(usd(2500))
    with pytest.raises(ValueError, match="fixed variant"):
        GAME_KEY.unit_cost(usd(1999))


def test_a_variant_with_nothing_to_price_from_has_no_cost() -> None:
    assert variant().unit_cost() is None


def test_a_range_is_costed_at_the_face_chosen() -> None:
    assert RANGE.unit_cost() is None  # no face chosen: no cost
    assert RANGE.unit_cost(usd(500)) == usd(483)  # 482.5 rounded up
    assert RANGE.unit_cost(usd(2999)) == usd(2895)  # 2894.035 rounded up
    assert RANGE.unit_cost(usd(10000)) == usd(9650)
    assert variant(face_min=usd(500), face_max=usd(900)).unit_cost(usd(777)) == usd(777)


@pytest.mark.parametrize(
    "face",
    [usd(499), usd(10001), Money(amount=1000, currency="EUR")],
    ids=["below", "above", "other-currency"],
)
def test_a_range_refuses_a_face_outside_it(face: Money) -> None:
    with pytest.raises(ValueError, match=re.escape("outside 500..10000 USD")):
        RANGE.unit_cost(face)


def test_listing_and_ordering_both_price_by_unit_cost() -> None:
    """The catalog lists a range at ``face_min``; an order at that face costs the same."""
    prices = PriceList(MarkupRule(percent=Decimal("10")))
    product = Product(
        id="vouchers:1",
        supplier="vouchers",
        upstream_id="1",
        name="Gift card",
        currency="USD",
        variants=(FIXED, FACE_ONLY, RANGE, GAME_KEY),
    )
    catalog = PricedCatalog(find=lambda _id: product, prices=prices)
    rule = prices.rule_for("vouchers", None, None)
    assert variant_cost(RANGE) == (483, "USD")
    assert catalog.unit_price(product, RANGE, usd(500), None) == usd(rule.apply(483))
    assert catalog.unit_price(product, RANGE, None, None) is None
    for fixed in (FIXED, FACE_ONLY, GAME_KEY):
        listed = variant_cost(fixed)
        assert listed is not None
        ordered = catalog.unit_price(product, fixed, fixed.face_value, None)
        assert ordered == Money(amount=rule.apply(listed[0]), currency=listed[1])
    assert variant_cost(variant()) is None


# ------------------------------------------------------------------ the validator


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"face_min": usd(500)}, "needs both face_min and face_max"),
        ({"face_max": usd(500)}, "needs both face_min and face_max"),
        (
            {"face_min": usd(500), "face_max": usd(1000), "cost": usd(480)},
            "range variant has no fixed cost",
        ),
        (
            {"face_min": usd(500), "face_max": usd(1000), "face_value": usd(500)},
            "either face_value or face_min/face_max",
        ),
        (
            {"face_min": usd(500), "face_max": Money(amount=1000, currency="EUR")},
            "face_min is in USD but face_max in EUR",
        ),
        ({"face_min": usd(1000), "face_max": usd(500)}, "face_min 1000 is above face_max 500"),
        ({"cost": usd(-1)}, "cost -1 USD is negative"),
        ({"face_value": usd(-100)}, "face_value -100 USD is negative"),
        ({"face_min": usd(-100), "face_max": usd(100)}, "face_min -100 USD is negative"),
        ({"face_value": usd(100), "discount_percent": Decimal("-0.5")}, "outside 0..100"),
        ({"face_value": usd(100), "discount_percent": Decimal("100.01")}, "outside 0..100"),
    ],
)
def test_malformed_shapes_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        variant(**fields)


def test_a_non_finite_discount_is_refused() -> None:
    with pytest.raises(ValidationError):
        variant(face_value=usd(100), discount_percent="NaN")


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"cost": usd(0)},
        {"face_value": usd(0), "discount_percent": Decimal(0)},
        {"face_value": usd(100), "discount_percent": Decimal(100)},
        {"face_min": usd(500), "face_max": usd(500)},  # a one-value range is still a range
        {"cost": Money(amount=90, currency="EUR"), "face_value": usd(100)},
    ],
)
def test_edge_shapes_that_are_well_formed_are_accepted(fields: dict[str, Any]) -> None:
    variant(**fields)


def test_a_malformed_variant_cannot_slip_into_a_product_from_json() -> None:
    """Snapshots are decoded with ``validate_json``: the validator runs there too."""
    body = {
        "id": "vouchers:1",
        "supplier": "vouchers",
        "upstream_id": "1",
        "name": "x",
        "currency": "USD",
        "variants": [
            {
                "id": "vouchers:1:r1-2",
                "name": "x",
                "face_min": {"amount": 2, "currency": "USD"},
                "face_max": {"amount": 1, "currency": "USD"},
            }
        ],
    }
    with pytest.raises(ValidationError, match="above face_max"):
        Product.model_validate(body)
