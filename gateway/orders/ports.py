"""What the orders service needs from the rest of the gateway, as small ports.

The catalog (live products and reseller prices) and reseller access (who is calling,
where its webhooks go) are built by other parts of the gateway; orders depend only on
these protocols, wired to the real implementations in ``gateway.orders.wiring``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from adapters.models import Money, Product, Variant
from gateway.catalog.matching import MatchKey
from gateway.catalog.offers import find_variant, is_canonical_variant_id
from gateway.catalog.offers import price_currency as offers_price_currency
from gateway.pricing import MarkupRule, PriceList

Offer = tuple[Product, Variant]


class ResellerLike(Protocol):
    """The calling reseller as the access layer puts it on ``request.state.reseller``."""

    @property
    def id(self) -> str: ...

    @property
    def markup(self) -> MarkupRule | None: ...

    @property
    def webhook_url(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    url: str
    secret: str


class ResellerDirectory(Protocol):
    async def webhook_target(self, reseller_id: str) -> WebhookTarget | None:
        """Where the reseller's webhooks go and the secret that signs them, read when
        an event is sent (so a changed URL or secret applies to pending deliveries)."""
        ...


class CatalogLookup(Protocol):
    def ready(self) -> bool:
        """Whether a catalog is loaded (before that nothing can be validated)."""
        ...

    def find_variant(self, variant_id: str) -> tuple[Product, Variant] | None:
        """The live product and variant, or None when the catalog does not have it."""
        ...

    def unit_price(
        self,
        product: Product,
        variant: Variant,
        face_value: Money | None,
        markup: MarkupRule | None,
    ) -> Money | None:
        """The reseller's price for one unit, as the catalog shows it (None when the
        variant cannot be priced)."""
        ...

    def offers(self, variant_id: str) -> list[Offer] | None:
        """The live supplier offers behind a canonical variant id (fixed order), or None
        when ``variant_id`` is not a canonical variant of the served catalog."""
        ...

    def price_currency(self, variant_id: str, currencies: Iterable[str]) -> str | None:
        """The one currency the canonical variant is priced in, given its offers'
        currencies (``gateway.catalog.offers.price_currency``)."""
        ...


class PricedCatalog:
    """A ``CatalogLookup`` over any product finder, priced exactly like the catalog's own
    rendering: supplier cost by ``Variant.unit_cost``, the rule the catalog lists by (a
    range variant at its chosen face value, which validation has already checked lies in
    its range), plus the markup rule resolved by supplier and unified category."""

    def __init__(
        self,
        find: Callable[[str], Product | None],
        prices: PriceList,
        taxonomy: Callable[[str, str | None], str | None] = lambda _supplier, cat: cat,
        ready: Callable[[], bool] = lambda: True,
        offers: Callable[[str], list[Offer] | None] = lambda _variant_id: None,
        match_key: Callable[[str], MatchKey | None] = lambda _variant_id: None,
    ) -> None:
        self._find = find
        self._prices = prices
        self._taxonomy = taxonomy
        self._ready = ready
        self._offers = offers
        self._match_key = match_key

    def ready(self) -> bool:
        return self._ready()

    def find_variant(self, variant_id: str) -> tuple[Product, Variant] | None:
        return find_variant(self._find, variant_id)

    def unit_price(
        self,
        product: Product,
        variant: Variant,
        face_value: Money | None,
        markup: MarkupRule | None,
    ) -> Money | None:
        cost = variant.unit_cost(face_value)
        if cost is None:
            return None
        category = self._taxonomy(product.supplier, product.category)
        rule = self._prices.rule_for(product.supplier, category, markup)
        return Money(amount=rule.apply(cost.amount), currency=cost.currency)

    def offers(self, variant_id: str) -> list[Offer] | None:
        if not is_canonical_variant_id(variant_id):
            return None
        return self._offers(variant_id)

    def price_currency(self, variant_id: str, currencies: Iterable[str]) -> str | None:
        return offers_price_currency(self._match_key(variant_id), currencies)


def reseller_of(state: Any) -> ResellerLike | None:
    """The reseller the access layer attached to a request, if any."""
    return getattr(state, "reseller", None)
