"""The catalog routes over real HTTP: a gateway process bootstrapped from settings on a
loopback port, both sandboxes as upstreams, real Redis. Answers are checked against a
brute-force oracle (property-based), against the response models of the OpenAPI
document, and for the unified error face."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from catalog_oracle import CatalogOracle
from catalog_support import GG, VO, Sandbox, catalog_gateway_settings, reader_token
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.base import SupplierAdapter
from adapters.models import Product
from adapters.sandbox_server import BackgroundServer
from gateway.app import create_app
from gateway.catalog import schema
from gateway.catalog.matching import Matcher, match_catalog
from gateway.catalog.service import price_list
from gateway.catalog.snapshot import SnapshotStore
from gateway.catalog.sync import CatalogSync
from gateway.catalog.taxonomy import Taxonomy
from gateway.pricing import MarkupRule, PriceList
from gateway.redis_keys import RedisKeys

TAXONOMY = """
[gaming_goods]
"Game Keys" = "Games"
"Gift Card" = "Gift Cards"

[vouchers]
"Gaming" = "Games"
"""
MARKUP = {
    "markup_percent": "10",
    "markup_fixed_minor": 5,
    "markup_rules": [
        {"supplier": "vouchers", "percent": "3.5"},
        {"category": "Games", "percent": "20", "fixed_minor": 99},
    ],
}
RESELLER_RULE = MarkupRule(percent="7.25", fixed_minor=13)
WORDS = ("steam", "gift", "card", "cyber", "amazon", "stea", "xbox", "netflix", "games")


class Live:
    """A running gateway plus what the oracle needs to predict its answers."""

    def __init__(
        self, server: BackgroundServer, oracle: CatalogOracle, keys: dict[str, str]
    ) -> None:
        self.server = server
        self.oracle = oracle
        self.keys = keys
        self.client = httpx.Client(base_url=server.url, timeout=10)

    def get(self, path: str, params: dict[str, Any] | None = None, who: str = "list") -> Any:
        return self.client.get(
            path, params=params, headers={"Authorization": f"Bearer {self.keys[who]}"}
        )


async def published_products(
    adapters: dict[str, SupplierAdapter], redis: Any, key_prefix: str
) -> list[Product]:
    store = SnapshotStore(redis, RedisKeys(key_prefix))
    products: list[Product] = []
    for adapter in adapters.values():
        sync = CatalogSync(adapter, store, lock_seconds=30, interval_seconds=3600)
        assert (await sync.run()).outcome == "published"
        loaded = await store.load_current(adapter.name)
        assert loaded is not None
        products.extend(loaded.products())
    return products


@pytest.fixture
async def live(
    sandboxes: dict[str, Sandbox],
    adapters: dict[str, SupplierAdapter],
    redis: Any,
    key_prefix: str,
    redis_url: str,
    tmp_path: Path,
) -> Any:
    taxonomy_file = tmp_path / "taxonomy.toml"
    taxonomy_file.write_text(TAXONOMY)
    cfg = catalog_gateway_settings(
        sandboxes,
        key_prefix,
        redis_url,
        taxonomy_file=taxonomy_file,
        detail_ttl_seconds=0.3,
        detail_memory_ttl_seconds=0.15,
        **MARKUP,
    )
    products = await published_products(adapters, redis, key_prefix)
    matches = match_catalog(products, Matcher.from_files(None, None))
    oracle = CatalogOracle(
        products, price_list(cfg.catalog), Taxonomy.from_file(taxonomy_file), matches
    )
    keys = {
        "list": await reader_token(redis, key_prefix),
        "reseller": await reader_token(redis, key_prefix, markup=RESELLER_RULE),
    }
    with BackgroundServer(create_app(cfg)) as server:
        running = Live(server, oracle, keys)
        yield running
        running.client.close()


def drop_none(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


@st.composite
def list_params(draw: st.DrawFn, oracle: CatalogOracle) -> dict[str, Any]:
    def maybe(values: Any, rare: bool = True) -> Any:
        """``values`` drawn about one time in four (``rare``) or two, else absent:
        filters must be rare enough that their combinations still match products."""
        wanted = draw(st.booleans()) and (not rare or draw(st.booleans()))
        return draw(values) if wanted else None

    categories = sorted(oracle.category_labels.values())
    brands = sorted(oracle.brand_labels.values())
    countries = sorted({r.country for r in oracle.rows if r.country})
    currencies = sorted({r.currency for r in oracle.rows})
    params: dict[str, Any] = {
        "category": maybe(
            st.sampled_from(categories).map(lambda c: c.upper().replace(" ", "  "))
            | st.sampled_from([*categories, "No Such Shelf"])
        ),
        "brand": maybe(st.sampled_from([*brands, "steam", "Nobody"])),
        "supplier": maybe(st.sampled_from([GG, VO, "elsewhere"])),
        "country": maybe(st.sampled_from([*countries, "jpn", "ZZZ"])),
        "in_stock": maybe(st.sampled_from(["true", "false"])),
        "page": maybe(st.integers(1, 4)),
        "page_size": maybe(st.integers(1, 40), rare=False),
        "facets": maybe(st.sampled_from(["true", "false"]), rare=False),
        "q": maybe(st.sampled_from(WORDS)),
    }
    currency = maybe(st.sampled_from(currencies))
    if currency is not None:
        params["currency"] = currency
        if draw(st.booleans()):
            params["min_price"] = draw(st.integers(0, 6000))
        if draw(st.booleans()):
            params["max_price"] = draw(st.integers(params.get("min_price", 0), 20000))
    return drop_none(params)


def text_matches(live: Live, q: str, cache: dict[str, set[str]]) -> set[str]:
    """Every product the search matches for ``q`` alone (what the index's text rules
    select; the index tests check those against their own oracle)."""
    if q not in cache:
        found: set[str] = set()
        page = 1
        while True:
            data = live.get("/v1/search", {"q": q, "page_size": 100, "page": page}).json()
            found |= {p["id"] for p in data["data"]["products"]}
            if page * 100 >= data["data"]["total"]:
                break
            page += 1
        cache[q] = found
    return cache[q]


def all_pages(live: Live, params: dict[str, Any], who: str) -> list[str]:
    ids: list[str] = []
    page = 1
    while True:
        full = {**params, "page": page, "page_size": 100, "facets": "false"}
        data = live.get("/v1/products", full, who).json()["data"]
        ids += [p["id"] for p in data["products"]]
        if page * 100 >= data["total"]:
            return ids
        page += 1


async def test_list_filters_sort_facets_and_pages_agree_with_the_oracle(live: Live) -> None:
    """Random filter combinations (hypothesis), each asked in every order, as two
    resellers (one with its own markup): totals, pages, prices, labels and facets are
    what the oracle predicts."""
    oracle = live.oracle
    assert len(oracle.rows) > 150  # both suppliers, several pages of each
    matches: dict[str, set[str]] = {}
    seen: dict[str, int] = {"examples": 0, "non_empty": 0}

    def compare(params: dict[str, Any], who: str) -> None:
        rule = RESELLER_RULE if who == "reseller" else None
        response = live.get("/v1/products", params, who)
        assert response.status_code == 200, response.text
        body = response.json()
        schema.ProductPageResponse.model_validate(body)  # the documented shape
        data = body["data"]
        among = text_matches(live, params["q"], matches) if "q" in params else None
        rows = oracle.select(params, rule, among)
        page, size = int(params.get("page", 1)), int(params.get("page_size", 20))
        assert data["total"] == len(rows)
        assert (data["page"], data["page_size"]) == (page, size)
        got = [p["id"] for p in data["products"]]
        sort = params.get("sort")
        seen["examples"] += 1
        if len(got) > 1:  # a page whose order means something
            seen["non_empty"] += 1
            seen[sort or "default"] = seen.get(sort or "default", 0) + 1
        if "q" in params and sort is None:  # relevance: the oracle knows the set only
            everything = all_pages(live, params, who)
            assert sorted(everything) == sorted(r.id for r in rows)
            assert got == everything[(page - 1) * size : page * size]
        else:
            expected = oracle.ordered(rows, sort or "name", rule)
            assert got == [r.id for r in expected[(page - 1) * size : page * size]]
        by_id = {r.id: r for r in rows}
        for summary in data["products"]:
            row = by_id[summary["id"]]
            price = oracle.price(row, rule)
            assert summary["price"] == (
                None if price is None else {"amount": price, "currency": row.currency}
            )
            assert summary["category"] == row.category and summary["brand"] == row.brand
        if params.get("facets") == "true":
            assert data["facets"] == oracle.facets(rows)
        else:
            assert "facets" not in data

    @settings(
        max_examples=100,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(params=list_params(oracle), who=st.sampled_from(["list", "reseller"]))
    def check(params: dict[str, Any], who: str) -> None:
        for sort in (None, "name", "price_asc", "price_desc"):
            compare(drop_none({**params, "sort": sort}), who)

    check()
    # The property is only worth something if many examples returned real pages.
    assert seen["non_empty"] >= seen["examples"] // 3, seen
    assert all(seen.get(sort, 0) >= 10 for sort in ("name", "price_asc", "price_desc")), seen


async def test_search_requires_q_and_shares_the_filters(live: Live) -> None:
    found = live.get("/v1/search", {"q": "steam", "supplier": GG, "facets": "true"}).json()
    assert found["data"]["total"] > 0
    # Every match has an offer from GG; a canonical product also sold by VO counts
    # under both suppliers.
    assert found["data"]["facets"]["supplier"][GG] == found["data"]["total"]
    assert all(GG in p["suppliers"] for p in found["data"]["products"])
    assert "steam" in found["data"]["products"][0]["name"].lower() or any(
        "steam" in (p["brand"] or "").lower() for p in found["data"]["products"]
    )
    # Prefix and one typo in a longer word, case- and accent-insensitive.
    assert live.get("/v1/search", {"q": "AMAZ"}).json()["data"]["total"] > 0
    assert live.get("/v1/search", {"q": "amazn"}).json()["data"]["total"] > 0
    missing = live.get("/v1/search")
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "invalid_parameter"


BAD_QUERIES = [
    ("/v1/products", {"page": "0"}),
    ("/v1/products", {"page": "-3"}),
    ("/v1/products", {"page": "99999999"}),
    ("/v1/products", {"page_size": "0"}),
    ("/v1/products", {"page_size": "101"}),
    ("/v1/products", {"page_size": "ten"}),
    ("/v1/products", {"min_price": "100"}),  # no currency
    ("/v1/products", {"currency": "EUR", "min_price": "500", "max_price": "100"}),
    ("/v1/products", {"currency": "EUR", "max_price": "-1"}),
    ("/v1/products", {"currency": "EURO"}),
    ("/v1/products", {"country": "U5A"}),
    ("/v1/products", {"in_stock": "perhaps"}),
    ("/v1/products", {"sort": "cheapest"}),
    ("/v1/products", {"facets": "sometimes"}),
    ("/v1/products", {"colour": "red"}),
    ("/v1/products", {"q": "x" * 201}),
    ("/v1/search", {}),
    ("/v1/search", {"q": "   "}),
    ("/v1/search", {"q": "steam", "page_size": "1000"}),
]


async def test_bad_query_parameters_get_400_in_the_unified_shape(live: Live) -> None:
    for path, params in BAD_QUERIES:
        response = live.get(path, params)
        assert response.status_code == 400, (path, params, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_parameter", (path, params)
        assert error["message"] and error["request_id"] == response.headers["x-request-id"]
        assert "Traceback" not in response.text


async def test_categories_and_brands_are_merged_with_counts(live: Live) -> None:
    categories = live.get("/v1/categories").json()
    schema.NamedCountsResponse.model_validate(categories)
    assert categories["data"] == live.oracle.listing("category")
    names = {c["name"]: c["product_count"] for c in categories["data"]}
    # "Game Keys" (Gaming Goods) and "Gaming" (vouchers) are one category by the taxonomy;
    # "Gift Card" and "Gift Cards" too.
    assert "Game Keys" not in names and "Gaming" not in names and "Gift Card" not in names
    assert names["Games"] == sum(
        1 for r in live.oracle.rows if r.source_categories & {"Game Keys", "Gaming"}
    )
    by_supplier = {s for r in live.oracle.rows if r.category == "Gift Cards" for s in r.suppliers}
    assert by_supplier == {GG, VO}
    brands = live.get("/v1/brands").json()
    assert brands["data"] == live.oracle.listing("brand")


async def test_suppliers_report_their_sync_status(
    live: Live, sandboxes: dict[str, Sandbox]
) -> None:
    body = live.get("/v1/suppliers").json()
    schema.SupplierStatusResponse.model_validate(body)
    statuses = {s["name"]: s for s in body["data"]}
    assert set(statuses) == {GG, VO}
    for name, status in statuses.items():
        assert status["products"] == sandboxes[name].control.info["products"]
        assert status["version"] == status["served_version"] is not None
        assert status["stale"] is False and status["last_error"] is None
        assert status["last_success_at"] and status["pages"] > 1
        assert status["circuit"] == "closed"


def first_id(live: Live, supplier: str, offset: int = 0) -> str:
    """The ``offset``-th supplier product of ``supplier`` listed as itself (canonical
    products, which have no supplier detail of their own, are skipped)."""
    params = {"supplier": supplier, "page_size": 100}
    rows = live.get("/v1/products", params).json()["data"]["products"]
    return str([p["id"] for p in rows if p["id"].startswith(supplier + ":")][offset])


async def test_detail_is_cached_and_served_stale_while_the_supplier_is_down(
    live: Live, sandboxes: dict[str, Sandbox]
) -> None:
    box = sandboxes[VO]
    product_id = first_id(live, VO)
    before = box.requests
    first = live.get(f"/v1/products/{product_id}", who="reseller")
    assert first.status_code == 200, first.text
    detail = first.json()
    schema.ProductDetailResponse.model_validate(detail)
    data = detail["data"]
    assert data["id"] == product_id and data["stale"] is False
    assert data["terms"] and data["how_to_use"]  # only the detail endpoint has these
    fetched = box.requests
    assert fetched > before  # detail (and the supplier's stock check)
    # The detail's prices are the reseller's, as in the list it was found in.
    listed = live.get("/v1/products", {"supplier": VO, "page_size": 100}, "reseller").json()
    (row,) = [p for p in listed["data"]["products"] if p["id"] == product_id]
    assert row["price"] == data["price"]
    assert [v["price"] for v in row["variants"]] == [v["price"] for v in data["variants"]]

    again = live.get(f"/v1/products/{product_id}")
    assert again.status_code == 200 and box.requests == fetched  # in-process cache

    await asyncio.sleep(0.35)  # both cache layers' freshness has passed
    box.faults(error_rate=1.0)
    stale = live.get(f"/v1/products/{product_id}", who="reseller")
    assert stale.status_code == 200
    assert stale.json()["data"]["stale"] is True
    assert {k: v for k, v in stale.json()["data"].items() if k != "stale"} == {
        k: v for k, v in data.items() if k != "stale"
    }
    assert box.requests > fetched  # it did try the supplier first

    # Never fetched, supplier down: nothing to fall back on.
    other = first_id(live, VO, offset=1)
    down = live.get(f"/v1/products/{other}")
    assert down.status_code == 503
    assert down.json()["error"]["code"] == "supplier_unavailable"
    assert int(down.headers["retry-after"]) >= 1

    box.faults()
    await asyncio.sleep(0.05)
    healed = live.get(f"/v1/products/{other}")
    assert healed.status_code in (200, 503)  # the breaker may still be open for a moment


async def test_unknown_and_vanished_products_are_404(
    live: Live, sandboxes: dict[str, Sandbox], redis: Any, key_prefix: str
) -> None:
    before = sandboxes[GG].requests
    unknown = live.get("/v1/products/gaming_goods:no-such-product")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    assert live.get("/v1/products/not-even-a-supplier").status_code == 404
    assert sandboxes[GG].requests == before  # no upstream call for an unknown id

    # A product still in the snapshot that the supplier no longer has: 404 as well.
    vanished = await publish_with_ghost(redis, key_prefix)
    deadline = time.monotonic() + 10
    while live.get("/v1/products", {"q": "Ghost"}).json()["data"]["total"] == 0:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    gone = live.get(f"/v1/products/{vanished}")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "not_found"


async def publish_with_ghost(redis: Any, key_prefix: str) -> str:
    """Republish Gaming Goods' snapshot with one extra product the sandbox never had."""
    from gateway.catalog.sync import SupplierLock

    store = SnapshotStore(redis, RedisKeys(key_prefix))
    current = await store.load_current(GG)
    assert current is not None
    products = list(current.products())
    ghost = products[0].model_copy(
        update={
            "id": "gaming_goods:00000000-0000-4000-8000-000000000000",
            "upstream_id": "00000000-0000-4000-8000-000000000000",
            "name": "Ghost Product",
        }
    )
    token = await SupplierLock(store, GG, 30).acquire()
    assert token is not None
    writer = store.writer(GG, token, staging_ttl_seconds=60)
    await writer.add([*products, ghost])
    await writer.finish(pages=1)
    assert (await store.publish(GG, token)).published
    return ghost.id


def test_price_list_from_settings_rejects_a_bad_percent() -> None:
    from gateway.settings import CatalogSettings

    with pytest.raises(ValueError, match="markup_percent"):
        price_list(CatalogSettings(markup_percent="ten"))
    prices = price_list(CatalogSettings(**MARKUP))
    assert isinstance(prices, PriceList)
    assert prices.price(1000, VO, "Games") == 1035  # supplier rule beats category rule
    assert prices.price(1000, GG, "Games") == 1299
    assert prices.price(1000, GG, "DLC") == 1105
