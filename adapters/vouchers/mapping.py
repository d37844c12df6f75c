"""Voucher supplier JSON ⇄ the unified model. Pure functions, no I/O.

Money: the supplier writes amounts as JSON numbers in major units (``50.00``, ``1000`` for
JPY, ``2.5`` for BHD). The adapter parses them with ``parse_float=Decimal`` so no binary
float ever holds a price, and ``adapters.models.to_minor_units`` converts them exactly;
an amount finer than the currency's minor unit is refused (``UpstreamDataError``) rather
than rounded, because a rounded price is a wrong price.

Cost of a fixed denomination is ``face × (1 − discount/100)`` rounded **up** to the minor
unit (``adapters.models.discounted_cost``): the supplier's own rounding is not documented,
and over-estimating our cost by at most one minor unit is what keeps a price computed
from it from ever selling below cost. Range denominations carry ``face_min``/``face_max``
and the discount; their cost is computed the same way once the face value is chosen.

Ids: product ``vouchers:<id>``; fixed variant ``vouchers:<id>:fv<face in minor units>``;
range variant ``vouchers:<id>:r<min minor>-<max minor>``. Keys describe what the variant
is, so they survive re-syncs and reordering of ``available_denominations``.

Enums: ``delivery_mode`` "Code with PIN" → ``CODE_WITH_PIN``, "URL" → ``URL``, "Code" →
``CODE`` (case-insensitive); missing or unknown → ``CODE``, the mode whose codes carry
whatever fields arrive. ``delivery_time`` "Instant" → ``INSTANT``, "Delayed" →
``DELAYED``; missing or unknown → ``DELAYED``, the one that promises nothing.

Brand: the supplier has no brand field and names mix brand and region ("Steam Wallet Card
US"); guessing a brand from a name would be wrong for some products, so ``brand`` stays
``None``. Stock: the supplier reports none, so ``stock`` is ``None`` (unknown).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from adapters import ids
from adapters.models import (
    Code,
    DeliveryMode,
    DeliveryTime,
    Money,
    Product,
    ProductDetail,
    UpstreamOrder,
    UpstreamOrderState,
    Variant,
    currency_exponent,
    discounted_cost,
    to_minor_units,
)

SUPPLIER = "vouchers"

_CODE3 = re.compile(r"^[A-Z]{3}$")
_FIXED_KEY = re.compile(r"^fv([1-9][0-9]{0,17})$")
_RANGE_KEY = re.compile(r"^r([1-9][0-9]{0,17})-([1-9][0-9]{0,17})$")

_DELIVERY_MODES = {
    "code with pin": DeliveryMode.CODE_WITH_PIN,
    "url": DeliveryMode.URL,
    "code": DeliveryMode.CODE,
}
_DELIVERY_TIMES = {"instant": DeliveryTime.INSTANT, "delayed": DeliveryTime.DELAYED}
_STATES = {
    "PENDING": UpstreamOrderState.PENDING,
    "DELIVERED": UpstreamOrderState.DELIVERED,
    "PARTIALLY_DELIVERED": UpstreamOrderState.PARTIALLY_DELIVERED,
    "FAILED": UpstreamOrderState.FAILED,
    "CANCELLED": UpstreamOrderState.CANCELLED,
}


class UpstreamDataError(ValueError):
    """The supplier sent data the unified model cannot hold exactly."""


# ----------------------------------------------------------------- numbers


def decimal_of(value: Any, what: str) -> Decimal:
    """An exact ``Decimal`` from a JSON number (Decimal/int; a float through its repr)."""
    if isinstance(value, bool) or value is None:
        raise UpstreamDataError(f"{what} is missing or not a number")
    try:
        number = Decimal(str(value)) if isinstance(value, float | str) else Decimal(value)
    except (InvalidOperation, TypeError) as exc:
        raise UpstreamDataError(f"{what} is not a number: {value!r}") from exc
    if not number.is_finite():
        raise UpstreamDataError(f"{what} is not finite")
    return number


def minor_of(value: Any, currency: str, what: str) -> int:
    try:
        return to_minor_units(decimal_of(value, what), currency)
    except UpstreamDataError:
        raise
    except ValueError as exc:
        raise UpstreamDataError(f"{what}: {exc}") from exc


def major_of(amount_minor: int, currency: str) -> Decimal:
    """Minor units → the exact major-unit ``Decimal`` (``5000 USD`` → ``50.00``)."""
    exp = currency_exponent(currency)
    return Decimal(amount_minor).scaleb(-exp).quantize(Decimal(1).scaleb(-exp))


def json_number(value: Decimal) -> int | float:
    """A ``Decimal`` as a JSON number that reads back as exactly the same decimal.

    Integral values go out as integers. Others as the float whose shortest ``repr`` is
    the decimal itself (always the case for amounts under 15 significant digits); if that
    ever fails we refuse rather than send a different amount.
    """
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    if Decimal(repr(as_float)) != value:
        raise ValueError(f"{value} cannot be written exactly as a JSON number")
    return as_float


def _label(amount_minor: int, currency: str) -> str:
    return f"{major_of(amount_minor, currency)} {currency}"


# --------------------------------------------------------------- variants


@dataclass(frozen=True, slots=True)
class VariantKey:
    """What a variant key says: a fixed face value, or a face-value range (minor units)."""

    kind: Literal["fixed", "range"]
    low: int
    high: int

    @property
    def key(self) -> str:
        return f"fv{self.low}" if self.kind == "fixed" else f"r{self.low}-{self.high}"

    def accepts(self, face_minor: int) -> bool:
        return self.low <= face_minor <= self.high


def parse_variant_key(key: str) -> VariantKey:
    """``fv5000`` → fixed 5000; ``r500-50000`` → range; ``ValueError`` for anything else."""
    if match := _FIXED_KEY.match(key):
        face = int(match.group(1))
        return VariantKey("fixed", face, face)
    if match := _RANGE_KEY.match(key):
        low, high = int(match.group(1)), int(match.group(2))
        if low < high:
            return VariantKey("range", low, high)
    raise ValueError(f"{key!r} is not a voucher variant key")


def variant_key_for_denomination(denomination: dict[str, Any], currency: str) -> VariantKey:
    """The key of one ``available_denominations`` entry."""
    low = minor_of(denomination.get("min_value"), currency, "min_value")
    high = minor_of(denomination.get("max_value"), currency, "max_value")
    if low <= 0 or high < low:
        raise UpstreamDataError(f"denomination {low}..{high} {currency} is not a valid range")
    return VariantKey("fixed" if low == high else "range", low, high)


def variants_from_denominations(
    product_id: str, currency: str, denominations: Any
) -> tuple[Variant, ...]:
    """One variant per fixed face value, one per range; fixed first, by face value.

    A face value listed twice keeps its smallest discount (the higher cost): when the
    supplier contradicts itself we assume the price that cannot lose money.
    """
    if not isinstance(denominations, list) or not denominations:
        raise UpstreamDataError("product has no available_denominations")
    best: dict[VariantKey, Decimal] = {}
    for entry in denominations:
        if not isinstance(entry, dict):
            raise UpstreamDataError("denomination is not an object")
        key = variant_key_for_denomination(entry, currency)
        discount = decimal_of(entry.get("discount", 0), "discount")
        if not Decimal(0) <= discount <= Decimal(100):
            raise UpstreamDataError(f"discount {discount}% is outside 0..100")
        if key not in best or discount < best[key]:
            best[key] = discount
    ordered = sorted(best, key=lambda k: (k.kind != "fixed", k.low, k.high))
    variants = []
    for key in ordered:
        discount = best[key]
        variant_id = f"{product_id}:{key.key}"
        if key.kind == "fixed":
            variants.append(
                Variant(
                    id=variant_id,
                    name=_label(key.low, currency),
                    cost=Money(amount=discounted_cost(key.low, discount), currency=currency),
                    face_value=Money(amount=key.low, currency=currency),
                    discount_percent=discount,
                )
            )
        else:
            variants.append(
                Variant(
                    id=variant_id,
                    name=f"{major_of(key.low, currency)}–{_label(key.high, currency)}",
                    face_min=Money(amount=key.low, currency=currency),
                    face_max=Money(amount=key.high, currency=currency),
                    discount_percent=discount,
                )
            )
    return tuple(variants)


# --------------------------------------------------------------- products


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def upstream_product_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise UpstreamDataError(f"product id {value!r} is not an integer")
    text = str(value)
    if not text.isdigit() or int(text) <= 0:
        raise UpstreamDataError(f"product id {value!r} is not a positive integer")
    return int(text)


def map_delivery_mode(value: Any) -> DeliveryMode:
    return _DELIVERY_MODES.get((_text(value) or "").lower(), DeliveryMode.CODE)


def map_delivery_time(value: Any) -> DeliveryTime:
    return _DELIVERY_TIMES.get((_text(value) or "").lower(), DeliveryTime.DELAYED)


def _product_fields(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise UpstreamDataError("product is not an object")
    upstream_id = upstream_product_id(item.get("id"))
    name = _text(item.get("name"))
    if name is None:
        raise UpstreamDataError(f"product {upstream_id} has no name")
    currency = (_text(item.get("currency_code")) or "").upper()
    if not _CODE3.match(currency):
        raise UpstreamDataError(f"product {upstream_id} has no ISO 4217 currency")
    country = (_text(item.get("country_code")) or "").upper()
    product_id = ids.product_id(SUPPLIER, upstream_id)
    return {
        "id": product_id,
        "supplier": SUPPLIER,
        "upstream_id": str(upstream_id),
        "name": name,
        "brand": None,
        "category": _text(item.get("category")),
        "sub_category": _text(item.get("sub_category")),
        "country": country if _CODE3.match(country) else None,
        "currency": currency,
        "image_url": _text(item.get("image_url")),
        "delivery_mode": map_delivery_mode(item.get("delivery_mode")),
        "delivery_time": map_delivery_time(item.get("delivery_time")),
        "validity": _text(item.get("validity")),
        "stock": None,
        "variants": variants_from_denominations(
            product_id, currency, item.get("available_denominations")
        ),
    }


def product_from_upstream(item: Any) -> Product:
    """One entry of ``GET /api/v1/products``; ``UpstreamDataError`` if unrepresentable."""
    with _unrepresentable():
        return Product(**_product_fields(item))


def detail_from_upstream(item: Any, *, available: bool = True) -> ProductDetail:
    """``GET /api/v1/products/{id}``: the list fields plus terms, details, how_to_use."""
    fields = _product_fields(item)
    with _unrepresentable():
        return ProductDetail(
            **fields,
            available=available,
            description=_text(item.get("details")),
            terms=_text(item.get("terms")),
            how_to_use=_text(item.get("how_to_use")),
        )


@contextlib.contextmanager
def _unrepresentable() -> Iterator[None]:
    """The unified model's own checks (``Variant`` refuses ambiguous shapes) are one more
    way data can be unrepresentable: the same ``UpstreamDataError``, so the catalog loop
    skips that product instead of failing the page."""
    try:
        yield
    except ValidationError as exc:
        raise UpstreamDataError(f"not a valid unified product: {exc}") from exc


# ------------------------------------------------------------------ orders


def order_body(
    *,
    product_id: int,
    denomination: Decimal,
    quantity: int,
    reference: str,
    wallet_id: int | None,
) -> dict[str, Any]:
    """The ``POST /api/v1/orders`` body; ``client_reference`` is the idempotency key."""
    body: dict[str, Any] = {
        "product_id": product_id,
        "denomination": json_number(denomination),
        "quantity": quantity,
        "client_reference": reference,
    }
    if wallet_id is not None:
        body["wallet_id"] = wallet_id
    return body


def map_status(value: Any) -> UpstreamOrderState:
    """Unknown statuses map to ``PENDING``: never call an order final on a guess; the
    gateway keeps polling and the supplier's next answer decides."""
    return _STATES.get(str(value).upper() if value is not None else "", UpstreamOrderState.PENDING)


