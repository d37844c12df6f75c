"""The catalog index against a brute-force oracle, plus examples of what users see.

The oracle below is plain Python over the product list, written from the rules in
``catalog-interface.md`` and the index's docstrings (matching, weights, merging, prices,
orders), sharing nothing with the index but text folding (tested in test_text.py) and
the pricing rules. Property tests run random catalogs and queries through both under
three tunings: the default, everything dense/precomputed, everything sparse; each
tuning takes different code paths to what must be the same answers.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from itertools import islice
from typing import Any

import pytest
from catalog_oracle import osa_distance
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.models import DeliveryMode, Money, Product, Variant, discounted_cost
from bench import synthetic
from gateway.catalog.index import (
    CatalogIndex,
    IndexTuning,
    QueryError,
    SearchQuery,
    SearchResult,
)
from gateway.catalog.text import fold, tokens
from gateway.pricing import MarkupRule, PriceList

# --------------------------------------------------------------------------------------
# The oracle


def one_edit_apart(a: str, b: str) -> bool:
    """OSA distance 1 (``osa_distance`` is checked in test_text.py); words whose lengths
    differ by two or more cannot be, and skipping them keeps the oracle quick."""
    return abs(len(a) - len(b)) <= 1 and osa_distance(a, b) == 1


def _key(label: str | None) -> str | None:
    if label is None:
        return None
    key = "".join(label.casefold().split())
    return key or None


def _display(labels: Sequence[str | None]) -> dict[str, str]:
    """Merge key -> the most common tidy spelling (ties: alphabetically first)."""
    counts: dict[str, Counter[str]] = {}
    for label in labels:
        key = _key(label)
        if key is not None:
            assert label is not None
            counts.setdefault(key, Counter())[" ".join(label.split())] += 1
    return {k: sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] for k, c in counts.items()}


def _cost(v: Variant) -> tuple[int, str] | None:
    if v.cost is not None:
        pair = (v.cost.amount, v.cost.currency)
    elif (face := v.face_value or v.face_min) is not None:
        pair = (discounted_cost(face.amount, v.discount_percent or 0), face.currency)
    else:
        return None
    return pair if pair[0] >= 0 else None


@dataclass
class Row:
    product: Product
    category: str | None  # unified display label
    brand: str | None
    name_tokens: list[str]
    other_tokens: list[str]
    cost: int | None
    list_price: int | None
    list_rule: MarkupRule


class Oracle:
    def __init__(
        self,
        products: Sequence[Product],
        prices: PriceList,
        taxonomy: Callable[[str, str | None], str | None],
    ) -> None:
        latest: dict[str, Product] = {}
        for p in products:
            latest[p.id] = p
        unified = {p.id: taxonomy(p.supplier, p.category) for p in latest.values()}
        categories = _display(list(unified.values()))
        brands = _display([p.brand for p in latest.values()])
        self.rows: list[Row] = []
        for p in latest.values():
            category = categories.get(_key(unified[p.id]) or "")
            brand = brands.get(_key(p.brand) or "")
            costs = [c[0] for v in p.variants if (c := _cost(v)) and c[1] == p.currency]
            cost = min(costs) if costs else None
            rule = prices.rule_for(p.supplier, category)
            other = tokens(brand) + tokens(category) + tokens(p.sub_category)
            self.rows.append(
                Row(
                    product=p,
                    category=category,
                    brand=brand,
                    name_tokens=tokens(p.name),
                    other_tokens=other + tokens(p.short_description),
                    cost=cost,
                    list_price=None if cost is None else rule.apply(cost),
                    list_rule=rule,
                )
            )
        self.by_id = {r.product.id: r for r in self.rows}

    @staticmethod
    def weight(row: Row, word: str, last: bool) -> int:
        best = 0
        for field_tokens, bonus in ((row.name_tokens, 1), (row.other_tokens, 0)):
            for t in field_tokens:
                if t == word:
                    best = max(best, 5 + bonus)
                elif last and t.startswith(word):
                    best = max(best, 3 + bonus)
                elif 5 <= len(word) <= 32 and one_edit_apart(word, t):
                    best = max(best, 1 + bonus)
        return best

    def price(self, row: Row, rule: MarkupRule | None) -> int | None:
        if row.cost is None:
            return None
        return row.list_price if rule is None else rule.apply(row.cost)

    def search(self, q: SearchQuery, rule: MarkupRule | None = None) -> SearchResult:
        words = tokens(q.text)
        hits: list[tuple[Row, int]] = []
        for row in self.rows:
            p = row.product
            if q.category is not None and (
                _key(q.category) is None or _key(q.category) != _key(row.category)
            ):
                continue
            if q.brand is not None and (_key(q.brand) is None or _key(q.brand) != _key(row.brand)):
                continue
            if q.supplier is not None and q.supplier != p.supplier:
                continue
            if q.country is not None and q.country != p.country:
                continue
            if q.currency is not None and q.currency != p.currency:
                continue
            stocked = p.available and (p.stock is None or p.stock > 0)
            if q.in_stock is not None and q.in_stock != stocked:
                continue
            if q.min_price is not None or q.max_price is not None:
                price = self.price(row, rule)
                if price is None:
                    continue
                if q.min_price is not None and price < q.min_price:
                    continue
                if q.max_price is not None and price > q.max_price:
                    continue
            score = 0
            for i, word in enumerate(words):
                w = self.weight(row, word, i == len(words) - 1)
                if not w:
                    break
                score += w
            else:
                hits.append((row, score))
        sort = q.sort or ("relevance" if words else "name")

        def name_key(row: Row) -> tuple[str, str]:
            return fold(row.product.name), row.product.id

        def key(hit: tuple[Row, int]) -> tuple[Any, ...]:
            row, score = hit
            if sort == "relevance":
                return (-score, *name_key(row))
            if sort == "name":
                return name_key(row)
            price = self.price(row, rule)
            if price is None:
                return (1, "", 0, *name_key(row))
            signed = price if sort == "price_asc" else -price
            return (0, row.product.currency, signed, *name_key(row))

        hits.sort(key=key)
        page = hits[q.offset : q.offset + q.limit]
        facets = None
        if q.facets:
            facets = {}
            for name, label in (
                ("category", lambda r: r.category),
                ("brand", lambda r: r.brand),
                ("supplier", lambda r: r.product.supplier),
                ("country", lambda r: r.product.country),
            ):
                counted = Counter(label(r) for r, _ in hits)
                counted.pop(None, None)
                facets[name] = dict(sorted(counted.items(), key=lambda kv: (-kv[1], kv[0])))
        return SearchResult(total=len(hits), ids=[r.product.id for r, _ in page], facets=facets)


def assert_same(index: CatalogIndex, oracle: Oracle, q: SearchQuery, rule: Any = None) -> None:
    got, want = index.search(q, rule), oracle.search(q, rule)
    assert got.total == want.total, q
    assert got.ids == want.ids, q
    if want.facets is None:
        assert got.facets is None
    else:
        assert got.facets is not None
        for name, counts in want.facets.items():
            assert list(got.facets[name].items()) == list(counts.items()), (name, q)


# --------------------------------------------------------------------------------------
# Random catalogs and queries

WORDS = (
    "Cyberpunk", "cyberpunk", "Cyber", "Witcher", "Witcher's", "Pokémon", "POKEMON", "Steam",
    "steam", "Stream", "Gift", "Card", "Elden", "Ring", "Rings", "Über", "uber", "2077", "3",
    "Ключ", "ключ", "Edition", "Deluxe", "Deluxxe", "Gold", "Golden", "Souls", "Soul", "Xbox",
)  # fmt: skip
BRANDS = ("CD Projekt", "cd projekt", "CDProjekt", "Valve", "VALVE", " Nintendo ", "Nintendo")
CATEGORIES = ("Game Keys", "game keys", "GameKeys", "Gift Cards", "gift  cards", "Gaming", "")
SUPPLIERS = ("gaming_goods", "vouchers", "keyshop")
COUNTRIES = ("USA", "DEU", None)
CURRENCIES = ("USD", "EUR", "JPY")


def taxonomy(supplier: str, category: str | None) -> str | None:
    """The vouchers supplier's "Gaming" is everyone else's "Game Keys"."""
    if supplier == "vouchers" and category == "Gaming":
        return "Game Keys"
    return category


PRICES = PriceList(
    MarkupRule(percent=Decimal("10")),
    [
        MarkupRule(percent=Decimal("5"), fixed_minor=3, supplier="vouchers"),
        MarkupRule(percent=Decimal("12.5"), category="game keys"),
        MarkupRule(percent=Decimal("0"), supplier="keyshop", category="Gift Cards"),
    ],
)

RULES = st.none() | st.builds(
    MarkupRule,
    percent=st.sampled_from([Decimal(0), Decimal("7.5"), Decimal("12.25"), Decimal(100)]),
    fixed_minor=st.sampled_from([0, 1, 99]),
)


@st.composite
def variants(draw: st.DrawFn, pid: str, currency: str) -> Variant:
    kind = draw(st.sampled_from(["cost", "range", "face", "face_no_discount", "none", "other"]))
    amount = draw(st.integers(0, 3000))
    key = draw(st.integers(0, 10**6))
    discount = draw(st.sampled_from([Decimal(0), Decimal("3.5"), Decimal("12.75")]))
    vid = f"{pid}:v{key}" if draw(st.booleans()) else f"elsewhere-{key}"
    money = Money(amount=amount, currency=currency)
    if kind == "cost":
        return Variant(id=vid, name=f"V{key}", cost=money)
    if kind == "range":
        top = Money(amount=amount + 500, currency=currency)
        return Variant(
            id=vid, name="range", face_min=money, face_max=top, discount_percent=discount
        )
    if kind == "face":
        return Variant(id=vid, name="face", face_value=money, discount_percent=discount)
    if kind == "face_no_discount":
        return Variant(id=vid, name="face", face_value=money)
    if kind == "other":  # priced in another currency: never the product's price
        return Variant(id=vid, name="other", cost=Money(amount=amount, currency="GBP"))
    return Variant(id=vid, name="unpriced")


@st.composite
def products(draw: st.DrawFn) -> Product:
    supplier = draw(st.sampled_from(SUPPLIERS))
    upstream = str(draw(st.integers(0, 10**6)))
    pid = f"{supplier}:{upstream}"
    currency = draw(st.sampled_from(CURRENCIES))
    name = " ".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=4)))
    short = draw(st.none() | st.lists(st.sampled_from(WORDS), max_size=4).map(" ".join))
    return Product(
        id=pid,
        supplier=supplier,
        upstream_id=upstream,
        name=name,
        brand=draw(st.none() | st.sampled_from(BRANDS)),
        category=draw(st.none() | st.sampled_from(CATEGORIES)),
        sub_category=draw(st.none() | st.sampled_from(["PC Gaming", "Consoles"])),
        country=draw(st.sampled_from(COUNTRIES)),
        currency=currency,
        image_url=draw(st.none() | st.just(f"https://img.example/{pid}.png")),
        delivery_mode=draw(st.sampled_from(list(DeliveryMode))),
        stock=draw(st.sampled_from([None, 0, 3])),
        available=draw(st.booleans()),
        short_description=short,
        variants=tuple(draw(st.lists(variants(pid, currency), max_size=3))),
    )


@st.composite
def catalogs(draw: st.DrawFn) -> list[Product]:
    """Up to 30 products; now and then one id again, renamed (the later one wins)."""
    size = draw(st.integers(1, 30))
    catalog = draw(st.lists(products(), min_size=size, max_size=size))
    if draw(st.booleans()):
        again = draw(st.sampled_from(catalog))
        catalog.append(again.model_copy(update={"name": draw(st.sampled_from(WORDS))}))
    return catalog


def _mangle(word: str, how: int) -> str:
    w = fold(word)
    if how == 1 and len(w) > 1:
        return w[: max(1, len(w) // 2)]  # a prefix
    if how == 2 and len(w) > 2:
        return w[:1] + w[2:]  # a deletion
    if how == 3 and len(w) > 3:
        return w[0] + w[2] + w[1] + w[3:]  # a transposition
    if how == 4:
        return w + "x"  # an insertion
    if how == 5:
        return word.upper()
    return word


def _sometimes(draw: st.DrawFn, values: Sequence[Any]) -> Any:
    """One of ``values`` one time in six, else None: several filters at once rarely
    leave anything to compare."""
    return draw(st.sampled_from(values)) if draw(st.integers(0, 5)) == 0 else None


@st.composite
def query_texts(draw: st.DrawFn, catalog: Sequence[Product]) -> str | None:
    """Mostly words of one product (so that they can all match), sometimes mangled into a
    prefix, a typo or another case; sometimes anything at all."""
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return None
    if choice == 1:
        return draw(st.text(max_size=12))
    pool = list(WORDS)
    if catalog and choice > 3:
        p = draw(st.sampled_from(catalog))
        texts = (p.name, p.brand, p.category, p.sub_category, p.short_description)
        pool = [word for text in texts for word in (text or "").split()]
    words = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
    return " ".join(_mangle(w, draw(st.integers(0, 8))) for w in words)


@st.composite
def queries(draw: st.DrawFn, catalog: Sequence[Product] = ()) -> SearchQuery:
    """A query whose words mostly come from the catalog's own text (so that it matches
    something) and whose filters are set now and then."""
    currency = _sometimes(draw, CURRENCIES)
    priced = currency is not None and draw(st.booleans())
    return SearchQuery(
        text=draw(query_texts(catalog)),
        category=_sometimes(draw, [*CATEGORIES, "GAME keys", "Nothing"]),
        brand=_sometimes(draw, [*BRANDS, "cdprojekt", "Absent"]),
        supplier=_sometimes(draw, [*SUPPLIERS, "absent"]),
        country=_sometimes(draw, ["USA", "DEU", "FRA"]),
        currency=currency,
        min_price=draw(st.none() | st.integers(0, 3000)) if priced else None,
        max_price=draw(st.none() | st.integers(0, 3500)) if priced else None,
        in_stock=_sometimes(draw, [True, False]),
        sort=draw(st.sampled_from([None, "relevance", "price_asc", "price_desc", "name"])),
        offset=draw(st.sampled_from([0, 0, 0, 0, 0, 1, 3, 10])),
        limit=draw(st.sampled_from([0, 1, 5, 20, 100])),
        facets=draw(st.booleans()),
    )


DEFAULT = IndexTuning()
ALL_DENSE = IndexTuning(
    dense_fraction=0, dense_min=0, prefix_budget=0, sliced_min=0, walk=0, facet_extract=0
)
ALL_SPARSE = IndexTuning(
    dense_min=10**9,
    prefix_budget=10**9,
    sliced_min=10**9,
    walk=math.inf,
    facet_extract=math.inf,
)
TUNINGS = st.sampled_from([DEFAULT, ALL_DENSE, ALL_SPARSE])

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(catalogs(), st.data(), RULES, TUNINGS)
def test_search_equals_the_oracle(
    catalog: list[Product],
    data: st.DataObject,
    rule: MarkupRule | None,
    tuning: IndexTuning,
) -> None:
    index = CatalogIndex.build(catalog, PRICES, taxonomy, tuning=tuning)
    oracle = Oracle(catalog, PRICES, taxonomy)
    assert len(index) == len(oracle.rows)
    for q in data.draw(st.lists(queries(catalog), min_size=1, max_size=6)):
        assert_same(index, oracle, q, rule)


@settings(PROPERTY, max_examples=80)
@given(catalogs(), RULES, TUNINGS)
def test_summaries_products_and_listings_equal_the_oracle(
    catalog: list[Product], rule: MarkupRule | None, tuning: IndexTuning
) -> None:
    index = CatalogIndex.build(catalog, PRICES, taxonomy, tuning=tuning)
    oracle = Oracle(catalog, PRICES, taxonomy)
    ids = [r.product.id for r in oracle.rows]
    summaries = index.summaries([*ids, "absent:1"], rule)
    assert [s["id"] for s in summaries] == ids
    for s in summaries:
        row = oracle.by_id[s["id"]]
        p = row.product
        price = oracle.price(row, rule)
        assert s["price"] == (None if price is None else {"amount": price, "currency": p.currency})
        assert (s["brand"], s["category"]) == (row.brand, row.category)
        assert s["in_stock"] == (p.available and (p.stock is None or p.stock > 0))
        variant_rule = rule or row.list_rule
        for sv, v in zip(s["variants"], p.variants, strict=True):
            assert sv["id"] == v.id
            cost = _cost(v)
            if v.is_range or cost is None:
                assert sv["price"] is None
            else:
                assert sv["price"] == {"amount": variant_rule.apply(cost[0]), "currency": cost[1]}
        assert index.product(p.id) == p.model_copy(
            update={"brand": row.brand, "category": row.category}
        )
    assert index.product("absent:1") is None
    want_categories = Counter(r.category for r in oracle.rows if r.category)
    assert index.categories() == sorted(
        want_categories.items(), key=lambda kv: (kv[0].casefold(), kv[0])
    )
    want_brands = Counter(r.brand for r in oracle.rows if r.brand)
    assert index.brands() == sorted(want_brands.items(), key=lambda kv: (kv[0].casefold(), kv[0]))
    assert index.suppliers() == dict(
        sorted(Counter(r.product.supplier for r in oracle.rows).items())
    )


# --------------------------------------------------------------------------------------
# Examples


def product(
    pid: str,
    name: str,
    *,
    brand: str | None = None,
    category: str | None = None,
    short: str | None = None,
    cost: int = 1000,
    currency: str = "EUR",
    supplier: str = "gaming_goods",
    stock: int | None = None,
    available: bool = True,
) -> Product:
    return Product(
        id=f"{supplier}:{pid}",
        supplier=supplier,
        upstream_id=pid,
        name=name,
        brand=brand,
        category=category,
        currency=currency,
        short_description=short,
        stock=stock,
        available=available,
        variants=(
            Variant(
                id=f"{supplier}:{pid}:std", name=name, cost=Money(amount=cost, currency=currency)
            ),
        ),
    )


FLAT = PriceList(MarkupRule())


def names(index: CatalogIndex, text: str, **kw: Any) -> list[str]:
    result = index.search(SearchQuery(text=text, limit=100, **kw))
    return [index.product(i).name for i in result.ids]  # type: ignore[union-attr]


@pytest.fixture(params=[DEFAULT, ALL_DENSE, ALL_SPARSE], ids=["default", "dense", "sparse"])
def tuning(request: pytest.FixtureRequest) -> IndexTuning:
    return request.param  # type: ignore[no-any-return]


def test_prefix_typo_and_accents(tuning: IndexTuning) -> None:
    index = CatalogIndex.build(
        [
            product("1", "Cyberpunk 2077"),
            product("2", "The Witcher 3: Wild Hunt"),
            product("3", "Pokémon Scarlet"),
            product("4", "Steam Wallet 20 EUR"),
            product("5", "abcdefghijklmnopqrstuvwxyzabcdef"),  # 32 letters
            product("6", "abcdefghijklmnopqrstuvwxyzabcdefg"),  # 33
        ],
        FLAT,
        tuning=tuning,
    )
    assert names(index, "cyber") == ["Cyberpunk 2077"]  # still typing
    assert names(index, "CYBERPUNK 20") == ["Cyberpunk 2077"]
    assert names(index, "witchr") == ["The Witcher 3: Wild Hunt"]  # one deletion
    assert names(index, "cyberpnuk") == ["Cyberpunk 2077"]  # one transposition
    assert names(index, "pokemon") == ["Pokémon Scarlet"]
    assert names(index, "POKÉMON scar") == ["Pokémon Scarlet"]
    assert names(index, "stem") == []  # 4 letters: too short for a typo
    assert names(index, "cybr 2077") == []  # only the last word is a prefix...
    assert names(index, "2077 cybr") == []  # ...and a prefix is not a typo
    assert names(index, "witcher cyberpunk") == []  # every word must match
    assert names(index, "abcdefghijklmnopqrstuvwxyzabcdeX") == ["abcdefghijklmnopqrstuvwxyzabcdef"]
    assert names(index, "abcdefghijklmnopqrstuvwxyzabcdeXg") == []  # too long for typos


def test_ranking_prefers_exact_then_prefix_then_typo_and_name_over_other_fields(
    tuning: IndexTuning,
) -> None:
    index = CatalogIndex.build(
        [
            product("f", "Aaa", short="staem"),  # typo elsewhere
            product("e", "Stean Zone"),  # typo in the name
            product("d", "Dig", short="steamworld"),  # prefix elsewhere
            product("c", "Steamworld Dig"),  # prefix in the name
            product("b", "Wallet", brand="Steam"),  # exact elsewhere
            product("a2", "Steam Wallet"),  # exact in the name (two of them: by name)
            product("a1", "Steam Deck Dock"),
        ],
        FLAT,
        tuning=tuning,
    )
    assert names(index, "steam") == [
        "Steam Deck Dock",
        "Steam Wallet",
        "Wallet",
        "Steamworld Dig",
        "Dig",
        "Stean Zone",
        "Aaa",
    ]
    # a word in both name and brand counts once, at its best; words add up
    assert names(index, "wallet steam") == ["Steam Wallet", "Wallet"]


def test_ties_are_broken_by_name_then_id() -> None:
    index = CatalogIndex.build(
        [product("2", "Same"), product("1", "same"), product("3", "Other same")], FLAT
    )
    result = index.search(SearchQuery(text="same"))
    assert result.ids == ["gaming_goods:3", "gaming_goods:1", "gaming_goods:2"]


def test_pagination_edges(tuning: IndexTuning) -> None:
    catalog = [product(str(i), f"Game {i:02d}") for i in range(30)]
    index = CatalogIndex.build(catalog, FLAT, tuning=tuning)
    every = [p.id for p in catalog]
    for text in (None, "game"):
        assert index.search(SearchQuery(text=text, offset=25, limit=10)).ids == every[25:]
        beyond = index.search(SearchQuery(text=text, offset=30, limit=10))
        assert (beyond.total, beyond.ids) == (30, [])
        far = index.search(SearchQuery(text=text, offset=10**6))
        assert (far.total, far.ids) == (30, [])
        none = index.search(SearchQuery(text=text, limit=0))
        assert (none.total, none.ids) == (30, [])
        last = index.search(SearchQuery(text=text, offset=29, limit=1))
        assert last.ids == every[29:]


def test_reseller_rule_price_filter_and_sort_equal_brute_force(tuning: IndexTuning) -> None:
    """Costs 0..400 under rules whose ceilings land on every side of the bounds."""
    catalog = [product(str(c), f"Item {c}", cost=c) for c in range(0, 401)]
    index = CatalogIndex.build(catalog, FLAT, tuning=tuning)
    oracle = Oracle(catalog, FLAT, lambda s, c: c)
    for rule in (
        MarkupRule(percent=Decimal("7.5")),
        MarkupRule(percent=Decimal("33.33"), fixed_minor=7),
        MarkupRule(percent=Decimal("0.01")),
        MarkupRule(),
    ):
        for lo, hi in ((None, 0), (1, 1), (107, 108), (108, 107), (50, None), (None, 10**6)):
            for sort in ("price_asc", "price_desc"):
                q = SearchQuery(currency="EUR", min_price=lo, max_price=hi, sort=sort, limit=500)
                assert_same(index, oracle, q, rule)
        # every single bound between two neighbouring prices
        prices = sorted({rule.apply(c) for c in range(401)})
        for price in prices[:60:7]:
            for bound in (price - 1, price, price + 1):
                q = SearchQuery(currency="EUR", min_price=bound, limit=0)
                assert index.search(q, rule).total == oracle.search(q, rule).total
                q = SearchQuery(currency="EUR", max_price=bound, limit=0)
                assert index.search(q, rule).total == oracle.search(q, rule).total


def test_mixed_currencies_sort_by_currency_then_price() -> None:
    catalog = [
        product("1", "A", cost=500, currency="USD"),
        product("2", "B", cost=100, currency="USD"),
        product("3", "C", cost=300, currency="EUR"),
        Product(id="x:4", supplier="x", upstream_id="4", name="D", currency="EUR", variants=()),
    ]
    index = CatalogIndex.build(catalog, FLAT)
    asc = index.search(SearchQuery(sort="price_asc")).ids
    desc = index.search(SearchQuery(sort="price_desc")).ids
    assert asc == ["gaming_goods:3", "gaming_goods:2", "gaming_goods:1", "x:4"]
    assert desc == ["gaming_goods:3", "gaming_goods:1", "gaming_goods:2", "x:4"]


def test_categories_and_brands_merge_case_and_spacing_and_taxonomy() -> None:
    catalog = [
        product("1", "A", category="Gift Cards", brand="Razer Gold"),
        product("2", "B", category="gift  cards", brand="razer gold"),
        product("3", "C", category="GiftCards", brand="RazerGold"),
        product("4", "D", category="Gift Cards", brand="Razer Gold"),
        product("5", "E", category="Gaming", supplier="vouchers"),
        product("6", "F", category="Game Keys"),
        product("7", "G", category="   "),
    ]
    index = CatalogIndex.build(catalog, FLAT, taxonomy)
    assert index.categories() == [("Game Keys", 2), ("Gift Cards", 4)]
    assert index.brands() == [("Razer Gold", 4)]
    assert index.suppliers() == {"gaming_goods": 6, "vouchers": 1}
    for spelling in ("GIFT cards", "giftcards", " Gift  Cards "):
        assert index.search(SearchQuery(category=spelling)).total == 4
    result = index.search(SearchQuery(text="gift", facets=True))
    assert result.facets is not None
    assert result.facets["category"] == {"Gift Cards": 4}
    assert result.facets["brand"] == {"Razer Gold": 4}
    summary = index.summaries(["gaming_goods:3"])[0]
    assert (summary["category"], summary["brand"]) == ("Gift Cards", "Razer Gold")
    assert index.search(SearchQuery(category="")).total == 0


def test_a_repeated_id_keeps_its_last_version() -> None:
    index = CatalogIndex.build([product("1", "Old name"), product("1", "New name")], FLAT)
    assert len(index) == 1
    assert names(index, "name") == ["New name"]
    assert names(index, "old") == []


def test_summary_shape_and_prices() -> None:
    range_variant = Variant(
        id="vouchers:9:r500-10000",
        name="Any amount",
        face_min=Money(amount=500, currency="USD"),
        face_max=Money(amount=10000, currency="USD"),
        discount_percent=Decimal("3.5"),
    )
    fixed = Variant(
        id="vouchers:9:fv2500",
        name="25 USD",
        face_value=Money(amount=2500, currency="USD"),
        discount_percent=Decimal("3.5"),
    )
    catalog = [
        Product(
            id="vouchers:9",
            supplier="vouchers",
            upstream_id="9",
            name="Steam Wallet",
            category="Gift Cards",
            country="USA",
            currency="USD",
            delivery_mode=DeliveryMode.CODE_WITH_PIN,
            stock=0,
            variants=(range_variant, fixed),
        )
    ]
    prices = PriceList(MarkupRule(percent=Decimal("10"), fixed_minor=1))
    index = CatalogIndex.build(catalog, prices)
    (summary,) = index.summaries(["vouchers:9"])
    assert summary == {
        "id": "vouchers:9",
        "supplier": "vouchers",
        "suppliers": ["vouchers"],
        "offer_count": 1,
        "name": "Steam Wallet",
        "brand": None,
        "category": "Gift Cards",
        "sub_category": None,
        "country": "USA",
        "currency": "USD",
        "image_url": None,
        "delivery_mode": "code_with_pin",
        "delivery_time": "instant",
        "in_stock": False,
        "stock": 0,
        # cheapest: the range at face_min: ceil(500 × 0.965) = 483 -> ceil(483 × 1.1 + 1)
        "price": {"amount": 533, "currency": "USD"},
        "variants": [
            {
                "id": "vouchers:9:r500-10000",
                "name": "Any amount",
                "price": None,
                "face_value": None,
                "face_min": {"amount": 500, "currency": "USD"},
                "face_max": {"amount": 10000, "currency": "USD"},
                "offer_count": 1,
            },
            {
                "id": "vouchers:9:fv2500",
                "name": "25 USD",
                "price": {"amount": 2656, "currency": "USD"},  # ceil(2413 × 1.1 + 1)
                "face_value": {"amount": 2500, "currency": "USD"},
                "face_min": None,
                "face_max": None,
                "offer_count": 1,
            },
        ],
    }
    reseller = index.summaries(["vouchers:9"], MarkupRule(percent=Decimal("0")))[0]
    assert reseller["price"] == {"amount": 483, "currency": "USD"}
    assert index.search(SearchQuery(in_stock=True)).total == 0
    assert index.search(SearchQuery(in_stock=False)).total == 1


def test_filters_by_value_not_in_the_catalog_find_nothing() -> None:
    index = CatalogIndex.build([product("1", "A", brand="Valve")], FLAT)
    for q in (
        SearchQuery(brand="Absent"),
        SearchQuery(supplier="absent"),
        SearchQuery(country="FRA"),
        SearchQuery(currency="JPY"),
        SearchQuery(currency="JPY", min_price=0),
    ):
        result = index.search(replace(q, facets=True))
        assert (result.total, result.ids) == (0, [])
        assert result.facets == {"category": {}, "brand": {}, "supplier": {}, "country": {}}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (SearchQuery(sort="popular"), "sort must be one of"),
        (SearchQuery(offset=-1), "offset"),
        (SearchQuery(limit=-5), "limit"),
        (SearchQuery(min_price=100), "need a currency"),
        (SearchQuery(max_price=100, currency=""), "need a currency"),
    ],
)
def test_bad_queries_are_refused_clearly(query: SearchQuery, message: str) -> None:
    index = CatalogIndex.build([product("1", "A")], FLAT)
    with pytest.raises(QueryError, match=message):
        index.search(query)


def test_an_empty_catalog_answers_everything_with_nothing() -> None:
    index = CatalogIndex.build([], FLAT)
    assert len(index) == 0
    result = index.search(SearchQuery(text="steam", facets=True, sort="price_asc"))
    assert (result.total, result.ids) == (0, [])
    assert index.search(SearchQuery()).ids == []
    assert index.categories() == [] and index.brands() == [] and index.suppliers() == {}


def test_synthetic_catalog_is_valid_and_agrees_with_the_oracle() -> None:
    """A bigger, realistic catalog (the benchmarks' own) where the default tuning's
    dense bitmaps, precomputed prefixes and walk/extract choices all come into play."""
    catalog = list(synthetic.products(2000, seed=3))
    for p in islice(catalog, 0, 2000, 40):
        assert Product.model_validate(p.model_dump()) == p
    prices = synthetic.price_list()
    index = CatalogIndex.build(catalog, prices, tuning=IndexTuning(dense_min=16, sliced_min=64))
    oracle = Oracle(catalog, prices, lambda s, c: c)
    vocab = synthetic.vocabulary(2000, seed=3)
    texts = [None, "steam", "gift card", "dark", "s", "ga", "witchr", "edition ste", vocab[40]]
    sorts = (None, "name", "price_asc", "price_desc")
    reseller = MarkupRule(percent=Decimal("9.99"), fixed_minor=5)
    for i, text in enumerate(texts):
        for sort in (sorts[i % 4], sorts[(i + 1) % 4]):
            q = SearchQuery(
                text=text,
                sort=sort,
                offset=(i * 7) % 40,
                facets=True,
                currency="USD" if i % 3 == 0 else None,
                min_price=500 if i % 3 == 0 else None,
                in_stock=True if i % 2 else None,
            )
            assert_same(index, oracle, q, reseller if i % 2 else None)
