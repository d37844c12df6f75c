"""Canonical products as the listing shows them: one row per canonical product, its best
price and the offers behind it.

Built at the end of the index's staging pass (``gateway.catalog.staging``) from what the
matcher said about every supplier variant on the way past (:class:`Collected`). A
canonical row is stored like a supplier product's record (``gateway.catalog.records``:
the same positions for name, image, delivery, stock), so the index treats both alike,
with three differences:

* its variants are canonical variants, each holding its price currency, its best list
  price and its cheapest cost (for a reseller's own rule), and the supplier variants
  behind it (:data:`C_OFFERS`, in the offer book's fixed order);
* it has several suppliers (``R_SUPPLIERS``): the supplier filter finds it through any
  of them and the supplier facet counts it under each;
* it is found by the words of every offer's name (``R_ALIASES``), not only its own.

**Prices.** Each canonical variant is priced in one currency, ``offers.price_currency``
(the rule order routing uses too). Its *list* price is the cheapest of its offers in that
currency, each priced with the price list's rule for *that offer's* supplier and unified
category - exactly what ``gateway.orders.ports.PricedCatalog.unit_price`` charges for
that offer, so an order at the listed price is accepted. With a reseller's own rule, one
rule prices every offer and is increasing in cost, so the cheapest cost gives the best
price. The row's price is its cheapest variant's in the row's currency (a range variant at
its smallest face, like supplier products), and variants priced in another currency are
shown but not compared.

**Offer count.** ``offer_count`` of a row is the number of distinct suppliers with at
least one offer behind it ("2": two suppliers can deliver it); a variant's is the number
of supplier variants behind it. Every offer counts, in stock or not, priced in the
variant's currency or not: the count says who sells it, stock says whether it can be
bought now.

**Names.** A matched gift card is named from its key ("Steam Wallet (USA, USD)"): a
supplier's name for one face value ("Steam Gift Card 50 USD US") would mislead on a row
holding every face value. A game key, or a product forced by the overrides file, takes
the name of its first offer in the book's fixed order. Brand, category, country, image
and delivery are the first offer's that has one, in the order (supplier, product id).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from adapters.ids import parse_variant_id
from adapters.models import Product, currency_exponent
from gateway.catalog import records as rec
from gateway.catalog.matching import RANGE_VARIANT, STANDARD_VARIANT, Matcher, MatchKey, Miss
from gateway.catalog.offers import OfferBook, price_currency
from gateway.catalog.pacing import checkpoint, paced_sorted
from gateway.catalog.records import MoneyPair, apply_rule, variant_cost
from gateway.pricing import MarkupRule, PriceList

# Extra fields of a canonical row's record (after the product record's fields).
R_SUPPLIERS, R_ALIASES = 12, 13
# Canonical variant fields: key, name, face value, face min, face max, price currency,
# best list price, cheapest cost (both in the price currency), the supplier variant ids
# behind it, and whether it is a range.
C_KEY, C_NAME, C_FACE, C_MIN, C_MAX, C_CURRENCY, C_LIST, C_COST, C_OFFERS, C_RANGE = range(10)

#: An offer as collected while the catalog streams past: the supplier variant id, its
#: canonical key, its unit cost (a range at its smallest face), its face value, face min
#: and face max, and its name.
_Pair = MoneyPair | None
OfferSeen = tuple[str, MatchKey, _Pair, _Pair, _Pair, _Pair, str]

#: A supplier product's labels (supplier, brand, unified category, country, currency).
Labels = tuple[str, str | None, str | None, str | None, str]

#: What a canonical row reads of each offer's supplier product record, in this order.
SOURCE_FIELDS = (rec.R_NAME, rec.R_IMAGE, rec.R_MODE, rec.R_TIME, rec.R_STOCK, rec.R_AVAILABLE)
S_NAME, S_IMAGE, S_MODE, S_TIME, S_STOCK, S_AVAILABLE = range(6)


def is_canonical_product_id(product_id: str) -> bool:
    """Canonical product ids never hold a colon; supplier ids always do."""
    return ":" not in product_id


def is_canonical_record(record: rec.Record) -> bool:
    return is_canonical_product_id(record[rec.R_ID])


@dataclass
class Collected:
    """What the matcher said about each supplier product of the stream that has at least
    one matched variant (the latest version of a repeated id wins)."""

    matcher: Matcher
    #: product id -> (every variant matched, its matched variants)
    products: dict[str, tuple[bool, list[OfferSeen]]] = field(default_factory=dict)
    #: One key per canonical variant, and equal values (strings, fact pairs, money
    #: pairs) shared: what is collected lives until the stream ends, interleaved with
    #: the records, so every byte kept here also pins allocator memory afterwards.
    _keys: dict[str, MatchKey] = field(default_factory=dict)
    _shared: dict[Any, Any] = field(default_factory=dict)

    def see(self, product: Product) -> None:
        seen: list[OfferSeen] = []
        share = self._shared.setdefault
        for variant in product.variants:
            verdict = self.matcher.verdict(product, variant)
            if isinstance(verdict, Miss):
                continue
            key = self._keys.get(verdict.variant_id)
            if key is None:
                facts = tuple(share(pair, pair) for pair in verdict.facts)
                key = self._keys[verdict.variant_id] = MatchKey(
                    share(verdict.product_id, verdict.product_id),
                    share(verdict.variant_key, verdict.variant_key),
                    share(facts, facts),
                )
            cost, face = variant_cost(variant), _pair(variant.face_value)
            low, high = _pair(variant.face_min), _pair(variant.face_max)
            seen.append(
                (
                    variant.id,
                    key,
                    None if cost is None else share(cost, cost),
                    None if face is None else share(face, face),
                    None if low is None else share(low, low),
                    None if high is None else share(high, high),
                    share(variant.name, variant.name),
                )
            )
        if seen:
            self.products[product.id] = (len(seen) == len(product.variants), seen)
        else:
            self.products.pop(product.id, None)

    def absorbed(self) -> set[str]:
        """Supplier products every variant of which is an offer of a canonical variant:
        the listing shows their canonical product(s) instead. A partly matched product
        stays listed as itself too (its unmatched variants are sold only there)."""
        return {pid for pid, (fully, _) in self.products.items() if fully}


def _pair(money: Any) -> MoneyPair | None:
    return None if money is None else (money.amount, money.currency)


def offer_book(collected: Collected) -> OfferBook:
    """The offer book of what was collected, in its fixed order."""
    book = OfferBook()
    for n, pid in enumerate(paced_sorted(list(collected.products))):
        if not n & 255:
            checkpoint()
        for seen in collected.products[pid][1]:
            book.record(seen[0], seen[1])
    book.seal()
    collected._shared.clear()
    return book


def rows(
    collected: Collected,
    book: OfferBook,
    source: Mapping[str, tuple[tuple[Any, ...], Labels]],
    prices: PriceList,
) -> Iterator[tuple[rec.Record, Labels, tuple[str, ...], int | None, int | None]]:
    """One canonical row per canonical product: (record, labels, suppliers, cost, list
    price). ``source`` gives each offer's supplier product (its ``SOURCE_FIELDS`` and
    labels)."""
    seen_by_variant: dict[str, OfferSeen] = {}
    for n, (_, offers) in enumerate(collected.products.values()):
        if not n & 255:
            checkpoint()
        for seen in offers:
            seen_by_variant[seen[0]] = seen
    by_product: dict[str, list[str]] = {}
    for n, canonical_variant in enumerate(book.variant_ids()):
        if not n & 255:
            checkpoint()
        key = book.key(canonical_variant)
        assert key is not None
        by_product.setdefault(key.product_id, []).append(canonical_variant)
    priced: dict[tuple[int, int], int] = {}
    for n, product_id in enumerate(paced_sorted(list(by_product))):
        if not n & 63:
            checkpoint()
        variant_ids = sorted(by_product[product_id], key=lambda v: _variant_order(book, v))
        yield _row(product_id, variant_ids, book, seen_by_variant, source, prices, priced)


def _variant_order(book: OfferBook, canonical_variant: str) -> tuple[int, int, str]:
    key = book.key(canonical_variant)
    assert key is not None
    vk = key.variant_key
    if vk.startswith("fv") and vk[2:].isdigit():
        return (0, int(vk[2:]), vk)
    return (1 if vk == RANGE_VARIANT else 2, 0, vk)


def _row(
    product_id: str,
    variant_ids: list[str],
    book: OfferBook,
    seen_by_variant: Mapping[str, OfferSeen],
    source: Mapping[str, tuple[tuple[Any, ...], Labels]],
    prices: PriceList,
    priced: dict[tuple[int, int], int],
) -> tuple[rec.Record, Labels, tuple[str, ...], int | None, int | None]:
    variants = []
    currencies: list[str] = []
    product_ids: list[str] = []
    first_key: MatchKey | None = None
    first_offer: OfferSeen | None = None
    for canonical_variant in variant_ids:
        key = book.key(canonical_variant)
        assert key is not None
        first_key = first_key or key
        offer_ids = book.offers(canonical_variant) or []
        offers = [seen_by_variant[v] for v in offer_ids]
        first_offer = first_offer or offers[0]
        for v in offer_ids:
            ref = parse_variant_id(v)
            if ref is not None and ref.product_id not in product_ids:
                product_ids.append(ref.product_id)
        currency = price_currency(key, [o[2][1] for o in offers if o[2] is not None])
        list_price: int | None = None
        cheapest: int | None = None
        for offer, supplier_variant in zip(offers, offer_ids, strict=True):
            cost = offer[2]
            if cost is None or cost[1] != currency:
                continue
            ref = parse_variant_id(supplier_variant)
            assert ref is not None
            offer_labels = source[ref.product_id][1]
            rule = prices.rule_for(offer_labels[0], offer_labels[2])
            memo = (id(rule), cost[0])
            price = priced.get(memo)
            if price is None:
                price = priced[memo] = rule.apply(cost[0])
            list_price = price if list_price is None else min(list_price, price)
            cheapest = cost[0] if cheapest is None else min(cheapest, cost[0])
        if currency is not None:
            currencies.append(currency)
        lead = offers[0]
        is_range = key.variant_key == RANGE_VARIANT
        variants.append(
            (
                key.variant_key,
                _variant_name(key, lead),
                lead[3],
                lead[4],
                lead[5],
                currency,
                list_price,
                cheapest,
                tuple(offer_ids),
                is_range,
            )
        )
    assert first_key is not None and first_offer is not None
    row_currency = price_currency(first_key, currencies)
    ordered = sorted(product_ids, key=lambda pid: (source[pid][1][0], pid))
    products = [source[pid] for pid in ordered]
    if row_currency is None:
        row_currency = products[0][1][4]
    row_cost = _least(v[C_COST] for v in variants if v[C_CURRENCY] == row_currency)
    row_list = _least(v[C_LIST] for v in variants if v[C_CURRENCY] == row_currency)
    available = [r for r, _ in products if r[S_AVAILABLE]]
    stocks = [r[S_STOCK] for r in available]
    stock = None if any(s is None for s in stocks) else sum(stocks)
    lead_record = products[0][0]
    suppliers = tuple(dict.fromkeys(labels[0] for _, labels in products))
    record = (
        product_id,
        None,
        _row_name(first_key, first_offer, source),
        None,
        _first(r[S_IMAGE] for r, _ in products),
        lead_record[S_MODE],
        lead_record[S_TIME],
        None,
        stock,
        bool(available),
        None,
        tuple(variants),
        suppliers,
        tuple(dict.fromkeys(r[S_NAME] for r, _ in products)),
    )
    labels: Labels = (
        suppliers[0],
        _first(labels[1] for _, labels in products),
        _first(labels[2] for _, labels in products),
        _first(labels[3] for _, labels in products),
        row_currency,
    )
    return record, labels, suppliers, row_cost, row_list


def _least(values: Any) -> int | None:
    found = [v for v in values if v is not None]
    return min(found) if found else None


def _first(values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _row_name(
    key: MatchKey, first_offer: OfferSeen, source: Mapping[str, tuple[tuple[Any, ...], Labels]]
) -> str:
    line, place, currency = key.fact("line"), key.fact("place"), key.fact("currency")
    if line and place and currency:
        return f"{line} ({place}, {currency})"
    ref = parse_variant_id(first_offer[0])
    assert ref is not None
    name: str = source[ref.product_id][0][S_NAME]
    return name


def _variant_name(key: MatchKey, lead: OfferSeen) -> str:
    face = lead[3]
    if key.variant_key not in (RANGE_VARIANT, STANDARD_VARIANT) and face is not None:
        return format_money(*face)
    return lead[6]


def format_money(amount: int, currency: str) -> str:
    """``5000, "USD"`` -> ``"50.00 USD"`` (a canonical face value's variant name)."""
    exponent = currency_exponent(currency)
    major = Decimal(amount).scaleb(-exponent) if exponent > 0 else Decimal(amount)
    return f"{major:.{max(exponent, 0)}f} {currency}"


def summary(
    record: rec.Record,
    *,
    supplier: str,
    brand: str | None,
    category: str | None,
    country: str | None,
    currency: str,
    price: int | None,
    rule: MarkupRule | None,
) -> dict[str, Any]:
    """A canonical row's summary, the shape of a supplier product's
    (``records.summary``) with its suppliers and offer counts; ``price`` is the row's
    (already computed), ``rule`` the reseller's own (None: list prices)."""
    suppliers = list(record[R_SUPPLIERS])
    return {
        "id": record[rec.R_ID],
        "supplier": supplier if len(suppliers) == 1 else None,
        "suppliers": suppliers,
        "offer_count": len(suppliers),
        "name": record[rec.R_NAME],
        "brand": brand,
        "category": category,
        "sub_category": None,
        "country": country,
        "currency": currency,
        "image_url": record[rec.R_IMAGE],
        "delivery_mode": record[rec.R_MODE],
        "delivery_time": record[rec.R_TIME],
        "in_stock": rec.in_stock(record),
        "stock": record[rec.R_STOCK],
        "price": None if price is None else {"amount": price, "currency": currency},
        "variants": [variant_summary(record[rec.R_ID], v, rule) for v in record[rec.R_VARIANTS]],
    }


def variant_price(variant: tuple[Any, ...], rule: MarkupRule | None) -> int | None:
    """A canonical variant's best price: its best list price, or the reseller's rule on
    its cheapest cost (None: no offer priced in its currency)."""
    if rule is None:
        listed: int | None = variant[C_LIST]
        return listed
    cost = variant[C_COST]
    return None if cost is None else apply_rule(rule, cost)


def variant_summary(
    product_id: str, variant: tuple[Any, ...], rule: MarkupRule | None
) -> dict[str, Any]:
    price = None if variant[C_RANGE] else variant_price(variant, rule)
    return {
        "id": f"{product_id}:{variant[C_KEY]}",
        "name": variant[C_NAME],
        "price": None if price is None else {"amount": price, "currency": variant[C_CURRENCY]},
        "face_value": rec.money_json(variant[C_FACE]),
        "face_min": rec.money_json(variant[C_MIN]),
        "face_max": rec.money_json(variant[C_MAX]),
        "offer_count": len(variant[C_OFFERS]),
    }
