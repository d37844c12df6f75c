"""Cached, pre-serialised pages: byte for byte what rendering afresh would send."""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Callable

import pytest
from starlette.responses import JSONResponse

from bench import synthetic
from gateway.catalog.index import CatalogIndex, SearchQuery
from gateway.catalog.matching import BrandTable, Matcher
from gateway.catalog.pages import PageCache, price_basis
from gateway.pricing import MarkupRule

RULE = MarkupRule(percent="12.5", fixed_minor=7)


def fresh(index: CatalogIndex, query: SearchQuery, page: int, rule: MarkupRule | None) -> bytes:
    result = index.search(query, rule)
    data = {
        "products": index.summaries(result.ids, rule),
        "total": result.total,
        "page": page,
        "page_size": query.limit,
    }
    if query.facets:
        data["facets"] = result.facets
    return bytes(JSONResponse({"data": data}).body)


@pytest.mark.parametrize("canonical", [False, True], ids=["supplier-rows", "canonical-rows"])
def test_pages_equal_fresh_rendering_for_every_price_basis(canonical: bool) -> None:
    matcher = Matcher(BrandTable.load()) if canonical else None
    index = CatalogIndex.build(
        synthetic.products(2000, seed=3), synthetic.price_list(), matcher=matcher
    )
    if canonical:  # the synthetic catalog sells shared cards: rows with several offers
        assert index.stats()["absorbed"] > 100
    pages = PageCache(index, summary_entries=50)  # small: evictions happen
    queries = [
        SearchQuery(limit=20),
        SearchQuery(text="dark", limit=5, offset=5, facets=True),
        SearchQuery(sort="price_desc", currency="EUR", min_price=500, limit=30),
        SearchQuery(text="gift card", in_stock=True, limit=10, facets=True),
        SearchQuery(category="nothing here", limit=10, facets=True),
        SearchQuery(text="steam wallet", supplier="vouchers", limit=10, facets=True),
        SearchQuery(sort="price_asc", currency="USD", limit=25, offset=25),
    ]
    for _ in range(2):  # the second round is served from the caches
        for query in queries:
            page = query.offset // max(query.limit, 1) + 1
            for rule in (None, RULE):
                body = pages.page(query, page, query.limit, rule)
                assert body == fresh(index, query, page, rule)
    # The two price bases really differ, and are not mixed up by the caches.
    listed = json.loads(pages.page(queries[0], 1, 20, None))["data"]["products"]
    marked = json.loads(pages.page(queries[0], 1, 20, RULE))["data"]["products"]
    assert [p["id"] for p in listed] == [p["id"] for p in marked]
    assert [p["price"] for p in listed] != [p["price"] for p in marked]


def test_answers_are_remembered_per_route_query_and_prices() -> None:
    index = CatalogIndex.build(synthetic.products(50), synthetic.price_list())
    pages = PageCache(index)
    basis = price_basis(RULE)
    assert pages.answered("/v1/search", b"q=a", basis) is None
    pages.remember("/v1/search", b"q=a", basis, b"body")
    assert pages.answered("/v1/search", b"q=a", basis) == b"body"
    assert pages.answered("/v1/search", b"q=a", None) is None
    assert pages.answered("/v1/products", b"q=a", basis) is None
    pages.remember("/v1/search", b"q=" + b"x" * 2000, None, b"body")  # too long: not kept
    assert pages.answered("/v1/search", b"q=" + b"x" * 2000, None) is None


def _fill(pages: PageCache, n: int, basis_rule: MarkupRule | None = None) -> None:
    """``n`` distinct long queries with no match, each key built afresh as the search
    route builds it (raw query bytes, route path, ``SearchQuery`` with its text)."""
    for i in range(n):
        text = f"zq{i:06d} " + "nothing matches these words " * 8
        route = "".join(["/v1/", "search"])
        query = SearchQuery(text=text, limit=20)
        body = pages.page(query, 1, 20, basis_rule)
        pages.remember(
            route, ("q=" + text.replace(" ", "+")).encode(), price_basis(basis_rule), body
        )


def _growth(run: Callable[[], object]) -> tuple[int, object]:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = run()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before, kept
    finally:
        tracemalloc.stop()


def test_page_bytes_bounds_the_memory_the_answer_caches_take() -> None:
    """40k distinct long queries (each answer ~60 bytes of body, each entry over 1 KB
    with its keys): the caches' memory stays within ``page_bytes``."""
    index = CatalogIndex.build(synthetic.products(200, seed=3), synthetic.price_list())
    bound = 4 * 1024 * 1024

    def fill() -> PageCache:
        pages = PageCache(index, page_bytes=bound, summary_entries=0)
        _fill(pages, 40_000)
        return pages

    used, _ = _growth(fill)
    assert used <= bound * 1.05 + 64 * 1024, f"{used / 2**20:.1f} MiB for a {bound >> 20} MiB bound"
    assert used >= bound * 0.6, "the caches hold much less than they may (estimate too high)"


def test_entry_cost_matches_measured_memory() -> None:
    """The estimate is an upper bound of what entries really take, and not a loose one:
    measured across cache sizes (dict tables grow in steps) and both price bases."""
    index = CatalogIndex.build(synthetic.products(200, seed=3), synthetic.price_list())
    for n, rule in ((300, None), (3_000, RULE), (20_000, None)):

        def fill(n: int = n, rule: MarkupRule | None = rule) -> PageCache:
            pages = PageCache(index, page_bytes=1 << 40, summary_entries=0)
            _fill(pages, n, rule)
            return pages

        used, pages = _growth(fill)
        assert isinstance(pages, PageCache)
        estimated = pages.estimated_bytes()
        assert 0.7 * estimated <= used <= estimated, (n, used, estimated)
