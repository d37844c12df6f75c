"""A simulator of the Gaming Goods Partner API, behaving as its document says.

Endpoints (the plain REST shapes of ``settings.py``), each requiring ``X-API-Key``:

* ``GET /brands`` and ``GET /brands/{brand}/categories``: product counts per brand and
  category; ``product_count`` counts the products the list endpoint serves;
* ``GET /products``: ``limit`` (default 20, 1..100) and ``offset`` (>= 0), optional
  ``brand`` and ``category`` filters (case-insensitive exact match);
* ``GET /products/{id}``: detail; unknown and *inactive* (delisted) products answer 404;
* ``POST /checkout``: ``{"source": "lines", "lines": [...]}`` creates one order and takes
  the units from stock; ``"cart"`` answers 400 (the sandbox cart is always empty);
* ``GET /orders`` (newest first, paginated) and ``GET /orders/{id}``.

Platform conventions borrowed from the v1 document, which the Partner page shares:
errors are ``{"error": {"code": "<snake_case>", "message": "..."}}``; every answer carries
``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` (a Unix timestamp) for 100 requests per
minute per client IP in fixed windows, and a 429 adds ``Retry-After``; an
``Idempotency-Key`` header on checkout replays the first answer for the same body and
refuses a different body with 422 ``idempotency_conflict`` (``honour_idempotency_key=False``
simulates a platform that ignores the header, which the Partner page does not promise).

Orders are ``created`` until the fulfilment delay (fixed per order at creation) has
passed, then ``completed`` with one ``XXXXX-XXXXX-XXXXX`` code per unit in
``delivery.codes``, or ``failed`` without codes when the failure roll (made once, at
creation, with ``faults.fulfilment_failure_rate``) said so. Stock taken by a failed
order is not returned. A checkout for more units than in stock, or one the
``faults.refuse_rate`` roll refuses, answers 409 ``out_of_stock`` and creates nothing.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.gaming_goods.catalog_data import PRODUCT_NAMESPACE, CatalogProduct, generate_catalog
from adapters.sandbox_kit import (
    CONTROL_PREFIX,
    ApiError,
    RateRule,
    SandboxControl,
    SandboxMiddleware,
    after_commit,
    client_ip,
    control_routes,
    error_handlers,
    error_response,
    int_param,
    json_body,
)

SANDBOX_API_KEY = "pk_test_gaming_goods_sandbox"
#: The one rate bucket: the platform counts every request of an IP alike.
RATE_BUCKET = "default"
DOCUMENTED_RATE = (100, 60.0)
DEFAULT_CATALOG_SIZE = 1500
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_IDEMPOTENCY_KEY = 255
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    """The platform's one error shape (``status`` is carried by the response itself)."""
    return {"error": {"code": code, "message": message}}


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _activation_code() -> str:
    """A real-looking key, random per unit (``secrets``: never guessable from the seed)."""
    return "-".join("".join(secrets.choice(_CODE_ALPHABET) for _ in range(5)) for _ in range(3))


@dataclass
class SandboxOrder:
    id: str
    buyer_id: str
    reference: str | None
    items: list[dict[str, Any]]
    total: int
    currency: str
    delivery_type: str
    created_at: float
    ready_at: float
    fails: bool
    codes: tuple[str, ...] = field(repr=False, default=())

    def status(self, now: float) -> str:
        if now < self.ready_at:
            return "created"
        return "failed" if self.fails else "completed"

    def summary(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status(now),
            "total": self.total,
            "currency": self.currency,
            "created_at": _iso(self.created_at),
        }

    def detail(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        done = status != "created"
        return {
            "id": self.id,
            "buyer_id": self.buyer_id,
            "status": status,
            "items": [dict(item) for item in self.items],
            "amounts": {"buyer_total": self.total, "platform_fee": 0},
            "payment": {"method": "balance", "state": "refunded" if status == "failed" else "paid"},
            "delivery": {
                "type": self.delivery_type,
                "codes": list(self.codes) if status == "completed" else [],
            },
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.ready_at if done else self.created_at),
        }


@dataclass
class _Replay:
    fingerprint: str
    status: int
    body: dict[str, Any]


