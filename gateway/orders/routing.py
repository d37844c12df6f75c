"""Splitting an order into upstream orders: one per supplier, each cut into chunks of at
most the adapter's ``max_lines_per_order`` lines, numbered from 1 in item order, each
with its deterministic reference (``<order id>-<n>``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gateway.orders.ids import part_reference
from gateway.orders.models import Part, StoredItem


def plan_parts(
    order_id: str,
    items: Sequence[StoredItem],
    max_lines: Callable[[str], int | None],
) -> list[Part]:
    by_supplier: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        by_supplier.setdefault(item.supplier, []).append(index)
    parts: list[Part] = []
    for supplier, indexes in by_supplier.items():
        size = max_lines(supplier) or len(indexes)
        for start in range(0, len(indexes), size):
            n = len(parts) + 1
            parts.append(
                Part(
                    n=n,
                    supplier=supplier,
                    reference=part_reference(order_id, n),
                    items=indexes[start : start + size],
                )
            )
    return parts
