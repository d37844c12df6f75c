"""The offer book: which live supplier variants stand behind each canonical variant, as
the order layer reads them (``CatalogService.offers``)."""

from __future__ import annotations

from typing import Any

from catalog_support import GG, VO, ServiceFactory
from test_catalog_service import publish

from adapters.base import SupplierAdapter
from gateway.catalog.offers import is_canonical_variant_id


async def test_the_shared_cards_have_one_offer_per_supplier(
    adapters: dict[str, SupplierAdapter],
    make_service: ServiceFactory,
    redis: Any,
    key_prefix: str,
) -> None:
    for adapter in adapters.values():
        assert (await publish(adapter, redis, key_prefix)).outcome == "published"
    service = make_service(adapters, sync_enabled=False)
    await service.start()

    offers = service.offers("gift-steam-wallet-deu-eur:fv5000")
    assert offers is not None
    assert [p.supplier for p, _ in offers] == [GG, VO]
    for product, variant in offers:
        assert variant.id.startswith(product.id + ":")
        cost = variant.unit_cost(variant.face_value)
        assert cost is not None and cost.currency == "EUR"
    # A supplier variant id, an unknown canonical id: not canonical variants of the book.
    assert service.offers(offers[0][1].id) is None
    assert service.offers("gift-steam-wallet-deu-eur:fv4999") is None
    assert is_canonical_variant_id("gift-steam-wallet-deu-eur:fv5000")
    assert not is_canonical_variant_id(offers[0][1].id)


def test_the_price_currency_is_the_cards_own_when_an_offer_is_priced_in_it() -> None:
    from gateway.catalog.matching import MatchKey
    from gateway.catalog.offers import price_currency

    usd_card = MatchKey("gift-steam-wallet-usa-usd", "fv5000", (("currency", "USD"),))
    assert price_currency(usd_card, ["EUR", "USD"]) == "USD"
    assert price_currency(usd_card, ["EUR", "EUR", "USD"]) == "USD"
    # No offer in the card's currency: the most common one, ties alphabetical.
    assert price_currency(usd_card, ["EUR"]) == "EUR"
    game = MatchKey("game-x-steam-standard-global", "std")
    assert price_currency(game, ["USD", "EUR"]) == "EUR"
    assert price_currency(game, ["USD", "EUR", "USD"]) == "USD"
    assert price_currency(game, []) is None
