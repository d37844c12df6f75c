"""The JSON a reseller sees for one product's detail, with the reseller's prices.

Prices follow the index's summaries exactly (``gateway.catalog.records``): a fixed
variant costs its supplier ``cost`` (or its face value less the discount), a range
variant has no price of its own (``null``: priced at order time from the face value
chosen), and the product's ``price`` is the cheapest variant's in the product's
currency, a range variant counting at its ``face_min``. The markup rule is resolved by
supplier and *unified* category; supplier costs and discounts are never shown. Prices
come from the detail just fetched, so they may be fresher than the list's.
"""

from __future__ import annotations

from typing import Any

from adapters.models import Money, Product, ProductDetail
from gateway.catalog.records import apply_rule, variant_cost
from gateway.pricing import MarkupRule, PriceList


def _money(value: Money | None) -> dict[str, Any] | None:
    return {"amount": value.amount, "currency": value.currency} if value is not None else None


def render_detail(
    detail: ProductDetail,
    listed: Product,
    prices: PriceList,
    reseller_rule: MarkupRule | None = None,
    *,
    stale: bool = False,
) -> dict[str, Any]:
    """``detail`` as fetched from the supplier; ``listed`` is the product as the index
    serves it (``CatalogIndex.product``), whose unified category and brand labels are
    shown and price the product, so the detail agrees with the list it was found in."""
    rule = prices.rule_for(listed.supplier, listed.category, reseller_rule)
    variants: list[dict[str, Any]] = []
    cheapest: int | None = None
    for variant in detail.variants:
        cost = variant_cost(variant)
        price = None
        if cost is not None and cost[1] == detail.currency:
            amount = apply_rule(rule, cost[0])
            cheapest = amount if cheapest is None else min(cheapest, amount)
            price = {"amount": amount, "currency": cost[1]}
        variants.append(
            {
                "id": variant.id,
                "name": variant.name,
                "price": None if variant.is_range else price,
                "face_value": _money(variant.face_value),
                "face_min": _money(variant.face_min),
                "face_max": _money(variant.face_max),
            }
        )
    return {
        "id": detail.id,
        "supplier": detail.supplier,
        "name": detail.name,
        "brand": listed.brand,
        "category": listed.category,
        "sub_category": detail.sub_category,
        "country": detail.country,
        "currency": detail.currency,
        "image_url": detail.image_url,
        "delivery_mode": detail.delivery_mode.value,
        "delivery_time": detail.delivery_time.value,
        "validity": detail.validity,
        "in_stock": in_stock(detail),
        "stock": detail.stock,
        "price": None if cheapest is None else {"amount": cheapest, "currency": detail.currency},
        "variants": variants,
        "short_description": detail.short_description,
        "description": detail.description,
        "terms": detail.terms,
        "how_to_use": detail.how_to_use,
        "activation_details": detail.activation_details,
        "specifications": [{"key": s.key, "value": s.value} for s in detail.specifications],
        "stale": stale,
    }


def in_stock(product: Product) -> bool:
    return product.available and (product.stock is None or product.stock > 0)
