"""Choosing the offer a routed part is placed with, when it is placed.

An item ordered by a canonical variant id was accepted at a price (``StoredItem.
unit_price``); the supplier is decided only when its part is placed, from the offers
the catalog serves *then*, so an offer that sold out, got dearer or whose supplier went
down since the order was accepted is not used. An offer is **eligible** when:

* its supplier is configured and enabled here, and not already refused this part;
* its product is available with enough units in stock;
* a range offer takes the item's face value (a fixed offer is the item's card by the
  catalog's match: its face is not compared, a supplier may not state one);
* its cost and its reseller price are in the accepted currency (never converted);
* its cost is not above the accepted unit price (never sell below cost). The reseller
  is charged the accepted price whichever offer delivers, never more. With
  ``routing.absorb_price_difference`` (the default) a dearer offer may take over from
  one that refused, the gateway's margin absorbing the difference; without it, the
  offer's own reseller price (by the markup rule stored at acceptance) must not be
  above the accepted price either - with one markup for every supplier, that rules out
  failing over to a dearer supplier;
* its supplier's circuit is not open (``CircuitBreaker.state``, which does not take the
  half-open probe slot), and its recent placement success is good enough
  (``SuccessTracker``).

The eligible offers are tried lowest cost first, ties by ``routing.supplier_priority``
(lower first), then supplier name. The last two checks are *transient*: when every
offer left is only skipped by them, the part waits and looks again
(``routing.no_offer_retry_seconds``) rather than failing.

Every decision is counted: ``gateway_order_routing_decisions_total{supplier,outcome}``
with ``outcome`` ``chosen`` or the skip reason.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from adapters.base import SupplierAdapter
from adapters.breaker import BreakerState
from adapters.models import Product
from gateway.orders import metrics
from gateway.orders.models import StoredItem
from gateway.orders.ports import CatalogLookup, Offer
from gateway.settings import RoutingSettings

#: The priority of a supplier ``routing.supplier_priority`` does not list.
DEFAULT_PRIORITY = 100


def has_units(product: Product, quantity: int) -> bool:
    """Whether an offer's product can supply ``quantity`` units now (available, and
    enough stock when the supplier reports stock): the same test when an item is
    accepted and when its part is placed."""
    return product.available and (product.stock is None or product.stock >= quantity)


class Skip(enum.StrEnum):
    """Why an offer was not chosen (the ``outcome`` label of routing decisions)."""

    NOT_CONFIGURED = "not_configured"
    REFUSED_BEFORE = "refused_before"
    OUT_OF_STOCK = "out_of_stock"
    FACE_VALUE = "face_value"
    CURRENCY = "currency"
    NOT_PRICED = "not_priced"
    PRICE_ABOVE_ACCEPTED = "price_above_accepted"
    COST_ABOVE_PRICE = "cost_above_price"
    CIRCUIT_OPEN = "circuit_open"
    FAILING = "failing"

    @property
    def transient(self) -> bool:
        """The offer may be eligible again shortly, without a new catalog."""
        return self in (Skip.CIRCUIT_OPEN, Skip.FAILING)


class SuccessTracker:
    """Recent placement outcomes per supplier, in this process (like the circuit
    breaker: each worker judges by what it sees itself).

    A supplier whose success rate over its last ``success_window`` placements (with at
    least ``min_samples`` of them) is below ``min_success_rate`` is *failing*: routing
    skips it (the part waits when no other offer is eligible). Not for good: once
    ``probe_after_seconds`` have passed since its last placement, one placement goes to
    it again (a probe), and its outcome moves the rate. Refusals count as failures too:
    a supplier that keeps answering "out of stock" is one to stop asking first.
    """

    def __init__(
        self, settings: RoutingSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._outcomes: dict[str, deque[bool]] = {}
        self._last: dict[str, float] = {}

    def record(self, supplier: str, ok: bool) -> None:
        window = self._outcomes.get(supplier)
        if window is None:
            window = self._outcomes[supplier] = deque(maxlen=self.settings.success_window)
        window.append(ok)
        self._last[supplier] = self._clock()

    def rate(self, supplier: str) -> float | None:
        """The recent success rate, or None with too few samples to judge."""
        window = self._outcomes.get(supplier)
        if window is None or len(window) < self.settings.min_samples:
            return None
        return sum(window) / len(window)

    def failing(self, supplier: str) -> bool:
        """Whether to skip ``supplier`` now (without taking its probe)."""
        rate = self.rate(supplier)
        if rate is None or rate >= self.settings.min_success_rate:
            return False
        return self._clock() - self._last.get(supplier, 0.0) < self.settings.probe_after_seconds

    def take(self, supplier: str) -> None:
        """``supplier`` was chosen: a probe of a failing supplier is taken now, so
        concurrent placements do not all probe it at once."""
        self._last[supplier] = self._clock()


@dataclass(frozen=True, slots=True)
class Choice:
    supplier: str
    offer: Offer
    #: Supplier cost of one unit, minor units of the accepted currency.
    cost: int


@dataclass(slots=True)
class Decision:
    choice: Choice | None = None
    skipped: list[tuple[str, Skip]] = field(default_factory=list)

    @property
    def waiting(self) -> bool:
        """No offer now, but one skipped only for a while (circuit, failing supplier)."""
        return self.choice is None and any(reason.transient for _, reason in self.skipped)

    def summary(self) -> str:
        """The skips in a few words, for the part's last error (no prices, no codes)."""
        return ", ".join(f"{supplier}: {reason.value}" for supplier, reason in self.skipped)


