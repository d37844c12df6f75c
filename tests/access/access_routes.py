"""Protected routes for the access tests, one per scope (imported by the tests; a module
name of its own so it cannot collide with another folder's helpers)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.api.spec import operation
from gateway.bootstrap import Gateway

MakeGateway = Callable[..., Awaitable[Gateway]]
"""The ``make_gateway`` fixture: ``await make_gateway(**access_settings)``."""


class Whoami(BaseModel):
    reseller_id: str
    key_id: str


def _whoami(request: Request, status: int = 200) -> Response:
    return JSONResponse(
        {"reseller_id": request.state.reseller.id, "key_id": request.state.api_key.id},
        status_code=status,
    )


@operation(
    summary="Who am I",
    operation_id="testWhoami",
    tag="test",
    scope="catalog:read",
    response=Whoami,
)
async def whoami(request: Request) -> Response:
    return _whoami(request)


@operation(
    summary="Read orders",
    operation_id="testOrdersRead",
    tag="test",
    scope="orders:read",
    response=Whoami,
)
async def orders_read(request: Request) -> Response:
    return _whoami(request)


@operation(
    summary="Write orders",
    operation_id="testOrdersWrite",
    tag="test",
    scope="orders:write",
    response=Whoami,
    status=201,
)
async def orders_write(request: Request) -> Response:
    return _whoami(request, 201)


ROUTES = [
    Route("/v1/test/whoami", whoami, methods=["GET"]),
    Route("/v1/test/orders", orders_read, methods=["GET"]),
    Route("/v1/test/orders", orders_write, methods=["POST"]),
]
