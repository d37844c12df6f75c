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
filtered set. With the matcher's verdicts, canonical products replace the supplier
products whose variants all matched (``docs/routing.md``): best price over the offers,
each priced by its own supplier's rule, in the variant's one price currency.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from adapters.models import Product, Variant, discounted_cost
from gateway.catalog.matching import Matches
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


def price_currency(card_currency: str | None, currencies: list[str]) -> str | None:
    """The documented rule, restated: the card's own currency when an offer is priced in
    it, else the most common one, ties alphabetical."""
    if not currencies:
        return None
    if card_currency in currencies:
        return card_currency
    counts = Counter(currencies)
    return sorted(counts, key=lambda c: (-counts[c], c))[0]


@dataclass
class Row:
    """One listing row: a supplier product listed as itself, or a canonical product."""

    id: str
    name: str
    suppliers: list[str]
    raw_category: str | None  # after the taxonomy, before label merging
    raw_brand: str | None
    country: str | None
    currency: str
    cost: int | None
    #: each priced variant: (currency, cost, list price); a supplier row prices its
    #: cost with the rule of its merged category label, so it has none here.
    canonical_prices: list[tuple[str, int, int]] | None
    in_stock: bool
    source_categories: set[str | None]
    product: Product | None = None
    category: str | None = None  # display label (merged)
    brand: str | None = None

    @property
    def name_key(self) -> tuple[str, str]:
        return fold(self.name), self.id


