"""Compact storage of catalog products, and what is rendered from it.

A pydantic ``Product`` with its variants and money objects costs several kilobytes; the
index holds 100k of them for the life of a snapshot, so it keeps each as a plain tuple of
strings and numbers instead, marshalled into one ``bytes`` object (see
``gateway.catalog.staging`` for why), and builds a ``Product``, or the JSON-ready summary
the API serves, only for the few it returns (a ``marshal.loads`` of a record is ~2 µs).

Attributes the index also filters on (supplier, brand, category, country, currency) are
not in the tuple: the index keeps them as value numbers per document and passes their
labels in when rendering.

Prices: a variant's cost is ``Variant.unit_cost``, the rule orders are charged by too (its
``cost``; without one, its face value less its discount); a range variant is listed at its
smallest face value (``face_min``). The detail renderer (``gateway/catalog/render.py``)
prices through ``variant_cost`` as well: list and detail prices must agree.
A product's cost is its cheapest variant's in the product's currency (variants priced
in another currency are not compared); the reseller price applies one markup rule to it.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any

from adapters.models import DeliveryMode, DeliveryTime, Product, Variant
from gateway.catalog.pacing import checkpoint
from gateway.pricing import MarkupRule

MoneyPair = tuple[int, str]

# Record fields. Plain tuples read through these constants, not a NamedTuple, on
# measurement (issue 11, 20k records / 50k-product builds): a NamedTuple costs 8 more bytes
# per record and per variant, 11% more build time, and - because the cyclic collector never
# untracks tuple subclasses - 178k more tracked objects, which made a full collection during
# a rebuild take ~147 ms instead of ~4 ms: a stall of the event loop while a new snapshot is
# built (issue 14's target). The constants are the price of that. (Records are now kept
# marshalled, which only plain tuples of strings and numbers allow.)
R_ID, R_UPSTREAM, R_NAME, R_SUB, R_IMAGE, R_MODE, R_TIME = 0, 1, 2, 3, 4, 5, 6
R_VALIDITY, R_STOCK, R_AVAILABLE, R_SHORT, R_VARIANTS = 7, 8, 9, 10, 11
# Variant fields: id (a suffix of the product id when derivable), name, cost, face value,
# face min, face max, discount (as its exact string), and the money a fixed variant is
# priced from (None for a range variant or an unpriced one).
V_ID, V_NAME, V_COST, V_FACE, V_MIN, V_MAX, V_DISCOUNT, V_PRICED = 0, 1, 2, 3, 4, 5, 6, 7

Record = tuple[Any, ...]


def variant_cost(variant: Variant) -> MoneyPair | None:
    """What one unit of ``variant`` costs the gateway, None when it has no cost.

    A range is listed at its smallest face: the cheapest a reseller can buy it for, so
    the product's "from" price never overstates. Malformed costs (negative, a discount
    outside 0..100) need no guard here: ``Variant`` refuses them when it is built.
    """
    cost = variant.unit_cost(variant.face_min)
    return None if cost is None else (cost.amount, cost.currency)


def product_cost(product: Product) -> int | None:
    """The cheapest variant's cost in the product's currency, or None if none is priced."""
    costs = [
        pair[0]
        for v in product.variants
        if (pair := variant_cost(v)) is not None and pair[1] == product.currency
    ]
    return min(costs) if costs else None


@lru_cache(maxsize=4096)
def _apply(percent: Decimal, fixed_minor: int, cost: int) -> int:
    return MarkupRule(percent=percent, fixed_minor=fixed_minor).apply(cost)


def apply_rule(rule: MarkupRule, cost: int) -> int:
    """``rule.apply(cost)``, memoised: pages show the same popular costs over and over
    and the ``Decimal`` arithmetic is the most expensive step of rendering one. Small
    (4096 entries, ~1 MB): the build, which prices every product once, keeps its own
    cache for its duration instead."""
    return _apply(rule.percent, rule.fixed_minor, cost)


class Compactor:
    """Turns products into records, sharing equal strings, money pairs and decimals
    between records (a catalog repeats "12 months", "USD", face values... endlessly)."""

    def __init__(self) -> None:
        self._shared: dict[Any, Any] = {}

    def close(self) -> None:
        """Forget the shared values, a slice at a time: the table holds a few hundred
        thousand entries at 100k products, and freeing it in one go holds the GIL for
        ~20 ms (``gateway.catalog.pacing``)."""
        shared = self._shared
        while shared:
            for _ in range(min(len(shared), 4096)):
                shared.popitem()
            checkpoint()

    def share(self, value: Any) -> Any:
        if value is None:
            return None
        return self._shared.setdefault(value, value)

    def _money(self, money: Any) -> MoneyPair | None:
        if money is None:
            return None
        pair: MoneyPair = self.share((money.amount, self.share(money.currency)))
        return pair

    def record(self, product: Product) -> tuple[Record, int | None]:
        """The record of ``product`` and its cost (see :func:`product_cost`)."""
        setdefault = self._shared.setdefault

        def shared(value: Any) -> Any:
            return setdefault(value, value)

        money = self._money
        pid = product.id
        head = pid + ":"
        currency = product.currency
        variants = []
        cheapest: int | None = None
        for v in product.variants:
            vid = v.id
            key: str | tuple[str] = shared(vid[len(head) :]) if vid.startswith(head) else (vid,)
            priced = variant_cost(v)
            if priced is not None and priced[1] == currency:
                cheapest = priced[0] if cheapest is None else min(cheapest, priced[0])
            is_range = v.face_min is not None and v.face_max is not None
            priced = None if priced is None or is_range else shared(priced)
            discount = v.discount_percent
            variants.append(
                (
                    key,
                    shared(v.name),
                    money(v.cost),
                    money(v.face_value),
                    money(v.face_min),
                    money(v.face_max),
                    None if discount is None else shared(str(discount)),
                    priced,
                )
            )
        upstream = product.upstream_id
        sub, validity, short = product.sub_category, product.validity, product.short_description
        record = (
            pid,
            None if pid == f"{product.supplier}:{upstream}" else upstream,
            product.name,
            None if sub is None else shared(sub),
            product.image_url,
            _enum_value(product.delivery_mode, DeliveryMode),
            _enum_value(product.delivery_time, DeliveryTime),
            None if validity is None else shared(validity),
            product.stock,
            product.available,
            None if short is None else shared(short),
            tuple(variants),
        )
        return record, cheapest


def _enum_value(member: Any, enum: type[DeliveryMode] | type[DeliveryTime]) -> str:
    """The member's value, the interned string of the enum itself: a record then holds
    only strings, numbers and tuples, which the garbage collector stops tracking, so
    100k records add nothing to every full collection's work (an enum member would keep
    each record tuple tracked forever)."""
    return enum(member).value


def in_stock(record: Record) -> bool:
    stock = record[R_STOCK]
    return bool(record[R_AVAILABLE]) and (stock is None or stock > 0)


def _variant_id(pid: str, key: str | tuple[str]) -> str:
    return f"{pid}:{key}" if isinstance(key, str) else key[0]


def money_json(pair: MoneyPair | None) -> dict[str, Any] | None:
    return None if pair is None else {"amount": pair[0], "currency": pair[1]}


def summary(
    record: Record,
    *,
    supplier: str,
    brand: str | None,
    category: str | None,
    country: str | None,
    currency: str,
    price: int | None,
    rule: MarkupRule,
) -> dict[str, Any]:
    """The JSON-ready summary the list and search endpoints serve; ``price`` is the
    product's reseller price (already computed), ``rule`` prices the variants."""
    pid = record[R_ID]
    variants = []
    for v in record[R_VARIANTS]:
        priced = v[V_PRICED]
        variants.append(
            {
                "id": _variant_id(pid, v[V_ID]),
                "name": v[V_NAME],
                "price": None
                if priced is None
                else {"amount": apply_rule(rule, priced[0]), "currency": priced[1]},
                "face_value": money_json(v[V_FACE]),
                "face_min": money_json(v[V_MIN]),
                "face_max": money_json(v[V_MAX]),
                "offer_count": 1,
            }
        )
    return {
        "id": pid,
        "supplier": supplier,
        "suppliers": [supplier],
        "offer_count": 1,
        "name": record[R_NAME],
        "brand": brand,
        "category": category,
        "sub_category": record[R_SUB],
        "country": country,
        "currency": currency,
        "image_url": record[R_IMAGE],
        "delivery_mode": record[R_MODE],
        "delivery_time": record[R_TIME],
        "in_stock": in_stock(record),
        "stock": record[R_STOCK],
        "price": None if price is None else {"amount": price, "currency": currency},
        "variants": variants,
    }


