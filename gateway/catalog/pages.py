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

The answer caches are bounded by the memory their entries take, not by body bytes: an
answer with no match is ~60 bytes of body under a key (a long raw query, a
``SearchQuery`` with its strings) and the cache's own bookkeeping costing twenty times
that, so counting bodies let 8 MB of "bytes" take 60+ MB. ``entry_cost`` estimates an
entry's real size (key and body objects with ``sys.getsizeof``, plus ``ENTRY_OVERHEAD``
for the cache's dictionaries and order list, measured with ``tracemalloc``; a test keeps
the estimate honest), so ``page_bytes`` is what both answer caches hold together.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import fields, is_dataclass
from decimal import Decimal
from typing import Any

from cachetools import LRUCache

from gateway.catalog.index import CatalogIndex, SearchQuery
from gateway.pricing import MarkupRule

#: Summaries kept per state (about 500-700 bytes each as JSON).
SUMMARY_ENTRIES = 20_000
#: Memory of whole answers kept per state, both answer caches together (``entry_cost``).
PAGE_BYTES = 16 * 1024 * 1024
#: What one entry costs an ``LRUCache`` beyond its key and value objects: a slot in each
#: of its two dicts (data, sizes), in the order ``OrderedDict`` and its link, the size
#: int, the (body, cost) tuple, with dict tables at their usual fill. Measured with
#: tracemalloc on CPython 3.11 (``test_entry_cost_matches_measured_memory``).
ENTRY_OVERHEAD = 300

PriceBasis = tuple[Decimal, int] | None
_Entry = tuple[bytes, int]  # (body, entry_cost): the cache weighs entries by their cost


def _size(value: Any) -> int:
    """Bytes of ``value`` and what it holds (tuples, slotted dataclasses); shared
    singletons (None, booleans, small ints) cost nothing extra."""
    if value is None or isinstance(value, bool) or (isinstance(value, int) and -5 <= value < 257):
        return 0
    size = sys.getsizeof(value)
    if isinstance(value, tuple):
        size += sum(_size(item) for item in value)
    elif is_dataclass(value):
        size += sum(_size(getattr(value, f.name)) for f in fields(value))
    return size


def entry_cost(key: Any, body: bytes) -> int:
    """The memory one answer cache entry takes: key, body and the cache's bookkeeping."""
    return ENTRY_OVERHEAD + _size(key) + sys.getsizeof(body)


def _cost_of(entry: _Entry) -> int:
    return entry[1]


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
        show_suppliers: bool = True,
    ) -> None:
        self.index = index
        #: ``catalog.show_offer_suppliers``: false leaves supplier names out of rows and
        #: the supplier facet out of answers (the API refuses the supplier filter).
        self.show_suppliers = show_suppliers
        self._summaries: LRUCache[tuple[str, PriceBasis], bytes] = LRUCache(summary_entries)
        # The two share ``page_bytes``; each entry weighs what it costs (``entry_cost``).
        self._pages: LRUCache[tuple[SearchQuery, PriceBasis], _Entry] = LRUCache(
            page_bytes // 2, getsizeof=_cost_of
        )
        self._requests: LRUCache[tuple[str, bytes, PriceBasis], _Entry] = LRUCache(
            page_bytes // 2, getsizeof=_cost_of
        )

    def estimated_bytes(self) -> int:
        """What the two answer caches hold, by ``entry_cost`` (at most ``page_bytes``)."""
        return int(self._pages.currsize + self._requests.currsize)

    def answered(self, route: str, query_string: bytes, basis: PriceBasis) -> bytes | None:
        """The body already sent for this exact request (route, raw query, prices).

        Indexed rather than ``get``: cachetools' ``get`` asks ``in`` first and then
        indexes, two more Python calls and key hashes on every cached answer."""
        try:
            return self._requests[(route, query_string, basis)][0]
        except KeyError:
            return None

    def remember(self, route: str, query_string: bytes, basis: PriceBasis, body: bytes) -> None:
        """Keep a successful answer for :meth:`answered` (errors are never kept)."""
        if len(query_string) <= 1024:
            self._keep(self._requests, (route, query_string, basis), body)

    def page(self, query: SearchQuery, page: int, page_size: int, rule: MarkupRule | None) -> bytes:
        """The body of ``{"data": {"products", "total", "page", "page_size", "facets"?}}``
        for ``query`` (whose offset/limit are the page's)."""
        basis = price_basis(rule)
        key = (query, basis)
        entry = self._pages.get(key)
        if entry is not None:
            return entry[0]
        result = self.index.search(query, rule)
        parts = [
            b'{"data":{"products":[',
            b",".join(self._rendered(result.ids, rule, basis)),
            b'],"total":%d,"page":%d,"page_size":%d' % (result.total, page, page_size),
        ]
        if query.facets:
            facets = result.facets
            if facets is not None and not self.show_suppliers:
                facets = {name: counts for name, counts in facets.items() if name != "supplier"}
            parts += [b',"facets":', _dumps(facets)]
        parts.append(b"}}")
        body = b"".join(parts)
        self._keep(self._pages, key, body)
        return body

    @staticmethod
    def _keep(cache: LRUCache[Any, _Entry], key: Any, body: bytes) -> None:
        cost = entry_cost(key, body)
        if cost <= cache.maxsize // 64:  # one huge page must not evict all the others
            cache[key] = (body, cost)

    def _rendered(
        self, ids: Sequence[str], rule: MarkupRule | None, basis: PriceBasis
    ) -> list[bytes]:
        cache = self._summaries
        out: list[bytes | None] = [cache.get((pid, basis)) for pid in ids]
        missing = [pid for pid, got in zip(ids, out, strict=True) if got is None]
        if missing:
            summaries = self.index.summaries(missing, rule)
            if not self.show_suppliers:
                for summary in summaries:
                    summary["supplier"], summary["suppliers"] = None, []
            fresh = {s["id"]: _dumps(s) for s in summaries}
            for i, pid in enumerate(ids):
                if out[i] is None:
                    out[i] = fresh[pid]
                    if cache.maxsize:  # 0: caching off (benchmarks of the miss path)
                        cache[(pid, basis)] = fresh[pid]
        return out  # type: ignore[return-value]
