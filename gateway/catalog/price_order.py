"""Products ordered by a price: for price sorts and price-range filters.

One :class:`PriceOrder` per *basis*: the list price (each product's own markup rule,
precomputed at build) or the cost (for a reseller's rule, one uniform rule for every
product: ``price = ceil(cost × (1 + p/100) + fixed)`` is strictly increasing in cost when
``p >= 0``, so ordering or bounding by cost is ordering or bounding by price).

Currencies are never converted. A price sort orders by currency code first, then by
price (ascending or descending), then by name; products without a price come last. A
price bound applies within one currency, so the API accepts bounds only with
``currency``.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence

from gateway.catalog.bitmaps import Bitmap, RankSlices, from_ids
from gateway.catalog.pacing import checkpoint, paced_sorted, release
from gateway.catalog.records import apply_rule
from gateway.pricing import MarkupRule

UNPRICED = -1


class _CurrencyRun:
    """One currency's priced documents, sorted by (value, document)."""

    __slots__ = ("docs", "slices", "values")

    def __init__(self, pairs: list[tuple[int, int]], sliced_min: int) -> None:
        self.values = array("q", (v for v, _ in pairs))
        self.docs = array("i", (d for _, d in pairs))
        self.slices = RankSlices(self.docs) if len(pairs) >= sliced_min else None

    def between(self, lo: int | None, hi: int | None) -> Bitmap:
        """Documents whose value is in ``[lo, hi]`` (a missing bound is open)."""
        a = 0 if lo is None else bisect_left(self.values, lo)
        b = len(self.values) if hi is None else bisect_right(self.values, hi)
        if b <= a:
            return 0
        if self.slices is not None:
            return self.slices.between(a, b)
        return from_ids(self.docs[a:b])


class PriceOrder:
    __slots__ = (
        "max_value",
        "perm_asc",
        "perm_desc",
        "rank_asc",
        "rank_desc",
        "runs",
        "segments",
        "unpriced_start",
    )

    def __init__(
        self,
        values: Sequence[int],
        currency_of: Sequence[str],
        sliced_min: int,
    ) -> None:
        """``values[d]`` is document ``d``'s price or cost (``UNPRICED`` for none) in the
        currency ``currency_of[d]``."""
        n = len(values)
        by_currency: dict[str, list[tuple[int, int]]] = {}
        unpriced: list[int] = []
        for d in range(n):
            if not d & 1023:
                checkpoint()
            v = values[d]
            if v == UNPRICED:
                unpriced.append(d)
            else:
                by_currency.setdefault(currency_of[d], []).append((v, d))
        self.runs: dict[str, _CurrencyRun] = {}
        self.segments: dict[str, tuple[int, int]] = {}
        asc: list[int] = []
        desc: list[int] = []
        self.max_value = max((v for v in values if v != UNPRICED), default=0)
        for currency in sorted(by_currency):
            unsorted = by_currency.pop(currency)
            pairs = paced_sorted(unsorted)
            release(unsorted)
            self.runs[currency] = _CurrencyRun(pairs, sliced_min)
            start = len(asc)
            asc.extend(d for _, d in pairs)
            desc.extend(d for _, d in paced_sorted(pairs, key=lambda vd: (-vd[0], vd[1])))
            self.segments[currency] = (start, len(asc))
            release(pairs)
        self.unpriced_start = len(asc)
        asc.extend(unpriced)
        desc.extend(unpriced)
        self.perm_asc = array("i", asc)
        self.perm_desc = array("i", desc)
        self.rank_asc = _inverse(self.perm_asc)
        self.rank_desc = _inverse(self.perm_desc)
        for column in (asc, desc, unpriced):
            release(column)

    def between(self, currency: str, lo: int | None, hi: int | None) -> Bitmap:
        """Documents of ``currency`` whose value is in ``[lo, hi]``."""
        run = self.runs.get(currency)
        return 0 if run is None else run.between(lo, hi)

    def between_prices(
        self, currency: str, lo: int | None, hi: int | None, rule: MarkupRule
    ) -> Bitmap:
        """For an order by cost: documents whose price under ``rule`` is in ``[lo, hi]``.

        The bounds are mapped to costs by binary search over ``rule.apply`` itself
        (never by inverting the formula), so rounding can never make the answer differ
        from applying the rule to every product.
        """
        lo_cost = None if lo is None else _least_cost_priced_at_least(rule, lo, self.max_value)
        hi_cost = None if hi is None else _most_cost_priced_at_most(rule, hi, self.max_value)
        if hi_cost is not None and hi_cost < 0:
            return 0
        return self.between(currency, lo_cost, hi_cost)


def _least_cost_priced_at_least(rule: MarkupRule, price: int, max_cost: int) -> int:
    """The smallest cost priced at least ``price`` (``max_cost + 1`` if none is, up to
    ``max_cost``)."""
    lo, hi = 0, max_cost + 1
    while lo < hi:
        mid = (lo + hi) // 2
        if apply_rule(rule, mid) >= price:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _most_cost_priced_at_most(rule: MarkupRule, price: int, max_cost: int) -> int:
    """The largest cost (up to ``max_cost``) priced at most ``price``; -1 when even a
    zero cost is priced above it."""
    lo, hi = -1, max_cost
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if apply_rule(rule, mid) <= price:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _inverse(perm: array[int]) -> array[int]:
    inverse = array("i", bytes(4 * len(perm)))
    for rank, d in enumerate(perm):
        if not rank & 1023:
            checkpoint()
        inverse[d] = rank
    return inverse