class CatalogOracle:
    """With ``matches`` (``match_catalog`` of the same products: matching has its own
    tests), rows follow the documented listing rules (``docs/routing.md``): a product
    whose variants all matched is replaced by its canonical product(s)."""

    def __init__(
        self,
        products: Sequence[Product],
        prices: PriceList,
        taxonomy: Callable[[str, str | None], str | None],
        matches: Matches | None = None,
    ) -> None:
        self.prices = prices
        matched: dict[str, set[str]] = {}  # product id -> its matched variant ids
        for offers in (matches.offers if matches else {}).values():
            for offer in offers:
                matched.setdefault(offer.product.id, set()).add(offer.variant.id)
        self.rows: list[Row] = []
        by_id = {p.id: p for p in products}
        for product in products:
            if len(matched.get(product.id, ())) == len(product.variants):
                continue  # every variant is an offer of a canonical product
            costs = [
                c[0]
                for v in product.variants
                if (c := _cost(v)) is not None and c[1] == product.currency
            ]
            self.rows.append(
                Row(
                    id=product.id,
                    name=product.name,
                    suppliers=[product.supplier],
                    raw_category=taxonomy(product.supplier, product.category),
                    raw_brand=product.brand,
                    country=product.country,
                    currency=product.currency,
                    cost=min(costs) if costs else None,
                    canonical_prices=None,
                    in_stock=_stocked(product),
                    source_categories={product.category},
                    product=product,
                )
            )
        if matches is not None:
            self.rows += self._canonical_rows(matches, by_id, prices, taxonomy)
        categories = _labels(r.raw_category for r in self.rows)
        brands = _labels(r.raw_brand for r in self.rows)
        for row in self.rows:
            row.category = categories.get(merge(row.raw_category) or "")
            row.brand = brands.get(merge(row.raw_brand) or "")
        self.category_labels = categories
        self.brand_labels = brands

    @staticmethod
    def _canonical_rows(
        matches: Matches,
        by_id: dict[str, Product],
        prices: PriceList,
        taxonomy: Callable[[str, str | None], str | None],
    ) -> list[Row]:
        grouped: dict[str, list[str]] = {}
        for variant_id, key in matches.keys.items():
            grouped.setdefault(key.product_id, []).append(variant_id)
        rows = []
        for product_id, variant_ids in grouped.items():

            def order(variant_id: str) -> tuple[int, int]:
                vk = matches.keys[variant_id].variant_key
                if vk.startswith("fv"):
                    return 0, int(vk[2:])
                return (1 if vk == "range" else 2), 0

            variant_ids.sort(key=order)
            first_key = matches.keys[variant_ids[0]]
            card_currency = first_key.fact("currency")
            priced: list[tuple[str, int, int]] = []
            currencies = []
            offer_products: dict[str, Product] = {}
            for variant_id in variant_ids:
                offers = sorted(
                    matches.offers[variant_id], key=lambda o: (o.product.supplier, o.variant.id)
                )
                for o in offers:
                    offer_products[o.product.id] = by_id[o.product.id]
                costs = [(o, c) for o in offers if (c := _cost(o.variant)) is not None]
                currency = price_currency(
                    matches.keys[variant_id].fact("currency"), [c[1] for _, c in costs]
                )
                if currency is None:
                    continue
                currencies.append(currency)
                in_currency = [(o, c[0]) for o, c in costs if c[1] == currency]
                list_price = min(
                    prices.rule_for(
                        o.product.supplier, taxonomy(o.product.supplier, o.product.category)
                    ).apply(cost)
                    for o, cost in in_currency
                )
                priced.append((currency, min(cost for _, cost in in_currency), list_price))
            ordered = sorted(offer_products.values(), key=lambda p: (p.supplier, p.id))
            row_currency = price_currency(card_currency, currencies) or ordered[0].currency
            line, place = first_key.fact("line"), first_key.fact("place")
            if line and place and card_currency:
                name = f"{line} ({place}, {card_currency})"
            else:
                first = sorted(
                    matches.offers[variant_ids[0]], key=lambda o: (o.product.supplier, o.variant.id)
                )[0]
                name = first.product.name
            in_row = [c for cur, c, _ in priced if cur == row_currency]

            def first_of(values: Iterable[str | None]) -> str | None:
                return next((v for v in values if v is not None), None)

            rows.append(
                Row(
                    id=product_id,
                    name=name,
                    suppliers=sorted({p.supplier for p in ordered}),
                    raw_category=first_of(taxonomy(p.supplier, p.category) for p in ordered),
                    raw_brand=first_of(p.brand for p in ordered),
                    country=first_of(p.country for p in ordered),
                    currency=row_currency,
                    cost=min(in_row) if in_row else None,
                    canonical_prices=[p for p in priced if p[0] == row_currency],
                    in_stock=any(_stocked(p) for p in ordered),
                    source_categories={
                        next((p.category for p in ordered if p.category is not None), None)
                    },
                )
            )
        return rows

    def price(self, row: Row, rule: MarkupRule | None) -> int | None:
        if row.cost is None:
            return None
        if row.canonical_prices is not None:
            if rule is not None:
                return rule.apply(row.cost)
            return min(list_price for _, _, list_price in row.canonical_prices)
        assert row.product is not None
        chosen = self.prices.rule_for(row.product.supplier, row.category, rule)
        return chosen.apply(row.cost)

    def select(
        self, params: dict[str, Any], rule: MarkupRule | None, among: set[str] | None = None
    ) -> list[Row]:
        def keep(row: Row) -> bool:
            if among is not None and row.id not in among:
                return False
            if "category" in params and merge(row.category) != merge(params["category"]):
                return False
            if "brand" in params and merge(row.brand) != merge(params["brand"]):
                return False
            if "supplier" in params and params["supplier"] not in row.suppliers:
                return False
            if "country" in params and row.country != params["country"].upper():
                return False
            if "currency" in params and row.currency != params["currency"].upper():
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
        priced.sort(key=lambda r: (r.currency, sign * (self.price(r, rule) or 0)))
        return priced + unpriced

    @staticmethod
    def facets(rows: list[Row]) -> dict[str, dict[str, int]]:
        def count(values: Iterable[str | None]) -> dict[str, int]:
            return dict(Counter(v for v in values if v is not None))

        return {
            "category": count(r.category for r in rows),
            "brand": count(r.brand for r in rows),
            "supplier": count(s for r in rows for s in r.suppliers),
            "country": count(r.country for r in rows),
        }

    def listing(self, field: str) -> list[dict[str, Any]]:
        counts = Counter(getattr(r, field) for r in self.rows if getattr(r, field) is not None)
        return [
            {"name": label, "product_count": n}
            for label, n in sorted(counts.items(), key=lambda kv: (kv[0].casefold(), kv[0]))
        ]


def _stocked(product: Product) -> bool:
    return product.available and (product.stock is None or product.stock > 0)


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
