"""The two sandboxes sell the same gift cards, as real suppliers do, and the matcher
merges them: each shared card is one canonical variant with one offer per supplier, at
prices and stock of each supplier's own. The sandboxes' own JSON goes through each
adapter's mapping, as a sync reads it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.gaming_goods import catalog_data as gg_data
from adapters.gaming_goods.mapping import product_from_item
from adapters.models import Product, to_minor_units
from adapters.sandbox_overlap import OVERLAP_CARDS, gaming_goods_offers
from adapters.vouchers import catalog_data as vo_data
from adapters.vouchers.mapping import product_from_upstream
from adapters.vouchers.sandbox import _product_json
from gateway.catalog.matching import BrandTable, Matcher, match_catalog

MATCHER = Matcher(BrandTable.load())


def products(gg_size: int, vo_size: int, seed: int) -> list[Product]:
    gg = [
        product_from_item(p.list_item())
        for p in gg_data.generate_catalog(gg_size, seed=seed)
        if p.active
    ]
    vo = [product_from_upstream(_product_json(p)) for p in vo_data.generate_catalog(vo_size, seed)]
    return gg + vo


def shared_variant_ids() -> set[str]:
    """What the shared cards are, from the table: line, country, currency, face."""
    lines = {
        "Steam Wallet Card": "steam-wallet",
        "PlayStation Store": "playstation-store",
        "Xbox Gift Card": "xbox-gift-card",
        "Nintendo eShop": "nintendo-eshop",
        "Google Play": "google-play",
    }
    return {
        f"gift-{lines[card.voucher_brand]}-{card.country.lower()}-{card.currency.lower()}"
        f":fv{to_minor_units(face, card.currency)}"
        for card in OVERLAP_CARDS
        for face in card.faces
    }


@pytest.mark.parametrize("seed", [42, 7, 11])
def test_every_shared_card_is_one_canonical_variant_with_an_offer_from_each(seed: int) -> None:
    matches = match_catalog(products(1500, 300, seed), MATCHER)
    merged = matches.merged
    assert set(merged) == shared_variant_ids()
    for variant_id, offers in merged.items():
        assert sorted(o.product.supplier for o in offers) == ["gaming_goods", "vouchers"], (
            variant_id
        )
        gg, vo = offers
        assert gg.product.stock is not None and vo.product.stock is None
        assert gg.variant.cost is not None and vo.variant.cost is not None
        # each supplier its own price: Gaming Goods in EUR, Vouchers in the card's currency
        assert gg.variant.cost.currency == "EUR"
        assert vo.variant.cost.currency == matches.keys[variant_id].fact("currency")


def test_a_small_catalog_keeps_its_variety_and_still_overlaps() -> None:
    small = gg_data.generate_catalog(40, seed=7)
    shared = [p for p in small if p.index % gg_data.OVERLAP_STRIDE == gg_data.OVERLAP_START]
    assert len(shared) == 8 and len(small) - len(shared) == 32  # a fifth at most
    assert {p.category for p in small} >= {"Game Keys", "Gift Card", "DLC"}
    merged = match_catalog(products(40, 70, 7), MATCHER).merged
    # the first face of each of the first eight cards, from both suppliers
    assert len(merged) == 8


def test_the_shared_cards_leave_the_rest_of_each_catalog_as_it_was() -> None:
    """Ids, and every product not replaced or renamed, are those of the generator."""
    gg = gg_data.generate_catalog(300, seed=42)
    assert [p.id for p in gg] == [gg_data.product_uuid(42, i) for i in range(300)]
    positions = {gg_data.OVERLAP_START + n * gg_data.OVERLAP_STRIDE for n in range(23)}
    assert len(gaming_goods_offers()) == 23
    titles = {p.title for i, p in enumerate(gg) if i in positions}
    assert all(t.endswith((" US", " DE", " UK", " JP")) for t in titles)
    # a bigger catalog of the same seed begins with the smaller one, shared cards included
    assert [p.list_item() for p in gg_data.generate_catalog(60, seed=42)] == [
        p.list_item() for p in gg[:60]
    ]
    vo = vo_data.generate_catalog(300, 42)
    assert len({p.id for p in vo}) == 300
    assert len({p.name for p in vo}) == 300  # no (brand, country) sold twice
    assert vo_data.generate_catalog(300, 42) == vo


def test_shared_voucher_cards_sell_exactly_the_shared_faces() -> None:
    catalog = {p.name: p for p in vo_data.generate_catalog(300, 42)}
    for card in OVERLAP_CARDS:
        label = next(c.label for c in vo_data.COUNTRIES if c.alpha3 == card.country)
        product = catalog[f"{card.voucher_brand} {label}"]
        assert product.currency == card.currency
        faces = sorted(d.min_value for d in product.denominations)
        assert faces == sorted(card.faces)
        assert all(d.min_value == d.max_value for d in product.denominations)
        assert all(Decimal(0) <= d.discount <= Decimal(10) for d in product.denominations)
