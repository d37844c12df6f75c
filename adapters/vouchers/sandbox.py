"""A simulator of the voucher products API, faithful to its documents.

Paths (the supplier's): ``POST /auth/login``, ``POST /auth/refresh``, ``POST /auth/logout``,
``GET /api/v1/products`` (bare JSON array + ``X-Page``/``X-Per-Page``/``X-Total-Count``/
``X-Total-Pages``/``X-Page-Size``/``X-Has-More``), ``GET /api/v1/products/{id}``,
``POST /api/v1/products/{id}/charges``, ``GET /api/v1/products/{id}/availability``,
``POST /api/v1/orders``, ``GET /api/v1/orders`` and ``GET /api/v1/orders/{id}``.

Login answers ``{"access_token", "token_type": "Bearer", "expires_in", "refresh_token",
"refresh_expires_in", "client_id"}`` (lifetimes in seconds); refresh takes
``{"refresh_token"}`` and answers the same shape. Errors are
``{"error": {"name", "code", "message"}}`` with the documented codes; every response
carries ``X-Request-Id`` (the caller's, echoed, or a new one).

Checks run in the order a real deployment would: IP allowlist (login included), then rate
limit (per client id from the bearer token, per IP for the login bucket), then faults,
then authentication, then the per-client voucher feature flag.

Beyond the shared ``/_sandbox`` control routes, ``POST /_sandbox/tokens/revoke``
invalidates every access token (``?refresh=true``: refresh tokens too), so tests can make
a token die under a running client.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.sandbox_kit import (
    CONTROL_PREFIX,
    ApiError,
    RateRule,
    SandboxControl,
    SandboxMiddleware,
    after_commit,
    client_ip,
    control_routes,
)
from adapters.vouchers.catalog_data import (
    CURRENCY_IDS,
    CatalogProduct,
    Denomination,
    generate_catalog,
)
from adapters.vouchers.sandbox_http import (
    IpAllowlistMiddleware,
    RequestIdMiddleware,
    choice,
    error_body,
    error_handlers,
    int_param,
    invalid_query,
    is_int,
    json_object,
    number,
    page_headers,
    path_id,
)
from adapters.vouchers.sandbox_state import (
    INLINE_LIMIT,
    MAX_QUANTITY,
    Order,
    Session,
    Sessions,
    fits_minor_unit,
    price,
)

SANDBOX_API_KEY = "vk_sandbox_4f2a9c"
SANDBOX_API_SECRET = "vs_sandbox_8d31e7b05c"
SANDBOX_CLIENT_ID = 4217

#: Documented limits per client per minute, by bucket (the adapter's ``rate_limits`` keys).
DOCUMENTED_LIMITS: dict[str, tuple[int, float]] = {
    "login": (10, 60.0),
    "reads": (300, 60.0),
    "orders": (60, 60.0),
    "charges": (120, 60.0),
}

_CLIENT_REFERENCE = re.compile(r"^[\x20-\x7e]{1,255}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{2,}$")
_STATUSES = ("PENDING", "DELIVERED", "PARTIALLY_DELIVERED", "FAILED", "CANCELLED")


def _product_json(product: CatalogProduct, *, detail: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": product.id,
        "name": product.name,
        "category": product.category,
        "sub_category": product.sub_category,
        "country_code": product.country.alpha3,
        "currency_code": product.currency,
        "image_url": product.image_url,
        "delivery_mode": product.delivery_mode,
        "delivery_time": product.delivery_time,
        "validity": product.validity,
        "available_denominations": [
            {
                "min_value": float(d.min_value),
                "max_value": float(d.max_value),
                "discount": float(d.discount),
            }
            for d in product.denominations
        ],
    }
    if detail:
        body["terms"] = product.terms
        body["details"] = product.details
        body["how_to_use"] = product.how_to_use
    return body


class VoucherSandbox:
    """The upstream's state and handlers; one instance per sandbox app."""

    def __init__(
        self,
        *,
        control: SandboxControl,
        catalog: tuple[CatalogProduct, ...],
        api_key: str,
        api_secret: str,
        client_id: int,
        access_ttl: float,
        refresh_ttl: float,
        vouchers_feature_enabled: bool,
        blacklisted_product_ids: Iterable[int],
        unavailable_product_ids: Iterable[int],
        bulk_limit: int,
        wallets: Mapping[int, str],
        partial_delivery_rate: float,
    ) -> None:
        self.control = control
        self.api_key = api_key
        self.api_secret = api_secret
        self.client_id = client_id
        self.sessions = Sessions(access_ttl=access_ttl, refresh_ttl=refresh_ttl)
        self.feature_enabled = vouchers_feature_enabled
        blacklisted = set(blacklisted_product_ids)
        self.products: dict[int, CatalogProduct] = {
            p.id: p for p in catalog if p.id not in blacklisted
        }
        self.unavailable = set(unavailable_product_ids)
        self.bulk_limit = bulk_limit
        self.wallets = dict(wallets)
        self.partial_delivery_rate = partial_delivery_rate
        self.orders: dict[int, Order] = {}
        self._by_reference: dict[tuple[int, str], int] = {}
        self._next_order_id = 700_001
        for counter in ("logins", "refreshes", "unauthorized"):
            control.stats.setdefault(counter, 0)
        control.info["products"] = len(self.products)
        control.info["client_id"] = client_id

    # ------------------------------------------------------------- helpers

    def bucket_for(self, request: Request) -> str | None:
        path, method = request.url.path, request.method
        if path.startswith("/auth/"):
            return "login"
        if method == "POST" and path == "/api/v1/orders":
            return "orders"
        if method == "POST" and path.endswith("/charges"):
            return "charges"
        if method == "GET":
            return "reads"
        return None

    def client_for(self, request: Request) -> str:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token:
            session = self.sessions.owner(token)
            if session is not None:
                return f"client:{session.client_id}"
        return f"ip:{client_ip(request.scope)}"

    def _session_or_401(self, request: Request) -> Session:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            self.control.stats["unauthorized"] += 1
            raise ApiError(401, "UNAUTHORIZED", "Missing bearer token")
        session = self.sessions.authenticate(token.strip())
        if session is None:
            self.control.stats["unauthorized"] += 1
            raise ApiError(401, "UNAUTHORIZED", "Invalid or expired token")
        return session

    def _client(self, request: Request) -> int:
        """Authenticate and check the per-client voucher feature."""
        session = self._session_or_401(request)
        if not self.feature_enabled:
            raise ApiError(
                400, "INVALID_FEATURE", "The requested feature is not enabled for this client"
            )
        return session.client_id

    def _product(self, request: Request) -> CatalogProduct:
        product = self.products.get(path_id(request, "product"))
        if product is None:
            raise ApiError(404, "NOT_FOUND", "Product not found")
        return product

    @staticmethod
    def _denomination(product: CatalogProduct, face: Decimal) -> Denomination:
        if face <= 0 or not fits_minor_unit(face, product.currency):
            raise ApiError(400, "BAD_REQUEST", "Invalid denomination")
        for denomination in product.denominations:
            if denomination.accepts(face):
                return denomination
        raise ApiError(400, "BAD_REQUEST", "Denomination not available for this product")

    def _wallet(self, wallet_id: int | None, currency: str) -> tuple[int, str]:
        if wallet_id is not None:
            if wallet_id not in self.wallets:
                raise ApiError(400, "BAD_REQUEST", "Unknown wallet_id")
            return wallet_id, self.wallets[wallet_id]
        for wid, wallet_currency in sorted(self.wallets.items()):
            if wallet_currency == currency:
                return wid, wallet_currency
        wid = min(self.wallets)
        return wid, self.wallets[wid]

    @property
    def max_quantity(self) -> int:
        return min(MAX_QUANTITY, self.bulk_limit)

    # ---------------------------------------------------------------- auth

    def _token_answer(self, session: Session) -> JSONResponse:
        return JSONResponse(
            {
                "access_token": session.access_token,
                "token_type": "Bearer",
                "expires_in": self.sessions.access_ttl,
                "refresh_token": session.refresh_token,
                "refresh_expires_in": max(0.0, round(session.refresh_expires - time.time(), 3)),
                "client_id": session.client_id,
            }
        )

    async def login(self, request: Request) -> Response:
        body = await json_object(request)
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise ApiError(400, "VALIDATION_FAILURE", "username and password are required")
        key_ok = secrets.compare_digest(username.encode(), self.api_key.encode())
        secret_ok = secrets.compare_digest(password.encode(), self.api_secret.encode())
        if not (key_ok and secret_ok):
            raise ApiError(401, "UNAUTHORIZED", "Invalid credentials")
        self.control.stats["logins"] += 1
        return self._token_answer(self.sessions.login(self.client_id))

    async def refresh(self, request: Request) -> Response:
        body = await json_object(request)
        token = body.get("refresh_token")
        if not isinstance(token, str) or not token:
            raise ApiError(400, "VALIDATION_FAILURE", "refresh_token is required")
        session = self.sessions.refresh(token)
        if session is None:
            raise ApiError(401, "UNAUTHORIZED", "Invalid or expired refresh token")
        self.control.stats["refreshes"] += 1
        return self._token_answer(session)

    async def logout(self, request: Request) -> Response:
        self.sessions.logout(self._session_or_401(request))
        return JSONResponse({"success": True})

    # ------------------------------------------------------------ products

    async def list_products(self, request: Request) -> Response:
        self._client(request)
        params = request.query_params
        page = int_param(params, "page", 1, 1, 10**9)
        limit = int_param(params, "limit", 10, 1, 500)
        country_id = int_param(params, "country_id", None, 1, 10**9)
        currency_id = int_param(params, "currency_id", None, 1, 10**9)
        sort_by = choice(params, "sort_by", "name", ("name", "category"))
        sort_dir = choice(params, "sort_dir", "asc", ("asc", "desc"))
        category = params.get("category")
        search = params.get("search")
        if (category is not None and not category.strip()) or (
            search is not None and len(search) > 200
        ):
            raise invalid_query()

        selected = [
            p
            for p in self.products.values()
            if (category is None or p.category == category)
            and (country_id is None or p.country.id == country_id)
            and (currency_id is None or CURRENCY_IDS[p.currency] == currency_id)
            and (not search or search.casefold() in p.name.casefold())
        ]
        if sort_by == "name":
            selected.sort(key=lambda p: (p.name.casefold(), p.id))
        else:
            selected.sort(key=lambda p: (p.category.casefold(), p.name.casefold(), p.id))
        if sort_dir == "desc":
            selected.reverse()
        chunk = selected[(page - 1) * limit : page * limit]
        return JSONResponse(
            [_product_json(p) for p in chunk],
            headers=page_headers(page, limit, len(selected), len(chunk)),
        )

    async def product_detail(self, request: Request) -> Response:
        self._client(request)
        return JSONResponse(_product_json(self._product(request), detail=True))

    async def availability(self, request: Request) -> Response:
        self._client(request)
        product = self._product(request)
        return JSONResponse({"is_available": product.id not in self.unavailable})

    async def charges(self, request: Request) -> Response:
        self._client(request)
        product = self._product(request)
        body = await json_object(request)
        face, quantity = number(body.get("denomination")), body.get("quantity")
        if face is None:
            raise ApiError(400, "VALIDATION_FAILURE", "denomination must be a number")
        if not is_int(quantity) or not 1 <= quantity <= MAX_QUANTITY:
            raise ApiError(
                400, "VALIDATION_FAILURE", f"quantity must be an integer 1..{MAX_QUANTITY}"
            )
        denomination = self._denomination(product, face)
        if quantity > self.max_quantity:
            raise ApiError(400, "BAD_REQUEST", "Quantity exceeds your bulk limit")
        _, wallet_currency = self._wallet(None, product.currency)
        pricing = price(face, denomination.discount, quantity, product.currency, wallet_currency)
        return JSONResponse(pricing.charges_json(self.max_quantity))

    # -------------------------------------------------------------- orders

    async def create_order(self, request: Request) -> Response:
        client_id = self._client(request)
        body = await json_object(request)
        product_id, quantity = body.get("product_id"), body.get("quantity")
        face = number(body.get("denomination"))
        wallet_id, reference, email = (
            body.get("wallet_id"),
            body.get("client_reference"),
            body.get("email"),
        )
        if not is_int(product_id) or product_id <= 0:
            raise ApiError(400, "VALIDATION_FAILURE", "product_id must be a positive integer")
        if face is None:
            raise ApiError(400, "VALIDATION_FAILURE", "denomination must be a number")
        if not is_int(quantity) or not 1 <= quantity <= MAX_QUANTITY:
            raise ApiError(
                400, "VALIDATION_FAILURE", f"quantity must be an integer 1..{MAX_QUANTITY}"
            )
        if wallet_id is not None and (not is_int(wallet_id) or wallet_id <= 0):
            raise ApiError(400, "VALIDATION_FAILURE", "wallet_id must be a positive integer")
        if reference is not None and (
            not isinstance(reference, str) or not _CLIENT_REFERENCE.match(reference)
        ):
            raise ApiError(
                400,
                "VALIDATION_FAILURE",
                "client_reference must be 1-255 printable ASCII characters",
            )
        if email is not None and (not isinstance(email, str) or not _EMAIL.match(email)):
            raise ApiError(400, "VALIDATION_FAILURE", "email is not a valid address")
        if reference is not None and (client_id, reference) in self._by_reference:
            raise ApiError(400, "BAD_REQUEST", "Duplicate client_reference")
        product = self.products.get(product_id)
        if product is None:
            raise ApiError(404, "NOT_FOUND", "Product not found")
        if product.id in self.unavailable:
            raise ApiError(400, "BAD_REQUEST", "Product is not available")
        denomination = self._denomination(product, face)
        if self.control.refuses(request.url.path):  # the refuse_rate fault
            raise ApiError(400, "BAD_REQUEST", "Product is not available")
        if quantity > self.max_quantity:
            raise ApiError(400, "BAD_REQUEST", "Quantity exceeds your bulk limit")
        wallet, wallet_currency = self._wallet(wallet_id, product.currency)

        control = self.control
        # The outcome is decided once, now; an inline order settles before it is answered.
        inline = quantity <= INLINE_LIMIT
        outcome = "fail" if control.roll(control.faults.fulfilment_failure_rate) else "deliver"
        if outcome == "deliver" and not inline and control.roll(self.partial_delivery_rate):
            outcome = "partial"
        due_at = 0.0 if inline else time.time() + control.current_fulfil_delay()
        order = Order(
            id=self._next_order_id,
            client_id=client_id,
            product=product,
            denomination=face,
            quantity=quantity,
            pricing=price(face, denomination.discount, quantity, product.currency, wallet_currency),
            client_reference=reference,
            wallet_id=wallet,
            email=email,
            created_at=datetime.now(UTC),
            due_at=due_at,
            outcome=outcome,
        )
        self._next_order_id += 1
        if inline:
            order.settle()
        # Commit: from here on the order exists, whatever happens to the connection.
        self.orders[order.id] = order
        if reference is not None:
            self._by_reference[(client_id, reference)] = order.id
        control.record_order(order.log_entry())
        return after_commit(
            control, error_body, "INTERNAL_SERVER_ERROR", JSONResponse(order.to_json(), 201)
        )

    async def list_orders(self, request: Request) -> Response:
        client_id = self._client(request)
        params = request.query_params
        page = int_param(params, "page", 1, 1, 10**9)
        limit = int_param(params, "limit", 10, 1, 500)
        status = params.get("status")
        reference = params.get("client_reference")
        if status is not None and status not in _STATUSES:
            raise invalid_query()
        if reference is not None and not _CLIENT_REFERENCE.match(reference):
            raise invalid_query()
        mine = [o for o in self.orders.values() if o.client_id == client_id]
        for order in mine:
            order.settle()
        selected = sorted(
            (
                o
                for o in mine
                if (reference is None or o.client_reference == reference)
                and (status is None or o.status == status)
            ),
            key=lambda o: o.id,
            reverse=True,
        )
        chunk = selected[(page - 1) * limit : page * limit]
        return JSONResponse(
            [o.to_json() for o in chunk],
            headers=page_headers(page, limit, len(selected), len(chunk)),
        )

    async def order_detail(self, request: Request) -> Response:
        client_id = self._client(request)
        order = self.orders.get(path_id(request, "order"))
        if order is None or order.client_id != client_id:
            raise ApiError(404, "NOT_FOUND", "Order not found")
        return JSONResponse(order.to_json())

    # ------------------------------------------------------------- control

    async def revoke_tokens(self, request: Request) -> Response:
        refresh_too = request.query_params.get("refresh", "").lower() in ("1", "true", "yes")
        revoked = self.sessions.revoke_access(refresh_too=refresh_too)
        return JSONResponse({"revoked": revoked, "refresh_revoked": refresh_too})

    def routes(self) -> list[Route]:
        return [
            Route("/auth/login", self.login, methods=["POST"]),
            Route("/auth/refresh", self.refresh, methods=["POST"]),
            Route("/auth/logout", self.logout, methods=["POST"]),
            Route("/api/v1/products", self.list_products, methods=["GET"]),
            Route("/api/v1/products/{id}", self.product_detail, methods=["GET"]),
            Route("/api/v1/products/{id}/charges", self.charges, methods=["POST"]),
            Route("/api/v1/products/{id}/availability", self.availability, methods=["GET"]),
            Route("/api/v1/orders", self.create_order, methods=["POST"]),
            Route("/api/v1/orders", self.list_orders, methods=["GET"]),
            Route("/api/v1/orders/{id}", self.order_detail, methods=["GET"]),
            Route(f"{CONTROL_PREFIX}/tokens/revoke", self.revoke_tokens, methods=["POST"]),
        ]


