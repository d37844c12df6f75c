"""Voucher JSON → unified model: ids, exact money, rounding, enums, orders, quotes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from adapters.models import (
    DeliveryMode,
    DeliveryTime,
    Money,
    UpstreamOrderState,
    discounted_cost,
)
from adapters.vouchers import mapping
from adapters.vouchers.mapping import UpstreamDataError

#: The product list example of the supplier's document, parsed as the adapter parses it.
DOC_PRODUCT = json.loads(
    """{
  "id": 123, "name": "Steam Wallet Card", "category": "Gaming",
  "sub_category": "PC Gaming", "country_code": "USA", "currency_code": "USD",
  "image_url": "https://cdn.example.com/steam.png", "delivery_mode": "Code with PIN",
  "delivery_time": "Instant", "validity": "12 months",
  "available_denominations": [
    {"min_value": 50.00, "max_value": 50.00, "discount": 3.5},
    {"min_value": 100.00, "max_value": 100.00, "discount": 3.5}
  ]
}""",
    parse_float=Decimal,
)


def _product(**changes: Any) -> dict[str, Any]:
    return {**DOC_PRODUCT, **changes}


def _denoms(*entries: tuple[Any, Any, Any]) -> list[dict[str, Any]]:
    return [{"min_value": lo, "max_value": hi, "discount": d} for lo, hi, d in entries]


def test_document_example_maps_to_stable_ids_and_exact_costs() -> None:
    product = mapping.product_from_upstream(DOC_PRODUCT)
    assert product.id == "vouchers:123"
    assert (product.supplier, product.upstream_id) == ("vouchers", "123")
    assert (product.country, product.currency) == ("USA", "USD")
    assert (product.category, product.sub_category) == ("Gaming", "PC Gaming")
    assert product.delivery_mode is DeliveryMode.CODE_WITH_PIN
    assert product.delivery_time is DeliveryTime.INSTANT
    assert product.validity == "12 months"
    assert product.brand is None
    assert product.stock is None
    assert [v.id for v in product.variants] == ["vouchers:123:fv5000", "vouchers:123:fv10000"]
    fifty = product.variants[0]
    assert fifty.face_value == Money(amount=5000, currency="USD")
    assert fifty.cost == Money(amount=4825, currency="USD")
    assert fifty.discount_percent == Decimal("3.5")
    assert fifty.name == "50.00 USD"
    assert not fifty.is_range


def test_ids_do_not_depend_on_denomination_order() -> None:
    reordered = _product(
        available_denominations=list(reversed(DOC_PRODUCT["available_denominations"]))
    )
    assert [v.id for v in mapping.product_from_upstream(reordered).variants] == [
        v.id for v in mapping.product_from_upstream(DOC_PRODUCT).variants
    ]


@pytest.mark.parametrize(
    ("face", "currency", "discount", "face_minor", "cost"),
    [
        (Decimal("25.00"), "USD", Decimal("3.5"), 2500, 2413),  # 2412.5 rounds up
        (Decimal("10"), "GBP", Decimal("3.0"), 1000, 970),  # exact: no rounding
        (Decimal("19.99"), "EUR", Decimal("2.5"), 1999, 1950),  # 1949.025 rounds up
        (1000, "JPY", Decimal("3.5"), 1000, 965),  # JPY has no minor unit
        (Decimal("1500"), "JPY", Decimal("2.5"), 1500, 1463),  # 1462.5 rounds up
        (Decimal("2.5"), "BHD", Decimal("1.5"), 2500, 2463),  # three decimals; 2462.5
        (Decimal("50"), "AED", 0, 5000, 5000),
        (50.0, "USD", 3.5, 5000, 4825),  # floats go through their repr, never binary
    ],
)
def test_fixed_denominations_cost_is_rounded_up(
    face: Any, currency: str, discount: Any, face_minor: int, cost: int
) -> None:
    product = mapping.product_from_upstream(
        _product(currency_code=currency, available_denominations=_denoms((face, face, discount)))
    )
    (variant,) = product.variants
    assert variant.id == f"vouchers:123:fv{face_minor}"
    assert variant.face_value == Money(amount=face_minor, currency=currency)
    assert variant.cost == Money(amount=cost, currency=currency)
    assert variant.cost.amount == discounted_cost(face_minor, Decimal(str(discount)))
    # Never below the exact cost, never more than one minor unit above it.
    exact = Decimal(face_minor) * (100 - Decimal(str(discount))) / 100
    assert exact <= variant.cost.amount < exact + 1


def test_range_denominations_become_one_range_variant() -> None:
    product = mapping.product_from_upstream(
        _product(
            currency_code="JPY",
            country_code="JPN",
            available_denominations=_denoms(
                (Decimal("500"), Decimal("50000"), Decimal("4.0")), (1000, 1000, Decimal("3.0"))
            ),
        )
    )
    fixed, ranged = product.variants
    assert fixed.id == "vouchers:123:fv1000"
    assert ranged.id == "vouchers:123:r500-50000"
    assert ranged.is_range
    assert ranged.face_min == Money(amount=500, currency="JPY")
    assert ranged.face_max == Money(amount=50000, currency="JPY")
    assert ranged.discount_percent == Decimal("4.0")
    assert ranged.cost is None and ranged.face_value is None
    assert ranged.name == "500–50000 JPY"

    usd = mapping.product_from_upstream(
        _product(available_denominations=_denoms((Decimal("5.00"), Decimal("500.00"), 2)))
    )
    assert usd.variants[0].id == "vouchers:123:r500-50000"
    assert usd.variants[0].name == "5.00–500.00 USD"


def test_a_face_value_listed_twice_keeps_the_higher_cost() -> None:
    product = mapping.product_from_upstream(
        _product(available_denominations=_denoms((10, 10, Decimal("5")), (10, 10, Decimal("2"))))
    )
    (variant,) = product.variants
    assert variant.discount_percent == Decimal("2")
    assert variant.cost == Money(amount=980, currency="USD")


@pytest.mark.parametrize(
    "changes",
    [
        {"available_denominations": _denoms((Decimal("10.005"), Decimal("10.005"), 1))},
        {"currency_code": "JPY", "available_denominations": _denoms((Decimal("1000.5"),) * 3)},
        {"available_denominations": _denoms((20, 10, 1))},
        {"available_denominations": _denoms((0, 0, 1))},
        {"available_denominations": _denoms((10, 10, 120))},
        {"available_denominations": _denoms((10, 10, -1))},
        {"available_denominations": _denoms(("ten", "ten", 1))},
        {"available_denominations": []},
        {"available_denominations": None},
        {"currency_code": None},
        {"currency_code": "dollars"},
        {"id": 0},
        {"id": "abc"},
        {"id": True},
        {"name": " "},
    ],
)
def test_unrepresentable_products_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(UpstreamDataError):
        mapping.product_from_upstream(_product(**changes))


def test_optional_fields_and_enum_fallbacks() -> None:
    product = mapping.product_from_upstream(
        _product(
            sub_category=None,
            image_url=None,
            validity=None,
            country_code="not-a-code",
            delivery_mode=None,
            delivery_time=None,
        )
    )
    assert product.sub_category is None and product.image_url is None
    assert product.country is None
    assert product.delivery_mode is DeliveryMode.CODE
    assert product.delivery_time is DeliveryTime.DELAYED


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Code with PIN", DeliveryMode.CODE_WITH_PIN),
        ("code WITH pin", DeliveryMode.CODE_WITH_PIN),
        ("URL", DeliveryMode.URL),
        ("Code", DeliveryMode.CODE),
        ("Carrier pigeon", DeliveryMode.CODE),
    ],
)
def test_delivery_modes(value: str, expected: DeliveryMode) -> None:
    assert mapping.map_delivery_mode(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Instant", DeliveryTime.INSTANT), ("Delayed", DeliveryTime.DELAYED), ("soon", "delayed")],
)
def test_delivery_times(value: str, expected: DeliveryTime) -> None:
    assert mapping.map_delivery_time(value) == expected


def test_detail_adds_terms_details_and_how_to_use() -> None:
    detail = mapping.detail_from_upstream(
        _product(terms="Non-refundable.", details="Add funds.", how_to_use="Redeem it."),
        available=False,
    )
    assert (detail.terms, detail.description, detail.how_to_use) == (
        "Non-refundable.",
        "Add funds.",
        "Redeem it.",
    )
    assert detail.available is False
    assert detail.id == "vouchers:123"


@pytest.mark.parametrize(
    ("key", "kind", "low", "high"),
    [("fv5000", "fixed", 5000, 5000), ("r500-50000", "range", 500, 50000)],
)
def test_variant_keys_round_trip(key: str, kind: str, low: int, high: int) -> None:
    parsed = mapping.parse_variant_key(key)
    assert (parsed.kind, parsed.low, parsed.high, parsed.key) == (kind, low, high, key)


@pytest.mark.parametrize("key", ["std", "fv", "fv0", "fv-5", "r5-5", "r50-5", "fv12x", "r5"])
def test_malformed_variant_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError):
        mapping.parse_variant_key(key)


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [(5000, "USD", "50.00"), (1234, "USD", "12.34"), (1000, "JPY", "1000"), (2500, "BHD", "2.500")],
)
def test_minor_units_back_to_major(minor: int, currency: str, text: str) -> None:
    assert mapping.major_of(minor, currency) == Decimal(text)
    assert str(mapping.major_of(minor, currency)) == text


def test_json_numbers_are_exact() -> None:
    assert mapping.json_number(Decimal("50.00")) == 50
    assert isinstance(mapping.json_number(Decimal("50.00")), int)
    assert json.dumps(mapping.json_number(Decimal("12.34"))) == "12.34"
    assert json.dumps(mapping.json_number(Decimal("0.1"))) == "0.1"
    with pytest.raises(ValueError):
        mapping.json_number(Decimal("0.12345678901234567890"))


def test_order_body_carries_the_reference_as_client_reference() -> None:
    body = mapping.order_body(
        product_id=123, denomination=Decimal("12.34"), quantity=2, reference="gw-1", wallet_id=None
    )
    assert body == {
        "product_id": 123,
        "denomination": 12.34,
        "quantity": 2,
        "client_reference": "gw-1",
    }
    with_wallet = mapping.order_body(
        product_id=1, denomination=Decimal("10"), quantity=1, reference="r", wallet_id=7
    )
    assert with_wallet["wallet_id"] == 7


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("PENDING", UpstreamOrderState.PENDING),
        ("DELIVERED", UpstreamOrderState.DELIVERED),
        ("PARTIALLY_DELIVERED", UpstreamOrderState.PARTIALLY_DELIVERED),
        ("FAILED", UpstreamOrderState.FAILED),
        ("CANCELLED", UpstreamOrderState.CANCELLED),
        ("delivered", UpstreamOrderState.DELIVERED),
        ("ON_HOLD", UpstreamOrderState.PENDING),
        (None, UpstreamOrderState.PENDING),
    ],
)
def test_status_mapping(status: Any, state: UpstreamOrderState) -> None:
    assert mapping.map_status(status) is state


ORDER = json.loads(
    """{
  "id": 700001, "product_id": 123, "product_name": "Steam Wallet Card",
  "denomination": 50.0, "quantity": 2, "amount": 96.5, "discount": 3.5,
  "client_reference": "gw-abc", "wallet_id": 1, "status": "DELIVERED",
  "base_currency": "USD", "deduction_currency": "USD", "message": "Order delivered",
  "email": null, "created_at": "2025-01-02T03:04:05.123456Z",
  "vouchers": [
    {"card_number": "1234567890123456", "pin_code": "654321", "claim_url": null,
     "expires_at": "2026-01-02T03:04:05Z", "voucher_reference_number": "VRN-1"},
    {"card_number": null, "pin_code": null, "claim_url": "https://claim.example/r/x",
     "expires_at": null, "voucher_reference_number": "VRN-2"}
  ]
}""",
    parse_float=Decimal,
)


def test_order_maps_state_total_and_codes() -> None:
    order = mapping.order_from_upstream(ORDER)
    assert (order.supplier, order.upstream_id, order.reference) == ("vouchers", "700001", "gw-abc")
    assert order.state is UpstreamOrderState.DELIVERED
    assert order.total == Money(amount=9650, currency="USD")
    assert order.created_at == datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    first, second = order.codes
    assert (first.code, first.pin, first.url, first.serial) == (
        "1234567890123456",
        "654321",
        None,
        "VRN-1",
    )
    assert first.expires_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert (second.code, second.url, second.expires_at) == (
        None,
        "https://claim.example/r/x",
        None,
    )
    assert "1234567890123456" not in repr(order.codes)


def test_converted_order_total_is_in_the_deduction_currency() -> None:
    order = mapping.order_from_upstream(
        {**ORDER, "base_currency": "JPY", "deduction_currency": "EUR", "amount": Decimal("6.05")}
    )
    assert order.total == Money(amount=605, currency="EUR")


def test_pending_order_without_vouchers_and_bad_orders() -> None:
    pending = mapping.order_from_upstream(
        {**ORDER, "status": "PENDING", "vouchers": [], "created_at": "yesterday"}
    )
    assert pending.codes == () and pending.created_at is None
    assert not pending.state.is_final
    with pytest.raises(UpstreamDataError):
        mapping.order_from_upstream({**ORDER, "id": None})
    with pytest.raises(UpstreamDataError):
        mapping.order_from_upstream({**ORDER, "amount": Decimal("96.505")})
    with pytest.raises(UpstreamDataError):
        mapping.order_from_upstream({**ORDER, "vouchers": "codes"})


def test_quote_mapping_in_minor_units() -> None:
    body = json.loads(
        """{"non_discounted_total": 3000, "discount_amount": 105, "total_payable": 19.59,
        "max_quantity": 1000, "charges_details": {"source_currency": "JPY",
        "destination_currency": "USD", "forex_rate": 0.0067, "conversion_fee": 0.19}}""",
        parse_float=Decimal,
    )
    quote = mapping.quote_from_upstream(
        body,
        variant_id="vouchers:9:fv1000",
        quantity=3,
        face_value=Money(amount=1000, currency="JPY"),
    )
    assert quote.face_total == Money(amount=3000, currency="JPY")
    assert quote.discount == Money(amount=105, currency="JPY")
    assert quote.total_payable == Money(amount=1959, currency="USD")
    assert quote.conversion_fee == Money(amount=19, currency="USD")
    assert quote.forex_rate == Decimal("0.0067")
    assert quote.max_quantity == 1000
    with pytest.raises(UpstreamDataError):
        mapping.quote_from_upstream(
            {**body, "total_payable": Decimal("19.591")},
            variant_id="v",
            quantity=3,
            face_value=Money(amount=1000, currency="JPY"),
        )


def test_a_variant_the_unified_model_refuses_is_an_upstream_data_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The model's own shape checks reach the adapter as ``UpstreamDataError`` (its catalog
    loop skips that one product) rather than as a ``ValidationError`` failing the page."""

    def half_range(product_id: str, currency: str, denominations: Any) -> list[dict[str, Any]]:
        only_min = {"amount": 500, "currency": currency}
        return [{"id": f"{product_id}:r500-", "name": "half", "face_min": only_min}]

    monkeypatch.setattr(mapping, "variants_from_denominations", half_range)
    with pytest.raises(UpstreamDataError, match="not a valid unified product"):
        mapping.product_from_upstream(_product())
    with pytest.raises(UpstreamDataError, match="not a valid unified product"):
        mapping.detail_from_upstream(_product())
