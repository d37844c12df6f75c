"""Splitting an order into upstream orders: one per supplier, each cut into chunks of at
most the adapter's ``max_lines_per_order`` lines, numbered from 1 in item order, each
with its deterministic reference (``<order id>-<n>``).

An item ordered by a canonical variant id gets a part of its own (``routed``): its
supplier is chosen when the part is placed (``gateway.orders.router``), and a part that
fails over to another supplier must not drag other items along. Until then its
``supplier`` is the offer it was accepted at.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gateway.orders.ids import part_reference
from gateway.orders.models import Part, StoredItem


def plan_parts(
    order_id: str,
    items: Sequence[StoredItem],
    max_lines: Callable[[str], int | None],
) -> list[Part]:
    groups: list[tuple[str, list[int], bool]] = []
    by_supplier: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        if item.canonical_variant_id is not None:
            groups.append((item.supplier, [index], True))
            continue
        if item.supplier not in by_supplier:
            by_supplier[item.supplier] = []
            groups.append((item.supplier, by_supplier[item.supplier], False))
        by_supplier[item.supplier].append(index)
    parts: list[Part] = []
    for supplier, indexes, routed in groups:
        size = max_lines(supplier) or len(indexes)
        for start in range(0, len(indexes), size):
            n = len(parts) + 1
            reference = part_reference(order_id, n)
            parts.append(
                Part(
                    n=n,
                    supplier=supplier,
                    reference=reference,
                    items=indexes[start : start + size],
                    routed=routed,
                    base_reference=reference if routed else None,
                )
            )
    return parts