def _datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def code_from_voucher(voucher: Any) -> Code:
    if not isinstance(voucher, dict):
        raise UpstreamDataError("voucher is not an object")
    return Code(
        code=_text(voucher.get("card_number")),
        pin=_text(voucher.get("pin_code")),
        url=_text(voucher.get("claim_url")),
        expires_at=_datetime(voucher.get("expires_at")),
        serial=_text(voucher.get("voucher_reference_number")),
    )


def order_from_upstream(item: Any) -> UpstreamOrder:
    """An order object. ``total`` is ``amount`` in ``deduction_currency`` (what the wallet
    is debited; it differs from ``base_currency`` when the supplier converted)."""
    if not isinstance(item, dict) or item.get("id") in (None, ""):
        raise UpstreamDataError("order has no id")
    currency = (
        _text(item.get("deduction_currency")) or _text(item.get("base_currency")) or ""
    ).upper()
    total = None
    if item.get("amount") is not None and _CODE3.match(currency):
        total = Money(amount=minor_of(item["amount"], currency, "amount"), currency=currency)
    vouchers = item.get("vouchers") or []
    if not isinstance(vouchers, list):
        raise UpstreamDataError("order vouchers is not a list")
    return UpstreamOrder(
        supplier=SUPPLIER,
        upstream_id=str(item["id"]),
        reference=_text(item.get("client_reference")),
        state=map_status(item.get("status")),
        total=total,
        codes=tuple(code_from_voucher(v) for v in vouchers),
        message=_text(item.get("message")),
        created_at=_datetime(item.get("created_at")),
    )


