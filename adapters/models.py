"""The unified model every supplier is mapped into.

Money is always an integer number of minor units plus an ISO 4217 code: a float never
crosses this boundary, because a float price is how a 19.99 becomes 1998 cents.

Ids are namespaced and stable across re-syncs:

* product: ``<supplier>:<upstream product id>`` (``vouchers:123``)
* variant: ``<product id>:<variant key>`` where the key is derived from what the variant
  *is*, never from its position: ``std`` for a single-SKU game key, ``fv<minor units>``
  for a fixed face value, ``r<min>-<max>`` for a face-value range.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# ISO 4217 currencies whose minor unit is not 1/100. Everything else has exponent 2.
_EXPONENTS: dict[str, int] = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
}  # fmt: skip

CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


def currency_exponent(currency: str) -> int:
    """Number of decimal places of the currency's minor unit (ISO 4217)."""
    return _EXPONENTS.get(currency.upper(), 2)


def to_minor_units(value: Decimal | str | int | float, currency: str) -> int:
    """Convert a major-unit amount (``19.99``) to minor units, exactly.

    Floats are converted through ``str`` so that ``19.99`` becomes ``Decimal("19.99")`` and
    not its binary approximation. An amount finer than the minor unit is an upstream error
    we refuse to paper over: it raises ``ValueError``.
    """
    exp = currency_exponent(currency)
    amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    scaled = amount.scaleb(exp)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value} {currency} is finer than the currency's minor unit")
    return int(scaled)


def discounted_cost(face_minor: int, discount_percent: Decimal | str | float) -> int:
    """What a supplier charges for ``face_minor`` at ``discount_percent`` off.

    Rounded **up** to the minor unit: we do not know the supplier's own rounding, and
    over-estimating cost by at most one minor unit is what guarantees that a price computed
    from it never sells below cost.
    """
    pct = (
        Decimal(str(discount_percent))
        if isinstance(discount_percent, float)
        else Decimal(discount_percent)
    )
    if not Decimal(0) <= pct <= Decimal(100):
        raise ValueError(f"discount {pct}% is outside 0..100")
    cost = Decimal(face_minor) * (Decimal(100) - pct) / Decimal(100)
    return int(cost.to_integral_value(rounding=ROUND_CEILING))


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Money(_Model):
    amount: int = Field(description="Integer amount in the currency's minor units (cents).")
    currency: CurrencyCode


class DeliveryMode(enum.StrEnum):
    CODE = "code"
    CODE_WITH_PIN = "code_with_pin"
    URL = "url"


class DeliveryTime(enum.StrEnum):
    INSTANT = "instant"
    DELAYED = "delayed"


class Variant(_Model):
    """One purchasable SKU of a product.

    A fixed variant has ``face_value`` (voucher) or neither face field (game key); a range
    variant has ``face_min``/``face_max`` and takes its face value at order time, when its
    cost is ``face × (1 − discount_percent / 100)`` rounded up.
    """

    id: str
    name: str
    cost: Money | None = Field(
        default=None, description="What the supplier charges for one unit; None for ranges."
    )
    face_value: Money | None = None
    face_min: Money | None = None
    face_max: Money | None = None
    discount_percent: Decimal | None = None

    @property
    def is_range(self) -> bool:
        return self.face_min is not None and self.face_max is not None


class Product(_Model):
    """A catalog entry as it appears in a supplier's list endpoint, normalised."""

    id: str
    supplier: str
    upstream_id: str
    name: str
    brand: str | None = None
    category: str | None = None
    sub_category: str | None = None
    country: str | None = Field(default=None, description="ISO 3166-1 alpha-3 when known.")
    currency: CurrencyCode
    image_url: str | None = None
    delivery_mode: DeliveryMode = DeliveryMode.CODE
    delivery_time: DeliveryTime = DeliveryTime.INSTANT
    validity: str | None = None
    stock: int | None = Field(default=None, description="Units in stock; None when unknown.")
    available: bool = True
    short_description: str | None = None
    variants: tuple[Variant, ...]


class Specification(_Model):
    key: str
    value: str


class ProductDetail(Product):
    """A product with the fields only a supplier's detail endpoint returns."""

    description: str | None = None
    terms: str | None = None
    how_to_use: str | None = None
    activation_details: str | None = None
    specifications: tuple[Specification, ...] = ()


class CatalogPage(_Model):
    """One page of a supplier's catalog, as streamed by ``SupplierAdapter.iter_catalog``."""

    products: tuple[Product, ...]
    page: int = Field(description="1-based page number in iteration order.")
    total: int | None = Field(default=None, description="Upstream's total, when it reports one.")


class OrderLine(_Model):
    """One line of an order as sent to a supplier."""

    variant_id: str
    quantity: Annotated[int, Field(ge=1)]
    face_value: Money | None = Field(
        default=None, description="Chosen face value; required for range variants only."
    )


class UpstreamOrderState(enum.StrEnum):
    """Where a supplier's order stands. ``DELIVERED``, ``PARTIALLY_DELIVERED``, ``FAILED``
    and ``CANCELLED`` are final; ``PENDING`` is not."""

    PENDING = "pending"
    DELIVERED = "delivered"
    PARTIALLY_DELIVERED = "partially_delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self is not UpstreamOrderState.PENDING


class Code(_Model):
    """One activation code. Never log this object."""

    code: str | None = None
    pin: str | None = None
    url: str | None = None
    expires_at: datetime | None = None
    serial: str | None = None
    variant_id: str | None = None

    def __repr__(self) -> str:  # keep codes out of tracebacks and debug logs
        return "Code(<redacted>)"

    __str__ = __repr__


class UpstreamOrder(_Model):
    """A supplier's order as the gateway sees it."""

    supplier: str
    upstream_id: str
    reference: str | None = Field(
        default=None, description="The caller-supplied reference it was placed under."
    )
    state: UpstreamOrderState
    total: Money | None = None
    codes: tuple[Code, ...] = ()
    message: str | None = None
    created_at: datetime | None = None


Capability = Literal["range_denominations", "async_fulfilment", "price_quote", "stock_levels"]
