"""The Gaming Goods sandbox catalog: generated, deterministic by seed, with stable ids.

Why generated rather than a fixture file: tests need catalogs of very different sizes
(a dozen products for fast checks, the document's ~1500 for a realistic sync) and they
need the *same* catalog every time for a given seed, so that ids stored by one run still
resolve in the next. Every random choice goes through one ``random.Random(seed)`` in a
fixed order, and product ids are ``uuid5(namespace, "<seed>:<index>")``: the same seed
and index always give the same UUID, whatever the catalog size.

Titles are composed from word lists, and some are real-looking ("Cyberpunk 2077 Steam
Key", "Steam Gift Card 50 EUR") so that search can be exercised on plausible text; the
first product of every catalog is the document's own example (12 in stock, 1999 cents).

Gift cards that the Vouchers sandbox sells too (``adapters/sandbox_overlap.py``) sit at
fixed positions (1, 6, 11, ...), one product per face value, titled with the redemption
country and the card's currency ("Steam Gift Card 50 USD US") and priced in EUR around
face value, with stock of their own. Their prices and stock come from a random source of
their own, so every other product is the same as without them.

A small share of products is *inactive* (delisted upstream): they are absent from the
product list and answer 404 on the detail endpoint, as a product that went away between a
catalog sync and an order does on the real platform.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from adapters.sandbox_overlap import OverlapCard, gaming_goods_offers

#: Namespace of sandbox product ids (uuid5 of ``"<seed>:<index>"`` under it).
PRODUCT_NAMESPACE = uuid.UUID("6f1d2c1e-4b7a-5d0e-9c3f-2a8b7e6d5c40")

CATEGORIES = ("Game Keys", "Gift Card", "DLC", "Subscription")


@dataclass(frozen=True)
class BrandProfile:
    """What a brand sells and how its products are activated."""

    name: str
    platform: str
    categories: tuple[str, ...]
    activation: str
    subscriptions: tuple[str, ...] = ()
    gift_card_name: str | None = None


BRANDS: tuple[BrandProfile, ...] = (
    BrandProfile(
        "Steam",
        "Steam",
        ("Game Keys", "Gift Card", "DLC"),
        "Open Steam, choose Games > Activate a Product on Steam and enter the key.",
        gift_card_name="Steam Gift Card",
    ),
    BrandProfile(
        "Xbox",
        "Xbox",
        ("Game Keys", "Gift Card", "DLC", "Subscription"),
        "Sign in at microsoft.com/redeem and enter the 25-character code.",
        subscriptions=("Xbox Game Pass Ultimate", "Xbox Game Pass Core", "PC Game Pass"),
        gift_card_name="Xbox Gift Card",
    ),
    BrandProfile(
        "PlayStation",
        "PlayStation",
        ("Game Keys", "Gift Card", "DLC", "Subscription"),
        "On the console open PlayStation Store > Redeem Codes and enter the code.",
        subscriptions=("PlayStation Plus Essential", "PlayStation Plus Extra"),
        gift_card_name="PlayStation Store Gift Card",
    ),
    BrandProfile(
        "Nintendo",
        "Nintendo Switch",
        ("Game Keys", "Gift Card", "Subscription"),
        "Open Nintendo eShop, select your user, choose Redeem Code and enter the code.",
        subscriptions=("Nintendo Switch Online", "Nintendo Switch Online + Expansion Pack"),
        gift_card_name="Nintendo eShop Card",
    ),
    BrandProfile(
        "EA",
        "EA app",
        ("Game Keys", "DLC", "Subscription"),
        "Open the EA app, choose Redeem code from the menu and enter the code.",
        subscriptions=("EA Play", "EA Play Pro"),
    ),
    BrandProfile(
        "Ubisoft",
        "Ubisoft Connect",
        ("Game Keys", "DLC", "Subscription"),
        "Open Ubisoft Connect, choose Activate a key and enter the code.",
        subscriptions=("Ubisoft+ Classics", "Ubisoft+ Premium"),
    ),
    BrandProfile(
        "Blizzard",
        "Battle.net",
        ("Game Keys", "Gift Card", "Subscription"),
        "Open Battle.net, choose Redeem a Code and enter the code.",
        subscriptions=("World of Warcraft Game Time",),
        gift_card_name="Battle.net Balance Card",
    ),
    BrandProfile(
        "Riot",
        "Riot Client",
        ("Gift Card",),
        "Sign in to the Riot store, choose Prepaid Cards & Codes and enter the code.",
        gift_card_name="Riot Points Gift Card",
    ),
    BrandProfile(
        "Epic Games",
        "Epic Games Store",
        ("Game Keys", "DLC"),
        "Open the Epic Games Launcher, choose Redeem Code from your account menu.",
    ),
    BrandProfile(
        "Rockstar",
        "Rockstar Games Launcher",
        ("Game Keys", "DLC"),
        "Open the Rockstar Games Launcher, choose Settings > Redeem Code.",
    ),
)

#: Real-looking titles (with the stores that sell them) so search has plausible text.
FAMOUS_GAMES: dict[str, tuple[str, ...]] = {
    "Cyberpunk 2077": ("Steam", "Xbox", "PlayStation", "Epic Games"),
    "The Witcher 3: Wild Hunt": ("Steam", "Xbox", "PlayStation", "Nintendo"),
    "Elden Ring": ("Steam", "Xbox", "PlayStation"),
    "Red Dead Redemption 2": ("Rockstar", "Steam", "Xbox", "PlayStation"),
    "Grand Theft Auto V": ("Rockstar", "Steam", "Epic Games", "PlayStation"),
    "Hogwarts Legacy": ("Steam", "Xbox", "PlayStation", "Epic Games"),
    "Baldur's Gate 3": ("Steam", "PlayStation"),
    "Starfield": ("Steam", "Xbox"),
    "Forza Horizon 5": ("Steam", "Xbox"),
    "Assassin's Creed Mirage": ("Ubisoft", "Xbox", "PlayStation"),
    "Far Cry 6": ("Ubisoft", "Xbox", "PlayStation"),
    "Diablo IV": ("Blizzard", "Xbox", "PlayStation"),
    "Overwatch 2": ("Blizzard",),
    "EA Sports FC 24": ("EA", "Xbox", "PlayStation", "Nintendo"),
    "Battlefield 2042": ("EA", "Steam", "Xbox"),
    "The Sims 4": ("EA", "Steam"),
    "The Legend of Zelda: Tears of the Kingdom": ("Nintendo",),
    "Super Mario Odyssey": ("Nintendo",),
    "Horizon Forbidden West": ("PlayStation", "Steam"),
    "God of War Ragnarok": ("PlayStation", "Steam"),
    "Fortnite": ("Epic Games",),
    "Hades II": ("Steam", "Epic Games"),
    "Stardew Valley": ("Steam", "Nintendo", "Xbox"),
    "Terraria": ("Steam", "Nintendo"),
}

#: How often each brand / category is drawn: the document's Steam and game keys dominate.
_BRAND_WEIGHTS = {"Steam": 5, "Xbox": 2, "PlayStation": 2}
_CATEGORY_WEIGHTS = {"Game Keys": 10, "Gift Card": 4, "DLC": 3, "Subscription": 2}

_ADJECTIVES = (
    "Shadow", "Iron", "Crimson", "Silent", "Eternal", "Frozen", "Golden", "Lost", "Broken",
    "Savage", "Hollow", "Neon", "Ancient", "Rogue", "Stellar", "Wild", "Dark", "Last",
)  # fmt: skip
_NOUNS = (
    "Legends", "Frontier", "Empire", "Odyssey", "Protocol", "Horizon", "Dynasty", "Rebellion",
    "Chronicles", "Outpost", "Kingdom", "Reckoning", "Tactics", "Descent", "Vanguard",
    "Colony", "Siege", "Drift",
)  # fmt: skip
_SUFFIXES = ("", "", "", " II", " III", " Remastered", " Reloaded", " 2", " Origins", " Zero")
_EDITIONS = ("", "", "", " Deluxe Edition", " Gold Edition", " Complete Edition", " GOTY Edition")
_DLC_KINDS = (
    "Season Pass", "Expansion Pass", "Soundtrack", "Starter Pack", "Cosmetic Bundle",
    "Story Expansion", "Currency Pack", "Booster Pack",
)  # fmt: skip
_GENRES = ("action", "role-playing", "strategy", "racing", "shooter", "adventure", "survival")
_REGIONS = ("Global", "Global", "EU", "Europe", "EU & UK", "DE")
_LANGUAGES = ("Multi-language", "English", "English, German, French", "Multi-language")
_GIFT_VALUES = (5, 10, 15, 20, 25, 50, 75, 100)
_SUBSCRIPTION_MONTHS = (1, 3, 6, 12)
_PRODUCT_TYPES = ("KINGUIN", "KINGUIN", "DIGISELLER", "INTERNAL")
_DELIVERY_TYPES = ("EXTERNAL", "EXTERNAL", "EXTERNAL", "INTERNAL")
_IMAGE_BASE = "https://gaming-goods.ru/images/products"
#: Where the shared gift cards go: position ``OVERLAP_START + n * OVERLAP_STRIDE`` holds
#: the n-th (a fifth of a catalog at most, so small catalogs keep their variety).
OVERLAP_START = 1
OVERLAP_STRIDE = 5
#: EUR cents one major unit of a card's currency costs, to price foreign cards in EUR.
_EUR_CENTS_PER_UNIT = {
    "EUR": Decimal(100), "USD": Decimal(92), "GBP": Decimal(117), "JPY": Decimal("0.62"),
}  # fmt: skip
_OVERLAP_STOCK = (1, 3, 8, 15, 30, 50)
_OTHER_ACTIVATION = "Open the store's Redeem page in your account and enter the code."


@dataclass
class CatalogProduct:
    """One sandbox product. ``quantity`` is mutable: checkouts take from it."""

    id: str
    index: int
    title: str
    brand: str
    category: str
    price: int
    currency: str
    quantity: int
    delivery_type: str
    product_type: str
    images: tuple[str, ...]
    short_description: str
    description: str
    specifications: tuple[tuple[str, str], ...]
    active: bool = True

    @property
    def is_available(self) -> bool:
        return self.quantity > 0

    def list_item(self) -> dict[str, object]:
        """The product as ``GET /products`` shows it (document: "Partner: Product catalog")."""
        return {
            "id": self.id,
            "title": self.title,
            "brand": self.brand,
            "category": self.category,
            "price": self.price,
            "currency": self.currency,
            "quantity": self.quantity,
            "is_available": self.is_available,
            "delivery_type": self.delivery_type,
            "product_type": self.product_type,
            "images": list(self.images),
            "short_description": self.short_description,
        }

    def detail(self) -> dict[str, object]:
        """The product as ``GET /products/{id}`` shows it ("Partner: Product detail")."""
        body = self.list_item()
        body["description"] = self.description
        body["specifications"] = [{"key": k, "value": v} for k, v in self.specifications]
        return body


def product_uuid(seed: int, index: int) -> str:
    """The stable id of the ``index``-th product of the catalog generated from ``seed``."""
    return str(uuid.uuid5(PRODUCT_NAMESPACE, f"{seed}:{index}"))


def generate_catalog(
    size: int, *, seed: int = 42, inactive_share: float = 0.03
) -> list[CatalogProduct]:
    """``size`` products (active and inactive), identical for identical arguments."""
    if size < 0:
        raise ValueError("catalog size must be >= 0")
    if not 0 <= inactive_share < 1:
        raise ValueError("inactive_share must be in [0, 1)")
    rng = random.Random(seed)
    products = [_product(rng, seed, index, inactive_share) for index in range(size)]
    if products:
        _make_document_example(products[0])
    for n, (_, card, face) in enumerate(gaming_goods_offers()):
        index = OVERLAP_START + n * OVERLAP_STRIDE
        if index >= size:
            break
        _make_overlap_card(products[index], random.Random(f"overlap:{seed}:{n}"), card, face)
    return products


def _make_overlap_card(
    product: CatalogProduct, rng: random.Random, card: OverlapCard, face: Decimal
) -> None:
    """Turn ``product`` (keeping its id and images) into a card both sandboxes sell."""
    profile = next((b for b in BRANDS if b.name == card.gaming_brand), None)
    platform = profile.platform if profile else card.voucher_brand
    margin = Decimal(rng.randrange(-4, 7))  # supply: a little under or over face value
    price = face * _EUR_CENTS_PER_UNIT[card.currency] * (100 + margin) / 100
    amount = f"{face} {card.currency}"
    product.title = f"{card.gaming_title} {amount} {card.label}"
    product.brand = card.gaming_brand
    product.category = "Gift Card"
    product.price = max(99, int(price.to_integral_value(ROUND_HALF_UP)))
    product.currency = "EUR"
    product.quantity = rng.choice(_OVERLAP_STOCK)
    product.short_description = f"Adds {amount} to a {platform} account ({card.label})."
    product.description = (
        f"A {amount} prepaid code for {platform}, redeemable on {card.label} accounts only."
    )
    product.specifications = (
        ("platform", platform),
        ("region", card.label),
        ("language", "Multi-language"),
        ("activation", profile.activation if profile else _OTHER_ACTIVATION),
    )
    product.active = True


def _make_document_example(product: CatalogProduct) -> None:
    """The first product is always the document's own example, so the text a reader of
    the Partner page would search for ("Cyberpunk 2077 Steam Key") is there."""
    steam = next(b for b in BRANDS if b.name == "Steam")
    product.title = "Cyberpunk 2077 Steam Key"
    product.brand = "Steam"
    product.category = "Game Keys"
    product.price = 1999
    product.quantity = 12
    product.delivery_type = "EXTERNAL"
    product.product_type = "KINGUIN"
    product.short_description = ""
    product.description = (
        "Open-world action-adventure set in Night City. A digital key for Steam, "
        "delivered instantly after payment."
    )
    product.specifications = (
        ("platform", "Steam"),
        ("region", "Global"),
        ("language", "Multi-language"),
        ("activation", steam.activation),
    )
    product.active = True


def _product(rng: random.Random, seed: int, index: int, inactive_share: float) -> CatalogProduct:
    brand = rng.choices(BRANDS, weights=[_BRAND_WEIGHTS.get(b.name, 1) for b in BRANDS])[0]
    category = rng.choices(
        brand.categories, weights=[_CATEGORY_WEIGHTS[c] for c in brand.categories]
    )[0]
    region = rng.choice(_REGIONS)
    if category == "Game Keys":
        game = _game_title(rng, brand.name)
        title = f"{game}{rng.choice(_EDITIONS)} {brand.platform} Key"
        price = rng.randrange(3, 70) * 100 - 1
        short = f"{rng.choice(_GENRES).capitalize()} game, activated on {brand.platform}."
        description = (
            f"{game} is a {rng.choice(_GENRES)} game for {brand.platform}. This is a digital "
            f"key for the {region} region, delivered instantly after payment."
        )
    elif category == "DLC":
        game = _game_title(rng, brand.name)
        title = f"{game} - {rng.choice(_DLC_KINDS)} DLC {brand.platform} Key"
        price = rng.randrange(2, 30) * 100 - 1
        short = f"Additional content for {game}. Requires the base game."
        description = f"Downloadable content for {game} on {brand.platform}. {short}"
    elif category == "Gift Card":
        value = rng.choice(_GIFT_VALUES)
        title = f"{brand.gift_card_name or brand.name + ' Gift Card'} {value} EUR"
        # Resellers pay a little above or below face value depending on supply.
        price = value * 100 + rng.randrange(-5, 16) * value
        short = f"Adds {value} EUR to a {brand.platform} account."
        description = f"A {value} EUR prepaid code for {brand.platform}, region {region}."
    else:
        service = rng.choice(brand.subscriptions)
        months = rng.choice(_SUBSCRIPTION_MONTHS)
        length = f"{months} Month" if months == 1 else f"{months} Months"
        title = f"{service} {length}"
        price = months * rng.choice((399, 499, 699, 999, 1299)) - months * rng.randrange(0, 60)
        short = f"{length} of {service}."
        description = f"A prepaid {service} membership code: {length.lower()} of access."
    specifications = (
        ("platform", brand.platform),
        ("region", region),
        ("language", rng.choice(_LANGUAGES)),
        ("activation", brand.activation),
    )
    pid = product_uuid(seed, index)
    image_count = rng.choice((0, 1, 1, 1, 2))
    images = tuple(f"{_IMAGE_BASE}/{pid}/{n}.jpg" for n in range(1, image_count + 1))
    return CatalogProduct(
        id=pid,
        index=index,
        title=title,
        brand=brand.name,
        category=category,
        price=max(99, price),
        currency="EUR",
        quantity=rng.randint(0, 50),
        delivery_type=rng.choice(_DELIVERY_TYPES),
        product_type=rng.choice(_PRODUCT_TYPES),
        images=images,
        short_description=short if rng.random() < 0.8 else "",
        description=description,
        specifications=specifications,
        active=rng.random() >= inactive_share,
    )


def _game_title(rng: random.Random, brand: str) -> str:
    famous = [game for game, brands in FAMOUS_GAMES.items() if brand in brands]
    if famous and rng.random() < 0.35:
        return rng.choice(famous)
    return f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}{rng.choice(_SUFFIXES)}"
