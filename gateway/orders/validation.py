"""Checking an order against the live catalog before anything is bought.

Every problem is reported at once (``details``, one entry per item problem); the first
decides the status and code of the answer. Codes are stable:

==========================  ====  ===================================================
code                        HTTP  meaning
==========================  ====  ===================================================
too_many_items              422   more than ``orders.max_items`` items
quantity_out_of_range       422   a quantity above ``orders.max_quantity``
variant_not_found           422   no such variant in the catalog (or no longer sold)
supplier_not_available      422   the variant's supplier is not configured here
face_value_required         422   a range variant without ``face_value``
face_value_out_of_range     422   ``face_value`` outside ``face_min..face_max``
face_value_not_allowed      422   ``face_value`` on a fixed variant, differing from it
currency_mismatch           422   ``face_value``/``unit_price`` in another currency
variant_not_purchasable     422   the catalog has no price for the variant
out_of_stock                409   not available, or fewer units in stock than ordered
price_changed               409   the current unit price is above ``unit_price``
catalog_not_ready           503   this instance has not loaded a catalog yet
==========================  ====  ===================================================

A **canonical** variant id (``gift-steam-wallet-deu-eur:fv5000``, see
``gateway.catalog.offers``) is checked against all the offers behind it
(``_canonical``): the item is accepted at the cheapest eligible offer's price for this
reseller, in the variant's one price currency (or the currency of the ``unit_price``
sent); it is out of stock only when no offer can cover the quantity, and a range
variant's face value must lie in at least one offer's own range. Which supplier buys
it is decided later, when its part is placed (``gateway.orders.router``). A supplier
variant id is *pinned*: checked and bought exactly as before, never failed over.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from typing import Any

from adapters.ids import product_id_of
from adapters.models import Money, Product, Variant
from gateway.errors import Conflict, GatewayError, Unavailable, Unprocessable
from gateway.orders.models import StoredItem
from gateway.orders.ports import CatalogLookup, Offer, ResellerLike
from gateway.orders.router import has_units
from gateway.orders.schemas import CreateOrderRequest, OrderItemIn
from gateway.settings import OrderSettings

#: The kind of refusal of a problem's code (422 ``Unprocessable`` when not listed).
_KIND: dict[str, type[GatewayError]] = {"out_of_stock": Conflict, "price_changed": Conflict}


def _money(value: Money) -> dict[str, Any]:
    return {"amount": value.amount, "currency": value.currency}


def validate_order(
    request: CreateOrderRequest,
    catalog: CatalogLookup,
    reseller: ResellerLike,
    settings: OrderSettings,
    suppliers: Collection[str],
) -> list[StoredItem]:
    """The order's items, priced for ``reseller`` and snapshotted from the catalog; or
    a ``GatewayError`` naming every problem (``Unavailable`` while no catalog is loaded)."""
    if len(request.items) > settings.max_items:
        raise Unprocessable(
            "too_many_items",
            f"an order takes at most {settings.max_items} items",
            details=[{"field": "items", "problem": f"{len(request.items)} items"}],
        )
    if not catalog.ready():
        raise Unavailable(
            "catalog_not_ready", "the catalog is still loading; retry shortly", retry_after=2
        )
    problems: list[dict[str, Any]] = []
    items: list[StoredItem] = []
    wanted: dict[str, int] = defaultdict(int)
    stock: dict[str, tuple[int | None, bool]] = {}

    def problem(index: int, code: str, message: str, **extra: Any) -> None:
        problems.append({"item": index, "code": code, "message": message, **extra})

    for index, line in enumerate(request.items):
        if line.quantity > settings.max_quantity:
            problem(
                index,
                "quantity_out_of_range",
                f"quantity must be between 1 and {settings.max_quantity}",
            )
            continue
        offers = catalog.offers(line.variant_id)
        if offers is not None:
            routed = _canonical(line, offers, catalog, reseller, suppliers)
            if isinstance(routed, StoredItem):
                items.append(routed)
            else:
                code, message, extra = routed
                problem(index, code, message, **extra)
            continue
        found = catalog.find_variant(line.variant_id)
        if found is None:
            problem(index, "variant_not_found", f"no variant {line.variant_id!r} in the catalog")
            continue
        product, variant = found
        if product.supplier not in suppliers:
            problem(
                index, "supplier_not_available", f"supplier {product.supplier!r} is not available"
            )
            continue
        face = line.face_value.as_money() if line.face_value is not None else None
        if variant.is_range:
            low, high = variant.face_min, variant.face_max
            assert low is not None and high is not None
            if face is None:
                problem(
                    index,
                    "face_value_required",
                    "this variant takes a face value: send face_value",
                    face_min=_money(low),
                    face_max=_money(high),
                )
                continue
            if face.currency != low.currency:
                problem(index, "currency_mismatch", f"face_value must be in {low.currency}")
                continue
            if not low.amount <= face.amount <= high.amount:
                problem(
                    index,
                    "face_value_out_of_range",
                    f"face_value must be between {low.amount} and {high.amount} "
                    f"{low.currency} minor units",
                    face_min=_money(low),
                    face_max=_money(high),
                )
                continue
        else:
            if face is not None and face != variant.face_value:
                problem(
                    index,
                    "face_value_not_allowed",
                    "this variant has a fixed face value: omit face_value",
                )
                continue
            # Snapshot the fixed face value too: the reseller sees what was bought, and the
            # supplier adapter gets the currency without a detail call.
            face = variant.face_value
        price = catalog.unit_price(product, variant, face, reseller.markup)
        if price is None:
            problem(index, "variant_not_purchasable", "this variant cannot be priced")
            continue
        if line.unit_price is not None:
            if line.unit_price.currency != price.currency:
                problem(index, "currency_mismatch", f"unit_price must be in {price.currency}")
                continue
            if price.amount > line.unit_price.amount:
                problem(
                    index,
                    "price_changed",
                    "the price went up since you saw it; nothing was bought",
                    seen=_money(line.unit_price.as_money()),
                    current=_money(price),
                )
                continue
        wanted[product.id] += line.quantity
        stock[product.id] = (product.stock, product.available)
        items.append(_snapshot(product, variant, line.quantity, face, price))
    for index, line in enumerate(request.items):
        product_id = product_id_of(line.variant_id)
        if product_id is None or product_id not in stock:
            continue
        units, available = stock[product_id]
        if not available or (units is not None and units < wanted[product_id]):
            problem(
                index,
                "out_of_stock",
                "not enough units in stock",
                in_stock=0 if not available else units,
            )
    if problems:
        problems.sort(key=lambda p: p["item"])
        first = min(problems, key=lambda p: (p["code"] in _KIND, p["item"]))
        raise _KIND.get(first["code"], Unprocessable)(
            first["code"],
            f"item {first['item']}: {first['message']}",
            details=problems,
        )
    return items


Problem = tuple[str, str, dict[str, Any]]


def _canonical(
    line: OrderItemIn,
    offers: list[Offer],
    catalog: CatalogLookup,
    reseller: ResellerLike,
    suppliers: Collection[str],
) -> StoredItem | Problem:
    """One item for a canonical variant: priced at its cheapest eligible offer."""
    offers = [(p, v) for p, v in offers if p.supplier in suppliers]
    if not offers:
        return "variant_not_found", f"no supplier here sells {line.variant_id!r}", {}
    face = line.face_value.as_money() if line.face_value is not None else None
    ranged = [(p, v) for p, v in offers if v.is_range]
    if ranged:
        if face is None:
            return "face_value_required", "this variant takes a face value: send face_value", {}
        fitting = [(p, v) for p, v in ranged if v.takes_face(face)]
        if not fitting:
            low = min(v.face_min.amount for _, v in ranged if v.face_min is not None)
            high = max(v.face_max.amount for _, v in ranged if v.face_max is not None)
            return (
                "face_value_out_of_range",
                "no offer takes this face value: it must lie in one offer's range",
                {"face_min_amount": low, "face_max_amount": high},
            )
        offers = fitting
    elif face is not None and all(face != v.face_value for _, v in offers):
        return "face_value_not_allowed", "this variant has a fixed face value: omit face_value", {}
    priced: list[tuple[Money, Offer]] = []
    for product, variant in offers:
        own = face if variant.is_range else variant.face_value
        price = catalog.unit_price(product, variant, own, reseller.markup)
        if price is not None:
            priced.append((price, (product, variant)))
    if not priced:
        return "variant_not_purchasable", "this variant cannot be priced", {}
    currency: str | None = (
        line.unit_price.currency
        if line.unit_price is not None
        else catalog.price_currency(line.variant_id, (m.currency for m, _ in priced))
    )
    priced = [(m, offer) for m, offer in priced if m.currency == currency]
    if not priced:
        return "currency_mismatch", "no offer of this variant is priced in that currency", {}
    covering = [(m, (p, v)) for m, (p, v) in priced if has_units(p, line.quantity)]
    if not covering:
        return "out_of_stock", "no offer has enough units in stock", {"in_stock": 0}
    # Ties go to the offer routing would try first (lowest cost): the item names the
    # supplier it will most likely be bought from.
    price, (product, variant) = min(covering, key=_acceptance_order)
    if line.unit_price is not None and price.amount > line.unit_price.amount:
        return (
            "price_changed",
            "the price went up since you saw it; nothing was bought",
            {"seen": _money(line.unit_price.as_money()), "current": _money(price)},
        )
    face = face if variant.is_range else variant.face_value
    return _snapshot(
        product,
        variant,
        line.quantity,
        face,
        price,
        canonical_variant_id=line.variant_id,
        markup=reseller.markup,
    )


def _snapshot(
    product: Product,
    variant: Variant,
    quantity: int,
    face: Money | None,
    price: Money,
    **routed: Any,
) -> StoredItem:
    """The item as ordered: names and price kept, whatever the catalog does later."""
    return StoredItem(
        variant_id=variant.id,
        product_id=product.id,
        product_name=product.name,
        variant_name=variant.name,
        supplier=product.supplier,
        quantity=quantity,
        face_value=face,
        unit_price=price,
        **routed,
    )


def _acceptance_order(offer: tuple[Money, Offer]) -> tuple[int, int, str, str]:
    price, (product, variant) = offer
    cost = variant.unit_cost(None if variant.is_range else variant.face_value)
    return (
        price.amount,
        cost.amount if cost is not None else price.amount,
        product.supplier,
        variant.id,
    )
