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

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

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

    Shapes that would make that rule ambiguous are refused when the variant is built (see
    ``_one_shape``): the adapters never produce them, so one can only be a mapping bug,
    and it is better caught there than priced two different ways downstream.
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

    @model_validator(mode="after")
    def _one_shape(self) -> Variant:
        """Refuse the shapes on which the listing's price and the ordering's price could
        disagree (a range with a fixed ``cost``, with one bound, reversed bounds...) or
        which no price should come from (a negative amount, a discount outside 0..100)."""
        # Runs for every variant of every snapshot decoded (hundreds of thousands on an
        # index rebuild), hence the plain branches rather than a loop over the fields.
        low, high, cost, face = self.face_min, self.face_max, self.cost, self.face_value
        if low is not None or high is not None:
            if low is None or high is None:
                raise ValueError("a range variant needs both face_min and face_max")
            if cost is not None:
                raise ValueError(
                    "a range variant has no fixed cost: it is priced from the face value "
                    "chosen (face × (1 − discount_percent / 100))"
                )
            if face is not None:
                raise ValueError("a variant has either face_value or face_min/face_max")
            if low.currency != high.currency:
                raise ValueError(f"face_min is in {low.currency} but face_max in {high.currency}")
            if low.amount < 0:
                raise ValueError(f"face_min {low.amount} {low.currency} is negative")
            if low.amount > high.amount:
                raise ValueError(f"face_min {low.amount} is above face_max {high.amount}")
        else:
            if cost is not None and cost.amount < 0:
                raise ValueError(f"cost {cost.amount} {cost.currency} is negative")
            if face is not None and face.amount < 0:
                raise ValueError(f"face_value {face.amount} {face.currency} is negative")
        discount = self.discount_percent
        if discount is not None and not 0 <= discount <= 100:
            raise ValueError(f"discount_percent {discount} is outside 0..100")
        return self

    @property
    def is_range(self) -> bool:
        return self.face_min is not None and self.face_max is not None

    def takes_face(self, face: Money) -> bool:
        """Whether this range variant can be bought at ``face``: in its currency and
        within its bounds (False for a fixed variant)."""
        low, high = self.face_min, self.face_max
        return (
            low is not None
            and high is not None
            and face.currency == low.currency
            and low.amount <= face.amount <= high.amount
        )

    def unit_cost(self, face: Money | None = None) -> Money | None:
        """What one unit costs the gateway: the supplier's ``cost`` when it states one,
        else the face value less ``discount_percent`` (none meaning none), rounded up by
        :func:`discounted_cost`.

        The one place this rule lives, because the catalog lists prices from it and the
        orders service charges from it: written twice, the two drifted apart on shapes
        neither expected, and a reseller could be charged other than what was listed.

        A range variant is costed at ``face``, the face value chosen: the reseller's when
        ordering, ``face_min`` for the catalog's "from" price. Without one it has no cost
        (None), like a fixed variant with neither ``cost`` nor ``face_value``. A face
        outside the range, or one given to a fixed variant other than its own face value,
        raises ``ValueError``: callers check what the reseller sent before asking, so this
        is a bug, and pricing it anyway could sell below cost.
        """
        if self.is_range:
            low, high = self.face_min, self.face_max
            assert low is not None and high is not None  # is_range
            if face is None:
                return None
            if face.currency != low.currency or not low.amount <= face.amount <= high.amount:
                raise ValueError(
                    f"face {face.amount} {face.currency} is outside {low.amount}..{high.amount}"
                    f" {low.currency}"
                )
            return Money(
                amount=discounted_cost(face.amount, self.discount_percent or 0),
                currency=face.currency,
            )
        if face is not None and face != self.face_value:
            raise ValueError(
                f"face {face.amount} {face.currency} given for a fixed variant: it is "
                "costed at its own face value"
            )
        if self.cost is not None:
            return self.cost
        if self.face_value is not None:
            return Money(
                amount=discounted_cost(self.face_value.amount, self.discount_percent or 0),
                currency=self.face_value.currency,
            )
        return None


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