# ------------------------------------------------------------------- quote


class VoucherQuote(BaseModel):
    """The supplier's price for ``quantity`` units of one face value, in minor units.

    ``face_total`` and ``discount`` are in the product's currency; ``total_payable`` and
    ``conversion_fee`` in the wallet's, converted at ``forex_rate`` when they differ.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    variant_id: str
    quantity: int
    face_value: Money
    face_total: Money
    discount: Money
    total_payable: Money
    conversion_fee: Money
    forex_rate: Decimal
    max_quantity: int | None


def quote_from_upstream(
    body: Any, *, variant_id: str, quantity: int, face_value: Money
) -> VoucherQuote:
    if not isinstance(body, dict):
        raise UpstreamDataError("charges answer is not an object")
    details = body.get("charges_details") or {}
    if not isinstance(details, dict):
        raise UpstreamDataError("charges_details is not an object")
    source = (_text(details.get("source_currency")) or face_value.currency).upper()
    dest = (_text(details.get("destination_currency")) or source).upper()
    if not (_CODE3.match(source) and _CODE3.match(dest)):
        raise UpstreamDataError("charges currencies are not ISO 4217 codes")
    max_quantity = body.get("max_quantity")
    return VoucherQuote(
        variant_id=variant_id,
        quantity=quantity,
        face_value=face_value,
        face_total=Money(
            amount=minor_of(body.get("non_discounted_total"), source, "non_discounted_total"),
            currency=source,
        ),
        discount=Money(
            amount=minor_of(body.get("discount_amount", 0), source, "discount_amount"),
            currency=source,
        ),
        total_payable=Money(
            amount=minor_of(body.get("total_payable"), dest, "total_payable"), currency=dest
        ),
        conversion_fee=Money(
            amount=minor_of(details.get("conversion_fee", 0), dest, "conversion_fee"),
            currency=dest,
        ),
        forex_rate=decimal_of(details.get("forex_rate", 1), "forex_rate"),
        max_quantity=max_quantity if isinstance(max_quantity, int) else None,
    )
