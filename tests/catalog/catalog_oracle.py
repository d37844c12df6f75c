"""A brute-force model of what GET /v1/products answers, written from the documented
rules rather than from the index's code, for the HTTP-level property tests.

Rules (``catalog-interface.md`` and the API docs): categories go through the taxonomy;
categories and brands differing only by case or whitespace are one, shown with the
spelling most products use (ties: alphabetically first); a product's cost is its
cheapest variant's in its own currency (a range variant at ``face_min``), its price that
cost under the reseller's rule or else the price list's rule for its supplier and
category; price bounds apply within ``currency``; ``in_stock`` is "available and not
known to be out of stock"; name order is (folded name, id); price sorts order by
currency, then price, then name order, unpriced products last; facets count the
filtered set.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from adapters.models import Product, Variant, discounted_cost
from gateway.catalog.text import fold
from gateway.pricing import MarkupRule, PriceList


def merge(label: str | None) -> str | None:
    if label is None:
        return None
    key = "".join(label.casefold().split())
    return key or None


def _cost(variant: Variant) -> tuple[int, str] | None:
    """The listing's cost rule, stated independently: the supplier's cost, else the face
    value (a range's smallest) less the discount, none meaning none, rounded up."""
    if variant.cost is not None:
        return variant.cost.amount, variant.cost.currency
    face = variant.face_value or variant.face_min
    if face is None:
        return None
    return discounted_cost(face.amount, variant.discount_percent or Decimal(0)), face.currency


def _labels(raw: Iterable[str | None]) -> dict[str, str]:
    spellings: dict[str, Counter[str]] = {}
    for label in raw:
        key = merge(label)
        if key is not None and label is not None:
            spellings.setdefault(key, Counter())[" ".join(label.split())] += 1
    return {
        key: min(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        for key, counter in spellings.items()
    }


@dataclass(frozen=True)
class Row:
    product: Product
    category: str | None  # display label (merged)
    brand: str | None
    cost: int | None

    @property
    def id(self) -> str:
        return self.product.id

    @property
    def name_key(self) -> tuple[str, str]:
        return fold(self.product.name), self.product.id

    @property
    def in_stock(self) -> bool:
        p = self.product
        return p.available and (p.stock is None or p.stock > 0)


class CatalogOracle:
    def __init__(
        self,
        products: Sequence[Product],
        prices: PriceList,
        taxonomy: Callable[[str, str | None], str | None],
    ) -> None:
        self.prices = prices
        unified = [taxonomy(p.supplier, p.category) for p in products]
        categories = _labels(unified)
        brands = _labels(p.brand for p in products)
        self.rows = []
        for product, category in zip(products, unified, strict=True):
            costs = [
                c[0]
                for v in product.variants
                if (c := _cost(v)) is not None and c[1] == product.currency
            ]
            self.rows.append(
                Row(
                    product,
                    categories.get(merge(category) or ""),
                    brands.get(merge(product.brand) or ""),
                    min(costs) if costs else None,
                )
            )
        self.category_labels = categories
        self.brand_labels = brands

    def price(self, row: Row, rule: MarkupRule | None) -> int | None:
        if row.cost is None:
            return None
        chosen = self.prices.rule_for(row.product.supplier, row.category, rule)
        return chosen.apply(row.cost)

    def select(
        self, params: dict[str, Any], rule: MarkupRule | None, among: set[str] | None = None
    ) -> list[Row]:
        def keep(row: Row) -> bool:
            p = row.product
            if among is not None and row.id not in among:
                return False
            if "category" in params and merge(row.category) != merge(params["category"]):
                return False
            if "brand" in params and merge(row.brand) != merge(params["brand"]):
                return False
            if "supplier" in params and p.supplier != params["supplier"]:
                return False
            if "country" in params and p.country != params["country"].upper():
                return False
            if "currency" in params and p.currency != params["currency"].upper():
                return False
            if "in_stock" in params and row.in_stock != (params["in_stock"] == "true"):
                return False
            if "min_price" in params or "max_price" in params:
                price = self.price(row, rule)
                if price is None:
                    return False
                if "min_price" in params and price < int(params["min_price"]):
                    return False
                if "max_price" in params and price > int(params["max_price"]):
                    return False
            return True

        return [row for row in self.rows if keep(row)]

    def ordered(self, rows: list[Row], sort: str, rule: MarkupRule | None) -> list[Row]:
        by_name = sorted(rows, key=lambda r: r.name_key)
        if sort == "name":
            return by_name
        priced = [r for r in by_name if r.cost is not None]
        unpriced = [r for r in by_name if r.cost is None]
        sign = 1 if sort == "price_asc" else -1
        # Stable sort: equal (currency, price) keep name order.
        priced.sort(key=lambda r: (r.product.currency, sign * (self.price(r, rule) or 0)))
        return priced + unpriced

    @staticmethod
    def facets(rows: list[Row]) -> dict[str, dict[str, int]]:
        def count(values: Iterable[str | None]) -> dict[str, int]:
            return dict(Counter(v for v in values if v is not None))

        return {
            "category": count(r.category for r in rows),
            "brand": count(r.brand for r in rows),
            "supplier": count(r.product.supplier for r in rows),
            "country": count(r.product.country for r in rows),
        }

    def listing(self, field: str) -> list[dict[str, Any]]:
        counts = Counter(getattr(r, field) for r in self.rows if getattr(r, field) is not None)
        return [
            {"name": label, "product_count": n}
            for label, n in sorted(counts.items(), key=lambda kv: (kv[0].casefold(), kv[0]))
        ]


def osa_distance(a: str, b: str) -> int:
    """Optimal string alignment distance, the textbook dynamic programme (the oracle)."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]
