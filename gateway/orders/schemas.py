"""The orders API's request and response models: they parse requests and generate the
OpenAPI document (``@operation``), and a test checks rendered orders against them.

An order's body is parsed strictly: quantities and amounts move money, so ``"1"``,
``true`` or ``1.0`` where an integer belongs is a ``422 validation_failed``, never a
guess at what the reseller meant (pydantic's default would buy one unit for each).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from adapters.models import CurrencyCode, Money
from gateway.orders.models import ItemStatus, OrderStatus, WebhookState

_PRINTABLE = r"^[\x20-\x7e]+$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _StrictIn(_In):
    """A request body whose values must already have their type: no coercion."""

    model_config = ConfigDict(extra="forbid", strict=True)


class MoneyIn(_StrictIn):
    """``Money`` as a reseller sends it: ``amount`` a JSON integer, nothing coerced. Not
    a ``Money`` itself (pydantic models of two classes never compare equal), so the
    type checker sees every place it becomes one (``as_money``)."""

    amount: int = Field(description="Integer amount in the currency's minor units (cents).")
    currency: CurrencyCode

    def as_money(self) -> Money:
        return Money(amount=self.amount, currency=self.currency)


class OrderItemIn(_StrictIn):
    variant_id: str = Field(
        min_length=3,
        max_length=200,
        description="A variant id from the catalog: a canonical one (routed to the best "
        "offer when placed, failed over when a supplier refuses) or a supplier's own "
        "(pinned to that supplier).",
    )
    quantity: int = Field(
        ge=1, le=100_000, description="Units; at most orders.max_quantity (default 100)."
    )
    face_value: MoneyIn | None = Field(
        default=None,
        description="The face value to buy, for a range variant only (within its "
        "face_min..face_max, same currency).",
    )
    unit_price: MoneyIn | None = Field(
        default=None,
        description="The unit price you showed your customer. If the current price is "
        "higher, nothing is bought and the answer is 409 price_changed.",
    )


class CreateOrderRequest(_StrictIn):
    items: list[OrderItemIn] = Field(
        min_length=1, max_length=1000, description="At most orders.max_items (default 50)."
    )
    reference: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=_PRINTABLE,
        description="Your own reference for the order, returned as given.",
    )


class ListOrdersQuery(_In):
    page: int = Field(default=1, ge=1, le=10_000)
    page_size: int = Field(default=20, ge=1, le=100)
    status: OrderStatus | None = Field(default=None, description="Only orders in this status.")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CodeOut(_Out):
    code: str | None = None
    pin: str | None = None
    url: str | None = None
    expires_at: datetime | None = None
    serial: str | None = None


class FailureOut(_Out):
    code: str
    message: str


class OrderItemOut(_Out):
    variant_id: str = Field(
        description="The supplier variant bought; for an item ordered by a canonical "
        "variant id, the offer its supplier was chosen at (may change until placed)."
    )
    canonical_variant_id: str | None = Field(
        default=None,
        description="The canonical variant id you ordered, when you ordered one (the "
        "gateway routes it to the best offer); null for a supplier variant id.",
    )
    product_id: str
    product_name: str = Field(description="As it was when the order was placed.")
    variant_name: str
    supplier: str
    quantity: int
    face_value: Money | None
    unit_price: Money = Field(description="Your price per unit when the order was placed.")
    total: Money
    status: ItemStatus
    delivered_quantity: int
    codes: list[CodeOut] | None = Field(
        default=None,
        description="The delivered codes (GET /v1/orders/{id} and create only; never in "
        "lists or webhooks).",
    )
    failure: FailureOut | None


class WebhookOut(_Out):
    state: WebhookState
    event_id: str
    attempts: int
    last_status: int | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None


class OrderOut(_Out):
    id: str
    status: OrderStatus
    reference: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = Field(description="When the order reached a final state.")
    items: list[OrderItemOut]
    totals: list[Money] = Field(description="Ordered value per currency.")
    delivered_totals: list[Money] = Field(description="Delivered value per currency.")
    webhook: WebhookOut | None = Field(
        default=None, description="Delivery of the final event, when you have a webhook URL."
    )


class OrderEnvelope(_Out):
    data: OrderOut


class OrderPage(_Out):
    orders: list[OrderOut]
    page: int
    page_size: int
    total: int


class OrderListEnvelope(_Out):
    data: OrderPage
