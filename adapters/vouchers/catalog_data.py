"""The sandbox's generated voucher catalog: deterministic, seeded, with stable ids.

The catalog looks like the supplier's document: brand-like product names sold per country
("Steam Wallet Card US"), an ISO 3166-1 alpha-3 country and an ISO 4217 currency each,
categories with sub-categories, and ``available_denominations`` that are mostly fixed
(``min_value == max_value``) with some open ranges (``min_value < max_value``), each with a
discount percentage. Amounts are exact ``Decimal`` major units here; the sandbox writes
them as JSON numbers, as the upstream does.

The currencies are chosen to exercise the money rules: JPY has no minor unit, BHD has
three decimals, the rest two. Same ``seed`` and ``size`` → the same catalog, the same ids.

Gift cards that the Gaming Goods sandbox sells too (``adapters/sandbox_overlap.py``) are
placed near the start of the catalog (the first product of their country from position
1 + 3n for the n-th card) with the shared face values and discounts of their own. Placing
one swaps two brands of the same country, which leaves every random draw (they depend on
the country's currency, never on the brand) and every id as without it.
"""

from __future__ import annotations

import dataclasses
import random
import re
from dataclasses import dataclass
from decimal import Decimal

from adapters.sandbox_overlap import OVERLAP_CARDS


@dataclass(frozen=True, slots=True)
class Country:
    id: int
    alpha3: str
    label: str
    currency_id: int
    currency: str


COUNTRIES: tuple[Country, ...] = (
    Country(1, "USA", "US", 1, "USD"),
    Country(2, "GBR", "UK", 2, "GBP"),
    Country(3, "DEU", "DE", 3, "EUR"),
    Country(4, "FRA", "FR", 3, "EUR"),
    Country(5, "CAN", "CA", 4, "CAD"),
    Country(6, "JPN", "JP", 5, "JPY"),
    Country(7, "ARE", "AE", 6, "AED"),
    Country(8, "AUS", "AU", 7, "AUD"),
    Country(9, "BHR", "BH", 8, "BHD"),
    Country(10, "ESP", "ES", 3, "EUR"),
)

#: Currency ids as the ``currency_id`` filter knows them.
CURRENCY_IDS: dict[str, int] = {c.currency: c.currency_id for c in COUNTRIES}

_D = Decimal
#: Fixed face values usual for each currency.
FIXED_FACES: dict[str, tuple[Decimal, ...]] = {
    "USD": (_D("10"), _D("25"), _D("50"), _D("100"), _D("200")),
    "GBP": (_D("10"), _D("15"), _D("20"), _D("25"), _D("50"), _D("100")),
    "EUR": (_D("15"), _D("25"), _D("50"), _D("100")),
    "CAD": (_D("25"), _D("50"), _D("100")),
    "JPY": (_D("1000"), _D("3000"), _D("5000"), _D("10000")),
    "AED": (_D("50"), _D("100"), _D("250"), _D("500")),
    "AUD": (_D("20"), _D("50"), _D("100")),
    "BHD": (_D("2.5"), _D("5"), _D("10"), _D("25")),
}
#: Open ranges offered for "any amount" products.
RANGES: dict[str, tuple[Decimal, Decimal]] = {
    "USD": (_D("5"), _D("500")),
    "GBP": (_D("5"), _D("250")),
    "EUR": (_D("5"), _D("500")),
    "CAD": (_D("10"), _D("500")),
    "JPY": (_D("500"), _D("50000")),
    "AED": (_D("25"), _D("1000")),
    "AUD": (_D("10"), _D("500")),
    "BHD": (_D("1"), _D("100")),
}
_DISCOUNTS = tuple(
    _D(x) for x in ("0", "1.0", "1.5", "2.0", "2.5", "3.0", "3.5", "4.0", "5.0", "6.5", "8.0")
)


@dataclass(frozen=True, slots=True)
class Brand:
    name: str
    category: str
    sub_category: str | None
    delivery_mode: str
    delivery_time: str
    validity: str | None
    platform: str


