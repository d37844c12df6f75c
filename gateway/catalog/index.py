"""The in-memory catalog index: search, filters, sorts, facets and pages over one snapshot.

Built once per snapshot (:meth:`CatalogIndex.build`) and then read-only, so any number
of requests may search it concurrently and a new snapshot is swapped in by replacing the
object.

Documents are numbered in name order (folded name, then id). That one choice makes most
orders free: a set of documents as a bitmap (:mod:`gateway.catalog.bitmaps`) lists its
members in name order, so "sort by name" and the tie-break of every other sort are the
bitmap's lowest bits. Relevance is computed per group, not per document: the documents
of a query fall into a few groups of equal score (every word's best way of matching,
see :mod:`gateway.catalog.fulltext`), each group a bitmap built with a handful of big-int
operations; a page is the lowest bits of the best groups. No per-document loop runs for
a text query, whatever the number of matches.

Prices: without a reseller rule a product's price is its cheapest variant's cost under
the price list's rule for its supplier and (unified) category, computed at build time.
With a reseller rule, one rule prices everything, and filters and sorts work on cost
with the bounds mapped through the rule, which gives exactly the brute-force result
(see :mod:`gateway.catalog.price_order` for mixed currencies). A canonical product's row
(:mod:`gateway.catalog.canonical`) brings its list price computed (each offer priced by
its own supplier's rule) and its cheapest cost, so both orders hold for it too.
"""

from __future__ import annotations

import heapq
import marshal
import math
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.models import Product
from gateway.catalog import canonical
from gateway.catalog import records as rec
from gateway.catalog.bitmaps import Bitmap, from_ids, membership, positions, select
from gateway.catalog.fields import Field
from gateway.catalog.fulltext import TextIndex, TextIndexBuilder
from gateway.catalog.matching import Matcher
from gateway.catalog.offers import OfferBook
from gateway.catalog.pacing import checkpoint, drained, release
from gateway.catalog.price_order import UNPRICED, PriceOrder
from gateway.catalog.records import apply_rule
from gateway.catalog.staging import Staged, Taxonomy, same_category, stage
from gateway.catalog.text import tokens
from gateway.pricing import MarkupRule, PriceList

SORTS = ("relevance", "price_asc", "price_desc", "name")
FACETS = ("category", "brand", "supplier", "country")


