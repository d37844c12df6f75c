"""The JSON a reseller sees for one product's detail, with the reseller's prices.

Prices follow the same rule as the index's summaries (``catalog-interface.md``): a
fixed variant costs its supplier ``cost`` (or its face value less the discount), a
range variant has no price of its own (``null``: priced at order time from the face
value chosen), and the product's ``price`` is the cheapest variant's, a range variant
counting at its ``face_min``. The markup rule is resolved by supplier and *unified*
category; supplier costs and discounts are never shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters.models import Money, Product, ProductDetail, Variant, discounted_cost
from gateway.pricing import MarkupRule, PriceList

Taxonomy = Callable[[str, str | None], str | None]


def variant_cost(variant: Variant) -> Money | None:
    """What one unit costs us: the fixed cost, else the face value less the discount, else
    (range variants) the cost at ``face_min``."""
    if variant.cost is not None:
        return variant.cost
    face = variant.face_value or variant.face_min
    if face is None:
        return None
    return Money(
        amount=discounted_cost(face.amount, variant.discount_percent or 0), currency=face.currency
    )


def _money(value: Money | None) -> dict[str, Any] | None:
    return {"amount": value.amount, "currency": value.currency} if value is not None else None


def render_detail(
    detail: ProductDetail,
    prices: PriceList,
    taxonomy: Taxonomy,
    reseller_rule: MarkupRule | None = None,
    *,
    stale: bool = False,
) -> dict[str, Any]:
    category = taxonomy(detail.supplier, detail.category)
    rule = prices.rule_for(detail.supplier, category, reseller_rule)
    variants: list[dict[str, Any]] = []
    cheapest: Money | None = None
    for variant in detail.variants:
        cost = variant_cost(variant)
        price = Money(amount=rule.apply(cost.amount), currency=cost.currency) if cost else None
        if price is not None and (cheapest is None or price.amount < cheapest.amount):
            cheapest = price
        variants.append(
            {
                "id": variant.id,
                "name": variant.name,
                "price": None if variant.is_range else _money(price),
                "face_value": _money(variant.face_value),
                "face_min": _money(variant.face_min),
                "face_max": _money(variant.face_max),
            }
        )
    return {
        "id": detail.id,
        "supplier": detail.supplier,
        "name": detail.name,
        "brand": detail.brand,
        "category": category,
        "sub_category": detail.sub_category,
        "country": detail.country,
        "currency": detail.currency,
        "image_url": detail.image_url,
        "delivery_mode": detail.delivery_mode.value,
        "delivery_time": detail.delivery_time.value,
        "validity": detail.validity,
        "in_stock": in_stock(detail),
        "stock": detail.stock,
        "price": _money(cheapest),
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
