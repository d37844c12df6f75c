"""Cached, pre-serialised pages: byte for byte what rendering afresh would send."""

from __future__ import annotations

import json

from starlette.responses import JSONResponse

from bench import synthetic
from gateway.catalog.index import CatalogIndex, SearchQuery
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


def test_pages_equal_fresh_rendering_for_every_price_basis() -> None:
    index = CatalogIndex.build(synthetic.products(2000, seed=3), synthetic.price_list())
    pages = PageCache(index, summary_entries=50)  # small: evictions happen
    queries = [
        SearchQuery(limit=20),
        SearchQuery(text="dark", limit=5, offset=5, facets=True),
        SearchQuery(sort="price_desc", currency="EUR", min_price=500, limit=30),
        SearchQuery(text="gift card", in_stock=True, limit=10, facets=True),
        SearchQuery(category="nothing here", limit=10, facets=True),
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
