"""Reseller prices: supplier cost plus a markup rule, in integer minor units.

Rounding rule: ``price = ceil(cost × (1 + percent/100) + fixed)`` to the minor unit, with
``Decimal`` arithmetic throughout. Rounding up (never to nearest) with non-negative
markups guarantees the price is never below cost, even by one cent.

Which rule applies, most specific first: the reseller's own rule (when it has one), then
a rule for the supplier and category, the supplier alone, the category alone, and finally
the global rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_CEILING, Decimal

from pydantic import BaseModel, ConfigDict, Field


class MarkupRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    percent: Decimal = Field(default=Decimal(0), ge=0, le=1000)
    fixed_minor: int = Field(default=0, ge=0)
    supplier: str | None = None
    category: str | None = None

    def apply(self, cost_minor: int) -> int:
        if cost_minor < 0:
            raise ValueError("cost cannot be negative")
        price = Decimal(cost_minor) * (Decimal(100) + self.percent) / Decimal(100)
        price += self.fixed_minor
        return int(price.to_integral_value(rounding=ROUND_CEILING))


class PriceList:
    """Resolves the markup rule for a product and applies it."""

    def __init__(self, global_rule: MarkupRule, rules: Sequence[MarkupRule] = ()) -> None:
        self.global_rule = global_rule
        self._rules = {(r.supplier, _norm(r.category)): r for r in rules}

    def rule_for(
        self, supplier: str, category: str | None, reseller_rule: MarkupRule | None = None
    ) -> MarkupRule:
        if reseller_rule is not None:
            return reseller_rule
        cat = _norm(category)
        for key in ((supplier, cat), (supplier, None), (None, cat)):
            if key in self._rules and (key[1] is None or cat is not None):
                return self._rules[key]
        return self.global_rule

    def price(
        self,
        cost_minor: int,
        supplier: str,
        category: str | None,
        reseller_rule: MarkupRule | None = None,
    ) -> int:
        return self.rule_for(supplier, category, reseller_rule).apply(cost_minor)


def _norm(value: str | None) -> str | None:
    return " ".join(value.casefold().split()) if value else None