def to_product(
    record: Record,
    *,
    supplier: str,
    brand: str | None,
    category: str | None,
    country: str | None,
    currency: str,
) -> Product:
    """The full unified ``Product`` (validated again: a bug here must not pass silently)."""
    pid = record[R_ID]
    upstream = record[R_UPSTREAM]
    return Product.model_validate(
        {
            "id": pid,
            "supplier": supplier,
            "upstream_id": pid[len(supplier) + 1 :] if upstream is None else upstream,
            "name": record[R_NAME],
            "brand": brand,
            "category": category,
            "sub_category": record[R_SUB],
            "country": country,
            "currency": currency,
            "image_url": record[R_IMAGE],
            "delivery_mode": record[R_MODE],
            "delivery_time": record[R_TIME],
            "validity": record[R_VALIDITY],
            "stock": record[R_STOCK],
            "available": record[R_AVAILABLE],
            "short_description": record[R_SHORT],
            "variants": [
                {
                    "id": _variant_id(pid, v[V_ID]),
                    "name": v[V_NAME],
                    "cost": money_json(v[V_COST]),
                    "face_value": money_json(v[V_FACE]),
                    "face_min": money_json(v[V_MIN]),
                    "face_max": money_json(v[V_MAX]),
                    "discount_percent": v[V_DISCOUNT],
                }
                for v in record[R_VARIANTS]
            ],
        }
    )