class OfferRouter:
    def __init__(
        self,
        *,
        catalog: Callable[[], CatalogLookup],
        adapters: Mapping[str, SupplierAdapter],
        settings: RoutingSettings,
        tracker: SuccessTracker | None = None,
    ) -> None:
        self._catalog = catalog
        self.adapters = adapters
        self.settings = settings
        self.tracker = tracker or SuccessTracker(settings)

    def priority(self, supplier: str) -> int:
        return self.settings.supplier_priority.get(supplier, DEFAULT_PRIORITY)

    def choose(self, item: StoredItem, refused: Collection[str]) -> Decision:
        """The best eligible offer for ``item`` now, skipping suppliers in ``refused``
        (they definitively refused this part already). Takes the chosen supplier's probe
        when it was failing; counts every decision."""
        decision = Decision()
        assert item.canonical_variant_id is not None
        catalog = self._catalog()
        offers = catalog.offers(item.canonical_variant_id) or []
        candidates: list[Choice] = []
        for product, variant in offers:
            supplier = product.supplier
            reason, cost = self._check(catalog, item, (product, variant), refused)
            if reason is not None:
                decision.skipped.append((supplier, reason))
                continue
            assert cost is not None
            candidates.append(Choice(supplier, (product, variant), cost))
        candidates.sort(key=lambda c: (c.cost, self.priority(c.supplier), c.supplier))
        for candidate in candidates:
            reason = self._health(candidate.supplier)
            if reason is not None:
                decision.skipped.append((candidate.supplier, reason))
                continue
            self.tracker.take(candidate.supplier)
            decision.choice = candidate
            break
        for supplier, reason in decision.skipped:
            metrics.ROUTING_DECISIONS.labels(supplier, reason.value).inc()
        if decision.choice is not None:
            metrics.ROUTING_DECISIONS.labels(decision.choice.supplier, "chosen").inc()
        return decision

    def _check(
        self, catalog: CatalogLookup, item: StoredItem, offer: Offer, refused: Collection[str]
    ) -> tuple[Skip | None, int | None]:
        """The offer's permanent eligibility: (skip reason, None) or (None, unit cost)."""
        product, variant = offer
        if product.supplier not in self.adapters:
            return Skip.NOT_CONFIGURED, None
        if product.supplier in refused:
            return Skip.REFUSED_BEFORE, None
        if not has_units(product, item.quantity):
            return Skip.OUT_OF_STOCK, None
        face = item.face_value
        if variant.is_range and (face is None or not variant.takes_face(face)):
            return Skip.FACE_VALUE, None
        own = face if variant.is_range else variant.face_value
        cost = variant.unit_cost(own)
        price = catalog.unit_price(product, variant, own, item.markup)
        accepted = item.unit_price
        if cost is None or price is None:
            return Skip.NOT_PRICED, None
        if cost.currency != accepted.currency or price.currency != accepted.currency:
            return Skip.CURRENCY, None
        if price.amount > accepted.amount and not self.settings.absorb_price_difference:
            return Skip.PRICE_ABOVE_ACCEPTED, None
        if cost.amount > accepted.amount:
            return Skip.COST_ABOVE_PRICE, None
        return None, cost.amount

    def _health(self, supplier: str) -> Skip | None:
        adapter = self.adapters[supplier]
        if adapter.breaker.state is BreakerState.OPEN:
            return Skip.CIRCUIT_OPEN
        if self.tracker.failing(supplier):
            return Skip.FAILING
        return None
