"""The voucher products API adapter.

Upstream calls (paths are settings; defaults shown):

=========  ===================================  =========  ==================================
method     path                                 bucket     used for
=========  ===================================  =========  ==================================
POST       /auth/login                          login      tokens (lazily, and on expiry)
POST       /auth/refresh                        login      a new access token
POST       /auth/logout                         login      ``aclose``: end our session
GET        /api/v1/products?page=&limit=        reads      ``iter_catalog``
GET        /api/v1/products/{id}                reads      ``get_product``, order validation
GET        /api/v1/products/{id}/availability   reads      ``ProductDetail.available``
POST       /api/v1/products/{id}/charges        charges    ``quote`` (no side effects)
POST       /api/v1/orders                       orders     ``place_order``
GET        /api/v1/orders?client_reference=     reads      ``find_order`` (reconciliation)
GET        /api/v1/orders/{id}                  reads      ``get_order``
=========  ===================================  =========  ==================================

**Authentication.** ``POST /auth/login {"username": api_key, "password": api_secret}``
answers ``access_token`` (``expires_in`` seconds, 1 hour upstream), ``refresh_token``
(``refresh_expires_in``, 7 days) and ``client_id``. The tokens live in this process's
memory only. They are obtained lazily, renewed ``token_refresh_margin_seconds`` before
expiry (refresh first, login when the refresh token is gone), and renewed after a 401.
Renewal is single-flight (``adapters.vouchers.auth.TokenKeeper``): concurrent callers
wait for the one login in progress and reuse its token, so a burst of requests at expiry
costs one login, not one per request (the login budget is 10 a minute).

**Orders.** One line per upstream order (``max_lines_per_order = 1``). The gateway's
reference travels as ``client_reference``, which the supplier keeps unique per client and
refuses to reuse *without replaying the original*. So: any refusal of an order creation
is followed by a look-up by reference; an order found there is the one we placed earlier
and is returned. That makes "Duplicate client_reference" recoverable without reading the
error message, which the supplier documents as not to be switched on.

Webhooks (``order.delivered``...) are not handled here: ``get_order`` polling is the
source of truth.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

import httpx
from cachetools import LRUCache

from adapters.base import SupplierAdapter, retry_after_seconds
from adapters.config import SupplierSettings
from adapters.errors import (
    AmbiguousOutcomeError,
    AuthenticationError,
    FatalError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    RetriableError,
    SupplierError,
)
from adapters.http_errors import read_error
from adapters.models import Capability, CatalogPage, Money, OrderLine, ProductDetail, UpstreamOrder
from adapters.ratelimit import RateLimit
from adapters.vouchers import mapping
from adapters.vouchers.auth import TokenKeeper, Tokens, tokens_from_answer
from adapters.vouchers.mapping import UpstreamDataError, VariantKey, VoucherQuote
from adapters.vouchers.settings import VouchersSettings

logger = logging.getLogger(__name__)

#: Documented upper bound on one order's quantity (the client's bulk limit may be lower).
MAX_QUANTITY = 5000
_LOGOUT_SECONDS = 3.0


@dataclass(frozen=True)
class _ResolvedLine:
    product_id: int
    key: VariantKey
    currency: str
    face_minor: int

    @property
    def denomination(self) -> Decimal:
        return mapping.major_of(self.face_minor, self.currency)


def _body(response: httpx.Response) -> Any:
    """JSON with every non-integer number as an exact ``Decimal``."""
    return json.loads(response.content, parse_float=Decimal)


def _upstream_error(response: httpx.Response) -> tuple[str | None, str | None]:
    try:
        error = _body(response).get("error")
    except (ValueError, AttributeError):
        return None, None
    if not isinstance(error, dict):
        return None, None
    code, message = error.get("code"), error.get("message")
    return (str(code) if code else None, str(message) if message else None)


def _int_header(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name, "")
    return int(value) if value.isdigit() else None


def _positive_id(value: str, what: str, supplier: str) -> int:
    if not value.isdigit() or int(value) <= 0:
        raise NotFoundError(f"{what} {value!r} is not a voucher {what} id", supplier=supplier)
    return int(value)


class VouchersAdapter(SupplierAdapter):
    """Voucher products API: fixed and range face values, tokens with refresh, async
    fulfilment above five vouchers, idempotency by ``client_reference``."""

    name = "vouchers"
    display_name = "Voucher products API"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {"range_denominations", "async_fulfilment", "price_quote"}
    )
    settings_model = VouchersSettings
    #: Documented per-client limits per minute. ``burst`` lets a few calls go back to back;
    #: with the default 0.95 safety factor, burst + scaled rate stays within the documented
    #: count of any fixed 60 s window (e.g. reads: 10 + 285 ≤ 300; login: 1 + 9 ≤ 10).
    rate_limits: ClassVar[Mapping[str, RateLimit]] = {
        "login": RateLimit(limit=10, period_seconds=60, burst=1),
        "reads": RateLimit(limit=300, period_seconds=60, burst=10),
        "orders": RateLimit(limit=60, period_seconds=60, burst=2),
        "charges": RateLimit(limit=120, period_seconds=60, burst=5),
    }
    max_lines_per_order = 1
    refreshable_auth = True

    def __init__(self, settings: SupplierSettings, **kwargs: Any) -> None:
        if not isinstance(settings, VouchersSettings):
            raise TypeError("VouchersAdapter needs VouchersSettings")
        super().__init__(settings, **kwargs)
        self.settings: VouchersSettings = settings
        # Any refusal of a refresh (401, a 400 on a malformed token, an unusable answer)
        # is answered by a fresh login; transient failures propagate and are retried.
        self._keeper = TokenKeeper(
            login=self._login, refresh=self._refresh, refresh_refused=FatalError
        )
        self.stats.update({"logins": 0, "token_refreshes": 0, "skipped_products": 0})
        #: Product id -> currency, learnt from detail calls: an order line whose currency is
        #: already known is checked without a detail call (one upstream request per order).
        self._currencies: LRUCache[int, str] = LRUCache(maxsize=100_000)

    # ------------------------------------------------------------- sandbox

    @classmethod
    def create_sandbox(cls, **options: Any) -> Any:
        from adapters.vouchers.sandbox import create_sandbox

        return create_sandbox(**options)

    @classmethod
    def sandbox_settings(cls, base_url: str) -> dict[str, Any]:
        from adapters.vouchers.sandbox import SANDBOX_API_KEY, SANDBOX_API_SECRET

        return {"base_url": base_url, "api_key": SANDBOX_API_KEY, "api_secret": SANDBOX_API_SECRET}

    # ------------------------------------------------------------- errors

    def classify_response(self, response: httpx.Response) -> SupplierError | None:
        """Switch on the supplier's error ``code`` (never its message); unknown codes fall
        back to the status-based defaults. ``X-Request-Id`` goes into the message so a
        support ticket can quote it."""
        answer = read_error(response, self.name, parse=_upstream_error)
        if answer is None:
            return None
        code = answer.code
        request_id = response.headers.get("x-request-id")
        text = (answer.message or f"HTTP {answer.status}") + (
            f" [request {request_id}]" if request_id else ""
        )
        if code == "TOO_MANY_REQUESTS":
            return answer.error(RateLimitedError, text, retry_after=retry_after_seconds(response))
        if code in ("UNAUTHORIZED", "FORBIDDEN"):
            return answer.error(AuthenticationError, text)
        if code == "INVALID_FEATURE":
            # The account lacks the voucher feature: only the supplier's account manager
            # can change that, so it is an operator problem like refused credentials.
            return answer.error(AuthenticationError, f"voucher feature not enabled for us: {text}")
        if code == "NOT_FOUND":
            return answer.error(NotFoundError, text)
        if code in ("BAD_REQUEST", "VALIDATION_FAILURE"):
            return answer.error(FatalError, text)
        if code == "INTERNAL_SERVER_ERROR":
            return answer.error(RetriableError, text)
        return super().classify_response(response)

    # --------------------------------------------------------------- auth

    async def auth_headers(self, *, refresh: bool = False) -> dict[str, str]:
        token = await self._keeper.access_token(after_401=refresh)
        return {"Authorization": f"Bearer {token}"}

    async def _login(self) -> Tokens:
        sent_at = time.monotonic()
        response = await self.request(
            "POST",
            self.settings.login_path,
            operation="login",
            bucket="login",
            authenticate=False,
            idempotent=True,  # a login changes nothing upstream: retrying it is safe
            json={
                "username": self.settings.api_key.get_secret_value(),
                "password": self.settings.api_secret.get_secret_value(),
            },
        )
        self.stats["logins"] += 1
        tokens = self._tokens_from(response, sent_at, previous=None)
        logger.info("vouchers: logged in (client_id=%s)", tokens.client_id)
        return tokens

    async def _refresh(self, current: Tokens) -> Tokens:
        sent_at = time.monotonic()
        response = await self.request(
            "POST",
            self.settings.refresh_path,
            operation="refresh_token",
            bucket="login",
            authenticate=False,
            idempotent=True,
            json={"refresh_token": current.refresh_token},
        )
        self.stats["token_refreshes"] += 1
        return self._tokens_from(response, sent_at, previous=current)

    def _tokens_from(
        self, response: httpx.Response, sent_at: float, *, previous: Tokens | None
    ) -> Tokens:
        try:
            return tokens_from_answer(
                _body(response),
                sent_at=sent_at,
                margin=self.settings.token_refresh_margin_seconds,
                previous=previous,
            )
        except ValueError as exc:  # invalid JSON, or a TokenAnswerError
            raise FatalError(f"login: unusable answer ({exc})", supplier=self.name) from exc

    async def aclose(self) -> None:
        """End our session upstream: a token we drop is revoked rather than left valid
        for its remaining hour. Best effort and bounded to a few seconds (it shares the
        small login budget; a shutdown must not wait on a courtesy call)."""
        tokens = self._keeper.take()
        if tokens is None:
            return
        try:
            async with asyncio.timeout(min(self.settings.timeouts.total, _LOGOUT_SECONDS)):
                await self.request(
                    "POST",
                    self.settings.logout_path,
                    operation="logout",
                    bucket="login",
                    authenticate=False,
                    idempotent=True,
                    headers={"Authorization": f"Bearer {tokens.access_token}"},
                )
        except (SupplierError, TimeoutError, httpx.HTTPError, RuntimeError) as exc:
            logger.info("vouchers: logout skipped (%s)", type(exc).__name__)

    # ------------------------------------------------------------ catalog

    async def _iter_catalog(self) -> AsyncIterator[CatalogPage]:
        """Pages of ``page_size`` (``limit``, max 500) until ``X-Has-More`` is false.

        Products are deduplicated by id across pages: the supplier pages by offset over
        a name sort, so a product added mid-run can shift a neighbour onto the next page.
        A product whose data cannot be represented exactly is skipped and logged (one bad
        entry must not hide the other thousand).
        """
        seen: set[str] = set()
        page, yielded = 1, 0
        while True:
            response = await self.request(
                "GET",
                self.settings.products_path,
                operation="list_products",
                bucket="reads",
                params={"page": page, "limit": self.settings.page_size},
            )
            items = self._json(response, "product list")
            if not isinstance(items, list):
                raise FatalError("product list is not a JSON array", supplier=self.name)
            products = []
            for item in items:
                try:
                    product = mapping.product_from_upstream(item)
                except UpstreamDataError as exc:
                    self.stats["skipped_products"] += 1
                    logger.warning(
                        "vouchers: skipping product %s: %s",
                        item.get("id") if isinstance(item, dict) else "?",
                        exc,
                    )
                    continue
                if product.id not in seen:
                    seen.add(product.id)
                    products.append(product)
            if products:
                yielded += 1
                yield CatalogPage(
                    products=tuple(products),
                    page=yielded,
                    total=_int_header(response, "x-total-count"),
                )
            if not items or not self._has_more(response, page, len(items)):
                return
            page += 1

    def _has_more(self, response: httpx.Response, page: int, size: int) -> bool:
        flag: str | None = response.headers.get("x-has-more")
        if flag is not None:
            return flag.strip().lower() == "true"
        total_pages = _int_header(response, "x-total-pages")
        if total_pages is not None:
            return page < total_pages
        return size >= self.settings.page_size

    async def _get_product(self, upstream_id: str) -> ProductDetail:
        product_id = _positive_id(upstream_id, "product", self.name)
        response = await self.request(
            "GET",
            self.settings.product_path.format(id=product_id),
            operation="get_product",
            bucket="reads",
        )
        item = self._json(response, "product")
        available = await self.is_available(product_id)
        try:
            return mapping.detail_from_upstream(item, available=available)
        except UpstreamDataError as exc:
            raise FatalError(f"product {product_id}: {exc}", supplier=self.name) from exc

    async def is_available(self, product_id: int) -> bool:
        """The supplier's stock check for one product."""
        response = await self.request(
            "GET",
            self.settings.availability_path.format(id=product_id),
            operation="availability",
            bucket="reads",
        )
        body = self._json(response, "availability")
        flag = body.get("is_available") if isinstance(body, dict) else None
        if not isinstance(flag, bool):
            # An optional check that answers nonsense must not stop sales: the order
            # itself is refused upstream if the product really is out.
            logger.warning("vouchers: availability of %s unreadable; assuming yes", product_id)
            return True
        return flag

    # ------------------------------------------------------------- orders

    async def _resolve(self, variant_id: str, face_value: Money | None) -> _ResolvedLine:
        """Check a line against the variant id first (no call), then against the product's
        current denominations (one detail call): the supplier refuses a face value it no
        longer offers, and we need the product's currency to write the denomination."""
        upstream_id, key = self.split_variant_id(variant_id)
        product_id = _positive_id(upstream_id, "product", self.name)
        try:
            variant = mapping.parse_variant_key(key)
        except ValueError as exc:
            raise NotFoundError(str(exc), supplier=self.name) from exc
        face = variant.low
        if variant.kind == "range":
            if face_value is None:
                raise RejectedError(
                    f"{variant_id} is a face-value range: the line needs a face_value",
                    supplier=self.name,
                )
            if not variant.accepts(face_value.amount):
                raise RejectedError(
                    f"face value {face_value.amount} is outside {variant_id}'s range",
                    supplier=self.name,
                )
            face = face_value.amount
        elif face_value is not None and face_value.amount != variant.low:
            raise RejectedError(
                f"face value {face_value.amount} does not match fixed variant {variant_id}",
                supplier=self.name,
            )
        known = self._currencies.get(product_id)
        if face_value is not None and known is not None:
            # Currency already known: check it and let the supplier's own validation refuse
            # a face value it no longer offers (mapped to RejectedError) - no detail call.
            if face_value.currency != known:
                raise RejectedError(
                    f"face value in {face_value.currency}; {variant_id} is sold in {known}",
                    supplier=self.name,
                )
            return _ResolvedLine(product_id, variant, known, face)
        try:
            product = await self._get_product(str(product_id))
        except NotFoundError as exc:
            raise RejectedError(
                f"product {product_id} is no longer offered", supplier=self.name
            ) from exc
        self._currencies[product_id] = product.currency
        if face_value is not None and face_value.currency != product.currency:
            raise RejectedError(
                f"face value in {face_value.currency}; {variant_id} is sold in {product.currency}",
                supplier=self.name,
            )
        if not any(v.id == variant_id for v in product.variants):
            raise RejectedError(f"{variant_id} is no longer offered", supplier=self.name)
        if not product.available:
            raise RejectedError(f"product {product_id} is not available now", supplier=self.name)
        return _ResolvedLine(product_id, variant, product.currency, face)

    async def _place_order(self, reference: str, lines: Sequence[OrderLine]) -> UpstreamOrder:
        if len(lines) != 1:
            raise ValueError(
                "the voucher supplier takes one line per order (max_lines_per_order = 1); "
                "split the order, one reference per line"
            )
        line = lines[0]
        if line.quantity > MAX_QUANTITY:
            raise RejectedError(
                f"quantity {line.quantity} is above the supplier's {MAX_QUANTITY}",
                supplier=self.name,
            )
        resolved = await self._resolve(line.variant_id, line.face_value)
        body = mapping.order_body(
            product_id=resolved.product_id,
            denomination=resolved.denomination,
            quantity=line.quantity,
            reference=reference,
            wallet_id=self.settings.wallet_id,
        )
        try:
            response = await self.request(
                "POST",
                self.settings.create_order_path,
                operation="create_order",
                bucket="orders",
                idempotent=False,
                json=body,
            )
        except AuthenticationError:
            raise
        except FatalError as exc:
            # A refusal may be "Duplicate client_reference": our earlier attempt took
            # effect. The supplier does not replay it, so look it up by reference.
            existing = await self._find_order(reference)
            if existing is not None:
                return existing
            raise RejectedError(
                exc.message,
                supplier=self.name,
                upstream_status=exc.upstream_status,
                upstream_code=exc.upstream_code,
            ) from exc
        try:
            return mapping.order_from_upstream(_body(response))
        except (ValueError, UpstreamDataError) as exc:
            # The order was accepted (2xx) but the answer is unreadable: find it instead.
            raise AmbiguousOutcomeError(
                f"create_order: unreadable answer ({exc})", supplier=self.name
            ) from exc

    async def _get_order(self, upstream_id: str) -> UpstreamOrder:
        order_id = _positive_id(upstream_id, "order", self.name)
        response = await self.request(
            "GET",
            self.settings.order_path.format(id=order_id),
            operation="get_order",
            bucket="reads",
        )
        return self._order(self._json(response, "order"))

    async def _find_order(self, reference: str) -> UpstreamOrder | None:
        """``GET /api/v1/orders?client_reference=``. Entries are matched on the reference
        again here, so an upstream that ignored the filter cannot hand us someone else's
        order."""
        response = await self.request(
            "GET",
            self.settings.orders_path,
            operation="find_order",
            bucket="reads",
            params={"client_reference": reference, "limit": 10},
        )
        items = self._json(response, "order list")
        if not isinstance(items, list):
            raise FatalError("order list is not a JSON array", supplier=self.name)
        for item in items:
            if isinstance(item, dict) and item.get("client_reference") == reference:
                return self._order(item)
        return None

    async def quote(
        self, variant_id: str, quantity: int, face_value: Money | None = None
    ) -> VoucherQuote:
        """The supplier's price for ``quantity`` units (``POST .../charges``), in minor
        units; ``face_value`` is required for range variants."""
        if not 1 <= quantity <= MAX_QUANTITY:
            raise ValueError(f"quantity must be 1..{MAX_QUANTITY}")
        resolved = await self._resolve(variant_id, face_value)
        try:
            response = await self.request(
                "POST",
                self.settings.charges_path.format(id=resolved.product_id),
                operation="quote",
                bucket="charges",
                idempotent=True,  # a quote has no side effects
                json={
                    "denomination": mapping.json_number(resolved.denomination),
                    "quantity": quantity,
                },
            )
        except AuthenticationError:
            raise
        except FatalError as exc:
            # The supplier refuses to price it (bulk limit, face value): it would refuse
            # the order too, and says so the same way.
            raise RejectedError(
                exc.message,
                supplier=self.name,
                upstream_status=exc.upstream_status,
                upstream_code=exc.upstream_code,
            ) from exc
        try:
            return mapping.quote_from_upstream(
                self._json(response, "charges"),
                variant_id=variant_id,
                quantity=quantity,
                face_value=Money(amount=resolved.face_minor, currency=resolved.currency),
            )
        except UpstreamDataError as exc:
            raise FatalError(f"charges: {exc}", supplier=self.name) from exc

    # ------------------------------------------------------------ helpers

    def _json(self, response: httpx.Response, what: str) -> Any:
        try:
            return _body(response)
        except ValueError as exc:
            raise FatalError(
                f"{what}: the supplier answered invalid JSON", supplier=self.name
            ) from exc

    def _order(self, item: Any) -> UpstreamOrder:
        try:
            return mapping.order_from_upstream(item)
        except UpstreamDataError as exc:
            raise FatalError(f"order: {exc}", supplier=self.name) from exc
