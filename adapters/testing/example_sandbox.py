"""The sandbox of the example supplier: a small upstream the reference adapter talks to.

The "Example" upstream is invented for the adapter machinery's own tests and as the
smallest complete illustration of a sandbox built on ``adapters.sandbox_kit``:

* ``X-Api-Key`` authentication (401 ``unauthorized`` when missing or wrong);
* ``GET /products?offset=&limit=`` (limit 1..100) → ``{"items", "total", "offset", "limit"}``;
* ``GET /products/{id}`` → one product plus ``description``; 404 ``not_found``;
* ``POST /orders`` with ``Idempotency-Key``: a known key replays the original order (200),
  a new one creates it (201); 409 ``out_of_stock`` (too few units, or the
  ``refuse_rate`` fault), 422 ``invalid_face_value``;
* ``GET /orders?reference=`` and ``GET /orders/{id}``; an order is ``processing`` until its
  fulfilment delay has passed, then ``completed`` with ``codes`` (or ``failed``);
* errors ``{"error": {"code", "message"}}``; rate buckets ``reads`` and ``orders``.
"""

from __future__ import annotations

import random
import secrets
import time
import uuid
from datetime import UTC, datetime
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.sandbox_kit import (
    RateRule,
    SandboxControl,
    SandboxMiddleware,
    after_commit,
    control_routes,
    error_response,
)

API_KEY = "example-sandbox-key"
#: Documented limits per minute, by bucket (the adapter's ``rate_limits`` keys).
DOCUMENTED_LIMITS = {"reads": 120, "orders": 30}
_CURRENCIES = ("EUR", "USD", "GBP", "JPY")
_BRANDS = ("Steam", "Xbox", "PlayStation", "Nintendo", "Netflix", "Spotify")


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


_error = partial(error_response, error_body)


def generate_catalog(size: int, seed: int) -> list[dict[str, Any]]:
    """``size`` products, identical for the same seed (ids included)."""
    rng = random.Random(seed)
    products = []
    for n in range(size):
        currency = rng.choice(_CURRENCIES)
        unit = 1 if currency == "JPY" else 100
        kind = rng.choice(("key", "voucher", "range"))
        product: dict[str, Any] = {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "title": f"{rng.choice(_BRANDS)} product {n + 1}",
            "brand": rng.choice(_BRANDS),
            "currency": currency,
            "stock": rng.choice((0, 3, 20, 50, 500)),
            "kind": kind,
        }
        discount = f"{rng.randint(0, 80) / 10:.1f}"
        if kind == "key":
            product["price"] = rng.randint(2, 80) * unit
        elif kind == "voucher":
            faces = sorted(rng.sample((5, 10, 20, 25, 50, 100), rng.randint(1, 3)))
            product["faces"] = [f * unit for f in faces]
            product["discount"] = discount
        else:
            product["min"], product["max"] = 5 * unit, rng.choice((100, 200, 500)) * unit
            product["discount"] = discount
        products.append(product)
    return products


