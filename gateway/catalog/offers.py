"""Which supplier variants stand behind each canonical variant: the offer book.

Built in the same pass as the index (``gateway.catalog.staging``, from the verdicts
``gateway.catalog.canonical.Collected`` gathers), kept by the index (``CatalogIndex.offers``)
and replaced with it. It holds ids and keys only; the products themselves stay in the
index (listed, or kept aside when their canonical product is listed instead), read when
an order is validated or placed.

A canonical variant id (``gift-steam-wallet-usa-usd:fv5000``) has one colon and no
supplier part, so it can never be mistaken for a supplier's variant id
(``vouchers:865:fv5000``, see ``adapters.ids``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from adapters.ids import parse_variant_id, product_id_of
from adapters.models import Product, Variant
from gateway.catalog.matching import MatchKey
from gateway.catalog.pacing import checkpoint, paced_sorted


class OfferBook:
    """Canonical variant id -> the supplier variant ids offering it, in a fixed order
    (supplier, then variant id), whatever order the catalog streamed in."""

    __slots__ = ("_keys", "_offers")

    def __init__(self) -> None:
        self._offers: dict[str, list[str]] = {}
        self._keys: dict[str, MatchKey] = {}

    def record(self, supplier_variant_id: str, key: MatchKey) -> None:
        """``supplier_variant_id`` is an offer of ``key`` (build time only)."""
        variant_id = key.variant_id
        found = self._offers.get(variant_id)
        if found is not None:
            found.append(supplier_variant_id)
            return
        self._offers[variant_id] = [supplier_variant_id]
        self._keys[variant_id] = key

    def seal(self) -> None:
        for n, ids in enumerate(self._offers.values()):
            if not n & 255:
                checkpoint()  # a build-time pass over every canonical variant
            ids[:] = sorted(set(ids), key=_offer_order)  # a repeated product counts once

    def variant_ids(self) -> list[str]:
        """Every canonical variant id of the book, sorted (in runs: build time)."""
        return paced_sorted(list(self._offers))

    def offers(self, canonical_variant_id: str) -> list[str] | None:
        """The supplier variant ids behind a canonical variant, or None when the id is
        not a canonical variant of this book."""
        found = self._offers.get(canonical_variant_id)
        return list(found) if found is not None else None

    def key(self, canonical_variant_id: str) -> MatchKey | None:
        return self._keys.get(canonical_variant_id)

    def live_offers(
        self, canonical_variant_id: str, find: Callable[[str], Product | None]
    ) -> list[tuple[Product, Variant]] | None:
        """The offers behind a canonical variant as (product, variant), each looked up
        with ``find`` (product id -> product); an offer whose product is gone is left
        out. None when the id is not a canonical variant of this book."""
        ids = self._offers.get(canonical_variant_id)
        if ids is None:
            return None
        found = (find_variant(find, variant_id) for variant_id in ids)
        return [offer for offer in found if offer is not None]

    def __len__(self) -> int:
        return len(self._offers)

    def containers(self) -> tuple[dict[str, Any], ...]:
        """The book's large containers, for a replaced index's teardown
        (``CatalogIndex.teardown``)."""
        return self._offers, self._keys


def price_currency(key: MatchKey | None, offer_currencies: Iterable[str]) -> str | None:
    """The one currency a canonical variant is priced, listed and ordered in.

    Offers in different currencies cannot be compared without an exchange rate, and the
    gateway has none: it never converts money. So each canonical variant has one price
    currency - the card's own currency (part of a gift card's match key) when an offer is
    priced in it, otherwise the currency most of its offers are priced in (ties: the
    first in alphabetical order). Its best price is the cheapest offer *in that
    currency*; offers priced in another currency are shown but are not eligible for an
    order accepted in this one. The listing (``gateway.catalog``) and order routing
    (``gateway.orders``) both decide it here, so they cannot disagree.
    """
    counts: dict[str, int] = {}
    for currency in offer_currencies:
        counts[currency] = counts.get(currency, 0) + 1
    if not counts:
        return None
    own = key.fact("currency") if key is not None else None
    if own is not None and own in counts:
        return own
    return min(counts, key=lambda c: (-counts[c], c))


def find_variant(
    find: Callable[[str], Product | None], variant_id: str
) -> tuple[Product, Variant] | None:
    """A supplier variant id's product (by ``find``) and variant, or None."""
    product_id = product_id_of(variant_id)
    product = None if product_id is None else find(product_id)
    if product is None:
        return None
    for variant in product.variants:
        if variant.id == variant_id:
            return product, variant
    return None


def is_canonical_variant_id(value: str) -> bool:
    """Whether ``value`` is shaped like a canonical variant id (not a supplier's)."""
    return parse_variant_id(value) is None and value.count(":") == 1


def _offer_order(variant_id: str) -> tuple[str, str]:
    ref = parse_variant_id(variant_id)
    return (ref.supplier if ref is not None else "", variant_id)
