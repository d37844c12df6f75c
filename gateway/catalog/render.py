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

from collections.abc import Callable
from typing import Any

from adapters.models import Money, Product, ProductDetail, Variant
from gateway.catalog import canonical
from gateway.catalog import records as rec
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
                "offer_count": 1,
            }
        )
    return {
        "id": detail.id,
        "supplier": detail.supplier,
        "suppliers": [detail.supplier],
        "offer_count": 1,
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


def render_canonical(
    record: rec.Record,
    labels: dict[str, Any],
    offers: Callable[[str], list[tuple[Product, Variant]] | None],
    unit_rule: Callable[[Product], MarkupRule],
    reseller_rule: MarkupRule | None,
    *,
    show_suppliers: bool,
) -> dict[str, Any]:
    """A canonical product's detail: its listing summary, and under each canonical
    variant its offers (``offers``: ``CatalogService.offers``), each priced for the
    caller with ``unit_rule(product)`` - the rule an order for that offer is charged by -
    with its stock, availability and delivery time. The variant's price is its best
    offer's, as listed. Built from the served index: no supplier is called (the full
    description is each supplier product's own detail).

    ``show_suppliers`` false: supplier names and supplier ids are left out (null), so a
    reseller sees what it can buy, not from whom; offers stay in the same order."""
    currency = labels["currency"]
    priced = [
        price
        for v in record[rec.R_VARIANTS]
        if v[canonical.C_CURRENCY] == currency
        and (price := canonical.variant_price(v, reseller_rule)) is not None
    ]
    price = min(priced) if priced else None
    summary = canonical.summary(record, price=price, rule=reseller_rule, **labels)
    for variant, shown in zip(record[rec.R_VARIANTS], summary["variants"], strict=True):
        shown["offers"] = [
            _offer(product, offer, variant, unit_rule(product), show_suppliers)
            for product, offer in offers(shown["id"]) or []
        ]
    if not show_suppliers:
        summary["supplier"] = None
        summary["suppliers"] = []
    summary.update(
        validity=None,
        short_description=None,
        description=None,
        terms=None,
        how_to_use=None,
        activation_details=None,
        specifications=[],
        stale=False,
    )
    return summary


def _offer(
    product: Product,
    variant: Variant,
    canonical_variant: tuple[Any, ...],
    rule: MarkupRule,
    show_suppliers: bool,
) -> dict[str, Any]:
    cost = variant_cost(variant)
    price = None
    if cost is not None and not variant.is_range:
        price = {"amount": apply_rule(rule, cost[0]), "currency": cost[1]}
    return {
        "supplier": product.supplier if show_suppliers else None,
        "product_id": product.id if show_suppliers else None,
        "variant_id": variant.id if show_suppliers else None,
        "price": price,
        "eligible": cost is not None and cost[1] == canonical_variant[canonical.C_CURRENCY],
        "in_stock": in_stock(product),
        "available": product.available,
        "stock": product.stock,
        "delivery_mode": product.delivery_mode.value,
        "delivery_time": product.delivery_time.value,
    }