def create_sandbox(
    *,
    catalog_size: int = 300,
    seed: int = 42,
    rate_limits: Mapping[str, tuple[int, float]] | None = None,
    fulfil_delay: float = 0.2,
    api_key: str = SANDBOX_API_KEY,
    api_secret: str = SANDBOX_API_SECRET,
    client_id: int = SANDBOX_CLIENT_ID,
    access_ttl: float = 3600.0,
    refresh_ttl: float = 7 * 86400.0,
    ip_allowlist: list[str] | None = None,
    vouchers_feature_enabled: bool = True,
    blacklisted_product_ids: Iterable[int] = (),
    unavailable_product_ids: Iterable[int] = (),
    bulk_limit: int = 1000,
    wallets: Mapping[int, str] | None = None,
    partial_delivery_rate: float = 0.0,
) -> Starlette:
    """The voucher sandbox app; ``app.state.control`` drives faults and reads the order log,
    ``app.state.sandbox`` is the ``VoucherSandbox`` (sessions, orders) for in-process tests.

    ``rate_limits`` overrides buckets of ``DOCUMENTED_LIMITS`` (``{"reads": (3, 60)}``);
    ``access_ttl``/``refresh_ttl`` are token lifetimes in seconds; ``ip_allowlist`` lists
    IPs or CIDRs (``None``: all allowed); ``bulk_limit`` is the client's own quantity cap;
    ``wallets`` maps wallet id → currency (default USD 1, EUR 2, GBP 3; an order without
    ``wallet_id`` pays from the wallet in the product's currency, else the lowest id);
    ``partial_delivery_rate`` makes that share of asynchronous orders end
    ``PARTIALLY_DELIVERED``.
    """
    if unknown := set(rate_limits or {}) - set(DOCUMENTED_LIMITS):
        raise ValueError(f"unknown rate-limit buckets: {sorted(unknown)}")
    if bulk_limit < 1:
        raise ValueError("bulk_limit must be >= 1")
    limits = {**DOCUMENTED_LIMITS, **(rate_limits or {})}
    control = SandboxControl(
        rate_rules={name: RateRule(limit, window) for name, (limit, window) in limits.items()},
        fulfil_delay=fulfil_delay,
    )
    control.rng.seed(seed)
    sandbox = VoucherSandbox(
        control=control,
        catalog=generate_catalog(catalog_size, seed),
        api_key=api_key,
        api_secret=api_secret,
        client_id=client_id,
        access_ttl=access_ttl,
        refresh_ttl=refresh_ttl,
        vouchers_feature_enabled=vouchers_feature_enabled,
        blacklisted_product_ids=blacklisted_product_ids,
        unavailable_product_ids=unavailable_product_ids,
        bulk_limit=bulk_limit,
        wallets=wallets or {1: "USD", 2: "EUR", 3: "GBP"},
        partial_delivery_rate=partial_delivery_rate,
    )
    app = Starlette(
        routes=[*control_routes(control), *sandbox.routes()],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(IpAllowlistMiddleware, allowlist=ip_allowlist),
            Middleware(
                SandboxMiddleware,
                control=control,
                error_body=error_body,
                bucket_for=sandbox.bucket_for,
                client_for=sandbox.client_for,
                rate_limited_code="TOO_MANY_REQUESTS",
                server_error_code="INTERNAL_SERVER_ERROR",
            ),
        ],
        exception_handlers=error_handlers(),
    )
    app.state.control = control
    app.state.sandbox = sandbox
    return app
