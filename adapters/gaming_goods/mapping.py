"""Pure translations between the Gaming Goods Partner API and the unified model. No I/O.

Money: the Partner API states prices as integer euro cents (``"price": 1999``), which is
already the unified model's minor unit, so no rounding ever happens here. A price that is
not an integer (the v1 API's ``19.99`` style) is refused with ``MappingError`` rather than
guessed at: a guessed price is how a reseller sells below cost. A missing ``currency``
means EUR, the only currency the Partner document names.

Ids: product ``gaming_goods:<uuid>``; the one variant ``gaming_goods:<uuid>:std`` (a game
key or gift card here is a single SKU at a fixed price).

Order statuses (the document shows ``created`` and ``completed``; the others are the
platform's usual vocabulary, mapped so that nothing unknown is ever taken as final):

==========================================  ========================================
upstream ``status``                         unified ``UpstreamOrderState``
==========================================  ========================================
created, pending, pending_payment,          PENDING
processing, paid
completed                                   DELIVERED (PARTIALLY_DELIVERED when it
                                            carries fewer codes than units ordered)
failed                                      FAILED
cancelled, canceled, refunded               CANCELLED
anything else                               PENDING, with a message naming the status
==========================================  ========================================
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters import ids
from adapters.errors import FatalError, NotFoundError
from adapters.models import (
    Code,
    DeliveryMode,
    DeliveryTime,
    Money,
    OrderLine,
    Product,
    ProductDetail,
    Specification,
    UpstreamOrder,
    UpstreamOrderState,
    Variant,
)

SUPPLIER = "gaming_goods"
VARIANT_KEY = "std"
DEFAULT_CURRENCY = "EUR"

_STATES: dict[str, UpstreamOrderState] = {
    "created": UpstreamOrderState.PENDING,
    "pending": UpstreamOrderState.PENDING,
    "pending_payment": UpstreamOrderState.PENDING,
    "processing": UpstreamOrderState.PENDING,
    "paid": UpstreamOrderState.PENDING,
    "completed": UpstreamOrderState.DELIVERED,
    "failed": UpstreamOrderState.FAILED,
    "cancelled": UpstreamOrderState.CANCELLED,
    "canceled": UpstreamOrderState.CANCELLED,
    "refunded": UpstreamOrderState.CANCELLED,
}
#: Specification keys that carry activation instructions, in order of preference.
_ACTIVATION_KEYS = ("activation_details", "activation", "activation_instructions")


class MappingError(ValueError):
    """An upstream payload that does not have the documented shape."""


# ----------------------------------------------------------------- products


def product_from_item(item: Any, *, supplier: str = SUPPLIER) -> Product:
    """One ``GET /products`` item → ``Product``."""
    return Product(**_product_fields(item, supplier))


def product_detail_from_body(body: Any, *, supplier: str = SUPPLIER) -> ProductDetail:
    """A ``GET /products/{id}`` body → ``ProductDetail``.

    ``activation_details`` comes from a top-level ``activation_details`` field, the v1
    style ``meta.activation_details``, or a specification keyed ``activation_details`` /
    ``activation`` / ``activation_instructions``, in that order.
    """
    fields = _product_fields(body, supplier)
    specifications = tuple(_specifications(body.get("specifications")))
    return ProductDetail(
        **fields,
        description=_text(body.get("description")),
        activation_details=_activation(body, specifications),
        specifications=specifications,
    )


def _product_fields(item: Any, supplier: str) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise MappingError(f"product is not an object: {type(item).__name__}")
    upstream_id = _required_text(item, "id")
    title = _required_text(item, "title")
    currency = _currency(item.get("currency"))
    price = _cents(item.get("price"), "price")
    quantity = item.get("quantity")
    stock = quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else None
    if stock is not None and stock < 0:
        stock = 0
    available = item.get("is_available")
    if not isinstance(available, bool):
        available = stock is None or stock > 0
    images = item.get("images")
    image = next((i for i in images if isinstance(i, str) and i), None) if images else None
    return {
        "id": ids.product_id(supplier, upstream_id),
        "supplier": supplier,
        "upstream_id": upstream_id,
        "name": title,
        "brand": _text(item.get("brand")),
        "category": _text(item.get("category")),
        "currency": currency,
        "image_url": image,
        "delivery_mode": DeliveryMode.CODE,
        "delivery_time": DeliveryTime.INSTANT,
        "stock": stock,
        "available": available,
        "short_description": _text(item.get("short_description")),
        "variants": (
            Variant(
                id=ids.variant_id(supplier, upstream_id, VARIANT_KEY),
                name=title,
                cost=Money(amount=price, currency=currency),
            ),
        ),
    }


def _specifications(raw: Any) -> Iterable[Specification]:
    if not isinstance(raw, list):
        return
    for entry in raw:
        if isinstance(entry, Mapping) and entry.get("key") not in (None, ""):
            value = entry.get("value")
            if value is not None:
                yield Specification(key=str(entry["key"]), value=str(value))


def _activation(body: Mapping[str, Any], specs: Sequence[Specification]) -> str | None:
    direct = _text(body.get("activation_details"))
    if direct:
        return direct
    meta = body.get("meta")
    if isinstance(meta, Mapping) and _text(meta.get("activation_details")):
        return _text(meta.get("activation_details"))
    by_key = {spec.key.lower(): spec.value for spec in specs}
    return next((by_key[k] for k in _ACTIVATION_KEYS if by_key.get(k)), None)


# ------------------------------------------------------------------- orders


def checkout_lines(lines: Sequence[OrderLine], *, supplier: str = SUPPLIER) -> list[dict[str, Any]]:
    """Unified order lines → the checkout's ``lines``, one per product (quantities of
    repeated variants are added up, in first-seen order).

    Raises ``NotFoundError`` for a variant id that is not one of ours and ``FatalError``
    for a face value (these products have fixed prices).
    """
    totals: dict[str, int] = {}
    for line in lines:
        ref = ids.parse_variant_id(line.variant_id)
        if ref is None or ref.supplier != supplier or ref.key != VARIANT_KEY:
            raise NotFoundError(
                f"{line.variant_id!r} is not a {supplier} variant", supplier=supplier
            )
        upstream_id = ref.upstream_id
        if line.face_value is not None:
            raise FatalError(
                f"{line.variant_id}: {supplier} products have a fixed price; "
                "a face value cannot be chosen",
                supplier=supplier,
            )
        totals[upstream_id] = totals.get(upstream_id, 0) + line.quantity
    return [{"product_id": pid, "quantity": qty} for pid, qty in totals.items()]


def checkout_body(lines: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``POST /checkout`` body for explicit lines (never ``"cart"``: the gateway does
    not keep an upstream cart)."""
    return {"source": "lines", "lines": [dict(line) for line in lines]}