class QueryError(ValueError):
    """A search query the index cannot answer (the API turns it into a 400)."""


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What to find, and which page of it.

    * ``text``: every word must match (name, brand, category, sub-category or short
      description; case and accents ignored), the last one also as a prefix, words of
      5-32 characters also with one typo. Text without any word ("", "!!") is no text.
    * ``category``, ``brand``: ignore case and spacing ("gift  cards" = "GiftCards");
      ``supplier``, ``country`` (alpha-3), ``currency``: exact, as stored.
    * ``min_price``, ``max_price``: inclusive, in minor units of ``currency``, which
      they require (prices are never converted); products without a price never match.
    * ``in_stock``: True for available products with unknown or positive stock.
    * ``sort``: ``relevance`` (default with text), ``name`` (default without; relevance
      without text is name order), ``price_asc``/``price_desc`` (by currency code, then
      price, then name; products without a price last). Ties always fall back to name,
      then id.
    * ``offset``/``limit``: the page; ``facets``: counts per category, brand, supplier
      and country over all matches (largest first).
    """

    text: str | None = None
    category: str | None = None
    brand: str | None = None
    supplier: str | None = None
    country: str | None = None
    currency: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    in_stock: bool | None = None
    sort: str | None = None
    offset: int = 0
    limit: int = 20
    facets: bool = False


@dataclass(frozen=True, slots=True)
class SearchResult:
    total: int
    ids: list[str]
    facets: dict[str, dict[str, int]] | None = None


@dataclass(frozen=True, slots=True)
class IndexTuning:
    """Knobs that trade memory for speed; the defaults suit 1k to 1M products. Every
    setting gives the same results (the tests check the extremes against an oracle)."""

    dense_fraction: float = 1 / 1024
    """A document set is a bitmap (N/8 bytes) when it holds at least this fraction of
    the catalog (and ``dense_min``), else a sorted run (4 bytes a member)."""
    dense_min: int = 64
    prefix_budget: int = 1500
    """Prefixes whose words would cost more than this (≈ sparse members) to OR together
    at query time get their union precomputed."""
    sliced_min: int = 4096
    """Currencies with at least this many priced products answer price ranges with
    bit-sliced ranks; smaller ones scatter their run."""
    walk: float = 1.0
    """Price-sorted pages walk the global price order when that looks cheaper than
    extracting and heap-selecting the matches; 0 forces the walk, inf forbids it."""
    facet_extract: float = 1.0
    """Facets count the matched documents one by one when that looks cheaper than a
    popcount per value; 0 forces counting documents, inf forbids it."""

    def dense_threshold(self, n_docs: int) -> int:
        return max(self.dense_min, math.ceil(n_docs * self.dense_fraction))


class CatalogIndex:
    __slots__ = (
        "_absorbed",
        "_all",
        "_cost",
        "_cost_order",
        "_doc_of",
        "_facet_cost",
        "_fields",
        "_ids",
        "_in_stock",
        "_list_order",
        "_list_price",
        "_n",
        "_offers",
        "_out_of_stock",
        "_prices",
        "_records",
        "_supplier_products",
        "_text",
        "_tuning",
    )

    # -- build -------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        products: Iterable[Product],
        prices: PriceList,
        taxonomy: Taxonomy = same_category,
        *,
        tuning: IndexTuning | None = None,
        matcher: Matcher | None = None,
    ) -> CatalogIndex:
        """Index ``products`` (any iterable: a generator keeps only one ``Product`` alive
        at a time). ``taxonomy(supplier, category)`` maps a supplier's category to the
        unified one (called once per distinct pair). A product id seen twice keeps its
        last version. With ``matcher``, documents are canonical products: supplier
        products whose variants all matched are listed through their canonical product
        (``gateway.catalog.canonical``), and still answer by their own id."""
        staged = stage(products, taxonomy, matcher, prices if matcher is not None else None)
        return cls(staged, prices, tuning or IndexTuning())

    def __init__(self, staged: Staged, prices: PriceList, tuning: IndexTuning) -> None:
        """Use :meth:`build`."""
        n = len(staged.records)
        self._n = n
        self._tuning = tuning
        self._prices = prices
        self._records = staged.records
        self._absorbed = staged.absorbed
        self._offers = staged.offers
        self._supplier_products = dict(sorted(staged.supplier_products.items()))
        self._ids: list[str] = [pid for _, pid in staged.sort_keys]
        self._all: Bitmap = (1 << n) - 1
        self._doc_of = {pid: d for d, pid in enumerate(self._ids)}
        dense_min = tuning.dense_threshold(n)
        fields = {
            "category": Field("category", staged.categories, merge=True, dense_min=dense_min),
            "brand": Field("brand", staged.brands, merge=True, dense_min=dense_min),
            "supplier": Field(
                "supplier",
                staged.suppliers,
                merge=False,
                dense_min=dense_min,
                more=staged.more_suppliers,
            ),
            "country": Field("country", staged.countries, merge=False, dense_min=dense_min),
            "currency": Field("currency", staged.currencies, merge=False, dense_min=dense_min),
        }
        self._fields = fields
        self._facet_cost = {name: fields[name].scan_cost(n) for name in FACETS}
        self._in_stock = from_ids(d for d, stocked in enumerate(staged.in_stock) if stocked)
        self._out_of_stock = self._all ^ self._in_stock

        category, supplier = fields["category"], fields["supplier"]
        # arrays, not lists: 8 bytes a product and nothing for the garbage collector
        self._cost = array("q", (UNPRICED if c is None else c for c in staged.costs))
        self._list_price = array("q", self._cost)
        priced: dict[tuple[int, int], int] = {}  # (rule, cost) -> price, for this build
        fixed_prices = staged.list_prices
        for d, cost in enumerate(self._cost):
            if not d & 255:
                checkpoint()
            fixed = fixed_prices[d]
            if fixed is not None:  # a canonical row: each offer priced by its own rule
                self._list_price[d] = fixed
            elif cost != UNPRICED:
                rule = prices.rule_for(supplier.label_of(d) or "", category.label_of(d))
                key = (id(rule), cost)
                price = priced.get(key)
                if price is None:
                    price = priced[key] = rule.apply(cost)
                self._list_price[d] = price
        del priced
        self._list_order = PriceOrder(self._list_price, staged.currencies, tuning.sliced_min)
        self._cost_order = PriceOrder(self._cost, staged.currencies, tuning.sliced_min)

        builder = TextIndexBuilder()
        label_tokens: dict[str | None, list[str]] = {}

        def cached(label: str | None) -> list[str]:
            found = label_tokens.get(label)
            if found is None:
                found = label_tokens[label] = tokens(label)
            return found

        brand = fields["brand"]
        for d in range(n):
            if not d & 31:
                checkpoint()
            r = self._record(d)
            other = [
                *cached(brand.label_of(d)),
                *cached(category.label_of(d)),
                *cached(r[rec.R_SUB]),
                *tokens(r[rec.R_SHORT]),
            ]
            name_tokens = tokens(r[rec.R_NAME])
            if len(r) > canonical.R_ALIASES:  # a canonical row: found by its offers' names
                for alias in r[canonical.R_ALIASES]:
                    name_tokens += tokens(alias)
            builder.add(d, name_tokens, other)
        self._text: TextIndex = builder.finish(n, dense_min, tuning.prefix_budget)
        for column in staged.columns():  # build-time only: freed in slices
            if column is not self._records:
                release(column)

    # -- reading -----------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    def teardown(self, size: int) -> Iterator[None]:
        """Empty the containers that hold most of this index's objects, ``size`` items
        at a time, yielding after each slice; the index is unusable afterwards.

        For the service, once nothing else reads a replaced index: dropped whole, a
        100k-product index frees millions of objects in one C-level cascade (~50 ms
        with the GIL held, measured: records 10, offer book 19, absorbed products 13,
        ids 6), a stall for every request in flight."""
        containers: list[list[Any] | dict[Any, Any]] = [
            self._records,
            self._absorbed,
            self._doc_of,
            self._ids,
            *self._offers.containers(),
        ]
        for container in containers:
            yield from drained(container, size)

    @property
    def offers(self) -> OfferBook:
        """The offer book built with this index (empty without a matcher)."""
        return self._offers

    def product(self, product_id: str) -> Product | None:
        """The full unified supplier product, listed or absorbed into a canonical product
        (listed ones with the merged category and brand labels the list endpoints show,
        absorbed ones with their own unified labels); None for a canonical id."""
        d = self._doc_of.get(product_id)
        if d is None:
            stored = self._absorbed.get(product_id)
            if stored is None:
                return None
            raw, (supplier, brand, category, country, currency) = stored
            return rec.to_product(
                marshal.loads(raw),
                supplier=supplier,
                brand=brand,
                category=category,
                country=country,
                currency=currency,
            )
        record = self._record(d)
        if canonical.is_canonical_record(record):
            return None
        return rec.to_product(record, **self._labels(d))

    def canonical_row(self, product_id: str) -> tuple[rec.Record, dict[str, Any]] | None:
        """A canonical product's record and labels (``gateway.catalog.canonical``), or
        None when ``product_id`` is not one."""
        if not canonical.is_canonical_product_id(product_id):
            return None
        d = self._doc_of.get(product_id)
        if d is None:
            return None
        return self._record(d), self._labels(d)

    def summaries(
        self, ids: Sequence[str], reseller_rule: MarkupRule | None = None
    ) -> list[dict[str, Any]]:
        """JSON-ready summaries of ``ids`` in order (ids not in the index are skipped),
        priced for the reseller (``reseller_rule``) or at list price."""
        out = []
        for product_id in ids:
            d = self._doc_of.get(product_id)
            if d is None:
                continue
            labels = self._labels(d)
            cost = self._cost[d]
            record = self._record(d)
            if canonical.is_canonical_record(record):
                price = None
                if cost != UNPRICED:
                    price = (
                        self._list_price[d]
                        if reseller_rule is None
                        else apply_rule(reseller_rule, cost)
                    )
                out.append(canonical.summary(record, price=price, rule=reseller_rule, **labels))
                continue
            if reseller_rule is None:
                rule = self._prices.rule_for(labels["supplier"], labels["category"])
                price = None if cost == UNPRICED else self._list_price[d]
            else:
                rule = reseller_rule
                price = None if cost == UNPRICED else apply_rule(rule, cost)
            out.append(rec.summary(record, price=price, rule=rule, **labels))
        return out

    def _record(self, d: int) -> rec.Record:
        record: rec.Record = marshal.loads(self._records[d])
        return record

    def categories(self) -> list[tuple[str, int]]:
        """Unified category labels with their product counts, in label order."""
        return self._fields["category"].listing()

    def brands(self) -> list[tuple[str, int]]:
        return self._fields["brand"].listing()

    def suppliers(self) -> dict[str, int]:
        """Supplier products served per supplier, listed as themselves or through their
        canonical product (the supplier facet counts listing rows instead)."""
        return dict(self._supplier_products)

    def supplier_products(self) -> int:
        """Supplier products served (``len(index)`` counts listing rows)."""
        return sum(self._supplier_products.values())

    def _labels(self, d: int) -> dict[str, Any]:
        f = self._fields
        return {
            "supplier": f["supplier"].label_of(d),
            "brand": f["brand"].label_of(d),
            "category": f["category"].label_of(d),
            "country": f["country"].label_of(d),
            "currency": f["currency"].label_of(d),
        }

    # -- search ------------------------------------------------------------------------

    def search(self, query: SearchQuery, reseller_rule: MarkupRule | None = None) -> SearchResult:
        """One page of the products matching ``query``, with the total and, if asked,
        facet counts over every match (see the module docstring for the ordering)."""
        _validate(query)
        words = tokens(query.text)
        sort = query.sort or ("relevance" if words else "name")
        mask = self._filter(query, reseller_rule)
        groups: list[tuple[int, Bitmap]]
        if mask == 0:
            groups = []
        elif not words:
            groups = [(0, self._all if mask is None else mask)]
        elif sort == "relevance":
            groups = self._scored(words, mask)
        else:
            matched = self._matched(words, mask)
            groups = [(0, matched)] if matched else []
        # One popcount for the total: popcounts walk the whole int, ORs are cheaper.
        everything = mask is None and not words
        matched = self._all if everything else _union(groups)
        total = self._n if everything else matched.bit_count()
        docs = self._page(query, sort, groups, matched, total, everything, reseller_rule)
        ids = [self._ids[d] for d in docs]
        facets = None
        if query.facets:
            facets = self._facets(None if everything else matched, total)
        return SearchResult(total=total, ids=ids, facets=facets)

    def _filter(self, query: SearchQuery, rule: MarkupRule | None) -> Bitmap | None:
        """The documents the filters allow (None: no filter, every document)."""
        mask: Bitmap | None = None
        for name in ("category", "brand", "supplier", "country", "currency"):
            value = getattr(query, name)
            if value is None:
                continue
            f = self._fields[name]
            vid = f.value_id(value)
            if vid is None:
                return 0
            bits = f.bits(vid)
            mask = bits if mask is None else mask & bits
            if not mask:
                return 0
        if query.in_stock is not None:
            bits = self._in_stock if query.in_stock else self._out_of_stock
            mask = bits if mask is None else mask & bits
        if query.min_price is not None or query.max_price is not None:
            assert query.currency is not None  # _validate
            bits = self._price_range(query.currency, query.min_price, query.max_price, rule)
            mask = bits if mask is None else mask & bits
        return mask

    def _price_range(
        self, currency: str, lo: int | None, hi: int | None, rule: MarkupRule | None
    ) -> Bitmap:
        if rule is None:
            return self._list_order.between(currency, lo, hi)
        return self._cost_order.between_prices(currency, lo, hi, rule)

    def _scored(self, words: list[str], mask: Bitmap | None) -> list[tuple[int, Bitmap]]:
        """Matching documents grouped by score, best first, each group a bitmap."""
        text = self._text
        last = len(words) - 1
        groups: dict[int, Bitmap] | None = None
        for i, word in enumerate(words):
            classes = _best_class(text.word_sets(word, i == last))
            if groups is None:
                groups = {}
                for weight, bits in classes:
                    hit = bits if mask is None else bits & mask
                    if hit:
                        groups[weight] = hit
            else:
                combined: dict[int, Bitmap] = {}
                for score, group in groups.items():
                    for weight, bits in classes:
                        hit = group & bits
                        if hit:
                            combined[score + weight] = combined.get(score + weight, 0) | hit
                groups = combined
            if not groups:
                return []
        assert groups is not None
        return sorted(groups.items(), reverse=True)

    def _matched(self, words: list[str], mask: Bitmap | None) -> Bitmap:
        """Every document matching all words, unscored (for the non-relevance sorts)."""
        text = self._text
        last = len(words) - 1
        matched = mask
        for i, word in enumerate(words):
            bits = 0
            for _, b in text.word_sets(word, i == last):
                bits |= b
            matched = bits if matched is None else matched & bits
            if not matched:
                return 0
        return matched or 0

    def _page(
        self,
        query: SearchQuery,
        sort: str,
        groups: list[tuple[int, Bitmap]],
        matched: Bitmap,
        total: int,
        everything: bool,
        rule: MarkupRule | None,
    ) -> list[int]:
        """The page's documents (``everything``: no filter and no text: every document
        matches, in document order)."""
        offset, limit = query.offset, query.limit
        if limit == 0 or offset >= total:
            return []
        if sort in ("price_asc", "price_desc"):
            order = self._list_order if rule is None else self._cost_order
            return self._by_price(order, sort == "price_asc", matched, total, query)
        if everything:
            return list(range(offset, min(offset + limit, self._n)))
        # relevance (groups in score order) or name (a single group)
        out: list[int] = []
        skip = offset
        for _, bits in groups:
            if skip:
                count = bits.bit_count()  # only groups a deep page skips are counted
                if skip >= count:
                    skip -= count
                    continue
            out.extend(select(bits, skip, limit - len(out)))
            skip = 0
            if len(out) == limit:
                break
        return out

    def _by_price(
        self, order: PriceOrder, ascending: bool, bits: Bitmap, total: int, query: SearchQuery
    ) -> list[int]:
        offset, limit, need = query.offset, query.limit, query.offset + query.limit
        perm = order.perm_asc if ascending else order.perm_desc
        if total == self._n:
            return list(perm[offset:need])
        spans = [(0, self._n)]
        if query.currency is not None:  # its priced run, then the unpriced products
            start, end = order.segments.get(query.currency, (0, 0))
            spans = [(start, end), (order.unpriced_start, self._n)]
        walk_steps = need * sum(end - start for start, end in spans) / total
        if walk_steps * self._tuning.walk > 3 * total:
            rank = order.rank_asc if ascending else order.rank_desc
            return heapq.nsmallest(need, positions(bits), key=rank.__getitem__)[offset:]
        raw = membership(bits)
        size = len(raw)
        out: list[int] = []
        seen = 0
        for start, end in spans:
            for d in memoryview(perm)[start:end]:
                i = d >> 3
                if i < size and raw[i] >> (d & 7) & 1:
                    if seen >= offset:
                        out.append(d)
                        if len(out) == limit:
                            return out
                    seen += 1
        return out

    def _facets(self, bits: Bitmap | None, total: int) -> dict[str, dict[str, int]]:
        fields = self._fields
        if bits is None:
            return {name: fields[name].facet_all() for name in FACETS}
        ids: list[int] | None = None
        out = {}
        for name in FACETS:
            if 3 * total * self._tuning.facet_extract <= self._facet_cost[name]:
                if ids is None:
                    ids = positions(bits)
                out[name] = fields[name].facet_from_ids(ids)
            else:
                out[name] = fields[name].facet_from_bits(bits)
        return out

    def stats(self) -> dict[str, int]:
        """Sizes for benchmarks and logs."""
        return {
            "products": self._n,
            "supplier_products": self.supplier_products(),
            "absorbed": len(self._absorbed),
            "canonical_variants": len(self._offers),
            "vocabulary": len(self._text.vocab),
            "prefix_unions": len(self._text.prefixes),
            "typo_keys": len(self._text.del_hashes),
            "text_bytes": self._text.nbytes(),
        }


def _validate(query: SearchQuery) -> None:
    if query.sort is not None and query.sort not in SORTS:
        raise QueryError(f"sort must be one of {', '.join(SORTS)}")
    if query.offset < 0:
        raise QueryError("offset cannot be negative")
    if query.limit < 0:
        raise QueryError("limit cannot be negative")
    if (query.min_price is not None or query.max_price is not None) and not query.currency:
        raise QueryError("min_price and max_price need a currency: prices are not converted")


def _best_class(sets: list[tuple[int, Bitmap]]) -> list[tuple[int, Bitmap]]:
    """Each document under its best weight only: the sets made disjoint, heaviest first."""
    seen = 0
    out = []
    for weight, bits in sets:
        only = bits ^ (bits & seen) if seen else bits
        if only:
            out.append((weight, only))
            seen |= only
    return out


def _union(groups: list[tuple[int, Bitmap]]) -> Bitmap:
    if len(groups) == 1:
        return groups[0][1]
    acc = 0
    for _, bits in groups:
        acc |= bits
    return acc