BRANDS: tuple[Brand, ...] = (
    Brand("Steam Wallet Card", "Gaming", "PC Gaming", "Code", "Instant", "12 months", "Steam"),
    Brand("PlayStation Store", "Gaming", "Console Gaming", "Code", "Instant", None, "PSN"),
    Brand("Xbox Gift Card", "Gaming", "Console Gaming", "Code", "Instant", None, "Xbox"),
    Brand("Nintendo eShop", "Gaming", "Console Gaming", "Code", "Instant", None, "eShop"),
    Brand("Roblox", "Gaming", "Online Games", "Code with PIN", "Instant", None, "Roblox"),
    Brand("Razer Gold", "Gaming", "Game Credits", "Code with PIN", "Instant", None, "Razer"),
    Brand("Battle.net Balance", "Gaming", "PC Gaming", "Code", "Instant", None, "Battle.net"),
    Brand("EA Play", "Gaming", "Subscriptions", "Code", "Instant", "12 months", "EA app"),
    Brand("League of Legends RP", "Gaming", "Online Games", "Code", "Instant", None, "Riot"),
    Brand("Fortnite V-Bucks", "Gaming", "Online Games", "Code", "Instant", None, "Epic Games"),
    Brand("PUBG Mobile UC", "Gaming", "Mobile Games", "Code with PIN", "Delayed", None, "PUBG"),
    Brand("Free Fire Diamonds", "Gaming", "Mobile Games", "Code", "Delayed", None, "Garena"),
    Brand(
        "Amazon Gift Card", "Gift Cards", "Marketplaces", "Code", "Instant", "10 years",
        "Amazon",
    ),
    Brand("Apple Gift Card", "Gift Cards", "Digital Stores", "Code", "Instant", None, "Apple"),
    Brand("Google Play", "Gift Cards", "Digital Stores", "Code", "Instant", None, "Google Play"),
    Brand(
        "Visa Prepaid Card", "Gift Cards", "Prepaid Cards", "Code with PIN", "Delayed",
        "6 months", "Visa",
    ),
    Brand(
        "Mastercard Virtual Prepaid", "Gift Cards", "Prepaid Cards", "URL", "Delayed",
        "6 months", "Mastercard",
    ),
    Brand("Netflix", "Entertainment", "Streaming", "Code", "Instant", "12 months", "Netflix"),
    Brand("Spotify Premium", "Entertainment", "Music", "Code", "Instant", "12 months", "Spotify"),
    Brand("Disney+", "Entertainment", "Streaming", "Code", "Instant", "12 months", "Disney+"),
    Brand("Deezer", "Entertainment", "Music", "Code", "Instant", "12 months", "Deezer"),
    Brand("Twitch", "Entertainment", "Streaming", "Code", "Instant", None, "Twitch"),
    Brand("Audible", "Entertainment", None, "URL", "Instant", "12 months", "Audible"),
    Brand("IKEA", "Shopping", "Home", "URL", "Instant", "36 months", "IKEA"),
    Brand("Zalando", "Shopping", "Fashion", "URL", "Instant", "24 months", "Zalando"),
    Brand("H&M", "Shopping", "Fashion", "Code with PIN", "Instant", "24 months", "H&M"),
    Brand("Sephora", "Shopping", "Beauty", "URL", "Delayed", "12 months", "Sephora"),
    Brand("eBay", "Shopping", "Marketplaces", "Code", "Instant", None, "eBay"),
    Brand("Starbucks", "Food & Drink", "Coffee", "Code with PIN", "Instant", None, "Starbucks"),
    Brand(
        "Costa Coffee", "Food & Drink", "Coffee", "Code with PIN", "Instant", "24 months",
        "Costa",
    ),
    Brand("Uber Eats", "Food & Drink", "Food Delivery", "Code", "Instant", None, "Uber Eats"),
    Brand("Deliveroo", "Food & Drink", "Food Delivery", "URL", "Instant", "12 months", "Deliveroo"),
    Brand(
        "Domino's Pizza", "Food & Drink", "Restaurants", "Code with PIN", "Instant",
        "12 months", "Domino's",
    ),
    Brand("Airbnb", "Travel", "Stays", "URL", "Delayed", "12 months", "Airbnb"),
    Brand("Hotels.com", "Travel", "Stays", "Code", "Delayed", "24 months", "Hotels.com"),
    Brand("Uber Rides", "Travel", "Transport", "Code", "Instant", None, "Uber"),
)  # fmt: skip

CATEGORIES: tuple[str, ...] = tuple(sorted({b.category for b in BRANDS}))


@dataclass(frozen=True, slots=True)
class Denomination:
    min_value: Decimal
    max_value: Decimal
    discount: Decimal

    @property
    def is_range(self) -> bool:
        return self.min_value < self.max_value

    def accepts(self, face: Decimal) -> bool:
        return self.min_value <= face <= self.max_value


