"""The Gaming Goods Partner API adapter.

Catalog: ``GET /products`` paged with ``limit``/``offset`` until ``offset >= total``.
Orders: ``POST /checkout`` with explicit lines, then ``GET /orders/{id}`` until the order
is ``completed`` and its codes appear in ``delivery.codes``.

The Partner page documents no idempotency for checkout. We send ``Idempotency-Key:
<reference>`` anyway (the platform's v1 API honours it), and stay safe when it is ignored:
before sending, the intent (lines, time) is written to the ``OrderLedger``; when the
outcome is unknown, ``_find_order`` walks the partner's order list back to the send time
and attributes an order to the reference only when exactly one unclaimed order bought
exactly those lines and no other unresolved reference could own it. Anything less certain
raises ``AmbiguousOutcomeError``: a human decides, because a guessed attribution either
buys twice or hands one customer's codes to another.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from adapters.base import SupplierAdapter
from adapters.config import SupplierSettings
from adapters.errors import (
    AmbiguousOutcomeError,
    AuthenticationError,
    FatalError,
    RateLimitedError,
    RejectedError,
    RetriableError,
    SupplierError,
)
from adapters.gaming_goods import mapping
from adapters.gaming_goods.order_ledger import Intent, OrderLedger, ReferenceReused
from adapters.gaming_goods.sandbox import SANDBOX_API_KEY, create_sandbox
from adapters.gaming_goods.settings import GamingGoodsSettings
from adapters.http_errors import read_error
from adapters.models import (
    Capability,
    CatalogPage,
    OrderLine,
    Product,
    ProductDetail,
    UpstreamOrder,
)
from adapters.ratelimit import RateLimit

log = logging.getLogger(__name__)

#: Error codes meaning "the upstream refused this order" (no order exists). Only
#: ``out_of_stock`` is the sandbox's; the others are the platform family's usual names.
_REJECTION_CODES = frozenset(
    {"out_of_stock", "insufficient_balance", "insufficient_funds", "product_unavailable"}
)


class GamingGoodsAdapter(SupplierAdapter):
    name: ClassVar[str] = mapping.SUPPLIER
    display_name: ClassVar[str] = "Gaming Goods (Partner API)"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"async_fulfilment", "stock_levels"})
    settings_model: ClassVar[type[SupplierSettings]] = GamingGoodsSettings
    #: "100 requests per minute per IP address", every endpoint alike: one bucket.
    rate_limits: ClassVar[Mapping[str, RateLimit]] = {
        "default": RateLimit(limit=100, period_seconds=60)
    }

    def __init__(self, settings: SupplierSettings, **kwargs: Any) -> None:
        if not isinstance(settings, GamingGoodsSettings):
            raise TypeError("GamingGoodsAdapter needs GamingGoodsSettings")
        super().__init__(settings, **kwargs)
        self.config = settings
        self.stats["malformed_products"] = 0
        self._ledger = (
            OrderLedger(self.redis, self.redis_key, ttl=settings.order_state_ttl_seconds)
            if self.redis is not None
            else None
        )

    # ------------------------------------------------------------- sandbox

    @classmethod
    def create_sandbox(cls, **options: Any) -> Any:
        return create_sandbox(**options)

    @classmethod
    def sandbox_settings(cls, base_url: str) -> dict[str, Any]:
        return {"base_url": base_url, "api_key": SANDBOX_API_KEY}

    async def auth_headers(self, *, refresh: bool = False) -> dict[str, str]:
        return {"X-API-Key": self.config.api_key.get_secret_value()}

    # ------------------------------------------------------------- catalog

    async def _iter_catalog(self) -> AsyncIterator[CatalogPage]:
        """Pages of ``page_size`` until ``offset >= total`` (or an empty page).

        The catalog may change between pages: offsets then shift, so an id already seen in
        this iteration is skipped (each product once); a product that moved to an earlier
        page while we read may be missed until the next sync, as with any offset API.
        """
        seen: set[str] = set()
        offset, number = 0, 0
        while True:
            body = await self._get_json(
                self.config.products_path,
                "list_products",
                params={"limit": self.config.page_size, "offset": offset},
            )
            items, total = _page(body)
            if not items:
                return
            number += 1
            products: list[Product] = []
            for item in items:
                product = self._product_or_none(item)
                if product is not None and product.upstream_id not in seen:
                    seen.add(product.upstream_id)
                    products.append(product)
            yield CatalogPage(products=tuple(products), page=number, total=total)
            offset += len(items)
            if offset >= total:
                return

    def _product_or_none(self, item: Any) -> Product | None:
        """One bad item must not stop a sync: it is counted, logged and skipped."""
        try:
            return mapping.product_from_item(item, supplier=self.name)
        except ValueError as exc:
            self.stats["malformed_products"] += 1
            pid = item.get("id") if isinstance(item, Mapping) else None
            log.warning("gaming_goods: skipping malformed product %r: %s", pid, exc)
            return None

    async def _get_product(self, upstream_id: str) -> ProductDetail:
        body = await self._get_json(
            _fill(self.config.product_path, "{id}", upstream_id), "get_product"
        )
        try:
            return mapping.product_detail_from_body(body, supplier=self.name)
        except ValueError as exc:
            raise FatalError(
                f"unreadable product {upstream_id}: {exc}", supplier=self.name
            ) from exc

    async def list_brands(self) -> list[dict[str, Any]]:
        """Every brand with its product count (``GET /brands``, all pages)."""
        brands: list[dict[str, Any]] = []
        offset = 0
        while True:
            body = await self._get_json(
                self.config.brands_path,
                "list_brands",
                params={"limit": self.config.page_size, "offset": offset},
            )
            items, total = _page(body)
            brands.extend(i for i in items if isinstance(i, dict))
            offset += len(items)
            if not items or offset >= total:
                return brands

    async def list_brand_categories(self, brand: str) -> list[dict[str, Any]]:
        """One brand's categories with product counts (``GET /brands/{brand}/categories``)."""
        body = await self._get_json(
            _fill(self.config.brand_categories_path, "{brand}", brand), "list_categories"
        )
        categories = body.get("categories") if isinstance(body, Mapping) else None
        if not isinstance(categories, list):
            raise FatalError("brand categories answer has no 'categories' list", supplier=self.name)
        return [c for c in categories if isinstance(c, dict)]

    # -------------------------------------------------------------- orders

    async def _place_order(self, reference: str, lines: Sequence[OrderLine]) -> UpstreamOrder:
        """Checkout ``lines`` once for ``reference``.

        A reference already resolved returns its order without sending anything. The
        intent (lines) is recorded before the first attempt, and the reference counts as
        *sent* only when a request really leaves (after its rate-limit wait, which is
        bounded): a checkout still waiting for a slot can neither own nor block an
        upstream order. A reference sent before with an unknown outcome is looked up
        first, so a platform that ignores ``Idempotency-Key`` never sees a blind resend;
        with ``idempotency_key_honoured`` the checkout is simply sent again under the same
        key (the platform answers with the order it made the first time), up to
        ``reconcile_attempts`` times while the answer stays unknown.
        """
        wanted = mapping.checkout_lines(lines, supplier=self.name)
        ledger = self._require_ledger()
        previous = await ledger.intent(reference)
        if previous is not None and not previous.same_lines(wanted):
            raise _reference_reused(reference, self.name)
        known = await self._mapped_order(reference)
        if known is not None:
            return known
        try:
            intent = await ledger.record_intent(reference, wanted)
        except ReferenceReused:
            raise _reference_reused(reference, self.name) from None
        sent_before = intent.sent_at is not None
        honoured = self.config.idempotency_key_honoured
        if sent_before and not honoured:
            found = await self._find_order(reference)
            if found is not None:
                return found
        sends = self.settings.reconcile_attempts if honoured else 1
        for send in range(1, sends + 1):
            try:
                return await self._checkout(reference, wanted, sent_before=sent_before)
            except AmbiguousOutcomeError:
                if send == sends:
                    raise
            sent_before = True
            await self._sleep(self.settings.reconcile_delay)
        raise AssertionError("unreachable: the last send returns or raises")  # pragma: no cover

    async def _checkout(
        self, reference: str, wanted: list[dict[str, Any]], *, sent_before: bool
    ) -> UpstreamOrder:
        """One checkout request (retried by ``request`` only while certainly not sent)."""
        ledger = self._require_ledger()

        async def leaving() -> None:
            await ledger.mark_sent(reference)

        try:
            response = await self.request(
                "POST",
                self.config.checkout_path,
                operation="place_order",
                idempotent=False,
                headers={"Idempotency-Key": reference},
                json=mapping.checkout_body(wanted),
                on_send=leaving,
            )
        except (FatalError, RetriableError):
            # Refused, or never sent (connect error, 429, open circuit, no slot): nothing
            # exists. An earlier send of the same reference may still have, so keep it.
            if not sent_before:
                await ledger.forget(reference)
            raise
        try:
            orders = mapping.checkout_orders(response.json())
        except ValueError as exc:
            raise AmbiguousOutcomeError(
                f"checkout {reference}: unreadable answer ({exc}); it may have been applied",
                supplier=self.name,
            ) from exc
        ids = [str(o["id"]).strip() for o in orders]
        if not ids:
            raise AmbiguousOutcomeError(
                f"checkout {reference}: the upstream answered without an order",
                supplier=self.name,
            )
        claim = await ledger.claim(reference, ids)
        if claim.mapped is not None:
            raise _double_attribution(reference, {i: reference for i in claim.mapped}, self.name)
        if claim.taken:
            await ledger.remember(reference, ids)
            raise _double_attribution(reference, claim.taken, self.name)
        if len(ids) > 1:
            raise _split_error(reference, ids, self.name)
        try:
            return mapping.order_from_summary(orders[0], reference=reference, supplier=self.name)
        except ValueError:
            return await self._get_order_as(ids[0], reference)

    async def _get_order(self, upstream_id: str) -> UpstreamOrder:
        owner = None
        if self._ledger is not None:
            owner = (await self._ledger.owners([upstream_id]))[upstream_id]
        return await self._get_order_as(upstream_id, owner)

    async def _get_order_as(self, upstream_id: str, reference: str | None) -> UpstreamOrder:
        body = await self._order_detail(upstream_id)
        try:
            return mapping.order_from_detail(body, reference=reference, supplier=self.name)
        except ValueError as exc:
            raise FatalError(f"unreadable order {upstream_id}: {exc}", supplier=self.name) from exc

    async def _order_detail(self, upstream_id: str) -> Any:
        return await self._get_json(_fill(self.config.order_path, "{id}", upstream_id), "get_order")

    async def _mapped_order(self, reference: str) -> UpstreamOrder | None:
        """The order stored for ``reference``; a split checkout or an order another
        reference also claims raises ``AmbiguousOutcomeError`` (never resent)."""
        ledger = self._require_ledger()
        ids = await ledger.order_ids(reference)
        if ids is None:
            return None
        owners = await ledger.owners(ids)
        taken = {i: o for i, o in owners.items() if o is not None and o != reference}
        if taken:
            raise _double_attribution(reference, taken, self.name)
        if len(ids) != 1:
            raise _split_error(reference, ids, self.name)
        return await self._get_order_as(ids[0], reference)

    async def _find_order(self, reference: str) -> UpstreamOrder | None:
        """The order of ``reference``: by the stored mapping, else by reconciliation.

        Reconciliation walks ``GET /orders`` (newest first) back to the reference's first
        send minus ``reconcile_skew_seconds`` (orders created earlier can never be its),
        skips orders claimed by any reference, and compares each remaining order's items
        (read once per order, then kept in the ledger) with the intent. The one match is
        claimed atomically and returned when no other reference could have produced it; no
        match returns ``None`` (positively absent: the caller may send again); several
        matches, a match of unknown date, or a match another sent, unresolved reference
        with the same lines could equally own (it was sent before the order was created)
        raise ``AmbiguousOutcomeError``: a later look-up, once those references resolved,
        may settle it. A reference never sent has no order: ``None``.
        """
        known = await self._mapped_order(reference)
        if known is not None:
            return known
        ledger = self._require_ledger()
        intent = await ledger.intent(reference)
        if intent is None or intent.sent_at is None:
            return None
        skew = self.config.reconcile_skew_seconds
        candidates = await self._orders_since(_window_start(intent.sent_at, skew))
        owners = await ledger.owners([c.id for c in candidates])
        mine = [i for i, owner in owners.items() if owner == reference]
        if mine:  # claimed by us before the mapping expired: it is ours
            await ledger.claim(reference, mine)
            return await self._mapped_order(reference)
        unclaimed = [c for c in candidates if owners[c.id] is None]
        items = await self._items_of([c.id for c in unclaimed], reference)
        matches = [c for c in unclaimed if intent.matches(items[c.id])]
        if not matches:
            return None
        if len(matches) > 1:
            raise AmbiguousOutcomeError(
                f"reference {reference}: {len(matches)} unclaimed upstream orders "
                f"{[m.id for m in matches]} bought exactly its lines since it was sent; a "
                "human must decide",
                supplier=self.name,
            )
        match = matches[0]
        if match.created_at is None:
            raise AmbiguousOutcomeError(
                f"reference {reference}: upstream order {match.id} matches it but has no "
                "creation time, so it may predate the checkout; a human must decide",
                supplier=self.name,
            )
        rivals = [
            other.reference
            for other in await ledger.other_pending(reference)
            if _could_own(other, intent, match.created_at, skew)
        ]
        if rivals:
            raise AmbiguousOutcomeError(
                f"reference {reference}: upstream order {match.id} matches it, but so would "
                f"unresolved reference(s) {sorted(rivals)} sent before it was created with "
                "the same lines",
                supplier=self.name,
            )
        claim = await ledger.claim(reference, [match.id])
        if claim.mapped is not None:  # resolved meanwhile by another look-up of ours
            return await self._mapped_order(reference)
        if claim.taken:
            return None  # another reference took it a moment ago: it is not ours
        return await self._get_order_as(match.id, reference)

    async def _items_of(self, order_ids: list[str], reference: str) -> dict[str, dict[str, int]]:
        """Units per product of each order: from the ledger, else its detail (kept)."""
        ledger = self._require_ledger()
        items = await ledger.cached_items(order_ids)
        for order_id in order_ids:
            if order_id in items:
                continue
            body = await self._order_detail(order_id)
            try:
                items[order_id] = mapping.order_items(body)
            except ValueError as exc:
                # It might be ours: absence cannot be proven.
                raise AmbiguousOutcomeError(
                    f"reference {reference}: candidate order {order_id} is unreadable ({exc})",
                    supplier=self.name,
                ) from exc
            await ledger.cache_items(order_id, items[order_id])
        return items

    async def _orders_since(self, since: float) -> list[mapping.OrderSummary]:
        """Orders created at or after ``since`` (unknown dates included), newest first.

        Raises ``AmbiguousOutcomeError`` when ``reconcile_max_pages`` runs out before
        reaching ``since``: absence would not be proven."""
        found: list[mapping.OrderSummary] = []
        seen: set[str] = set()
        offset = 0
        for _ in range(self.config.reconcile_max_pages):
            body = await self._get_json(
                self.config.orders_path,
                "list_orders",
                params={"limit": self.config.page_size, "offset": offset},
            )
            items, total = _page(body)
            for item in items:
                try:
                    summary = mapping.order_summary(item)
                except ValueError as exc:
                    raise FatalError(f"unreadable order list: {exc}", supplier=self.name) from exc
                if summary.created_at is not None and summary.created_at.timestamp() < since:
                    return found
                if summary.id not in seen:
                    seen.add(summary.id)
                    found.append(summary)
            offset += len(items)
            if not items or offset >= total:
                return found
        raise AmbiguousOutcomeError(
            f"reconciliation gave up after {self.config.reconcile_max_pages} order pages "
            "without reaching the checkout's send time",
            supplier=self.name,
        )

    # -------------------------------------------------------------- errors

    def classify_response(self, response: httpx.Response) -> SupplierError | None:
        """Switch on the platform's ``error.code``; status-based defaults otherwise.

        ``out_of_stock`` (and balance/availability codes) → ``RejectedError``;
        ``invalid_request`` → ``RejectedError`` on checkout (the order was refused and not
        created), ``FatalError`` elsewhere; ``idempotency_conflict`` → ``FatalError`` (the
        reference was used with another body); ``unauthorized``/401/403 →
        ``AuthenticationError``; ``rate_limited``/429 → ``RateLimitedError`` with the wait
        from ``Retry-After`` or ``X-RateLimit-Reset``; 404 → ``NotFoundError``; 5xx →
        ``RetriableError`` (or ambiguous for checkout, in the base class).
        """
        answer = read_error(response, self.name)
        if answer is None:
            return None
        status, code, message = answer.status, answer.code, answer.message
        if code == "rate_limited" and status != 429:
            return answer.error(RateLimitedError, message or "rate limited")
        if code == "unauthorized" and status not in (401, 403):
            return answer.error(AuthenticationError, message or "credentials refused")
        if code == "idempotency_conflict":
            return answer.error(FatalError, message or "idempotency key reused with another body")
        if code in _REJECTION_CODES:
            return answer.error(RejectedError, message or code)
        if code == "invalid_request" and _is_checkout(response, self.config.checkout_path):
            return answer.error(RejectedError, message or "checkout refused")
        if status == 409 and _is_checkout(response, self.config.checkout_path):
            return answer.error(RejectedError, message or "checkout refused")
        return super().classify_response(response)

    # ------------------------------------------------------------- helpers

    async def _get_json(self, path: str, operation: str, **kwargs: Any) -> Any:
        response = await self.request("GET", path, operation=operation, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise FatalError(f"{operation}: the answer is not JSON", supplier=self.name) from exc

    def _require_ledger(self) -> OrderLedger:
        if self._ledger is None:
            raise RuntimeError("gaming_goods orders need Redis: the checkout ledger lives there")
        return self._ledger


def _page(body: Any) -> tuple[list[Any], int]:
    """``items`` and ``total`` of a ``limit``/``offset`` page."""
    if not isinstance(body, Mapping):
        raise FatalError("page is not a JSON object", supplier=mapping.SUPPLIER)
    items, total = body.get("items"), body.get("total")
    if not isinstance(items, list) or not isinstance(total, int) or isinstance(total, bool):
        raise FatalError("page has no 'items' list or integer 'total'", supplier=mapping.SUPPLIER)
    return items, total


def _fill(template: str, placeholder: str, value: str) -> str:
    """A path with one URL-encoded segment: an id can never add a path component."""
    return template.replace(placeholder, quote(value, safe=""))


def _is_checkout(response: httpx.Response, checkout_path: str) -> bool:
    try:
        request = response.request
    except RuntimeError:  # a response built without a request (tests)
        return False
    return request.method == "POST" and request.url.path.endswith(checkout_path)


def _window_start(sent_at: float, skew: float) -> float:
    """The earliest creation time an order of a checkout first sent at ``sent_at`` can
    show: ``skew`` earlier for clock disagreement, floored because the platform's times
    have whole seconds."""
    return float(math.floor(sent_at - skew))


def _could_own(other: Intent, ours: Intent, created_at: datetime, skew: float) -> bool:
    """Whether an order matching ``ours`` might instead be ``other``'s: ``other`` was sent
    (early enough to have created it) and bought the same units. There is no upper bound
    in time: an upstream may act on a timed-out request long after we gave up on it."""
    if other.sent_at is None or other.units() != ours.units():
        return False
    return created_at.timestamp() >= _window_start(other.sent_at, skew)


def _reference_reused(reference: str, supplier: str) -> FatalError:
    return FatalError(
        f"reference {reference} was already used for an order with other lines",
        supplier=supplier,
        upstream_code="idempotency_conflict",
    )


def _double_attribution(
    reference: str, taken: Mapping[str, str], supplier: str
) -> AmbiguousOutcomeError:
    return AmbiguousOutcomeError(
        f"checkout {reference}: upstream order(s) {sorted(taken)} answered to it are also "
        f"attributed to reference(s) {sorted(set(taken.values()))}; review manually",
        supplier=supplier,
    )


def _split_error(reference: str, ids: Sequence[str], supplier: str) -> AmbiguousOutcomeError:
    return AmbiguousOutcomeError(
        f"checkout {reference} created {len(ids)} upstream orders {list(ids)}; one gateway "
        "order maps to one upstream order, so this needs manual review (all are recorded)",
        supplier=supplier,
    )
