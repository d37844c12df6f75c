"""Reading products into build-time columns, in document order.

The index numbers documents by name (folded name, then id), which needs every product
before any number is known: this pass streams the products once, keeps each as a
compact record plus the few columns the index is built from, and sorts the columns into
document order. Only one ``Product`` is alive at a time when ``products`` is a generator.

A record is kept marshalled (one ``bytes`` object, not a tuple of tuples and strings):
a fifth of the small objects, and, above all, memory that is given back to the system
when the index is replaced. The interpreter's small-object allocator returns an arena
(1 MB) only once every object in it is freed; 100k records' worth of tuples freed while
the next index was being built left every arena of the old one pinned by a few new
objects (+85 MB of RSS after a swap at 100k). ``bytes`` of a few hundred bytes come
from the C heap, which ``malloc_trim`` gives back page by page.

With a matcher (the service always passes one), the pass also records every supplier
variant's match and, once the stream ends, replaces the supplier products whose variants
all matched by the canonical rows of ``gateway.catalog.canonical``: documents are then
listing rows (canonical products and unmatched or partly matched supplier products).
The replaced ("absorbed") products are kept aside, marshalled with their labels, so that
their ids still answer (``CatalogIndex.product``) and orders can still name them.
"""

from __future__ import annotations

import marshal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from adapters.models import Product
from gateway.catalog import canonical
from gateway.catalog.matching import Matcher
from gateway.catalog.offers import OfferBook
from gateway.catalog.pacing import checkpoint, sorted_order
from gateway.catalog.records import R_ID, R_NAME, Compactor, in_stock
from gateway.catalog.text import fold
from gateway.pricing import PriceList

Taxonomy = Callable[[str, str | None], str | None]

_UNSET: Any = object()


def same_category(supplier: str, category: str | None) -> str | None:
    """The default taxonomy: every supplier's category is already the unified one."""
    return category


@dataclass(slots=True)
class Staged:
    """Build-time columns, one entry per document, and what the listing set aside."""

    records: list[bytes] = field(default_factory=list)  # marshal.dumps(Record)
    in_stock: list[bool] = field(default_factory=list)
    sort_keys: list[tuple[str, str]] = field(default_factory=list)
    suppliers: list[str] = field(default_factory=list)  # a canonical row's first supplier
    brands: list[str | None] = field(default_factory=list)
    categories: list[str | None] = field(default_factory=list)  # after the taxonomy
    countries: list[str | None] = field(default_factory=list)
    currencies: list[str] = field(default_factory=list)
    costs: list[int | None] = field(default_factory=list)
    #: A canonical row's list price (each offer priced by its own rule); None: the
    #: index prices the document's cost by its supplier's and category's rule.
    list_prices: list[int | None] = field(default_factory=list)
    #: document -> every supplier of a canonical row with more than one.
    more_suppliers: dict[int, tuple[str, ...]] = field(default_factory=dict)
    #: absorbed supplier product id -> (its marshalled record, its labels).
    absorbed: dict[str, tuple[bytes, tuple[Any, ...]]] = field(default_factory=dict)
    offers: OfferBook = field(default_factory=OfferBook)
    #: supplier -> supplier products staged (listed or absorbed).
    supplier_products: dict[str, int] = field(default_factory=dict)

    def columns(self) -> tuple[list[Any], ...]:
        return tuple(getattr(self, name) for name in _COLUMNS)

    def permuted(self, order: list[int]) -> Staged:
        out = Staged(
            absorbed=self.absorbed, offers=self.offers, supplier_products=self.supplier_products
        )
        for name in _COLUMNS:
            setattr(out, name, _permuted(getattr(self, name), order))
        return out


def _permuted(column: list[Any], order: list[int]) -> list[Any]:
    out: list[Any] = []
    for start in range(0, len(order), _SLICE):
        out.extend([column[i] for i in order[start : start + _SLICE]])
        checkpoint()
    return out


_SLICE = 2048  # items copied between two checkpoints

_COLUMNS = (
    "records",
    "in_stock",
    "sort_keys",
    "suppliers",
    "brands",
    "categories",
    "countries",
    "currencies",
    "costs",
    "list_prices",
)


