"""Matching supplier products into canonical products: what merges, what never does.

The properties are the promises that make a merge safe to sell from: no canonical product
ever mixes countries, currencies, face values, platforms or editions, and canonical ids
depend on what a product is, not on the supplier or the order of a sync.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.models import Money, Product, Variant
from gateway.catalog.matching import (
    MAX_ID_LENGTH,
    BrandTable,
    Matcher,
    MatchingError,
    MatchKey,
    Miss,
    Overrides,
    canonical_id,
    match_catalog,
)

BRANDS = BrandTable.load()
MATCHER = Matcher(BRANDS)


def gift(
    name: str,
    *,
    face: int | None = None,
    currency: str = "USD",
    country: str | None = None,
    supplier: str = "vouchers",
    upstream: str = "1",
    category: str = "Gift Card",
    price_currency: str = "EUR",
) -> tuple[Product, Variant]:
    pid = f"{supplier}:{upstream}"
    if face is not None:
        variant = Variant(
            id=f"{pid}:fv{face}", name=name, face_value=Money(amount=face, currency=currency)
        )
    else:
        variant = Variant(
            id=f"{pid}:std", name=name, cost=Money(amount=4321, currency=price_currency)
        )
    product = Product(
        id=pid,
        supplier=supplier,
        upstream_id=upstream,
        name=name,
        category=category,
        country=country,
        currency=currency if face is not None else price_currency,
        variants=(variant,),
    )
    return product, variant


def game(name: str, *, supplier: str = "gaming_goods", upstream: str = "g1") -> Product:
    pid = f"{supplier}:{upstream}"
    variant = Variant(id=f"{pid}:std", name=name, cost=Money(amount=1999, currency="EUR"))
    return Product(
        id=pid,
        supplier=supplier,
        upstream_id=upstream,
        name=name,
        category="Game Keys",
        currency="EUR",
        variants=(variant,),
    )


def verdict_of(pair: tuple[Product, Variant]) -> MatchKey | Miss:
    return MATCHER.verdict(*pair)


# ------------------------------------------------------------ real-looking names

STEAM_50_USA = "gift-steam-wallet-usa-usd:fv5000"

GIFT_TABLE = [
    # (name, face, currency, country, expected variant id or None for "stays apart")
    ("Steam Wallet Card US", 5000, "USD", "USA", STEAM_50_USA),
    ("Steam Gift Card 50 USD US", None, "USD", None, STEAM_50_USA),
    ("Steam Wallet Code US $50", None, "USD", None, STEAM_50_USA),
    ("STEAM wallet code - United States - 50 USD", None, "USD", None, STEAM_50_USA),
    ("Steam Gift Card 50 EUR", None, "EUR", None, None),  # no redemption country
    ("Steam Gift Card 50 EUR DE", None, "EUR", None, "gift-steam-wallet-deu-eur:fv5000"),
    ("Steam Gift Card 50 EUR Europe", None, "EUR", None, "gift-steam-wallet-eu-eur:fv5000"),
    ("Steam Wallet Card US Pack 2", 5000, "USD", "USA", None),  # "pack 2" unexplained
    ("Steam Wallet Card US", 5000, "USD", "CAN", None),  # US in the name, CAN on the product
    ("Steam Wallet Card 50 USD US", 2500, "USD", "USA", None),  # 50 in name, 25 in variant
    ("Xbox Gift Card US", 2500, "USD", "USA", "gift-xbox-gift-card-usa-usd:fv2500"),
    ("Xbox Game Pass Ultimate US", 2500, "USD", "USA", None),  # another product line
    ("Xbox Game Pass US", 2500, "USD", "USA", "gift-xbox-game-pass-usa-usd:fv2500"),
    ("PSN Card 2.5 BHD Bahrain", None, "BHD", None, "gift-playstation-store-bhr-bhd:fv2500"),
    ("PlayStation Store BH", 2500, "BHD", "BHR", "gift-playstation-store-bhr-bhd:fv2500"),
    ("Nintendo eShop Card £20 UK", None, "GBP", None, "gift-nintendo-eshop-gbr-gbp:fv2000"),
    ("Nintendo eShop Card £20 UK", None, "GBP", "USA", None),  # two countries
    ("Google Play 10 USD US", 1000, "EUR", "USA", None),  # the name's currency is not the card's
    ("Google Play 10 USD US", None, "EUR", None, "gift-google-play-usa-usd:fv1000"),  # EUR price
    ("Apple Gift Card JP", 300000, "JPY", "JPN", "gift-apple-gift-card-jpn-jpy:fv300000"),
    ("Unknown Brand Card US", 1000, "USD", "USA", None),
    # a separator before three digits groups thousands: a $1,000 card is not a $1 card
    ("Visa Prepaid Card $1,000 US", None, "USD", None, "gift-visa-prepaid-usa-usd:fv100000"),
    ("Nintendo eShop Card 1.000 JPY JP", None, "JPY", None, "gift-nintendo-eshop-jpn-jpy:fv1000"),
    ("PSN Card 2.500 BHD Bahrain", None, "BHD", None, "gift-playstation-store-bhr-bhd:fv2500"),
    ("Steam Gift Card 2,50 EUR DE", None, "EUR", None, "gift-steam-wallet-deu-eur:fv250"),
    ("Steam Gift Card 50€ DE", None, "EUR", None, "gift-steam-wallet-deu-eur:fv5000"),
    ("Steam Gift Card 50€ DE", 5000, "USD", "DEU", None),  # the name says EUR, not USD
    ("Steam and Xbox bundle US", 1000, "USD", "USA", None),  # two lines: ambiguous
]


@pytest.mark.parametrize(("name", "face", "currency", "country", "expected"), GIFT_TABLE)
def test_gift_card_names(
    name: str, face: int | None, currency: str, country: str | None, expected: str | None
) -> None:
    verdict = verdict_of(gift(name, face=face, currency=currency, country=country))
    if expected is None:
        assert isinstance(verdict, Miss), verdict
        assert verdict.reason
    else:
        assert isinstance(verdict, MatchKey), verdict
        assert verdict.variant_id == expected


GAME_TABLE = [
    ("Cyberpunk 2077 Steam Key Global", "game-cyberpunk-2077-steam-standard-global:std"),
    ("Cyberpunk 2077 - Steam - Global - CD Key", "game-cyberpunk-2077-steam-standard-global:std"),
    ("Cyberpunk 2077 Deluxe Edition Steam Key EU", "game-cyberpunk-2077-steam-deluxe-eu:std"),
    ("The Witcher 3: Wild Hunt GOTY Edition GOG Key Global", None),
    ("The Witcher 3 Wild Hunt Game of the Year Edition Steam Key Global", None),
    ("Cyberpunk 2077 Steam Key", None),  # no region: a key's region decides activation
    ("Cyberpunk 2077 Xbox Steam Key Global", None),  # two platforms
    ("Cyberpunk 2077 Deluxe Ultimate Edition Steam Key Global", None),  # two editions
    ("Steam Key Global", None),  # no title left
]


@pytest.mark.parametrize(("name", "expected"), GAME_TABLE)
def test_game_key_titles(name: str, expected: str | None) -> None:
    verdict = MATCHER.verdict(game(name), game(name).variants[0])
    if expected is None:
        if isinstance(verdict, MatchKey):
            # a verdict is allowed only when the key states what the title says
            assert verdict.fact("title") == "the witcher 3 wild hunt"
            assert verdict.fact("edition") == "goty"
        else:
            assert verdict.reason
    else:
        assert isinstance(verdict, MatchKey), verdict
        assert verdict.variant_id == expected


def test_the_witcher_goty_on_two_platforms_never_merges() -> None:
    gog = MATCHER.verdict(
        game("The Witcher 3: Wild Hunt GOTY Edition GOG Key Global"),
        game("x").variants[0],
    )
    steam = MATCHER.verdict(
        game("The Witcher 3 Wild Hunt Game of the Year Edition Steam Key Global"),
        game("x").variants[0],
    )
    assert isinstance(gog, MatchKey) and isinstance(steam, MatchKey)
    assert gog.fact("edition") == steam.fact("edition") == "goty"
    assert gog.product_id != steam.product_id


def test_voucher_range_and_fixed_offers_share_a_product_not_a_variant() -> None:
    name = "Amazon Gift Card US"
    ranged = Variant(
        id="vouchers:9:r500-50000",
        name=name,
        face_min=Money(amount=500, currency="USD"),
        face_max=Money(amount=50000, currency="USD"),
        discount_percent=2,
    )
    fixed = Variant(
        id="vouchers:9:fv5000", name=name, face_value=Money(amount=5000, currency="USD")
    )
    product = Product(
        id="vouchers:9",
        supplier="vouchers",
        upstream_id="9",
        name=name,
        country="USA",
        currency="USD",
        variants=(ranged, fixed),
    )
    a, b = MATCHER.verdict(product, ranged), MATCHER.verdict(product, fixed)
    assert isinstance(a, MatchKey) and isinstance(b, MatchKey)
    assert a.product_id == b.product_id == "gift-amazon-gift-card-usa-usd"
    assert (a.variant_key, b.variant_key) == ("range", "fv5000")


# ------------------------------------------------------------------ properties

_LINES = sorted(BRANDS.lines)
_PLACES = {"USA": ["US", "USA", "United States"], "GBR": ["UK", "GB"], "DEU": ["DE", "Germany"]}
_PLACES |= {"CAN": ["CA", "Canada"], "EU": ["EU", "Europe"], "GLOBAL": ["Global", "Worldwide"]}
_CURRENCIES = ["USD", "EUR", "GBP", "CAD", "JPY", "BHD"]
_NOISE = ["", "Card", "Gift Card", "Code", "Pack 2", "Ultimate", "Digital Code", "12 Months"]


@st.composite
def generated_gift(draw: st.DrawFn, n: int) -> tuple[tuple[Product, Variant], tuple[object, ...]]:
    """A gift-card product with a known truth (line, place, currency, face), spelled in
    one of many ways; the truth is what a merge must never mix."""
    line = draw(st.sampled_from(_LINES))
    alias = draw(st.sampled_from(BRANDS.lines[line]))
    place = draw(st.sampled_from(sorted(_PLACES)))
    currency = draw(st.sampled_from(_CURRENCIES))
    face_major = draw(st.sampled_from([5, 10, 20, 25, 50, 100]))
    face = face_major * (1 if currency == "JPY" else 1000 if currency == "BHD" else 100)
    noise = draw(st.sampled_from(_NOISE))
    spelled_place = draw(st.sampled_from(_PLACES[place]))
    in_variant = draw(st.booleans())
    if in_variant:
        name = f"{alias} {noise} {spelled_place}"
        country = place if len(place) == 3 and draw(st.booleans()) else None
        pair = gift(name, face=face, currency=currency, country=country, upstream=str(n))
    else:
        amount = f"{face_major} {currency}"
        name = f"{alias} {noise} {amount} {spelled_place}"
        pair = gift(name, currency=currency, supplier="gaming_goods", upstream=str(n))
    return pair, (place, currency, face)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(0, 10**6), min_size=2, max_size=40, unique=True).flatmap(
        lambda ns: st.tuples(*(generated_gift(n) for n in ns))
    )
)
def test_no_canonical_product_mixes_country_currency_or_face(
    items: tuple[tuple[tuple[Product, Variant], tuple[object, ...]], ...],
) -> None:
    truth_of: dict[str, tuple[object, ...]] = {}
    for pair, truth in items:
        verdict = verdict_of(pair)
        if isinstance(verdict, MatchKey):
            seen = truth_of.setdefault(verdict.variant_id, truth)
            assert seen == truth, (pair[0].name, verdict.variant_id, seen, truth)
            place, currency, _ = truth
            assert verdict.fact("place") == place
            assert verdict.fact("currency") == currency


_TITLES = ["Cyberpunk 2077", "Elden Ring", "Hades II", "Stardew Valley", "Far Cry 6"]
_PLATFORMS = {
    "steam": ["Steam"],
    "xbox": ["Xbox", "Xbox One"],
    "ps5": ["PS5"],
    "epic": ["Epic Games"],
}
_EDITIONS = {"standard": ["", "Standard Edition"], "deluxe": ["Deluxe Edition", "Deluxe"]}
_EDITIONS |= {"goty": ["GOTY Edition", "Game of the Year Edition"], "gold": ["Gold Edition"]}
_REGIONS = {"GLOBAL": ["Global"], "EU": ["EU", "Europe"], "USA": ["US"], "NA": ["NA"]}


@st.composite
def generated_game(draw: st.DrawFn) -> tuple[Product, tuple[str, ...]]:
    title = draw(st.sampled_from(_TITLES))
    platform = draw(st.sampled_from(sorted(_PLATFORMS)))
    edition = draw(st.sampled_from(sorted(_EDITIONS)))
    region = draw(st.sampled_from(sorted(_REGIONS)))
    parts = [
        title,
        draw(st.sampled_from(_EDITIONS[edition])),
        draw(st.sampled_from(_PLATFORMS[platform])),
        draw(st.sampled_from(["Key", "CD Key", ""])),
        draw(st.sampled_from(_REGIONS[region])),
    ]
    return game(" ".join(p for p in parts if p)), (title, platform, edition, region)


@settings(max_examples=150, deadline=None)
@given(st.lists(generated_game(), min_size=2, max_size=30))
def test_no_canonical_game_mixes_platform_edition_or_region(
    items: list[tuple[Product, tuple[str, ...]]],
) -> None:
    truth_of: dict[str, tuple[str, ...]] = {}
    for product, truth in items:
        verdict = MATCHER.verdict(product, product.variants[0])
        assert isinstance(verdict, MatchKey), (product.name, verdict)
        seen = truth_of.setdefault(verdict.product_id, truth)
        assert seen == truth, (product.name, seen, truth)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 10**6), min_size=2, max_size=30, unique=True).flatmap(
        lambda ns: st.tuples(*(generated_gift(n) for n in ns))
    ),
    st.randoms(use_true_random=False),
)
def test_canonical_ids_do_not_depend_on_catalog_order_or_resync(
    items: tuple[tuple[tuple[Product, Variant], tuple[object, ...]], ...], rnd: random.Random
) -> None:
    products = [pair[0] for pair, _ in items]
    first = match_catalog(products, MATCHER)
    shuffled = products[:]
    rnd.shuffle(shuffled)
    again = match_catalog(shuffled, Matcher(BrandTable.load()))  # a re-sync, a new process
    assert first.offers.keys() == again.offers.keys()
    for variant_id, offers in first.offers.items():
        assert [o.variant.id for o in offers] == [o.variant.id for o in again.offers[variant_id]]
    assert [m[0].variant.id for m in first.misses] == [m[0].variant.id for m in again.misses]


def test_merged_lists_canonical_variants_sold_by_two_suppliers() -> None:
    a = gift("Steam Wallet Card US", face=5000, currency="USD", country="USA")
    b = gift("Steam Gift Card 50 USD US", supplier="gaming_goods", upstream="u-1")
    c = gift("Steam Gift Card 50 EUR", supplier="gaming_goods", upstream="u-2", currency="EUR")
    matches = match_catalog([b[0], c[0], a[0]], MATCHER)
    assert list(matches.merged) == [STEAM_50_USA]
    assert [o.product.supplier for o in matches.merged[STEAM_50_USA]] == [
        "gaming_goods",
        "vouchers",
    ]
    assert [(m[0].product.id, m[1]) for m in matches.misses] == [
        ("gaming_goods:u-2", "no redemption country in the name or the product")
    ]


# ------------------------------------------------------------ ids and overrides


def test_canonical_ids_are_capped_and_still_distinct() -> None:
    long_a = canonical_id("game-", ["x" * 200, "steam", "standard", "global"])
    long_b = canonical_id("game-", ["x" * 199 + "y", "steam", "standard", "global"])
    assert len(long_a) <= MAX_ID_LENGTH and len(long_b) <= MAX_ID_LENGTH
    assert long_a != long_b
    assert canonical_id("game-", ["Élden  Ring!", "steam"]) == "game-elden-ring-steam"


def test_overrides_force_and_forbid(tmp_path: Path) -> None:
    path = tmp_path / "matches.toml"
    path.write_text(
        '[force]\n"gaming_goods:u-2" = "gift-steam-wallet-deu-eur"\n'
        '[never]\nproducts = ["vouchers:1"]\n'
    )
    matcher = Matcher(BRANDS, Overrides.load(path))
    forced = matcher.verdict(
        *gift("Steam Gift Card 50 EUR", supplier="gaming_goods", upstream="u-2")
    )
    assert isinstance(forced, MatchKey)
    # a variant without a face value takes the one its name states
    assert forced.variant_id == "gift-steam-wallet-deu-eur:fv5000"
    kept = matcher.verdict(*gift("Steam Wallet Card US", face=5000, country="USA"))
    assert isinstance(kept, Miss) and "overrides" in kept.reason


@pytest.mark.parametrize(
    "text",
    [
        "[force]\n'a' = 1\n",
        "[never]\nproducts = 'vouchers:1'\n",
        "[force]\n'a' = 'b'\n[never]\nproducts = ['a']\n",
        "not toml at all [",
        "never = ['vouchers:1']\n",
        "[force]\n'a' = 'Gift Steam'\n",
        "[force]\n'a' = 'gift-steam:fv5000'\n",
        "[force]\n'a' = ''\n",
    ],
)
def test_a_bad_overrides_file_is_refused_with_the_reason(tmp_path: Path, text: str) -> None:
    path = tmp_path / "matches.toml"
    path.write_text(text)
    with pytest.raises(MatchingError, match=str(path)):
        Overrides.load(path)


def test_an_operator_brand_file_adds_lines_and_refuses_an_alias_for_two_lines(
    tmp_path: Path,
) -> None:
    extra = tmp_path / "brands.toml"
    extra.write_text('[lines]\n"Paysafecard" = ["paysafecard", "paysafe card"]\n')
    table = BrandTable.load(extra)
    verdict = Matcher(table).verdict(*gift("Paysafe Card 25 EUR DE", currency="EUR"))
    assert isinstance(verdict, MatchKey)
    assert verdict.product_id == "gift-paysafecard-deu-eur"
    extra.write_text('[lines]\n"Valve" = ["steam"]\n')
    with pytest.raises(MatchingError, match="two product lines"):
        BrandTable.load(extra)
