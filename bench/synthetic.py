"""A fast, deterministic generator of unified ``Product``s shaped like a real catalog.

Every benchmark draws its catalog from here, so their figures describe the same data.
What makes it realistic enough to benchmark a search index on:

* three kinds of product in catalog proportions: game keys (titles with editions,
  platforms and regions), gift cards (brand × face value × country) and subscriptions;
* a Zipf-distributed title vocabulary that keeps growing with the catalog (common words
  like "dark" or "legend" recur, invented words form a long tail), as real catalogs do;
* the same gift cards sold by several suppliers (``SHARE_OF_SHARED_CARDS`` of all products:
  a card line of the brand table, a market and a face value, each supplier naming it its
  own way), so that canonical products with several offers are built at any size, as an
  aggregator of real suppliers sees them;
* publishers and categories spelt differently by different suppliers ("Game Keys",
  "game keys", "GameKeys"), accented and Cyrillic names, fixed and range variants,
  several currencies including zero- and three-decimal ones, stock and availability.

Products are built without validation (``_construct``, a lean ``model_construct``) because
validating, or even ``model_construct``-ing, a million of them would dominate the
benchmark; the tests check that samples validate.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal
from itertools import accumulate
from typing import Any, TypeVar

from adapters.models import (
    DeliveryMode,
    DeliveryTime,
    Money,
    Product,
    Variant,
    currency_exponent,
    discounted_cost,
)
from gateway.pricing import MarkupRule, PriceList

_M = TypeVar("_M", Money, Variant, Product)

SUPPLIERS = ("gaming_goods", "vouchers", "keyshop", "cardhub")

# (country alpha-3, currency) in rough order of catalog share
MARKETS = (
    ("USA", "USD"), ("DEU", "EUR"), ("GBR", "GBP"), ("FRA", "EUR"), ("ESP", "EUR"),
    ("ITA", "EUR"), ("POL", "PLN"), ("TUR", "TRY"), ("BRA", "BRL"), ("JPN", "JPY"),
    ("IND", "INR"), ("ARE", "AED"), ("SAU", "SAR"), ("CAN", "CAD"), ("AUS", "AUD"),
    ("MEX", "MXN"), ("KOR", "KRW"), ("SWE", "SEK"), ("CHE", "CHF"), ("KWT", "KWD"),
)  # fmt: skip

GIFT_BRANDS = (
    "Steam", "PlayStation", "Xbox", "Nintendo eShop", "Amazon", "Google Play", "Apple",
    "iTunes", "Netflix", "Spotify", "Razer Gold", "Roblox", "Fortnite V-Bucks",
    "League of Legends", "Valorant", "Battle.net", "EA Play", "Ubisoft Connect", "Twitch",
    "Discord Nitro", "Uber", "Airbnb", "Zalando", "IKEA", "Sephora", "Starbucks",
    "Decathlon", "Carrefour", "Pokémon TCG", "Free Fire", "PUBG Mobile", "Mobile Legends",
    "Genshin Impact", "Hulu", "Disney+", "Paramount+", "Deezer", "Tidal", "Riot Access",
    "Garena Shells", "Karma Koin", "Paysafecard", "Neosurf", "Rewarble", "Jeton",
)  # fmt: skip

PUBLISHERS = (
    "CD Projekt", "Ubisoft", "Electronic Arts", "Bandai Namco", "Capcom", "Square Enix",
    "SEGA", "Bethesda", "Rockstar Games", "Activision", "Paradox Interactive",
    "Devolver Digital", "Focus Entertainment", "THQ Nordic", "Warner Bros. Games",
    "Koei Tecmo", "Konami", "Team17", "Annapurna Interactive", "505 Games", "Deep Silver",
    "Microsoft", "Sony Interactive", "Nintendo", "Valve", "Larian Studios", "FromSoftware",
    "Remedy", "Frontier", "Raw Fury", "Humble Games", "tinyBuild", "Daedalic", "Nacon",
    "Kalypso", "Astragon", "Headup", "Curve Games", "Thunderful", "Saber Interactive",
)  # fmt: skip

TITLE_WORDS = (
    "dark", "souls", "legend", "shadow", "war", "dragon", "kingdom", "cyberpunk", "star",
    "space", "age", "empire", "knight", "hollow", "dead", "red", "redemption", "call",
    "duty", "battle", "field", "grand", "theft", "auto", "elder", "scrolls", "witcher",
    "wild", "hunt", "assassin", "creed", "far", "cry", "doom", "eternal", "fallout",
    "resident", "evil", "village", "city", "skylines", "total", "warhammer", "crusader",
    "kings", "europa", "universalis", "hearts", "iron", "stellaris", "civilization",
    "monster", "hunter", "world", "rise", "tomb", "raider", "mass", "effect", "dawn",
    "horizon", "zero", "forbidden", "west", "ghost", "tsushima", "spider", "man", "batman",
    "arkham", "knightfall", "escape", "tarkov", "rust", "valheim", "terraria", "stardew",
    "valley", "hades", "celeste", "inside", "limbo", "portal", "half", "life", "counter",
    "strike", "left", "rocket", "league", "forza", "motorsport", "gran", "turismo", "need",
    "speed", "burnout", "paradise", "dirt", "rally", "euro", "truck", "simulator",
    "farming", "flight", "microsoft", "planet", "coaster", "zoo", "jurassic", "evolution",
    "sims", "spore", "anno", "settlers", "baldur", "gate", "divinity", "original", "sin",
    "pillars", "eternity", "pathfinder", "wrath", "righteous", "disco", "elysium", "sekiro",
    "elden", "ring", "bloodborne", "nioh", "lies", "dying", "light", "outlast", "amnesia",
    "alien", "isolation", "subnautica", "below", "frostpunk", "banished", "rimworld",
    "factorio", "satisfactory", "oxygen", "included", "slay", "spire", "dead", "cells",
    "ori", "blind", "forest", "cuphead", "hollow", "knight", "silksong", "tunic", "outer",
    "wilds", "return", "obra", "dinn", "lost", "sky", "ark", "survival", "evolved",
    "conan", "exiles", "mount", "blade", "bannerlord", "kingdom", "come", "deliverance",
    "mafia", "definitive", "yakuza", "like", "dragon", "persona", "royal", "metaphor",
    "final", "fantasy", "tales", "arise", "octopath", "traveler", "chrono", "trigger",
    "street", "fighter", "tekken", "mortal", "kombat", "guilty", "gear", "strive", "sonic",
    "frontiers", "crash", "bandicoot", "spyro", "rayman", "legends", "prince", "persia",
    "sands", "time", "splinter", "cell", "rainbow", "six", "siege", "division", "ghost",
    "recon", "breakpoint", "watch", "dogs", "legion", "crew", "motorfest", "trackmania",
    "steep", "riders", "republic", "anthem", "titanfall", "apex", "battlefront",
    "jedi", "survivor", "fallen", "order", "squadrons", "it", "takes", "two", "split",
    "fiction", "unravel", "sea", "thieves", "grounded", "pentiment", "starfield",
    "hi", "fi", "rush", "prey", "dishonored", "deathloop", "wolfenstein", "colossus",
    "quake", "champions", "atomic", "heart", "metro", "exodus", "stalker", "chernobyl",
    "witchfire", "remnant", "ashes", "lords", "fallen", "lies", "pinocchio", "mortal",
    "shell", "thymesia", "hellblade", "senua", "sacrifice", "saga", "plague", "tale",
    "innocence", "requiem", "little", "nightmares", "mundaun", "scorn", "signalis",
    "dredge", "cocoon", "viewfinder", "pizza", "tower", "sea", "stars", "chained", "echoes",
    "über", "mañana", "café", "résumé", "naïve", "señor", "fjörd", "kōan", "ørsted",
)  # fmt: skip

SYLLABLES = (
    "ka", "zor", "thul", "mir", "vel", "dra", "xan", "or", "el", "qua", "ny", "bro", "sha",
    "lun", "gar", "vex", "tal", "ion", "ra", "mo", "sky", "fen", "dor", "ith", "ul", "zen",
    "kor", "bel", "ash", "rin", "tor", "vo", "lyr", "ean", "gh", "ost", "pra", "ku", "jin",
)  # fmt: skip

EDITIONS = (
    "", "", "", "", "Standard Edition", "Deluxe Edition", "Gold Edition",
    "Ultimate Edition", "GOTY Edition", "Complete Edition", "Season Pass", "DLC",
    "Definitive Edition", "Collector's Edition", "Remastered", "Director's Cut",
)  # fmt: skip

PLATFORMS = (
    "Steam", "Steam", "Steam", "Xbox One", "Xbox Series X|S", "PS4", "PS5",
    "Nintendo Switch", "Epic Games", "GOG", "EA App", "Ubisoft Connect", "Battle.net",
    "Rockstar",
)  # fmt: skip

REGIONS = ("Global", "EU", "US", "UK", "LATAM", "ROW", "EMEA", "Asia")

#: The share of all products that are one of the cards several suppliers sell (the rest
#: of the catalog is each supplier's own). Drawn from SHARED_LINES x MARKETS x
#: SHARED_FACES (2,400 card variants, 240 card products): at 100k products, ~5,000
#: supplier products and about three offers per card variant.
SHARE_OF_SHARED_CARDS = 0.05
SHARED_LINES = (
    "Steam Wallet", "PlayStation Store", "Xbox Gift Card", "Nintendo eShop", "Google Play",
    "Apple Gift Card", "Amazon Gift Card", "Netflix", "Razer Gold", "Roblox", "IKEA",
    "Zalando",
)  # fmt: skip
SHARED_FACES = (5, 10, 15, 20, 25, 50, 75, 100, 150, 200)

SUBSCRIPTIONS = (
    ("Xbox Game Pass Ultimate", "Xbox"), ("Xbox Game Pass Core", "Xbox"),
    ("PlayStation Plus Essential", "PlayStation"), ("PlayStation Plus Extra", "PlayStation"),
    ("PlayStation Plus Premium", "PlayStation"), ("Nintendo Switch Online", "Nintendo"),
    ("Spotify Premium", "Spotify"), ("Netflix Premium", "Netflix"),
    ("EA Play", "Electronic Arts"), ("Ubisoft+", "Ubisoft"), ("Discord Nitro", "Discord"),
    ("YouTube Premium", "Google"), ("Apple Music", "Apple"), ("Crunchyroll", "Crunchyroll"),
)  # fmt: skip

# Every supplier spells its categories its own way: the index must merge these.
GAME_CATEGORIES = ("Game Keys", "game keys", "GameKeys", "Games", "PC Gaming", "Gaming")
GIFT_CATEGORIES = ("Gift Cards", "gift cards", "Gift  Cards", "Vouchers", "Top-up")
SUB_CATEGORIES = ("Subscriptions", "subscriptions", "Memberships")

CYRILLIC = ("Ключ", "Подарочная карта", "Игра", "Подписка", "Ёлка", "Цифровой код")

GAME_BLURBS = (
    "{title} for {platform}. Instant digital delivery, activate in {region}.",
    "Digital key for {platform}: {title}, region {region}.",
    "",
    "The {edition} of {title} with all launch bonuses.",
    "Redeem on {platform} in a few clicks. Works in {region}.",
)
GIFT_BLURBS = (
    "Top up your {brand} balance and spend it on games, apps and more.",
    "{brand} digital gift card, redeemable in {region} only.",
    "",
    "Send a {brand} voucher by e-mail: the code arrives in seconds.",
)


_NO_DEFAULT = object()
_FIELDS = {
    cls: tuple(
        (name, _NO_DEFAULT if f.is_required() else f.get_default(call_default_factory=True))
        for name, f in cls.model_fields.items()
    )
    for cls in (Money, Variant, Product)
}


def _construct(cls: type[_M], **values: Any) -> _M:
    """``cls.model_construct(**values)`` at a third of the cost: fields in declaration
    order, defaults filled in, nothing validated."""
    obj = cls.__new__(cls)
    data = {name: values.get(name, default) for name, default in _FIELDS[cls]}
    object.__setattr__(obj, "__dict__", data)
    object.__setattr__(obj, "__pydantic_fields_set__", set(values))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


def _zipf_cum_weights(n: int, s: float = 1.05) -> list[float]:
    return list(accumulate(1.0 / (rank**s) for rank in range(1, n + 1)))


class _Generator:
    """Holds the pools and the RNG; ``product(i)`` makes product number ``i``."""

    def __init__(self, n: int, seed: int) -> None:
        self.rng = random.Random(seed)
        # The invented long tail grows like Heaps' law: about 40·n^0.6 distinct words.
        tail = max(50, int(40 * n**0.6))
        words = list(dict.fromkeys(TITLE_WORDS))
        invented: list[str] = []
        seen = set(words)
        while len(invented) < tail:
            w = "".join(self.rng.choices(SYLLABLES, k=self.rng.randint(2, 4)))
            if w not in seen:
                seen.add(w)
                invented.append(w)
        self.words = words + invented
        self.word_cum = _zipf_cum_weights(len(self.words))
        self.studio_names = list(PUBLISHERS) + [
            f"{w.capitalize()} {self.rng.choice(('Games', 'Studio', 'Interactive', 'Soft'))}"
            for w in invented[: max(20, tail // 20)]
        ]
        self.studio_cum = _zipf_cum_weights(len(self.studio_names), 0.9)
        self.market_cum = _zipf_cum_weights(len(MARKETS), 1.1)
        self.money: dict[tuple[int, str], Money] = {}

    def _money(self, amount: int, currency: str) -> Money:
        key = (amount, currency)
        m = self.money.get(key)
        if m is None:
            m = self.money[key] = _construct(Money, amount=amount, currency=currency)
        return m

    def _title(self) -> str:
        rng = self.rng
        k = rng.choices((1, 2, 3, 4), (3, 5, 3, 1))[0]
        picked = rng.choices(self.words, cum_weights=self.word_cum, k=k)
        title = " ".join(w.capitalize() for w in picked)
        roll = rng.random()
        if roll < 0.2:
            title += f" {rng.randint(2, 5)}"
        elif roll < 0.25:
            title += f" {rng.choice(('2077', 'II', 'III', 'IV', '1998', '2'))}"
        elif roll < 0.27:
            title = f"{rng.choice(CYRILLIC)} {title}"
        return title

    def product(self, i: int) -> Product:
        rng = self.rng
        supplier = SUPPLIERS[rng.choices(range(4), (5, 3, 2, 1))[0]]
        country, currency = rng.choices(MARKETS, cum_weights=self.market_cum)[0]
        exp = currency_exponent(currency)
        kind = rng.random()
        variants: list[Variant] = []
        pid = f"{supplier}:{i:08d}"
        region = rng.choice(REGIONS)
        if rng.random() < SHARE_OF_SHARED_CARDS:
            return self._shared_card(i, supplier, pid, country, currency)
        if kind < 0.55:  # game key
            title = self._title()
            edition = rng.choice(EDITIONS)
            platform = rng.choice(PLATFORMS)
            name = " ".join(x for x in (title, edition, platform, "Key", region) if x)
            brand: str | None = rng.choices(self.studio_names, cum_weights=self.studio_cum)[0]
            if rng.random() < 0.05:
                brand = brand.upper() if rng.random() < 0.5 else brand.replace(" ", "  ")
            category = rng.choice(GAME_CATEGORIES)
            sub = platform if rng.random() < 0.5 else None
            cost = max(1, rng.randint(99, 6999) * 10**exp // 100)
            variants.append(
                _construct(Variant,
                    id=f"{pid}:std", name=f"{title} {edition}".strip(),
                    cost=self._money(cost, currency),
                )
            )  # fmt: skip
            mode = DeliveryMode.CODE
            short = rng.choice(GAME_BLURBS).format(
                title=title, platform=platform, region=region, edition=edition or "Standard"
            )
        elif kind < 0.9:  # gift card
            brand = rng.choice(GIFT_BRANDS)
            category = rng.choice(GIFT_CATEGORIES)
            sub = "PC Gaming" if rng.random() < 0.3 else None
            discount = Decimal(rng.choice(("0", "1.5", "2", "3.5", "5", "7.25")))
            if rng.random() < 0.2:  # one range variant
                lo, hi = rng.choice(((5, 100), (10, 200), (25, 500)))
                variants.append(
                    _construct(
                        Variant,
                        id=f"{pid}:r{lo * 10**exp}-{hi * 10**exp}",
                        name=f"{brand} {lo}-{hi} {currency}",
                        face_min=self._money(lo * 10**exp, currency),
                        face_max=self._money(hi * 10**exp, currency),
                        discount_percent=discount,
                    )
                )
                name = f"{brand} Gift Card {currency}"
            else:
                faces = sorted(rng.sample((5, 10, 15, 20, 25, 50, 75, 100, 150, 200), 3))
                for face in faces:
                    minor = face * 10**exp
                    variants.append(
                        _construct(Variant,
                            id=f"{pid}:fv{minor}", name=f"{brand} {face} {currency}",
                            cost=self._money(discounted_cost(minor, discount), currency),
                            face_value=self._money(minor, currency),
                            discount_percent=discount,
                        )
                    )  # fmt: skip
                name = f"{brand} Gift Card {faces[0]}-{faces[-1]} {currency} {country}"
            mode = DeliveryMode.CODE_WITH_PIN if rng.random() < 0.5 else DeliveryMode.CODE
            short = rng.choice(GIFT_BLURBS).format(brand=brand, region=country)
        else:  # subscription
            service, brand = rng.choice(SUBSCRIPTIONS)
            months = rng.choice((1, 3, 6, 12))
            name = f"{service} {months} {'Month' if months == 1 else 'Months'} {region}"
            category = rng.choice(SUB_CATEGORIES)
            sub = None
            cost = max(1, months * rng.randint(399, 1499) * 10**exp // 100)
            variants.append(
                _construct(Variant,
                    id=f"{pid}:std", name=f"{months} months",
                    cost=self._money(cost, currency),
                )
            )  # fmt: skip
            mode = DeliveryMode.URL if rng.random() < 0.2 else DeliveryMode.CODE
            short = f"{service} membership for {months} months."
        stock = None if rng.random() < 0.4 else rng.choice((0, 1, 5, 12, 100, 2500))
        return _construct(
            Product,
            id=pid,
            supplier=supplier,
            upstream_id=f"{i:08d}",
            name=name,
            brand=brand,
            category=category,
            sub_category=sub,
            country=country,
            currency=currency,
            image_url=f"https://cdn.example.com/{supplier}/{i:08d}.png",
            delivery_mode=mode,
            delivery_time=DeliveryTime.INSTANT if rng.random() < 0.9 else DeliveryTime.DELAYED,
            validity="12 months" if kind >= 0.55 and kind < 0.9 else None,
            stock=stock,
            available=rng.random() < 0.95,
            short_description=short or None,
            variants=tuple(variants),
        )

    def _shared_card(self, i: int, supplier: str, pid: str, country: str, currency: str) -> Product:
        """One of the cards every supplier sells, named the supplier's way: Vouchers a
        product per card with its face values as variants, the others a product per face
        value with the amount in the name (with or without a face value field)."""
        rng = self.rng
        line = rng.choice(SHARED_LINES)
        exp = currency_exponent(currency)
        discount = Decimal(rng.choice(("0", "1.5", "2", "3.5", "5")))
        faces = (
            sorted(rng.sample(SHARED_FACES, rng.randint(1, 3)))
            if supplier == "vouchers"
            else [rng.choice(SHARED_FACES)]
        )
        variants = []
        for face in faces:
            minor = face * 10**exp
            variants.append(
                _construct(
                    Variant,
                    id=f"{pid}:fv{minor}",
                    name=f"{face} {currency}",
                    cost=self._money(discounted_cost(minor, discount), currency),
                    face_value=None if supplier == "gaming_goods" else self._money(minor, currency),
                    discount_percent=discount,
                )
            )
        name = {
            "vouchers": f"{line}",
            "gaming_goods": f"{line} {faces[0]} {currency}",
            "keyshop": f"{line} Gift Card {faces[0]} {currency}",
        }.get(supplier, f"{line} Digital Code {faces[0]} {currency}")
        return _construct(
            Product,
            id=pid,
            supplier=supplier,
            upstream_id=f"{i:08d}",
            name=name,
            brand=line.split()[0],
            category=rng.choice(GIFT_CATEGORIES),
            country=country,
            currency=currency,
            image_url=f"https://cdn.example.com/{supplier}/{i:08d}.png",
            delivery_mode=DeliveryMode.CODE,
            stock=None if rng.random() < 0.4 else rng.choice((0, 1, 5, 12, 100, 2500)),
            available=rng.random() < 0.95,
            variants=tuple(variants),
        )


def products(n: int, seed: int = 0) -> Iterator[Product]:
    """``n`` products, the same ones for the same ``(n, seed)``, one at a time (streaming,
    so a benchmark never holds a million pydantic objects it does not need)."""
    gen = _Generator(n, seed)
    for i in range(n):
        yield gen.product(i)


def vocabulary(n: int, seed: int = 0) -> list[str]:
    """The title words a catalog of ``n`` products draws from, most frequent first: what
    benchmarks pick their query words from."""
    return list(_Generator(n, seed).words)


def price_list() -> PriceList:
    """A price list with a global markup and a few supplier/category rules."""
    return PriceList(
        MarkupRule(percent=Decimal("8")),
        [
            MarkupRule(percent=Decimal("5"), supplier="vouchers"),
            MarkupRule(percent=Decimal("12"), fixed_minor=10, category="Game Keys"),
            MarkupRule(percent=Decimal("3"), supplier="cardhub", category="Gift Cards"),
        ],
    )