def stage(
    products: Iterable[Product],
    taxonomy: Taxonomy,
    matcher: Matcher | None = None,
    prices: PriceList | None = None,
) -> Staged:
    """The products as columns in document order. ``taxonomy`` is called once per
    distinct (supplier, category) pair; a product id seen twice keeps its last version.
    With ``matcher`` (and ``prices``, which price the canonical rows), matched supplier
    products are replaced by their canonical products (module docstring)."""
    staged = Staged()
    columns = staged.columns()
    records, sort_keys = staged.records, staged.sort_keys
    compactor = Compactor()
    shared = compactor.share
    position: dict[str, int] = {}
    mapped: dict[tuple[str, str | None], str | None] = {}
    collected = canonical.Collected(matcher) if matcher is not None else None
    for product in products:
        checkpoint()
        record, cost = compactor.record(product)
        if collected is not None:
            collected.see(product)
        pair = (product.supplier, product.category)
        unified = mapped.get(pair, _UNSET)
        if unified is _UNSET:
            unified = mapped[pair] = shared(taxonomy(*pair))
        pid = product.id
        row = (
            marshal.dumps(record),
            in_stock(record),
            (fold(product.name), pid),
            shared(product.supplier),
            shared(product.brand),
            unified,
            shared(product.country),
            shared(product.currency),
            cost,
            None,
        )
        at = position.get(pid)
        if at is not None:  # a repeated id: the later version replaces the earlier
            for column, value in zip(columns, row, strict=True):
                column[at] = value
            continue
        position[pid] = len(records)
        counted = staged.supplier_products
        counted[product.supplier] = counted.get(product.supplier, 0) + 1
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    compactor.close()
    del mapped
    dropped: set[int] = set()
    first_canonical = len(records)
    if collected is not None:
        assert prices is not None, "canonical rows need the price list"
        dropped = _add_canonical_rows(staged, collected, position, prices)
    del position
    order = sorted_order(sort_keys)
    if dropped:
        kept: list[int] = []
        for slice_start in range(0, len(order), _SLICE):
            kept.extend(i for i in order[slice_start : slice_start + _SLICE] if i not in dropped)
            checkpoint()
        order = kept
    out = staged.permuted(order)
    for slice_start in range(0, len(order), _SLICE):
        for d in range(slice_start, min(slice_start + _SLICE, len(order))):
            old = order[d]
            if old >= first_canonical:
                more = staged.more_suppliers.get(old)
                if more is not None:
                    out.more_suppliers[d] = more
        checkpoint()
    return out


def _add_canonical_rows(
    staged: Staged, collected: canonical.Collected, position: dict[str, int], prices: PriceList
) -> set[int]:
    """Append the canonical rows to ``staged``'s columns, move the absorbed supplier
    products aside; returns the absorbed products' positions (to leave out)."""
    staged.offers = canonical.offer_book(collected)
    source: dict[str, tuple[Any, canonical.Labels]] = {}
    absorbed = collected.absorbed()
    dropped: set[int] = set()
    for n, pid in enumerate(collected.products):
        if not n & 255:
            checkpoint()
        at = position[pid]
        labels: canonical.Labels = (
            staged.suppliers[at],
            staged.brands[at],
            staged.categories[at],
            staged.countries[at],
            staged.currencies[at],
        )
        record = marshal.loads(staged.records[at])
        # Only what a canonical row reads, not the variants.
        source[pid] = (tuple(record[i] for i in canonical.SOURCE_FIELDS), labels)
        if pid in absorbed:
            dropped.add(at)
            staged.absorbed[pid] = (staged.records[at], labels)  # the same bytes: no copy
        del record
    columns = staged.columns()
    for record, labels, suppliers, cost, list_price in canonical.rows(
        collected, staged.offers, source, prices
    ):
        at = len(staged.records)
        if len(suppliers) > 1:
            staged.more_suppliers[at] = suppliers
        row = (
            marshal.dumps(record),
            in_stock(record),
            (fold(record[R_NAME]), record[R_ID]),
            labels[0],
            labels[1],
            labels[2],
            labels[3],
            labels[4],
            cost,
            list_price,
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return dropped