def checkout_orders(body: Any) -> list[Mapping[str, Any]]:
    """The ``orders`` of a checkout answer; ``MappingError`` when the shape is wrong."""
    orders = body.get("orders") if isinstance(body, Mapping) else None
    if not isinstance(orders, list) or not all(isinstance(o, Mapping) for o in orders):
        raise MappingError("checkout answer has no 'orders' list")
    for order in orders:
        _required_text(order, "id")
    return orders


def order_state(status: str) -> UpstreamOrderState | None:
    """The unified state of an upstream status; ``None`` for a status we do not know."""
    return _STATES.get(status.strip().lower())


def order_from_summary(
    item: Any, *, reference: str | None = None, supplier: str = SUPPLIER
) -> UpstreamOrder:
    """A checkout answer's order or an order-list item (no codes in either) →
    ``UpstreamOrder``. A ``completed`` summary stays PENDING here: only the detail holds
    the codes, and a delivered order without its codes is useless to a reseller."""
    if not isinstance(item, Mapping):
        raise MappingError("order is not an object")
    status = _required_text(item, "status")
    state, message = _state_and_message(status)
    if state in (UpstreamOrderState.DELIVERED, UpstreamOrderState.PARTIALLY_DELIVERED):
        state, message = UpstreamOrderState.PENDING, "completed upstream; codes not fetched yet"
    return UpstreamOrder(
        supplier=supplier,
        upstream_id=_required_text(item, "id"),
        reference=reference,
        state=state,
        total=_total(item, item.get("total")),
        message=message,
        created_at=parse_timestamp(item.get("created_at")),
    )


