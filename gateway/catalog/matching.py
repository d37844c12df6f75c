"""Which supplier products are the same thing to a buyer: the matching of offers.

Two suppliers selling "Steam Wallet Card US" and "Steam Gift Card 50 USD US" sell one
thing, and an aggregator must show it once with two offers behind it. A wrong merge is
worse than none (it sells a customer a card for the wrong country), so this module only
merges what it can fully explain, and says why when it does not.

A supplier variant gets a :class:`MatchKey` - the canonical product and variant it is an
offer of - or a :class:`Miss` with the reason. Canonical ids are derived from the key
alone (never from a supplier, a position or the order of a sync), so they are stable
across re-syncs:

* **gift cards and vouchers** (a face value, fixed or a range): the product line found
  by the brand alias table (``brands.toml``; the voucher API has no brand field), the
  redemption country or region, the card's currency and the face value::

      gift-steam-wallet-usa-usd   variants  fv5000 (50.00 fixed)   range (any amount)

  Every word of the name must be explained (line, country, amount, currency, filler such
  as "card" or "code"): a leftover word ("Pack 2", "Ultimate") means the name says
  something the key does not, so the variant stays on its own.
* **game keys** (category game keys / DLC): the normalised title, the platform, the
  edition and the region, all read from the title's own words::

      game-cyberpunk-2077-steam-deluxe-global   variant  std

  No region in the title means no merge: a key's region decides whether it activates.

Never merged: different countries or regions, currencies, platforms, editions or face
values - each is part of the key, so they cannot meet in one canonical product.

Operators force or forbid matches with an overrides file (:class:`Overrides`).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from adapters.models import Product, Variant, currency_exponent, to_minor_units
from gateway.catalog.text import fold, tokens

#: Canonical ids are capped so ids stay usable in URLs and logs; a longer one is cut and
#: given a digest of the whole, which keeps it unique and stable.
MAX_ID_LENGTH = 96

#: What a canonical product id may be (the matcher's slugs, and a forced id).
_CANONICAL_ID = re.compile(rf"[a-z0-9](?:[a-z0-9-]{{0,{MAX_ID_LENGTH - 2}}}[a-z0-9])?")

GIFT_PREFIX = "gift-"
GAME_PREFIX = "game-"
RANGE_VARIANT = "range"
STANDARD_VARIANT = "std"


class MatchingError(ValueError):
    """A brand or overrides file is missing or malformed (raised at start-up)."""


# ----------------------------------------------------------------- vocabularies

#: Countries as names spell them -> ISO 3166-1 alpha-3 (suppliers use alpha-3 or alpha-2).
#: Codes that are also common English words ("in", "it", "can", "are") are left out: a
#: name is more likely to use the word than the country.
_COUNTRY_WORDS: dict[str, str] = {
    "us": "USA", "usa": "USA", "united states": "USA", "america": "USA",
    "uk": "GBR", "gb": "GBR", "gbr": "GBR", "united kingdom": "GBR", "great britain": "GBR",
    "de": "DEU", "deu": "DEU", "germany": "DEU", "deutschland": "DEU",
    "fr": "FRA", "fra": "FRA", "france": "FRA",
    "es": "ESP", "esp": "ESP", "spain": "ESP",
    "ita": "ITA", "italy": "ITA",
    "nl": "NLD", "nld": "NLD", "netherlands": "NLD",
    "ca": "CAN", "canada": "CAN",
    "au": "AUS", "aus": "AUS", "australia": "AUS",
    "jp": "JPN", "jpn": "JPN", "japan": "JPN",
    "ae": "ARE", "uae": "ARE", "united arab emirates": "ARE",
    "bh": "BHR", "bhr": "BHR", "bahrain": "BHR",
    "br": "BRA", "bra": "BRA", "brazil": "BRA",
    "mx": "MEX", "mex": "MEX", "mexico": "MEX",
    "pl": "POL", "pol": "POL", "poland": "POL",
    "tr": "TUR", "tur": "TUR", "turkey": "TUR",
    "ind": "IND", "india": "IND",
    "sa": "SAU", "sau": "SAU", "saudi arabia": "SAU", "ksa": "SAU",
}  # fmt: skip
#: Multi-country regions: never the same as one of their countries.
_REGION_WORDS: dict[str, str] = {
    "global": "GLOBAL", "worldwide": "GLOBAL", "ww": "GLOBAL", "region free": "GLOBAL",
    "eu": "EU", "europe": "EU", "european union": "EU", "eu uk": "EU-UK", "eu and uk": "EU-UK",
    "na": "NA", "north america": "NA", "latam": "LATAM", "row": "ROW",
    "rest of world": "ROW", "asia": "ASIA", "mena": "MENA",
}  # fmt: skip
_CURRENCY_SIGNS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY"}
_CURRENCY_WORDS = {
    "usd", "eur", "gbp", "cad", "aud", "jpy", "aed", "bhd", "chf", "sek", "nok", "dkk", "pln",
    "try", "brl", "mxn", "inr", "sar", "nzd", "hkd", "sgd", "zar", "czk", "huf", "ron",
}  # fmt: skip
#: Words that say nothing about which card it is.
_GIFT_FILLER = {
    "card", "cards", "gift", "giftcard", "wallet", "code", "codes", "voucher", "digital",
    "prepaid", "top", "up", "topup", "ecard", "e", "egift", "key", "pin", "credit",
    "balance", "recharge", "activation", "account", "only", "for", "of", "the", "and",
    "store", "online", "instant", "delivery", "email", "value", "redeem",
}  # fmt: skip
_PLATFORM_WORDS: dict[str, str] = {
    "steam": "steam", "xbox": "xbox", "xbox one": "xbox", "xbox series x s": "xbox",
    "xbox series": "xbox", "xbox live": "xbox", "playstation": "playstation",
    "ps4": "ps4", "ps5": "ps5", "psn": "playstation", "playstation 4": "ps4",
    "playstation 5": "ps5", "nintendo": "switch", "nintendo switch": "switch",
    "switch": "switch", "epic": "epic", "epic games": "epic", "epic games store": "epic",
    "gog": "gog", "gog com": "gog", "origin": "ea", "ea app": "ea", "ea": "ea",
    "ubisoft": "ubisoft", "ubisoft connect": "ubisoft", "uplay": "ubisoft",
    "battle net": "battlenet", "blizzard": "battlenet", "rockstar": "rockstar",
    "rockstar games launcher": "rockstar", "microsoft store": "microsoft",
    "windows 10": "microsoft", "pc": "pc",
}  # fmt: skip
_EDITION_WORDS: dict[str, str] = {
    "standard": "standard", "standard edition": "standard", "deluxe": "deluxe",
    "deluxe edition": "deluxe", "digital deluxe": "deluxe", "digital deluxe edition": "deluxe",
    "gold": "gold", "gold edition": "gold", "complete": "complete",
    "complete edition": "complete", "goty": "goty", "goty edition": "goty",
    "game of the year": "goty", "game of the year edition": "goty", "ultimate": "ultimate",
    "ultimate edition": "ultimate", "premium": "premium", "premium edition": "premium",
    "definitive": "definitive", "definitive edition": "definitive",
    "collector s edition": "collectors", "collectors edition": "collectors",
    "legendary edition": "legendary", "special edition": "special", "anniversary edition":
    "anniversary",
}  # fmt: skip
_GAME_FILLER = {"key", "cd", "code", "digital", "download", "activation", "account", "pc"}
_GAME_CATEGORIES = {"gamekeys", "games", "game", "dlc", "pcgames", "videogames"}
_GIFT_CATEGORIES_HINT = ("gift", "wallet", "card", "voucher", "topup", "prepaid", "credit")


class Phrases:
    """Word sequences that stand for a value ("united states" -> "USA"), found in a
    name's words by their first word: one dict look-up per word, not a scan per phrase
    (matching runs over every variant of every supplier at each sync)."""

    def __init__(self, table: Mapping[str, str]) -> None:
        self._by_first: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for text, value in table.items():
            phrase = tuple(tokens(text))
            if not phrase:
                raise MatchingError(f"empty phrase for {value!r}")
            self._by_first.setdefault(phrase[0], []).append((phrase, value))
        for entries in self._by_first.values():
            entries.sort(key=lambda entry: len(entry[0]), reverse=True)

    def hits(self, words: list[str]) -> list[tuple[int, int, str]]:
        """Every occurrence as (start, end, value), longest first at each start."""
        found: list[tuple[int, int, str]] = []
        for i, word in enumerate(words):
            for phrase, value in self._by_first.get(word, ()):
                end = i + len(phrase)
                if tuple(words[i:end]) == phrase:
                    found.append((i, end, value))
        return found

    def take(self, words: list[str]) -> set[str]:
        """Remove the phrases from ``words`` (the longest at each place, left to right)
        and return the distinct values they stand for."""
        found: set[str] = set()
        kept: list[str] = []
        i = 0
        while i < len(words):
            for phrase, value in self._by_first.get(words[i], ()):
                end = i + len(phrase)
                if tuple(words[i:end]) == phrase:
                    found.add(value)
                    i = end
                    break
            else:
                kept.append(words[i])
                i += 1
        words[:] = kept
        return found


_COUNTRIES = Phrases(_COUNTRY_WORDS)
_REGIONS = Phrases(_REGION_WORDS)
_PLATFORMS = Phrases(_PLATFORM_WORDS)
_EDITIONS = Phrases(_EDITION_WORDS)
_SIGNED_AMOUNT = re.compile(r"([$€£¥])\s?(\d+(?:[.,]\d{1,3})?)(?![\w.,])")
#: "50€", "20 £": the sign after the amount, as many European names write it.
_AMOUNT_SIGNED = re.compile(r"(?<![\w.,])(\d+(?:[.,]\d{1,3})?)\s?([$€£¥])")
_PLAIN_AMOUNT = re.compile(r"(?<![\w.,])(\d+(?:[.,]\d{1,3})?)(?![\w.,])")
_SIGN = re.compile(r"[$€£¥]")


def _joined(words: Iterable[str]) -> str:
    return " ".join(words)


# ------------------------------------------------------------------- the keys


@dataclass(frozen=True, slots=True)
class MatchKey:
    """The canonical product and variant a supplier variant is an offer of."""

    product_id: str
    variant_key: str
    #: The parts the key is made of, for reviews and property tests (never for ids).
    facts: tuple[tuple[str, str], ...] = field(compare=False, default=())

    @property
    def variant_id(self) -> str:
        return f"{self.product_id}:{self.variant_key}"

    def fact(self, name: str) -> str | None:
        return dict(self.facts).get(name)


@dataclass(frozen=True, slots=True)
class Miss:
    """Why a supplier variant is not matched: it stays a product of its own."""

    reason: str


Verdict = MatchKey | Miss


def canonical_id(prefix: str, parts: Iterable[str]) -> str:
    """``prefix`` + the parts as one slug; over :data:`MAX_ID_LENGTH`, cut and suffixed
    with a digest of the whole slug (stable, and still unique)."""
    slug = "-".join(p for p in (re.sub(r"[^a-z0-9]+", "-", fold(x)).strip("-") for x in parts) if p)
    whole = prefix + slug
    if len(whole) <= MAX_ID_LENGTH:
        return whole
    digest = hashlib.sha256(whole.encode()).hexdigest()[:10]
    return whole[: MAX_ID_LENGTH - 11].rstrip("-") + "-" + digest


# ------------------------------------------------------------- brand table


class BrandTable:
    """Product lines and their spellings (``brands.toml``, extended by the operator)."""

    def __init__(self, lines: Mapping[str, Iterable[str]]) -> None:
        self.lines: dict[str, tuple[str, ...]] = {}
        by_phrase: dict[tuple[str, ...], str] = {}
        for line, aliases in lines.items():
            spelled = (*tuple(aliases), line)
            self.lines[line] = spelled
            for alias in spelled:
                phrase = tuple(tokens(alias))
                if not phrase:
                    raise MatchingError(f"brand line {line!r} has an empty alias")
                other = by_phrase.get(phrase)
                if other is not None and other != line:
                    raise MatchingError(
                        f"alias {alias!r} names two product lines: {other!r} and {line!r}"
                    )
                by_phrase[phrase] = line
        self._phrases = Phrases({" ".join(p): line for p, line in by_phrase.items()})

    @classmethod
    def load(cls, extra: Path | None = None) -> BrandTable:
        """The shipped table, with the operator's file (if any) replacing lines of the
        same name and adding new ones."""
        shipped = resources.files("gateway.catalog").joinpath("brands.toml").read_text("utf-8")
        lines = dict(_lines_of(tomllib.loads(shipped), "the shipped brands.toml"))
        if extra is not None:
            lines.update(_lines_of(_read_toml(extra, "brands file"), str(extra)))
        return cls(lines)

    def find(self, words: list[str]) -> tuple[str, int, int] | None:
        """The product line named in ``words``: (line, start, end) of its longest alias;
        None when no alias occurs, or when two different lines do (ambiguous)."""
        hits = self._phrases.hits(words)
        if not hits:
            return None
        start, end, line = max(hits, key=lambda hit: (hit[1] - hit[0], -hit[0]))
        for other_start, other_end, other in hits:
            if other != line and (other_end <= start or other_start >= end):
                return None  # a second, different line elsewhere in the name: ambiguous
        return line, start, end


def _read_toml(path: Path, what: str) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise MatchingError(f"the {what} {path} does not exist") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise MatchingError(f"cannot read the {what} {path}: {exc}") from exc


def _lines_of(data: Mapping[str, object], where: str) -> Iterable[tuple[str, list[str]]]:
    table = data.get("lines")
    if not isinstance(table, dict):
        raise MatchingError(f"{where}: expected a [lines] table of name = [aliases]")
    for line, aliases in table.items():
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise MatchingError(f"{where}: line {line!r} needs a list of alias strings")
        yield str(line), aliases


# ------------------------------------------------------------------ matching


class Matcher:
    """Gives each supplier variant its verdict. Pure: same inputs, same verdicts."""

    def __init__(self, brands: BrandTable, overrides: Overrides | None = None) -> None:
        self.brands = brands
        self.overrides = overrides or Overrides()

    @classmethod
    def from_files(cls, brands_file: Path | None, overrides_file: Path | None) -> Matcher:
        """The shipped brand table with the operator's files (``catalog.brands_file``,
        ``catalog.match_overrides_file``); ``MatchingError`` when one cannot be used."""
        return cls(BrandTable.load(brands_file), Overrides.load(overrides_file))

    def verdict(self, product: Product, variant: Variant) -> Verdict:
        if product.id in self.overrides.never:
            return Miss("kept apart by the overrides file")
        forced = self.overrides.force.get(product.id)
        kind = kind_of(product, variant)
        if forced is not None:
            key = _variant_key(variant, product.name) if kind == "gift" else STANDARD_VARIANT
            return MatchKey(forced, key, (("forced", "yes"),))
        if kind == "gift":
            return self._gift(product, variant)
        if kind == "game":
            return _game(product)
        return Miss(f"no matching rule for category {product.category!r}")

    def _gift(self, product: Product, variant: Variant) -> Verdict:
        title_faces, title_currencies, words = _amounts(product.name)
        found = self.brands.find(words)
        if found is None:
            return Miss("no product line of the brand table in the name")
        line, start, end = found
        del words[start:end]
        countries = _COUNTRIES.take(words)
        regions = _REGIONS.take(words)
        if product.country:
            countries.add(product.country.upper())
        places = countries | regions
        if len(places) != 1:
            what = "no redemption country" if not places else f"several places {sorted(places)}"
            return Miss(f"{what} in the name or the product")
        place = places.pop()
        face = _variant_face(variant)
        amount: int | None
        if face is not None:
            currency, amount = face
            if any(_minor(f, currency) != amount for f in title_faces):
                return Miss("the name's face value differs from the variant's")
        elif _is_range(variant):
            assert variant.face_min is not None  # _is_range
            currency, amount = variant.face_min.currency, None
            if title_faces:
                return Miss("a range variant whose name states a face value")
        elif len(title_faces) == 1 and len(title_currencies) == 1:
            currency = next(iter(title_currencies))
            amount = _minor(title_faces[0], currency)
            if amount is None:
                return Miss(f"face value {title_faces[0]} {currency} is not exact")
        else:
            return Miss("no single face value and currency in the name or the variant")
        if title_currencies - {currency}:
            return Miss(f"the name says {sorted(title_currencies)}, the variant {currency}")
        leftover = [w for w in words if w not in _GIFT_FILLER]
        if leftover:
            return Miss(f"unexplained words in the name: {' '.join(leftover)!r}")
        product_id = canonical_id(GIFT_PREFIX, (line, place, currency))
        variant_key = RANGE_VARIANT if amount is None else f"fv{amount}"
        face_fact = "range" if amount is None else str(amount)
        facts = (("line", line), ("place", place), ("currency", currency), ("face", face_fact))
        return MatchKey(product_id, variant_key, facts)


def kind_of(product: Product, variant: Variant) -> str:
    """Which rule a variant falls under: ``gift`` (a face value, a range, or a gift-card
    category), ``game`` (a game key or DLC category) or ``other``."""
    category = "".join(tokens(product.category or ""))
    if variant.face_value is not None or _is_range(variant):
        return "gift"
    if category in _GAME_CATEGORIES:
        return "game"
    if any(hint in category for hint in _GIFT_CATEGORIES_HINT):
        return "gift"
    return "other"


def _is_range(variant: Variant) -> bool:
    return variant.face_min is not None and variant.face_max is not None


def _variant_face(variant: Variant) -> tuple[str, int] | None:
    face = variant.face_value
    return (face.currency, face.amount) if face is not None else None


def _variant_key(variant: Variant, name: str) -> str:
    """A forced gift card's variant key: its face value, from the variant or else from
    its name when the name states exactly one; ``std`` otherwise."""
    if variant.face_value is not None:
        return f"fv{variant.face_value.amount}"
    if _is_range(variant):
        return RANGE_VARIANT
    faces, currencies, _ = _amounts(name)
    if len(faces) == 1 and len(currencies) == 1:
        amount = _minor(faces[0], currencies.pop())
        if amount is not None:
            return f"fv{amount}"
    return STANDARD_VARIANT


def _amounts(name: str) -> tuple[list[str], set[str], list[str]]:
    """Face values and currencies written in a name (``$50``, ``50€``, ``50 USD``,
    ``2.5 BHD``), and the name's other words. Amounts are read from the text, not from
    tokens, because the tokenizer splits "2.5" in two; they are kept as written ("1,000")
    because only the currency says what the separator means (:func:`_minor`). A currency
    sign anywhere counts as a stated currency, so "Card 50 € DE" cannot pass for USD."""
    text = fold(name).replace("&", " and ")
    faces: list[str] = []
    currencies: set[str] = set()
    for sign, amount in _SIGNED_AMOUNT.findall(text):
        faces.append(amount)
        currencies.add(_CURRENCY_SIGNS[sign])
    text = _SIGNED_AMOUNT.sub(" ", text)
    for amount, sign in _AMOUNT_SIGNED.findall(text):
        faces.append(amount)
        currencies.add(_CURRENCY_SIGNS[sign])
    text = _AMOUNT_SIGNED.sub(" ", text)
    currencies.update(_CURRENCY_SIGNS[sign] for sign in _SIGN.findall(text))
    faces.extend(_PLAIN_AMOUNT.findall(text))
    text = _PLAIN_AMOUNT.sub(" ", text)
    words: list[str] = []
    for word in tokens(text):
        if word in _CURRENCY_WORDS:
            currencies.add(word.upper())
        else:
            words.append(word)
    return faces, currencies, words


def _minor(amount: str, currency: str) -> int | None:
    """``amount`` as written in a name, in minor units of ``currency``; None when it is
    not an exact positive amount.

    A separator followed by exactly three digits groups thousands ("$1,000", "1.000 JPY",
    "10.000 EUR") - read as a decimal point it would make a 1000 card a 1 card - except a
    point in a three-decimal currency ("2.500 BHD" is 2.5 BHD). Otherwise a comma is a
    decimal point ("2,50 EUR")."""
    parts = re.split(r"([.,])", amount)  # [head] or [head, separator, tail]
    if len(parts) == 3:
        head, sep, tail = parts
        grouped = len(tail) == 3 and not (sep == "." and currency_exponent(currency) == 3)
        amount = head + tail if grouped else f"{head}.{tail}"
    try:
        value = to_minor_units(amount, currency)
    except (ValueError, ArithmeticError):
        return None
    return value if value > 0 and currency_exponent(currency) >= 0 else None


def _game(product: Product) -> Verdict:
    words = tokens(product.name.replace("&", " and "))
    platforms = _PLATFORMS.take(words)
    editions = _EDITIONS.take(words)
    regions = _REGIONS.take(words)
    regions |= _COUNTRIES.take(words)
    words = [w for w in words if w not in _GAME_FILLER and w != "edition"]
    if len(platforms) != 1:
        return Miss("no single platform in the title" if not platforms else "several platforms")
    if len(editions) > 1:
        return Miss(f"several editions in the title: {sorted(editions)}")
    if len(regions) != 1:
        return Miss("no region in the title" if not regions else "several regions in the title")
    if not words:
        return Miss("no title left once platform, edition and region are read")
    platform, region = platforms.pop(), regions.pop()
    edition = editions.pop() if editions else "standard"
    title = " ".join(words)
    product_id = canonical_id(GAME_PREFIX, (title, platform, edition, region))
    facts = (("title", title), ("platform", platform), ("edition", edition), ("place", region))
    return MatchKey(product_id, STANDARD_VARIANT, facts)


# ---------------------------------------------------------------- overrides


@dataclass(frozen=True)
class Overrides:
    """The operator's word over the matcher (``catalog.match_overrides_file``)::

    # this supplier product is an offer of that canonical product
    [force]
    "gaming_goods:0b9c..." = "gift-steam-wallet-usa-usd"

    # these supplier products are never merged with anything
    [never]
    products = ["vouchers:865"]
    """

    force: Mapping[str, str] = field(default_factory=dict)
    never: frozenset[str] = frozenset()

    @classmethod
    def load(cls, path: Path | None) -> Overrides:
        if path is None:
            return cls()
        data = _read_toml(path, "match overrides file")
        force = data.get("force", {})
        never_table = data.get("never", {})
        if not isinstance(never_table, dict):
            raise MatchingError(f"{path}: [never] is a table with a products list")
        never = never_table.get("products", [])
        if not isinstance(force, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in force.items()
        ):
            raise MatchingError(f"{path}: [force] maps supplier product ids to canonical ids")
        bad = sorted(v for v in force.values() if not _CANONICAL_ID.fullmatch(v))
        if bad:
            # a forced id becomes a product id in URLs and the "<product>:<variant>" ids
            raise MatchingError(
                f"{path}: canonical ids are lowercase letters, digits and '-', at most "
                f"{MAX_ID_LENGTH} characters: {bad}"
            )
        if not isinstance(never, list) or not all(isinstance(p, str) for p in never):
            raise MatchingError(f"{path}: [never] products must be a list of product ids")
        both = set(force) & set(never)
        if both:
            raise MatchingError(f"{path}: {sorted(both)} are both forced and kept apart")
        return cls(force=dict(force), never=frozenset(never))


# ----------------------------------------------------------- a whole catalog


@dataclass(frozen=True, slots=True)
class Offer:
    """One supplier variant behind a canonical variant."""

    product: Product
    variant: Variant


@dataclass
class Matches:
    """A catalog's matching: canonical variant id -> its offers, and the near-misses an
    operator should review (``gateway catalog matches``)."""

    offers: dict[str, list[Offer]] = field(default_factory=dict)
    keys: dict[str, MatchKey] = field(default_factory=dict)
    misses: list[tuple[Offer, str]] = field(default_factory=list)

    @property
    def merged(self) -> dict[str, list[Offer]]:
        """Canonical variants with offers from more than one supplier product."""
        return {k: v for k, v in self.offers.items() if len({o.product.id for o in v}) > 1}

    @property
    def near_misses(self) -> list[tuple[Offer, str]]:
        """Unmatched variants that look like gift cards: the ones an operator may want
        to merge by hand (an unmatched game key is the common, expected case)."""
        return [(o, r) for o, r in self.misses if kind_of(o.product, o.variant) == "gift"]


def match_catalog(products: Iterable[Product], matcher: Matcher) -> Matches:
    """Match every variant of ``products``. Offers of one canonical variant are listed in
    a fixed order (supplier, then variant id), whatever order the catalog came in."""
    result = Matches()
    for product in products:
        for variant in product.variants:
            verdict = matcher.verdict(product, variant)
            offer = Offer(product, variant)
            if isinstance(verdict, Miss):
                result.misses.append((offer, verdict.reason))
                continue
            result.offers.setdefault(verdict.variant_id, []).append(offer)
            result.keys.setdefault(verdict.variant_id, verdict)
    for offers in result.offers.values():
        offers.sort(key=lambda o: (o.product.supplier, o.variant.id))
    result.misses.sort(key=lambda miss: miss[0].variant.id)
    return result
