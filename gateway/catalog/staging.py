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
"""

from __future__ import annotations

import marshal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from adapters.models import Product
from gateway.catalog.pacing import checkpoint, sorted_order
from gateway.catalog.records import Compactor, in_stock
from gateway.catalog.text import fold

Taxonomy = Callable[[str, str | None], str | None]

_UNSET: Any = object()


def same_category(supplier: str, category: str | None) -> str | None:
    """The default taxonomy: every supplier's category is already the unified one."""
    return category


@dataclass(slots=True)
class Staged:
    """Build-time columns, one entry per product."""

    records: list[bytes] = field(default_factory=list)  # marshal.dumps(Record)
    in_stock: list[bool] = field(default_factory=list)
    sort_keys: list[tuple[str, str]] = field(default_factory=list)
    suppliers: list[str] = field(default_factory=list)
    brands: list[str | None] = field(default_factory=list)
    categories: list[str | None] = field(default_factory=list)  # after the taxonomy
    countries: list[str | None] = field(default_factory=list)
    currencies: list[str] = field(default_factory=list)
    costs: list[int | None] = field(default_factory=list)

    def columns(self) -> tuple[list[Any], ...]:
        return tuple(getattr(self, name) for name in _COLUMNS)

    def permuted(self, order: list[int]) -> Staged:
        return Staged(*(_permuted(column, order) for column in self.columns()))


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
)


def stage(products: Iterable[Product], taxonomy: Taxonomy) -> Staged:
    """The products as columns in document order. ``taxonomy`` is called once per
    distinct (supplier, category) pair; a product id seen twice keeps its last version."""
    staged = Staged()
    columns = staged.columns()
    records, stocked, sort_keys, suppliers, brands, categories, countries, currencies, costs = (
        columns
    )
    compactor = Compactor()
    shared = compactor.share
    position: dict[str, int] = {}
    mapped: dict[tuple[str, str | None], str | None] = {}
    for product in products:
        checkpoint()
        record, cost = compactor.record(product)
        pair = (product.supplier, product.category)
        unified = mapped.get(pair, _UNSET)
        if unified is _UNSET:
            unified = mapped[pair] = shared(taxonomy(*pair))
        pid = product.id
        at = position.get(pid)
        if at is not None:  # a repeated id: the later version replaces the earlier
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
            )
            for column, value in zip(columns, row, strict=True):
                column[at] = value
            continue
        position[pid] = len(records)
        records.append(marshal.dumps(record))
        stocked.append(in_stock(record))
        sort_keys.append((fold(product.name), pid))
        suppliers.append(shared(product.supplier))
        brands.append(shared(product.brand))
        categories.append(unified)
        countries.append(shared(product.country))
        currencies.append(shared(product.currency))
        costs.append(cost)
    compactor.close()
    del position, mapped
    order = sorted_order(sort_keys)
    return staged.permuted(order)