def order_from_detail(
    body: Any, *, reference: str | None = None, supplier: str = SUPPLIER
) -> UpstreamOrder:
    """A ``GET /orders/{id}`` body → ``UpstreamOrder`` with codes once completed.

    ``delivery.codes`` is one list for the whole order; each becomes ``Code(code=...)``,
    tagged with the variant when the order holds a single product (otherwise the upstream
    does not say which code belongs to which line). Codes of an order that is not
    ``completed`` are not passed on.
    """
    if not isinstance(body, Mapping):
        raise MappingError("order detail is not an object")
    status = _required_text(body, "status")
    state, message = _state_and_message(status)
    items = order_items(body)
    units = sum(items.values())
    amounts = body.get("amounts")
    raw_total = amounts.get("buyer_total") if isinstance(amounts, Mapping) else None
    if raw_total is None:
        raw_total = body.get("total")
    delivery = body.get("delivery")
    raw_codes = delivery.get("codes") if isinstance(delivery, Mapping) else None
    codes: tuple[Code, ...] = ()
    if state is UpstreamOrderState.DELIVERED:
        texts = [c for c in raw_codes or () if isinstance(c, str) and c]
        variant = f"{supplier}:{next(iter(items))}:{VARIANT_KEY}" if len(items) == 1 else None
        codes = tuple(Code(code=text, variant_id=variant) for text in texts)
        if len(codes) < units:
            state = UpstreamOrderState.PARTIALLY_DELIVERED
            message = f"upstream completed the order with {len(codes)} of {units} codes"
    elif state is UpstreamOrderState.FAILED and message is None:
        message = _text(body.get("message")) or "the upstream reports the order failed"
    return UpstreamOrder(
        supplier=supplier,
        upstream_id=_required_text(body, "id"),
        reference=reference,
        state=state,
        total=_total(body, raw_total),
        codes=codes,
        message=message,
        created_at=parse_timestamp(body.get("created_at")),
    )


def order_items(body: Mapping[str, Any]) -> dict[str, int]:
    """Units per product id in an order detail's ``items`` (repeated products added)."""
    raw = body.get("items")
    if not isinstance(raw, list):
        raise MappingError("order detail has no 'items' list")
    counts: Counter[str] = Counter()
    for item in raw:
        if not isinstance(item, Mapping):
            raise MappingError("order item is not an object")
        quantity = item.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool):
            raise MappingError("order item has no integer 'quantity'")
        counts[_required_text(item, "product_id")] += quantity
    return dict(counts)


@dataclass(frozen=True)
class OrderSummary:
    """An order-list item, as reconciliation needs it."""

    id: str
    created_at: datetime | None


def order_summary(item: Any) -> OrderSummary:
    if not isinstance(item, Mapping):
        raise MappingError("order list item is not an object")
    return OrderSummary(
        id=_required_text(item, "id"), created_at=parse_timestamp(item.get("created_at"))
    )


def parse_timestamp(value: Any) -> datetime | None:
    """ISO 8601 (``2026-03-14T12:00:00Z``) → aware datetime; naive values are UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise MappingError(f"bad timestamp {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# ------------------------------------------------------------------ helpers


def _state_and_message(status: str) -> tuple[UpstreamOrderState, str | None]:
    state = order_state(status)
    if state is None:
        return UpstreamOrderState.PENDING, f"unknown upstream status {status!r}; still pending"
    return state, None


def _total(body: Mapping[str, Any], raw: Any) -> Money | None:
    if raw is None:
        return None
    return Money(amount=_cents(raw, "total"), currency=_currency(body.get("currency")))


def _cents(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MappingError(f"{name} must be integer euro cents, got {value!r}")
    if value < 0:
        raise MappingError(f"{name} must not be negative, got {value}")
    return value


def _currency(value: Any) -> str:
    if value is None or value == "":
        return DEFAULT_CURRENCY
    if not isinstance(value, str) or len(value) != 3 or not value.isalpha():
        raise MappingError(f"currency must be an ISO 4217 code, got {value!r}")
    return value.upper()


def _required_text(item: Mapping[str, Any], name: str) -> str:
    value = item.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise MappingError(f"missing {name!r}")
    return value.strip()


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip() or None