@dataclass(frozen=True, slots=True)
class CatalogProduct:
    id: int
    name: str
    category: str
    sub_category: str | None
    country: Country
    image_url: str | None
    delivery_mode: str | None
    delivery_time: str | None
    validity: str | None
    denominations: tuple[Denomination, ...]
    terms: str | None
    details: str | None
    how_to_use: str | None

    @property
    def currency(self) -> str:
        return self.country.currency


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _denominations(rng: random.Random, currency: str) -> tuple[Denomination, ...]:
    """Mostly fixed values; ~15% ranges only, ~7% fixed values plus a range."""
    kind = rng.random()
    base = rng.choice(_DISCOUNTS)
    found: list[Denomination] = []
    if kind >= 0.15:
        faces = FIXED_FACES[currency]
        count = rng.randint(2, len(faces))
        for face in sorted(rng.sample(faces, count)):
            # Larger faces sometimes earn half a point more, as in the document's example.
            bonus = _D("0.5") if face >= faces[len(faces) // 2] and rng.random() < 0.5 else 0
            found.append(Denomination(face, face, base + bonus))
    if kind < 0.22:
        low, high = RANGES[currency]
        found.append(Denomination(low, high, rng.choice(_DISCOUNTS)))
    return tuple(found)


def generate_catalog(size: int = 300, seed: int = 42) -> tuple[CatalogProduct, ...]:
    """``size`` products, identical for identical ``(size, seed)``.

    Ids are distinct random integers (as database ids look from outside), assigned in
    generation order, so id order, name order and category order all differ: pagination
    and sorting are exercised for real.
    """
    if size < 0:
        raise ValueError("catalog size must be >= 0")
    rng = random.Random(seed)
    combos = [(brand, country) for brand in BRANDS for country in COUNTRIES]
    rng.shuffle(combos)
    overlap = _place_overlap_cards(combos)
    ids = rng.sample(range(100, 100 + 20 * size + 1000), size)
    products: list[CatalogProduct] = []
    for index in range(size):
        brand, country = combos[index % len(combos)]
        edition = index // len(combos)
        name = f"{brand.name} {country.label}" + (f" Pack {edition + 1}" if edition else "")
        has_image = rng.random() >= 0.1
        products.append(
            CatalogProduct(
                id=ids[index],
                name=name,
                category=brand.category,
                sub_category=brand.sub_category,
                country=country,
                image_url=f"https://cdn.vouchers.example/{_slug(name)}.png" if has_image else None,
                delivery_mode=brand.delivery_mode,
                delivery_time=brand.delivery_time,
                validity=brand.validity,
                denominations=_denominations(rng, country.currency),
                terms=f"Non-refundable. Redeemable on {brand.platform} only. "
                f"Valid in {country.alpha3} accounts.",
                details=f"{brand.name} credit for {brand.platform} ({country.currency}).",
                how_to_use=f"Sign in to {brand.platform} → Redeem → enter the code"
                + (" and PIN" if brand.delivery_mode == "Code with PIN" else "")
                if brand.delivery_mode != "URL"
                else f"Open the claim link and follow the {brand.platform} instructions",
            )
        )
    for position, number in overlap.items():
        if position < size:
            products[position] = dataclasses.replace(
                products[position], denominations=_overlap_denominations(seed, number)
            )
    return tuple(products)


#: The n-th shared card goes to the first product of its country from 1 + 3n.
_OVERLAP_START = 1
_OVERLAP_STRIDE = 3


def _place_overlap_cards(combos: list[tuple[Brand, Country]]) -> dict[int, int]:
    """Move each shared card's (brand, country) to its place, swapping it with the brand
    found there (same country, so the same currency and the same random draws); returns
    position -> card number."""
    placed: dict[int, int] = {}
    for number, card in enumerate(OVERLAP_CARDS):
        found = [
            i
            for i, (brand, country) in enumerate(combos)
            if (brand.name, country.alpha3, country.currency)
            == (card.voucher_brand, card.country, card.currency)
        ]
        if len(found) != 1:
            raise ValueError(f"shared card {card} is not one brand and country of this catalog")
        wanted = found[0]
        start = _OVERLAP_START + _OVERLAP_STRIDE * number
        place = next(
            i
            for i in (*range(start, len(combos)), *range(start))
            if combos[i][1].alpha3 == card.country and i not in placed
        )
        combos[place], combos[wanted] = combos[wanted], combos[place]
        placed[place] = number
    return placed


def _overlap_denominations(seed: int, number: int) -> tuple[Denomination, ...]:
    """The shared card's face values, each with a discount of this supplier's own (drawn
    from a source of their own: the catalog's draws stay as they were)."""
    rng = random.Random(f"overlap:{seed}:{number}")
    return tuple(
        Denomination(face, face, rng.choice(_DISCOUNTS))
        for face in sorted(OVERLAP_CARDS[number].faces)
    )
