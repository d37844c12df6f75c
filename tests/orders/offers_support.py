"""Helpers of the routing and failover tests: the offers behind a canonical variant as
the sandboxes really sell them, price lists that make a dearer offer eligible, and the
purchases the sandboxes logged for an order's attempts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orders_harness import Sandboxes, static_catalog

from adapters.models import Money, Product, Variant
from gateway.orders.ports import PricedCatalog
from gateway.pricing import MarkupRule, PriceList

#: Sold by both sandboxes, in EUR from both (docs/routing.md, adapters/sandbox_overlap.py).
STEAM_DEU_50 = "gift-steam-wallet-deu-eur:fv5000"
GOOGLE_PLAY_DEU_25 = "gift-google-play-deu-eur:fv2500"
GLOBAL_RULE = MarkupRule(percent=10)


@dataclass(frozen=True)
class Offer:
    supplier: str
    product: Product
    variant: Variant
    cost: int


def offers(products: list[Product], canonical: str) -> list[Offer]:
    """The canonical variant's offers, cheapest cost first (read from the catalog: which
    sandbox is cheaper is the catalog's business, not the test's)."""
    found = static_catalog(products).offers(canonical)
    assert found, f"no offers behind {canonical}"
    result = []
    for product, variant in found:
        cost = variant.unit_cost(variant.face_value)
        assert cost is not None and cost.currency == "EUR"
        result.append(Offer(product.supplier, product, variant, cost.amount))
    result.sort(key=lambda o: (o.cost, o.supplier))
    assert len(result) == 2 and result[0].cost < result[1].cost, result
    return result


def equal_prices(products: list[Product], canonicals: list[str]) -> PriceList:
    """A price list under which each canonical variant sells at one price from either
    supplier: the global 10 % on the cheaper offer's cost, and a fixed markup rule for the
    dearer supplier's product category that brings it to the same price. The way an
    operator makes a dearer supplier a failover target (docs/routing.md)."""
    rules = []
    for canonical in canonicals:
        cheap, dear = offers(products, canonical)
        price = GLOBAL_RULE.apply(cheap.cost)
        assert price >= dear.cost, "the margin must cover the dearer supplier's cost"
        rules.append(
            MarkupRule(
                supplier=dear.supplier,
                category=dear.product.category,
                fixed_minor=price - dear.cost,
            )
        )
    categories = {(r.supplier, r.category) for r in rules}
    assert len(categories) == len(rules), "one rule per supplier category"
    return PriceList(GLOBAL_RULE, rules)


def catalog_with(
    products: list[Product], prices: PriceList | None = None, **stock: int
) -> PricedCatalog:
    """The static catalog, with ``stock`` overriding the stock of products by id."""
    changed = [
        p.model_copy(update={"stock": stock[p.id]}) if p.id in stock else p for p in products
    ]
    return static_catalog(changed, prices)


def with_cost(products: list[Product], variant_id: str, amount: int) -> list[Product]:
    """``products`` with one variant's cost set (what our catalog believes; the sandbox
    is not told): to make a given supplier the cheaper offer in a test."""
    changed = []
    for product in products:
        if any(v.id == variant_id for v in product.variants):
            variants = tuple(
                v.model_copy(update={"cost": Money(amount=amount, currency="EUR")})
                if v.id == variant_id
                else v
                for v in product.variants
            )
            product = product.model_copy(update={"variants": variants})
        changed.append(product)
    return changed


def gaming_goods_stock(sandboxes: Sandboxes, product_id: str, units: int) -> None:
    """Set the Gaming Goods sandbox's stock of a product (in-process sandbox state)."""
    state = sandboxes.servers["gaming_goods"].app.state.sandbox  # type: ignore[attr-defined]
    state.by_id[product_id.partition(":")[2]].quantity = units


async def purchases_by_reference(sandboxes: Sandboxes) -> dict[str, list[dict[str, Any]]]:
    """Every purchase in both sandboxes' logs, by the reference it was made under."""
    found: dict[str, list[dict[str, Any]]] = {}
    for name in ("vouchers", "gaming_goods"):
        for purchase in await sandboxes.purchases(name):
            reference = purchase.get("reference")
            if reference:
                found.setdefault(str(reference), []).append({**purchase, "supplier": name})
    return found