def create_app(
    *,
    catalog_size: int = 300,
    seed: int = 42,
    rate_limits: dict[str, tuple[int, float]] | None = None,
    fulfil_delay: float = 0.2,
    api_key: str = API_KEY,
) -> Starlette:
    """The sandbox app; options follow the standard sandbox options."""
    rules = {b: RateRule(limit, 60.0) for b, limit in DOCUMENTED_LIMITS.items()}
    for bucket, (limit, window) in (rate_limits or {}).items():
        rules[bucket] = RateRule(limit, window)
    control = SandboxControl(rate_rules=rules, fulfil_delay=fulfil_delay)
    control.rng.seed(seed)
    catalog = generate_catalog(catalog_size, seed)
    by_id = {p["id"]: p for p in catalog}
    control.info["products"] = len(catalog)
    orders: dict[str, dict[str, Any]] = {}
    by_key: dict[str, str] = {}

    def authorised(request: Request) -> bool:
        return secrets.compare_digest(request.headers.get("x-api-key", ""), api_key)

    def public_product(p: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in p.items()}

    def public_order(order: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in order.items() if not k.startswith("_")}
        if time.time() >= order["_fulfil_at"]:
            if order["_fails"]:
                view["status"] = "failed"
            else:
                view["status"] = "completed"
                view["codes"] = order["_codes"]
        return view

    async def list_products(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "unauthorized", "Missing or invalid API key")
        try:
            offset = int(request.query_params.get("offset", "0"))
            limit = int(request.query_params.get("limit", "20"))
        except ValueError:
            return _error(400, "invalid_request", "offset and limit must be integers")
        if offset < 0 or not 1 <= limit <= 100:
            return _error(400, "invalid_request", "offset >= 0 and 1 <= limit <= 100")
        items = [public_product(p) for p in catalog[offset : offset + limit]]
        return JSONResponse(
            {"items": items, "total": len(catalog), "offset": offset, "limit": limit}
        )

    async def get_product(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "unauthorized", "Missing or invalid API key")
        product = by_id.get(request.path_params["id"])
        if product is None:
            return _error(404, "not_found", "Product not found")
        return JSONResponse({**public_product(product), "description": "Example product."})

    async def create_order(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "unauthorized", "Missing or invalid API key")
        key = request.headers.get("idempotency-key")
        if key and key in by_key:
            return JSONResponse(public_order(orders[by_key[key]]), 200)
        try:
            body = await request.json()
            product_id, quantity = str(body["product_id"]), int(body["quantity"])
            face = body.get("face_value")
        except (ValueError, KeyError, TypeError):
            return _error(400, "invalid_request", "product_id and quantity are required")
        product = by_id.get(product_id)
        if product is None:
            return _error(404, "not_found", "Product not found")
        if quantity < 1 or product["stock"] < quantity or control.refuses(request.url.path):
            return _error(409, "out_of_stock", "Not enough stock")
        if product["kind"] == "key":
            unit_price = product["price"]
        else:
            valid = (
                face in product["faces"]
                if product["kind"] == "voucher"
                else isinstance(face, int) and product["min"] <= face <= product["max"]
            )
            if not valid:
                return _error(422, "invalid_face_value", "Face value not offered")
            unit_price = face
        now = time.time()
        order_id = str(uuid.UUID(int=control.rng.getrandbits(128), version=4))
        order = {
            "id": order_id,
            "reference": key,
            "status": "processing",
            "product_id": product_id,
            "quantity": quantity,
            "face_value": face,
            "total": unit_price * quantity,
            "currency": product["currency"],
            "created_at": datetime.fromtimestamp(now, UTC).isoformat(),
            "_fulfil_at": now + control.current_fulfil_delay(),
            "_fails": control.roll(control.faults.fulfilment_failure_rate),
            "_codes": [
                "-".join(secrets.token_hex(3).upper() for _ in range(3)) for _ in range(quantity)
            ],
        }
        product["stock"] -= quantity
        orders[order_id] = order
        if key:
            by_key[key] = order_id
        control.record_order(
            {
                "id": order_id,
                "reference": key,
                "lines": [{"product_id": product_id, "quantity": quantity, "face_value": face}],
                "created_at": order["created_at"],
            }
        )
        return after_commit(
            control, error_body, "internal_error", JSONResponse(public_order(order), 201)
        )

    async def list_orders(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "unauthorized", "Missing or invalid API key")
        reference = request.query_params.get("reference")
        found = [o for o in orders.values() if reference is None or o["reference"] == reference]
        return JSONResponse({"items": [public_order(o) for o in found], "total": len(found)})

    async def get_order(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "unauthorized", "Missing or invalid API key")
        order = orders.get(request.path_params["id"])
        if order is None:
            return _error(404, "not_found", "Order not found")
        return JSONResponse(public_order(order))

    def bucket_for(request: Request) -> str | None:
        if request.method == "POST" and request.url.path == "/orders":
            return "orders"
        return "reads"

    app = Starlette(
        routes=[
            Route("/products", list_products, methods=["GET"]),
            Route("/products/{id}", get_product, methods=["GET"]),
            Route("/orders", create_order, methods=["POST"]),
            Route("/orders", list_orders, methods=["GET"]),
            Route("/orders/{id}", get_order, methods=["GET"]),
            *control_routes(control),
        ],
        middleware=[
            Middleware(
                SandboxMiddleware,
                control=control,
                error_body=error_body,
                bucket_for=bucket_for,
                client_for=lambda r: r.headers.get("x-api-key", "anonymous"),
                rate_limited_code="rate_limited",
                server_error_code="internal_error",
            )
        ],
    )
    app.state.control = control
    return app
