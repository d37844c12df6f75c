"""Listing by canonical product over real HTTP: both sandboxes (which sell the same cards,
``adapters/sandbox_overlap.py``) synced into real Redis, a gateway on a loopback port.

One card sold by both suppliers is one row with two offers and the cheaper price; its
detail lists both offers; the supplier ids behind it still answer; the listed best price
is what an order for it would be charged (the routing's own pricing); canonical ids do
not depend on the sync or on the catalog's order; ``catalog.show_offer_suppliers`` hides
who sells what."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from catalog_support import GG, VO, Sandbox, ServiceFactory, catalog_gateway_settings, reader_token
from hypothesis import given, settings
from hypothesis import strategies as st
from test_catalog_api import MARKUP, RESELLER_RULE, TAXONOMY, published_products
from test_catalog_service import publish

from adapters.base import SupplierAdapter
from adapters.models import Money, Product, Variant
from adapters.sandbox_server import BackgroundServer
from gateway.app import create_app
from gateway.catalog import schema
from gateway.catalog.index import CatalogIndex, SearchQuery
from gateway.catalog.matching import Matcher, match_catalog
from gateway.catalog.offers import price_currency
from gateway.catalog.service import CatalogService, price_list
from gateway.orders.ports import PricedCatalog
from gateway.pricing import MarkupRule, PriceList

STEAM_DE = "gift-steam-wallet-deu-eur"
STEAM_DE_50 = f"{STEAM_DE}:fv5000"
#: Supplier rules that differ, so that each offer is priced by its own supplier's rule.
RULES = {
    "markup_percent": "10",
    "markup_fixed_minor": 5,
    "markup_rules": [
        {"supplier": VO, "percent": "3.5"},
        {"supplier": GG, "category": "Gift Cards", "percent": "1", "fixed_minor": 7},
    ],
}


class Client:
    def __init__(self, url: str, keys: dict[str, str]) -> None:
        self.http = httpx.Client(base_url=url, timeout=10)
        self.keys = keys

    def get(self, path: str, params: dict[str, Any] | None = None, who: str = "list") -> Any:
        response = self.http.get(
            path, params=params, headers={"Authorization": f"Bearer {self.keys[who]}"}
        )
        return response


@contextmanager
def gateway(
    sandboxes: dict[str, Sandbox],
    redis: Any,
    key_prefix: str,
    redis_url: str,
    keys: Any,
    **cat: Any,
) -> Iterator[Client]:
    cfg = catalog_gateway_settings(sandboxes, key_prefix, redis_url, **{**RULES, **cat})
    with BackgroundServer(create_app(cfg)) as server:
        client = Client(server.url, keys)
        try:
            yield client
        finally:
            client.http.close()


@pytest.fixture
async def keys(redis: Any, key_prefix: str) -> dict[str, str]:
    return {
        "list": await reader_token(redis, key_prefix),
        "reseller": await reader_token(redis, key_prefix, markup=RESELLER_RULE),
    }


@pytest.fixture
async def products(
    adapters: dict[str, SupplierAdapter], redis: Any, key_prefix: str
) -> list[Product]:
    return await published_products(adapters, redis, key_prefix)


def rows_named(client: Client, product_id: str, params: dict[str, Any], who: str) -> list[Any]:
    data = client.get("/v1/search", {**params, "page_size": 100}, who).json()["data"]
    return [p for p in data["products"] if p["id"] == product_id]


async def test_a_card_sold_by_both_is_one_row_with_two_offers_and_the_cheaper_price(
    sandboxes: dict[str, Sandbox],
    products: list[Product],
    keys: dict[str, str],
    redis: Any,
    key_prefix: str,
    redis_url: str,
) -> None:
    matched = match_catalog(products, Matcher.from_files(None, None)).offers[STEAM_DE_50]
    de_50 = [offer.product for offer in matched]
    card_of = {offer.product.id: offer.variant for offer in matched}
    assert {p.supplier for p in de_50} == {GG, VO}  # the sandboxes do overlap here
    prices = price_list(catalog_gateway_settings(sandboxes, key_prefix, redis_url, **RULES).catalog)
    with gateway(sandboxes, redis, key_prefix, redis_url, keys) as client:
        for who, rule in (("list", None), ("reseller", RESELLER_RULE)):
            found = rows_named(client, STEAM_DE, {"q": "steam gift card 50 eur de"}, who)
            assert len(found) == 1, found  # once, not once per supplier
            (row,) = found
            assert row["offer_count"] == 2 and row["suppliers"] == [GG, VO]
            assert row["supplier"] is None  # two sellers: no single supplier to name
            (variant,) = [v for v in row["variants"] if v["id"] == STEAM_DE_50]
            assert variant["offer_count"] == 2
            # The cheaper of the two offers, each priced by its own supplier's rule.
            expected = []
            for product in de_50:
                offer = card_of[product.id]
                cost = offer.unit_cost(None)
                assert cost is not None and cost.currency == "EUR"
                chosen = prices.rule_for(product.supplier, "Gift Cards", rule)
                expected.append(chosen.apply(cost.amount))
            assert variant["price"] == {"amount": min(expected), "currency": "EUR"}
            assert len(set(expected)) == 2  # the suppliers really price it differently
            # Neither supplier product is listed on its own: only through the card.
            listed = client.get("/v1/search", {"q": "steam", "page_size": 100}, who).json()
            ids = {p["id"] for p in listed["data"]["products"]}
            assert STEAM_DE in ids and not ids & {p.id for p in de_50}

        # The detail shows both offers, the variant priced at its best one.
        body = client.get(f"/v1/products/{STEAM_DE}").json()
        schema.ProductDetailResponse.model_validate(body)
        detail = body["data"]
        assert detail["id"] == STEAM_DE and detail["offer_count"] == 2
        (variant,) = [v for v in detail["variants"] if v["id"] == STEAM_DE_50]
        offers = variant["offers"]
        assert [o["supplier"] for o in offers] == [GG, VO]
        assert {o["product_id"] for o in offers} == {p.id for p in de_50}
        by_product = {p.id: p for p in de_50}
        for offer in offers:
            product = by_product[offer["product_id"]]
            assert offer["variant_id"].startswith(product.id + ":")
            assert offer["stock"] == product.stock and offer["available"] == product.available
            assert offer["delivery_time"] == product.delivery_time.value
            assert offer["eligible"] is True
        assert variant["price"]["amount"] == min(o["price"]["amount"] for o in offers)

        # Every supplier id behind it still answers, as a supplier product.
        for product in de_50:
            answer = client.get(f"/v1/products/{product.id}")
            assert answer.status_code == 200, answer.text
            assert answer.json()["data"]["id"] == product.id
            assert answer.json()["data"]["supplier"] == product.supplier
        assert client.get("/v1/products/gift-steam-wallet-deu-eur-nope").status_code == 404


async def test_the_listed_best_price_is_what_routing_charges(
    sandboxes: dict[str, Sandbox],
    adapters: dict[str, SupplierAdapter],
    make_service: ServiceFactory,
    redis: Any,
    key_prefix: str,
    redis_url: str,
    tmp_path: Path,
) -> None:
    """For every canonical variant, with list prices and with a reseller's rule: the
    listed price is the cheapest offer of ``CatalogService.offers`` in the variant's
    ``price_currency``, each priced by ``PricedCatalog.unit_price`` (the routing's
    pricing): an order at the listed price is accepted by at least one offer."""
    for adapter in adapters.values():
        assert (await publish(adapter, redis, key_prefix)).outcome == "published"
    taxonomy_file = tmp_path / "taxonomy.toml"
    taxonomy_file.write_text(TAXONOMY)
    settings = catalog_gateway_settings(
        sandboxes, key_prefix, redis_url, taxonomy_file=taxonomy_file, **MARKUP
    ).catalog
    service: CatalogService = make_service(adapters, settings)
    await service.start()
    index = service.index
    assert index is not None
    priced = PricedCatalog(service.find, service.prices, service.taxonomy)
    rows = index.search(SearchQuery(limit=len(index))).ids
    canonical_rows = [pid for pid in rows if ":" not in pid]
    assert len(canonical_rows) >= 20
    checked = 0
    for rule in (None, RESELLER_RULE, MarkupRule(percent=Decimal("0"))):
        for summary in index.summaries(canonical_rows, rule):
            for variant in summary["variants"]:
                offers = service.offers(variant["id"])
                assert offers, variant["id"]
                if variant["face_min"] is not None:
                    continue  # a range is priced at order time, from the face chosen
                book = service.index.offers  # type: ignore[union-attr]
                currency = price_currency(
                    book.key(variant["id"]),
                    [c.currency for _, v in offers if (c := v.unit_cost(None)) is not None],
                )
                charged = [
                    money.amount
                    for product, offer in offers
                    if (money := priced.unit_price(product, offer, None, rule)) is not None
                    and money.currency == currency
                ]
                assert variant["price"] == {"amount": min(charged), "currency": currency}
                checked += 1
    assert checked >= 60


async def test_canonical_ids_and_rows_do_not_depend_on_sync_or_order(
    adapters: dict[str, SupplierAdapter],
    make_service: ServiceFactory,
    products: list[Product],
    redis: Any,
    key_prefix: str,
) -> None:
    service = make_service(adapters)
    await service.start()
    first = service.index
    assert first is not None
    listed = first.search(SearchQuery(limit=len(first))).ids
    # A re-sync publishes new versions of the same catalogs: the same rows, same ids.
    for adapter in adapters.values():
        assert (await publish(adapter, redis, key_prefix)).outcome == "published"
    await service.refresh()
    again = service.index
    assert again is not None and again is not first
    assert again.search(SearchQuery(limit=len(again))).ids == listed
    # Any order of the catalog (hypothesis draws it): the same rows, summaries, offers.
    matcher = Matcher.from_files(None, None)
    want = first.summaries(listed)
    reseller_want = first.summaries(listed, RESELLER_RULE)

    @settings(max_examples=8, deadline=None, database=None)
    @given(order=st.permutations(range(len(products))))
    def same_listing(order: list[int]) -> None:
        index = CatalogIndex.build((products[i] for i in order), service.prices, matcher=matcher)
        assert index.search(SearchQuery(limit=len(index))).ids == listed
        assert index.summaries(listed) == want
        assert index.summaries(listed, RESELLER_RULE) == reseller_want
        assert index.offers.variant_ids() == first.offers.variant_ids()
        for variant_id in index.offers.variant_ids():
            assert index.offers.offers(variant_id) == first.offers.offers(variant_id)

    same_listing()


async def test_show_offer_suppliers_false_hides_who_sells_what(
    sandboxes: dict[str, Sandbox],
    products: list[Product],
    keys: dict[str, str],
    redis: Any,
    key_prefix: str,
    redis_url: str,
) -> None:
    with gateway(
        sandboxes, redis, key_prefix, redis_url, keys, show_offer_suppliers=False
    ) as client:
        page = client.get("/v1/products", {"page_size": 100, "facets": "true"}).json()["data"]
        schema.ProductPageResponse.model_validate({"data": page})
        assert page["products"] and all(
            p["supplier"] is None and p["suppliers"] == [] for p in page["products"]
        )
        assert "supplier" not in page["facets"] and "category" in page["facets"]
        (row,) = [p for p in page["products"] if p["id"] == STEAM_DE] or [
            p
            for p in client.get("/v1/search", {"q": "steam", "page_size": 100}).json()["data"][
                "products"
            ]
            if p["id"] == STEAM_DE
        ]
        assert row["offer_count"] == 2  # how many, not who
        refused = client.get("/v1/products", {"supplier": GG})
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "invalid_parameter"
        detail = client.get(f"/v1/products/{STEAM_DE}").json()
        schema.ProductDetailResponse.model_validate(detail)
        (variant,) = [v for v in detail["data"]["variants"] if v["id"] == STEAM_DE_50]
        assert len(variant["offers"]) == 2
        for offer in variant["offers"]:
            assert offer["supplier"] is offer["product_id"] is offer["variant_id"] is None
            assert offer["price"] is not None and offer["delivery_time"]
        assert detail["data"]["supplier"] is None and detail["data"]["suppliers"] == []
        # An unmatched supplier product still answers by its id, without naming anyone.
        own = next(p for p in products if p.id in {r["id"] for r in page["products"]})
        answer = client.get(f"/v1/products/{own.id}").json()["data"]
        assert answer["id"] == own.id and answer["supplier"] is None


def _card(
    pid: str, name: str, variants: list[tuple[str, int | None, int, str]], **kw: Any
) -> Product:
    """A gift card product; variants are (key, face or None, cost, currency)."""
    supplier = pid.split(":")[0]
    return Product(
        id=pid,
        supplier=supplier,
        upstream_id=pid.split(":")[1],
        name=name,
        category="Gift Cards",
        currency=kw.pop("currency", variants[0][3]),
        variants=tuple(
            Variant(
                id=f"{pid}:{key}",
                name=key,
                cost=Money(amount=cost, currency=currency),
                face_value=None if face is None else Money(amount=face, currency=currency),
            )
            for key, face, cost, currency in variants
        ),
        **kw,
    )


def test_rows_merge_offers_price_in_one_currency_and_keep_partly_matched_products() -> None:
    """A hand-made catalog, every rule of the listing checked on it."""
    catalog = [
        _card(
            "vouchers:1",
            "Steam Wallet Card DE",
            [("fv2500", 2500, 2400, "EUR"), ("fv5000", 5000, 4850, "EUR")],
            country="DEU",
            stock=0,
        ),
        _card("gaming_goods:a", "Steam Gift Card 50 EUR DE", [("std", None, 4800, "EUR")], stock=3),
        # The USD card: Gaming Goods prices it in EUR, so only the USD offer competes.
        _card("gaming_goods:b", "Steam Gift Card 50 USD US", [("std", None, 100, "EUR")]),
        _card("vouchers:2", "Steam Wallet Card US", [("fv5000", 5000, 4700, "USD")], country="USA"),
        # Partly matched: its second variant has no face value, so it is sold only here.
        _card(
            "vouchers:3",
            "Xbox Gift Card US",
            [("fv2500", 2500, 2300, "USD"), ("bundle", None, 900, "USD")],
            country="USA",
        ),
        _card("vouchers:4", "Mystery Card", [("fv1000", 1000, 950, "USD")]),  # unmatched
    ]
    prices = PriceList(
        MarkupRule(percent=Decimal("10")),
        [MarkupRule(supplier=GG, percent=Decimal("0"), fixed_minor=0)],
    )
    index = CatalogIndex.build(catalog, prices, matcher=Matcher.from_files(None, None))
    listed = index.search(SearchQuery(limit=100, facets=True))
    assert sorted(listed.ids) == sorted(
        [
            "gift-steam-wallet-deu-eur",
            "gift-steam-wallet-usa-usd",
            "gift-xbox-gift-card-usa-usd",
            "vouchers:3",  # partly matched: listed as itself too
            "vouchers:4",
        ]
    )
    assert index.supplier_products() == 6 and index.suppliers() == {GG: 2, VO: 4}
    assert listed.facets is not None
    assert listed.facets["supplier"] == {VO: 5, GG: 2}  # a row counts under each supplier
    rows = {s["id"]: s for s in index.summaries(listed.ids)}
    de = rows["gift-steam-wallet-deu-eur"]
    assert (de["name"], de["offer_count"], de["suppliers"]) == (
        "Steam Wallet (DEU, EUR)",
        2,
        [GG, VO],
    )
    fv5000 = next(v for v in de["variants"] if v["id"].endswith(":fv5000"))
    # GG at cost 4800 (no markup) beats Vouchers' 4850 + 10%; the 25 EUR card is
    # Vouchers' alone.
    assert fv5000["price"] == {"amount": 4800, "currency": "EUR"} and fv5000["offer_count"] == 2
    assert de["price"] == {"amount": 2640, "currency": "EUR"}  # cheapest variant: 2400 + 10%
    assert de["in_stock"] is True and de["stock"] == 3  # Vouchers' is out of stock
    usd = rows["gift-steam-wallet-usa-usd"]
    assert usd["currency"] == "USD" and usd["price"] == {"amount": 5170, "currency": "USD"}
    assert usd["offer_count"] == 2  # the EUR-priced offer is still an offer, not a price
    # Filters and sorts see rows: a supplier filter finds rows with an offer of it.
    by_gg = index.search(SearchQuery(supplier=GG, limit=100)).ids
    assert sorted(by_gg) == ["gift-steam-wallet-deu-eur", "gift-steam-wallet-usa-usd"]
    cheap_eur = index.search(
        SearchQuery(currency="EUR", min_price=2000, max_price=3000, limit=100)
    ).ids
    assert cheap_eur == ["gift-steam-wallet-deu-eur"]
    reseller = MarkupRule(percent=Decimal("1"))
    (again,) = index.summaries(["gift-steam-wallet-deu-eur"], reseller)
    assert again["price"] == {"amount": 2424, "currency": "EUR"}  # ceil(2400 x 1.01)
    # Supplier ids answer whether listed or absorbed; canonical ids are not products.
    for product in catalog:
        found = index.product(product.id)
        assert found is not None and found.variants == product.variants
    assert index.product("gift-steam-wallet-deu-eur") is None
    assert index.canonical_row("gift-steam-wallet-deu-eur") is not None
    assert index.canonical_row("vouchers:3") is None
    assert index.offers.offers("gift-xbox-gift-card-usa-usd:fv2500") == ["vouchers:3:fv2500"]
