"""Serialised list/search pages, cached per served snapshot.

Searching is the cheap part of answering ``/v1/search``: rendering twenty summaries with
prices and turning them into JSON costs several times more (about 120 + 160 µs against
60 µs at 100k products). A snapshot is immutable, so both are cached for as long as it
is served, in two bounded LRUs that live in the ``CatalogState`` and go with it when a
new snapshot is swapped in (no invalidation to get wrong):

* a product's summary as JSON bytes, per price basis (the list price, or one reseller
  markup): a page made of products already rendered is one ``bytes.join``;
* whole answers by (query, price basis), and by (route, raw query string, price basis)
  in front of that: a repeated request (the common case: resellers poll the same
  listings) costs one dictionary look-up, not even the parsing of its parameters.

The bytes are exactly what ``JSONResponse`` would send for the same dict (compact
separators, UTF-8, no ASCII escaping): a test compares them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from cachetools import LRUCache

from gateway.catalog.index import CatalogIndex, SearchQuery
from gateway.pricing import MarkupRule

#: Summaries kept per state (about 500-700 bytes each as JSON).
SUMMARY_ENTRIES = 20_000
#: Bytes of whole answers kept per state, in each of the two answer caches.
PAGE_BYTES = 8 * 1024 * 1024

PriceBasis = tuple[Decimal, int] | None


def _dumps(value: Any) -> bytes:
    return json.dumps(
        value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


def price_basis(rule: MarkupRule | None) -> PriceBasis:
    """What a summary's prices depend on: nothing but the reseller rule's numbers (its
    supplier/category fields do not apply to a reseller's own rule)."""
    return None if rule is None else (rule.percent, rule.fixed_minor)


class PageCache:
    def __init__(
        self,
        index: CatalogIndex,
        *,
        summary_entries: int = SUMMARY_ENTRIES,
        page_bytes: int = PAGE_BYTES,
    ) -> None:
        self.index = index
        self._summaries: LRUCache[tuple[str, PriceBasis], bytes] = LRUCache(summary_entries)
        self._pages: LRUCache[tuple[SearchQuery, PriceBasis], bytes] = LRUCache(
            page_bytes, getsizeof=len
        )
        self._requests: LRUCache[tuple[str, bytes, PriceBasis], bytes] = LRUCache(
            page_bytes, getsizeof=len
        )

    def answered(self, route: str, query_string: bytes, basis: PriceBasis) -> bytes | None:
        """The body already sent for this exact request (route, raw query, prices)."""
        return self._requests.get((route, query_string, basis))

    def remember(self, route: str, query_string: bytes, basis: PriceBasis, body: bytes) -> None:
        """Keep a successful answer for :meth:`answered` (errors are never kept)."""
        if len(query_string) <= 1024 and len(body) <= self._requests.maxsize // 64:
            self._requests[(route, query_string, basis)] = body

    def page(self, query: SearchQuery, page: int, page_size: int, rule: MarkupRule | None) -> bytes:
        """The body of ``{"data": {"products", "total", "page", "page_size", "facets"?}}``
        for ``query`` (whose offset/limit are the page's)."""
        basis = price_basis(rule)
        key = (query, basis)
        body = self._pages.get(key)
        if body is not None:
            return body
        result = self.index.search(query, rule)
        parts = [
            b'{"data":{"products":[',
            b",".join(self._rendered(result.ids, rule, basis)),
            b'],"total":%d,"page":%d,"page_size":%d' % (result.total, page, page_size),
        ]
        if query.facets:
            parts += [b',"facets":', _dumps(result.facets)]
        parts.append(b"}}")
        body = b"".join(parts)
        if len(body) <= self._pages.maxsize // 64:  # one huge page must not evict all
            self._pages[key] = body
        return body

    def _rendered(
        self, ids: Sequence[str], rule: MarkupRule | None, basis: PriceBasis
    ) -> list[bytes]:
        cache = self._summaries
        out: list[bytes | None] = [cache.get((pid, basis)) for pid in ids]
        missing = [pid for pid, got in zip(ids, out, strict=True) if got is None]
        if missing:
            fresh = {s["id"]: _dumps(s) for s in self.index.summaries(missing, rule)}
            for i, pid in enumerate(ids):
                if out[i] is None:
                    out[i] = fresh[pid]
                    if cache.maxsize:  # 0: caching off (benchmarks of the miss path)
                        cache[(pid, basis)] = fresh[pid]
        return out  # type: ignore[return-value]
