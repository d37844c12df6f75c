"""Order routes: create (idempotent), read one (optionally waiting), list.

Create answers ``201 Created`` when the order is final (``completed``,
``partially_completed`` or ``failed``) by the time it answers, ``202 Accepted`` when it
is still ``pending`` or ``processing``: then read it with ``GET /v1/orders/{id}``
(``Prefer: wait=N`` waits for it), or wait for the webhook.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.api.guard import caller
from gateway.api.spec import operation, parse_body, parse_query
from gateway.bootstrap import Gateway
from gateway.orders.idempotency import parse_key
from gateway.orders.prefer import WaitPreference, parse_prefer
from gateway.orders.schemas import (
    CreateOrderRequest,
    ListOrdersQuery,
    OrderEnvelope,
    OrderListEnvelope,
)
from gateway.orders.service import OrdersService
from gateway.orders.views import render_order

_PREFER = (
    "RFC 7240. `wait=N`: answer once the order is final or after N seconds (capped at "
    "orders.max_wait_seconds, 30 by default); `respond-async`: answer at once."
)
_PREFERENCE_APPLIED = "The preference honoured, e.g. `wait=5` (present when Prefer was sent)."


def _service(request: Request) -> OrdersService:
    gateway: Gateway = request.app.state.gateway
    return gateway.services.orders


def _wait(request: Request, service: OrdersService) -> WaitPreference:
    return parse_prefer(request.headers.getlist("prefer"), service.settings.max_wait_seconds)


def _applied(headers: dict[str, str], preference: WaitPreference) -> dict[str, str]:
    if preference.applied is not None:
        headers["Preference-Applied"] = preference.applied
        headers["Vary"] = "Prefer"
    return headers


@operation(
    summary="Place an order",
    operation_id="createOrder",
    tag="orders",
    scope="orders:write",
    body=CreateOrderRequest,
    response=OrderEnvelope,
    status=201,
    responses={202: OrderEnvelope},
    errors=(400, 402, 409, 422, 503),
    request_headers={
        "Idempotency-Key": "Required. Names this order creation: sending the same request "
        "again with the same key (within 48 hours by default) returns that order as it is "
        "now instead of buying twice. Same key with another body: 422 idempotency_key_reuse; "
        "while the first is running: 409 idempotency_request_in_progress.",
        "Prefer": _PREFER,
    },
    response_headers={
        "Location": "The order's URL.",
        "Idempotent-Replayed": "`true` when this answers an earlier request with the same "
        "Idempotency-Key: the order as it is now (201 final, 202 still running).",
        "Preference-Applied": _PREFERENCE_APPLIED,
    },
    description="Validates every item against the live catalog (existence, stock, face "
    "value range, quantity bounds, and `unit_price`: if the current price is higher, "
    "nothing is bought and the answer is 409 `price_changed`), stores the order, then "
    "places it with the suppliers. 201 when the order is final by the time of the answer "
    "(use `Prefer: wait=N` for instant products), 202 while it is pending or processing. "
    "The order's value per currency is held on your account (`GET /v1/account`) until "
    "it is delivered (captured) or not (released). "
    "Errors: 400 idempotency_key_missing / idempotency_key_invalid, 402 insufficient_funds "
    "/ order_limit_exceeded / daily_limit_exceeded (nothing created; the key is not used "
    "up), 409 "
    "idempotency_request_in_progress / out_of_stock / price_changed, 422 "
    "idempotency_key_reuse / validation_failed / too_many_items / quantity_out_of_range / "
    "variant_not_found / supplier_not_available / face_value_required / "
    "face_value_out_of_range / face_value_not_allowed / currency_mismatch / "
    "variant_not_purchasable, 503 catalog_not_ready.",
)
async def create_order(request: Request) -> Response:
    service = _service(request)
    reseller = caller(request)
    key = parse_key(request.headers.get("idempotency-key"))
    body = await parse_body(request, CreateOrderRequest)
    preference = _wait(request, service)
    answer = await service.create(reseller, key, body, preference.seconds)
    headers: dict[str, str] = {}
    if answer.order_id is not None:
        headers["Location"] = f"/v1/orders/{answer.order_id}"
    if answer.replayed:
        headers["Idempotent-Replayed"] = "true"
    else:
        _applied(headers, preference)
    return Response(answer.body, answer.status, headers=headers, media_type="application/json")


@operation(
    summary="Get an order",
    operation_id="getOrder",
    tag="orders",
    scope="orders:read",
    response=OrderEnvelope,
    errors=(404,),
    request_headers={"Prefer": _PREFER},
    response_headers={"Preference-Applied": _PREFERENCE_APPLIED},
    description="Status, per-item status, prices as ordered, and the codes of delivered "
    "items. Only your own orders: any other id is 404 `order_not_found`.",
)
async def get_order(request: Request) -> Response:
    service = _service(request)
    reseller = caller(request)
    preference = _wait(request, service)
    order = await service.get(reseller.id, request.path_params["order_id"], preference.seconds)
    return JSONResponse(
        {"data": render_order(order, service.cipher, codes=True)},
        headers=_applied({}, preference),
    )


@operation(
    summary="List your orders",
    operation_id="listOrders",
    tag="orders",
    scope="orders:read",
    query=ListOrdersQuery,
    response=OrderListEnvelope,
    description="Your orders, newest first, optionally only those in one status. Codes "
    "are not included in lists: get the order.",
)
async def list_orders(request: Request) -> Response:
    service = _service(request)
    reseller = caller(request)
    query = parse_query(request, ListOrdersQuery)
    total, orders = await service.list(reseller.id, query.status, query.page, query.page_size)
    return JSONResponse(
        {
            "data": {
                "orders": [render_order(o, service.cipher, codes=False) for o in orders],
                "page": query.page,
                "page_size": query.page_size,
                "total": total,
            }
        }
    )


routes = [
    Route("/v1/orders", create_order, methods=["POST"]),
    Route("/v1/orders", list_orders, methods=["GET"]),
    Route("/v1/orders/{order_id}", get_order, methods=["GET"]),
]
