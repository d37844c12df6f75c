"""The gift cards both sandbox suppliers sell: how the sandboxes overlap, as real ones do.

Real suppliers sell many of the same cards (a Steam Wallet card for the US in 50 USD is
the same thing from anyone), each at its own price and stock. The gateway merges them
into one canonical product (``gateway/catalog/matching.py``), so the sandboxes must give
it something to merge: every card here is sold by both, named the way each supplier
names things - Vouchers per country with denominations ("Steam Wallet Card US", faces
10, 25, 50, 100 USD), Gaming Goods one product per face value with the country and the
card's currency in the title ("Steam Gift Card 50 USD US", priced in EUR).

Each sandbox places these cards at fixed positions of its generated catalog, drawing
their prices and stock from a random source of their own, so the rest of the generated
catalog (and every id in it) is the same as without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class OverlapCard:
    """One card line for one country, in the face values both suppliers sell."""

    #: The Vouchers brand (``adapters/vouchers/catalog_data.py`` BRANDS) it is sold as.
    voucher_brand: str
    #: The Gaming Goods brand and the title its cards start with.
    gaming_brand: str
    gaming_title: str
    #: ISO 3166-1 alpha-3, and the label names use ("US", "UK").
    country: str
    label: str
    currency: str
    #: Face values in major units, in the order Gaming Goods places them.
    faces: tuple[Decimal, ...]


_D = Decimal

#: The shared cards, most demonstrative first (small catalogs take a prefix).
OVERLAP_CARDS: tuple[OverlapCard, ...] = (
    OverlapCard("Steam Wallet Card", "Steam", "Steam Gift Card", "USA", "US", "USD",
                (_D(50), _D(25), _D(10), _D(100))),
    OverlapCard("PlayStation Store", "PlayStation", "PlayStation Store Gift Card", "USA", "US",
                "USD", (_D(25), _D(50), _D(10))),
    OverlapCard("Xbox Gift Card", "Xbox", "Xbox Gift Card", "USA", "US", "USD",
                (_D(25), _D(50))),
    OverlapCard("Nintendo eShop", "Nintendo", "Nintendo eShop Card", "USA", "US", "USD",
                (_D(25), _D(10), _D(50))),
    OverlapCard("Google Play", "Google", "Google Play Gift Card", "USA", "US", "USD",
                (_D(25), _D(10), _D(50))),
    OverlapCard("Steam Wallet Card", "Steam", "Steam Gift Card", "DEU", "DE", "EUR",
                (_D(50), _D(25))),
    OverlapCard("PlayStation Store", "PlayStation", "PlayStation Store Gift Card", "GBR", "UK",
                "GBP", (_D(20), _D(50))),
    OverlapCard("Nintendo eShop", "Nintendo", "Nintendo eShop Card", "JPN", "JP", "JPY",
                (_D(5000), _D(1000))),
    OverlapCard("Google Play", "Google", "Google Play Gift Card", "DEU", "DE", "EUR",
                (_D(25), _D(15))),
)  # fmt: skip


def gaming_goods_offers() -> list[tuple[int, OverlapCard, Decimal]]:
    """The cards one product per face value, as (card number, card, face), interleaved
    card by card (every card's first face, then every second one, ...) so that a small
    catalog taking a prefix still holds one card of every line."""
    rounds = max(len(card.faces) for card in OVERLAP_CARDS)
    return [
        (number, card, card.faces[round_])
        for round_ in range(rounds)
        for number, card in enumerate(OVERLAP_CARDS)
        if round_ < len(card.faces)
    ]
