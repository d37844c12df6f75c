"""Pure mapping of Partner API payloads into the unified model, and error classification."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from adapters.errors import (
    AuthenticationError,
    FatalError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    RetriableError,
)
from adapters.gaming_goods import GamingGoodsAdapter, GamingGoodsSettings
from adapters.gaming_goods import mapping as m
from adapters.models import DeliveryMode, DeliveryTime, Money, OrderLine, UpstreamOrderState

PID = "a1b2c3d4-0000-4000-8000-000000000001"

# The document's "Partner: Product catalog" item.
ITEM: dict[str, Any] = {
    "id": PID,
    "title": "Cyberpunk 2077 Steam Key",
    "brand": "CD Projekt",
    "category": "Game Keys",
    "price": 1999,
    "currency": "EUR",
    "quantity": 12,
    "is_available": True,
    "delivery_type": "EXTERNAL",
    "product_type": "KINGUIN",
    "images": ["https://gaming-goods.ru/a.jpg", "https://gaming-goods.ru/b.jpg"],
    "short_description": "",
}

# The document's "Partner: Order detail".
DETAIL: dict[str, Any] = {
    "id": "e5f6a7b8-0000-4000-8000-000000000002",
    "buyer_id": "c3d4e5f6-...",
    "status": "completed",
    "items": [
        {"product_id": PID, "title": "Cyberpunk 2077 Steam Key", "unit_price": 1999, "quantity": 1}
    ],
    "amounts": {"buyer_total": 1999, "platform_fee": 0},
    "payment": {"method": "balance", "state": "paid"},
    "delivery": {"type": "EXTERNAL", "codes": ["AAAAA-BBBBB-CCCCC"]},
    "created_at": "2026-03-14T12:00:00Z",
    "updated_at": "2026-03-14T12:00:05Z",
}


def test_list_item_maps_to_a_product_with_one_std_variant() -> None:
    product = m.product_from_item(ITEM)
    assert product.id == f"gaming_goods:{PID}"
    assert (product.supplier, product.upstream_id) == ("gaming_goods", PID)
    assert product.name == "Cyberpunk 2077 Steam Key"
    assert (product.brand, product.category) == ("CD Projekt", "Game Keys")
    assert product.image_url == "https://gaming-goods.ru/a.jpg"
    assert (product.stock, product.available) == (12, True)
    assert product.delivery_mode is DeliveryMode.CODE
    assert product.delivery_time is DeliveryTime.INSTANT
    assert product.short_description is None
    (variant,) = product.variants
    assert variant.id == f"gaming_goods:{PID}:std"
    assert variant.cost == Money(amount=1999, currency="EUR")


def test_out_of_stock_item_is_unavailable_and_imageless_is_fine() -> None:
    product = m.product_from_item({**ITEM, "quantity": 0, "is_available": False, "images": []})
    assert (product.stock, product.available, product.image_url) == (0, False, None)
    # Without is_available, availability follows the quantity.
    inferred = {k: v for k, v in ITEM.items() if k != "is_available"}
    assert m.product_from_item({**inferred, "quantity": 0}).available is False


def test_missing_currency_means_euro_cents() -> None:
    item = {k: v for k, v in ITEM.items() if k != "currency"}
    assert m.product_from_item(item).variants[0].cost == Money(amount=1999, currency="EUR")


@pytest.mark.parametrize(
    "change",
    [
        {"price": 19.99},  # the v1 API's euros: never guessed into cents
        {"price": "1999"},
        {"price": True},
        {"price": -1},
        {"price": None},
        {"currency": "euro"},
        {"id": ""},
        {"title": None},
    ],
)
def test_malformed_items_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(m.MappingError):
        m.product_from_item({**ITEM, **change})


def test_detail_adds_description_specifications_and_activation() -> None:
    body = {
        **ITEM,
        "description": "Open-world action-adventure...",
        "specifications": [
            {"key": "platform", "value": "Steam"},
            {"key": "region", "value": "Global"},
            {"key": "activation", "value": "Activate a Product on Steam"},
            {"key": "", "value": "dropped"},
            "junk",
        ],
    }
    detail = m.product_detail_from_body(body)
    assert detail.description == "Open-world action-adventure..."
    assert [(s.key, s.value) for s in detail.specifications] == [
        ("platform", "Steam"),
        ("region", "Global"),
        ("activation", "Activate a Product on Steam"),
    ]
    assert detail.activation_details == "Activate a Product on Steam"
    assert detail.variants == m.product_from_item(ITEM).variants


def test_activation_details_from_v1_style_meta() -> None:
    body = {**ITEM, "meta": {"activation_details": "Redeem in the store"}}
    assert m.product_detail_from_body(body).activation_details == "Redeem in the store"
    assert m.product_detail_from_body(ITEM).activation_details is None


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("created", UpstreamOrderState.PENDING),
        ("pending", UpstreamOrderState.PENDING),
        ("pending_payment", UpstreamOrderState.PENDING),
        ("processing", UpstreamOrderState.PENDING),
        ("paid", UpstreamOrderState.PENDING),
        ("completed", UpstreamOrderState.DELIVERED),
        ("COMPLETED", UpstreamOrderState.DELIVERED),
        ("failed", UpstreamOrderState.FAILED),
        ("cancelled", UpstreamOrderState.CANCELLED),
        ("canceled", UpstreamOrderState.CANCELLED),
        ("refunded", UpstreamOrderState.CANCELLED),
        ("on_hold", None),
    ],
)
def test_status_table(status: str, state: UpstreamOrderState | None) -> None:
    assert m.order_state(status) is state


def test_completed_detail_is_delivered_with_codes() -> None:
    order = m.order_from_detail(DETAIL, reference="ref-1")
    assert order.state is UpstreamOrderState.DELIVERED
    assert order.upstream_id == DETAIL["id"] and order.reference == "ref-1"
    assert order.total == Money(amount=1999, currency="EUR")
    assert [c.code for c in order.codes] == ["AAAAA-BBBBB-CCCCC"]
    assert order.codes[0].variant_id == f"gaming_goods:{PID}:std"
    assert order.created_at == datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
    assert "AAAAA" not in repr(order.codes)  # codes never reach logs


def test_completed_with_fewer_codes_than_units_is_partial() -> None:
    body = {**DETAIL, "items": [{**DETAIL["items"][0], "quantity": 2}]}
    order = m.order_from_detail(body)
    assert order.state is UpstreamOrderState.PARTIALLY_DELIVERED
    assert len(order.codes) == 1 and "1 of 2" in (order.message or "")


def test_codes_of_a_multi_product_order_carry_no_variant() -> None:
    other = {"product_id": "other", "title": "x", "unit_price": 100, "quantity": 1}
    body = {
        **DETAIL,
        "items": [*DETAIL["items"], other],
        "delivery": {"type": "EXTERNAL", "codes": ["A", "B"]},
    }
    order = m.order_from_detail(body)
    assert order.state is UpstreamOrderState.DELIVERED
    assert [c.variant_id for c in order.codes] == [None, None]


def test_codes_are_not_passed_on_before_completion() -> None:
    order = m.order_from_detail({**DETAIL, "status": "created"})
    assert order.state is UpstreamOrderState.PENDING and order.codes == ()


def test_failed_and_unknown_statuses() -> None:
    failed = m.order_from_detail({**DETAIL, "status": "failed", "delivery": {"codes": []}})
    assert failed.state is UpstreamOrderState.FAILED and failed.codes == () and failed.message
    odd = m.order_from_detail({**DETAIL, "status": "on_hold"})
    assert odd.state is UpstreamOrderState.PENDING and "on_hold" in (odd.message or "")


def test_total_falls_back_to_top_level_total() -> None:
    body = {k: v for k, v in DETAIL.items() if k != "amounts"}
    assert m.order_from_detail({**body, "total": 500}).total == Money(amount=500, currency="EUR")
    assert m.order_from_detail(body).total is None


def test_checkout_answer_order_is_pending() -> None:
    order = m.order_from_summary(
        {"id": "o1", "status": "created", "total": 1999, "currency": "EUR"}, reference="r"
    )
    assert (order.state, order.total, order.reference) == (
        UpstreamOrderState.PENDING,
        Money(amount=1999, currency="EUR"),
        "r",
    )
    # "completed" without its codes is not delivered yet for the reseller.
    done = m.order_from_summary({"id": "o1", "status": "completed", "total": 1})
    assert done.state is UpstreamOrderState.PENDING


def test_checkout_lines_merge_repeated_variants_in_order() -> None:
    lines = [
        OrderLine(variant_id="gaming_goods:p1:std", quantity=1),
        OrderLine(variant_id="gaming_goods:p2:std", quantity=2),
        OrderLine(variant_id="gaming_goods:p1:std", quantity=3),
    ]
    assert m.checkout_lines(lines) == [
        {"product_id": "p1", "quantity": 4},
        {"product_id": "p2", "quantity": 2},
    ]
    assert m.checkout_body(m.checkout_lines(lines[:1])) == {
        "source": "lines",
        "lines": [{"product_id": "p1", "quantity": 1}],
    }


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (OrderLine(variant_id="vouchers:1:fv500", quantity=1), NotFoundError),
        (OrderLine(variant_id="gaming_goods:p1:fv500", quantity=1), NotFoundError),
        (OrderLine(variant_id="gaming_goods:p1", quantity=1), NotFoundError),
        (
            OrderLine(
                variant_id="gaming_goods:p1:std",
                quantity=1,
                face_value=Money(amount=500, currency="EUR"),
            ),
            FatalError,
        ),
    ],
)
def test_checkout_lines_refuse_foreign_variants_and_face_values(
    line: OrderLine, error: type[Exception]
) -> None:
    with pytest.raises(error):
        m.checkout_lines([line])


def test_order_items_add_up_units_per_product() -> None:
    body = {
        "items": [
            {"product_id": "p1", "quantity": 1},
            {"product_id": "p2", "quantity": 2},
            {"product_id": "p1", "quantity": 2},
        ]
    }
    assert m.order_items(body) == {"p1": 3, "p2": 2}
    with pytest.raises(m.MappingError):
        m.order_items({"items": [{"product_id": "p1"}]})


def test_checkout_orders_shape() -> None:
    assert m.checkout_orders({"orders": [{"id": "x"}]}) == [{"id": "x"}]
    for bad in ({}, {"orders": {}}, {"orders": [{"status": "created"}]}, []):
        with pytest.raises(m.MappingError):
            m.checkout_orders(bad)


def test_timestamps() -> None:
    assert m.parse_timestamp("2026-03-14T12:00:00") == datetime(2026, 3, 14, 12, tzinfo=UTC)
    assert m.parse_timestamp(None) is None
    with pytest.raises(m.MappingError):
        m.parse_timestamp("yesterday")


# ------------------------------------------------------------ error classification


@pytest.fixture
def adapter() -> GamingGoodsAdapter:
    settings = GamingGoodsSettings(base_url="https://gg.example/api/partner/v1", api_key="k")
    return GamingGoodsAdapter(settings, http=httpx.AsyncClient(), redis=None)


def answer(
    status: int,
    code: str | None,
    *,
    method: str = "GET",
    path: str = "/products",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body = {"error": {"code": code, "message": "m"}} if code else {}
    request = httpx.Request(method, f"https://gg.example/api/partner/v1{path}")
    return httpx.Response(status, json=body, headers=headers, request=request)


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (answer(409, "out_of_stock", method="POST", path="/checkout"), RejectedError),
        (answer(400, "invalid_request", method="POST", path="/checkout"), RejectedError),
        (answer(400, "invalid_request"), FatalError),
        (answer(422, "idempotency_conflict", method="POST", path="/checkout"), FatalError),
        (answer(401, "unauthorized"), AuthenticationError),
        (answer(403, None), AuthenticationError),
        (answer(404, "not_found"), NotFoundError),
        (answer(500, "internal_error"), RetriableError),
        (answer(503, None), RetriableError),
        (answer(429, "rate_limited"), RateLimitedError),
    ],
)
def test_classify_response(
    adapter: GamingGoodsAdapter, response: httpx.Response, error: type[Exception]
) -> None:
    classified = adapter.classify_response(response)
    assert type(classified) is error
    assert classified is not None and classified.supplier == "gaming_goods"


def test_success_is_not_an_error(adapter: GamingGoodsAdapter) -> None:
    assert adapter.classify_response(httpx.Response(200, json={})) is None


def test_rate_limited_waits_as_told(adapter: GamingGoodsAdapter) -> None:
    told = adapter.classify_response(answer(429, "rate_limited", headers={"Retry-After": "7"}))
    assert isinstance(told, RateLimitedError) and told.retry_after == 7
    reset = str(int(datetime.now(UTC).timestamp()) + 30)
    by_reset = adapter.classify_response(
        answer(429, "rate_limited", headers={"X-RateLimit-Reset": reset})
    )
    assert isinstance(by_reset, RateLimitedError)
    assert by_reset.retry_after is not None and 25 <= by_reset.retry_after <= 30


def test_settings_validate_paths_and_page_size() -> None:
    base = {"base_url": "https://gg.example", "api_key": "pk_live_s3cr3t"}
    with pytest.raises(ValueError, match="100"):
        GamingGoodsSettings(**base, page_size=101)
    with pytest.raises(ValueError, match="id"):
        GamingGoodsSettings(**base, product_path="/products/")
    with pytest.raises(ValueError, match="start with"):
        GamingGoodsSettings(**base, checkout_path="checkout")
    with pytest.raises(ValueError, match="api_key"):
        GamingGoodsSettings(base_url="https://gg.example")
    settings = GamingGoodsSettings(**base)
    assert "s3cr3t" not in repr(settings)  # the key is a SecretStr