class GamingGoodsSandbox:
    """The sandbox's state and request handlers (``app.state.sandbox``)."""

    def __init__(
        self,
        control: SandboxControl,
        products: Sequence[CatalogProduct],
        *,
        seed: int,
        api_key: str,
        honour_idempotency_key: bool,
    ) -> None:
        self.control = control
        self.api_key = api_key
        self.honour_idempotency_key = honour_idempotency_key
        self.by_id = {p.id: p for p in products}
        self.listed = [p for p in products if p.active]
        self.orders: list[SandboxOrder] = []
        self.orders_by_id: dict[str, SandboxOrder] = {}
        self.idempotency: dict[str, _Replay] = {}
        self.buyer_id = str(uuid.uuid5(PRODUCT_NAMESPACE, f"buyer:{seed}"))

    # ------------------------------------------------------------- catalog

    async def brands(self, request: Request) -> Response:
        limit, offset = _page(request)
        counts: dict[str, int] = {}
        for product in self.listed:
            counts[product.brand] = counts.get(product.brand, 0) + 1
        rows = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        items = [{"brand": b, "product_count": n} for b, n in rows[offset : offset + limit]]
        return JSONResponse({"items": items, "limit": limit, "offset": offset, "total": len(rows)})

    async def brand_categories(self, request: Request) -> Response:
        wanted = request.path_params["brand"].casefold()
        products = [p for p in self.listed if p.brand.casefold() == wanted]
        if not products:
            raise ApiError(404, "not_found", f"Brand '{request.path_params['brand']}' not found")
        counts: dict[str, int] = {}
        for product in products:
            counts[product.category] = counts.get(product.category, 0) + 1
        categories = [
            {"category": c, "product_count": n}
            for c, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        return JSONResponse({"brand": products[0].brand, "categories": categories})

    async def products(self, request: Request) -> Response:
        limit, offset = _page(request)
        selected = self.listed
        brand = request.query_params.get("brand")
        if brand:
            selected = [p for p in selected if p.brand.casefold() == brand.casefold()]
        category = request.query_params.get("category")
        if category:
            selected = [p for p in selected if p.category.casefold() == category.casefold()]
        items = [p.list_item() for p in selected[offset : offset + limit]]
        return JSONResponse(
            {"items": items, "total": len(selected), "limit": limit, "offset": offset}
        )

    async def product(self, request: Request) -> Response:
        return JSONResponse(self._active_product(request.path_params["id"]).detail())

    def _active_product(self, product_id: str) -> CatalogProduct:
        product = self.by_id.get(product_id)
        if product is None or not product.active:
            raise ApiError(404, "not_found", f"Product '{product_id}' not found")
        return product

    # -------------------------------------------------------------- orders

    async def checkout(self, request: Request) -> Response:
        body = await json_body(request, "invalid_request", "Request body must be JSON")
        key = request.headers.get("idempotency-key")
        if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
            raise ApiError(
                400, "invalid_request", "Idempotency-Key must be 1 to 255 characters long"
            )
        sent_key = key  # logged as the purchase's reference even when ignored
        if not self.honour_idempotency_key:
            key = None
        fingerprint = json.dumps(body, sort_keys=True, separators=(",", ":"))
        # No await from here to the commit: check and commit are one atomic step.
        if key is not None and key in self.idempotency:
            replay = self.idempotency[key]
            if replay.fingerprint != fingerprint:
                raise ApiError(
                    422,
                    "idempotency_conflict",
                    "Idempotency-Key was already used with a different request body",
                )
            return JSONResponse(replay.body, replay.status, headers={"Idempotent-Replayed": "true"})
        wanted = self._validate_checkout(body)
        if self.control.refuses(request.url.path):
            product = wanted[0][0]
            raise ApiError(409, "out_of_stock", f"Product '{product.id}' is out of stock")
        order = self._commit(wanted, sent_key)
        answer = {
            "orders": [
                {"id": order.id, "status": "created", "total": order.total, "currency": "EUR"}
            ]
        }
        if key is not None:
            self.idempotency[key] = _Replay(fingerprint, 201, answer)
        return after_commit(self.control, error_body, "internal_error", JSONResponse(answer, 201))

    def _validate_checkout(self, body: Any) -> list[tuple[CatalogProduct, int]]:
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_request", "Request body must be a JSON object")
        source = body.get("source")
        if source == "cart":
            raise ApiError(400, "invalid_request", "Cart is empty")
        if source != "lines":
            raise ApiError(400, "invalid_request", "Parameter 'source' must be 'cart' or 'lines'")
        lines = body.get("lines")
        if not isinstance(lines, list) or not lines:
            raise ApiError(400, "invalid_request", "Parameter 'lines' must be a non-empty list")
        units: dict[str, int] = {}
        for n, line in enumerate(lines):
            if not isinstance(line, dict) or not isinstance(line.get("product_id"), str):
                raise ApiError(
                    400, "invalid_request", f"Parameter 'lines[{n}].product_id' is required"
                )
            quantity = line.get("quantity")
            if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
                raise ApiError(
                    400,
                    "invalid_request",
                    f"Parameter 'lines[{n}].quantity' must be a positive integer",
                )
            units[line["product_id"]] = units.get(line["product_id"], 0) + quantity
        wanted = [(self._active_product(pid), qty) for pid, qty in units.items()]
        for product, qty in wanted:
            if qty > product.quantity:
                raise ApiError(
                    409,
                    "out_of_stock",
                    f"Only {product.quantity} unit(s) of product '{product.id}' in stock",
                )
        return wanted

    def _commit(self, wanted: list[tuple[CatalogProduct, int]], key: str | None) -> SandboxOrder:
        control = self.control
        now = time.time()
        for product, qty in wanted:
            product.quantity -= qty
        units = sum(qty for _, qty in wanted)
        fails = control.roll(control.faults.fulfilment_failure_rate)
        order = SandboxOrder(
            id=str(uuid.UUID(int=control.rng.getrandbits(128), version=4)),
            buyer_id=self.buyer_id,
            reference=key,
            items=[
                {
                    "product_id": p.id,
                    "title": p.title,
                    "unit_price": p.price,
                    "quantity": qty,
                }
                for p, qty in wanted
            ],
            total=sum(p.price * qty for p, qty in wanted),
            currency="EUR",
            delivery_type=wanted[0][0].delivery_type,
            created_at=now,
            ready_at=now + control.current_fulfil_delay(),
            fails=fails,
            codes=() if fails else tuple(_activation_code() for _ in range(units)),
        )
        self.orders.append(order)
        self.orders_by_id[order.id] = order
        control.record_order(
            {
                "id": order.id,
                "reference": key,
                "lines": [{"product_id": p.id, "quantity": qty} for p, qty in wanted],
                "total": order.total,
                "currency": order.currency,
                "created_at": _iso(now),
                "fails": fails,
            }
        )
        return order

    async def order_list(self, request: Request) -> Response:
        limit, offset = _page(request)
        now = time.time()
        newest_first = self.orders[::-1]
        items = [o.summary(now) for o in newest_first[offset : offset + limit]]
        return JSONResponse(
            {"items": items, "limit": limit, "offset": offset, "total": len(newest_first)}
        )

    async def order(self, request: Request) -> Response:
        order = self.orders_by_id.get(request.path_params["id"])
        if order is None:
            raise ApiError(404, "not_found", f"Order '{request.path_params['id']}' not found")
        return JSONResponse(order.detail(time.time()))


def _page(request: Request) -> tuple[int, int]:
    params = request.query_params
    return (
        int_param(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, invalid=_invalid_param),
        int_param(params, "offset", 0, 0, None, invalid=_invalid_param),
    )


def _invalid_param(name: str, low: int, high: int | None) -> ApiError:
    bounds = f"between {low} and {high}" if high is not None else f">= {low}"
    return ApiError(400, "invalid_request", f"Parameter '{name}' must be an integer {bounds}")


class _ApiKeyGate:
    """Refuses requests without the partner key (control endpoints excepted)."""

    def __init__(self, app: ASGIApp, *, api_key: str) -> None:
        self.app = app
        self.api_key = api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(CONTROL_PREFIX):
            given = dict(scope["headers"]).get(b"x-api-key", b"")
            if not given or not hmac.compare_digest(given, self.api_key):
                message = "Missing X-API-Key header" if not given else "Invalid API key"
                await error_response(error_body, 401, "unauthorized", message)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_sandbox(
    *,
    catalog_size: int = DEFAULT_CATALOG_SIZE,
    seed: int = 42,
    rate_limits: dict[str, tuple[int, float]] | None = None,
    fulfil_delay: float = 0.2,
    api_key: str = SANDBOX_API_KEY,
    honour_idempotency_key: bool = True,
    inactive_share: float = 0.03,
) -> Starlette:
    """The Partner API simulator as a Starlette app (``app.state.control`` drives faults,
    ``app.state.sandbox`` holds the catalog and orders)."""
    if not api_key:
        raise ValueError("api_key must not be empty")
    if fulfil_delay < 0:
        raise ValueError("fulfil_delay must be >= 0")
    limits = {RATE_BUCKET: DOCUMENTED_RATE, **(rate_limits or {})}
    unknown = set(limits) - {RATE_BUCKET}
    if unknown:
        raise ValueError(f"unknown rate bucket(s) {sorted(unknown)}; the only one is 'default'")
    control = SandboxControl(
        rate_rules={
            name: RateRule(limit=int(n), window=float(w)) for name, (n, w) in limits.items()
        },
        fulfil_delay=fulfil_delay,
    )
    control.rng.seed(seed)
    products = generate_catalog(catalog_size, seed=seed, inactive_share=inactive_share)
    state = GamingGoodsSandbox(
        control,
        products,
        seed=seed,
        api_key=api_key,
        honour_idempotency_key=honour_idempotency_key,
    )
    control.info.update(
        {"products": len(state.listed), "inactive_products": len(products) - len(state.listed)}
    )
    routes = [
        *control_routes(control),
        Route("/brands", state.brands, methods=["GET"]),
        Route("/brands/{brand}/categories", state.brand_categories, methods=["GET"]),
        Route("/products", state.products, methods=["GET"]),
        Route("/products/{id}", state.product, methods=["GET"]),
        Route("/checkout", state.checkout, methods=["POST"]),
        Route("/orders", state.order_list, methods=["GET"]),
        Route("/orders/{id}", state.order, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                SandboxMiddleware,
                control=control,
                error_body=error_body,
                bucket_for=lambda request: RATE_BUCKET,
                client_for=lambda request: client_ip(request.scope),
                rate_limited_code="rate_limited",
                server_error_code="internal_error",
            ),
            Middleware(_ApiKeyGate, api_key=api_key),
        ],
        exception_handlers=error_handlers(
            error_body,
            route_errors={
                404: ("not_found", "No endpoint {method} {path}"),
                405: ("method_not_allowed", "{method} is not allowed here"),
            },
            http_error_code="invalid_request",
            server_error_code="internal_error",
        ),
    )
    app.state.control = control
    app.state.sandbox = state
    return app
