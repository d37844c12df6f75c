"""Test-only operations that exercise the API face (query, body, headers, errors) until,
and alongside, the catalog and order routes. A module name of its own so it cannot
collide with another folder's helpers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.api.errors import ApiError
from gateway.api.spec import operation, parse_body, parse_query

MAX_BODY_BYTES = 2048
"""The body limit the API tests configure."""


class ItemsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=10, ge=1, le=50, description="Items per page.")
    tag: list[str] = Field(default_factory=list, description="Repeatable filter.")
    sort: Literal["name", "price"] = "name"


class NewItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=50)
    price_minor: int = Field(ge=0, le=10**9)
    currency: str = Field(pattern=r"^[A-Z]{3}$")


class Item(BaseModel):
    id: str
    name: str
    price_minor: int
    currency: str


class ItemPage(BaseModel):
    data: list[Item]
    limit: int
    tags: list[str]


class ItemCreated(BaseModel):
    data: Item
    reseller_id: str


@operation(
    summary="List test items",
    operation_id="testListItems",
    tag="test",
    scope="catalog:read",
    query=ItemsQuery,
    response=ItemPage,
)
async def list_items(request: Request) -> Response:
    query = parse_query(request, ItemsQuery)
    items = [
        Item(id=f"i{n}", name=f"item {n}", price_minor=100 * n, currency="EUR")
        for n in range(min(query.limit, 3))
    ]
    page = ItemPage(data=items, limit=query.limit, tags=query.tag)
    return JSONResponse(page.model_dump(mode="json"))


@operation(
    summary="Create a test item",
    operation_id="testCreateItem",
    tag="test",
    scope="orders:write",
    body=NewItem,
    response=ItemCreated,
    status=201,
    request_headers={"Idempotency-Key": "Makes a retried create safe (1-255 characters)."},
    response_headers={"Idempotent-Replayed": "true when this answer is a stored replay."},
)
async def create_item(request: Request) -> Response:
    key = request.headers.get("idempotency-key")
    if not key or len(key) > 255:
        raise ApiError(400, "idempotency_key_required", "send an Idempotency-Key of 1-255 chars")
    new = await parse_body(request, NewItem)
    item = Item(id="i-new", **new.model_dump())
    body = ItemCreated(data=item, reseller_id=request.state.reseller.id)
    return JSONResponse(
        body.model_dump(mode="json"), status_code=201, headers={"Idempotent-Replayed": "false"}
    )


@operation(summary="Always fails", operation_id="testBoom", tag="test", scope="catalog:read")
async def boom(request: Request) -> Response:
    raise RuntimeError("secret internal detail: database password is hunter2")


@operation(summary="Always fails, publicly", operation_id="testPublicBoom", tag="test")
async def public_boom(request: Request) -> Response:
    raise ZeroDivisionError("another internal detail")


ROUTES = [
    Route("/v1/test/items", list_items, methods=["GET"]),
    Route("/v1/test/items", create_item, methods=["POST"]),
]
"""Well-behaved operations (also fuzzed by schemathesis)."""

FAILING_ROUTES = [
    Route("/v1/test/boom", boom, methods=["GET"]),
    Route("/test/boom", public_boom, methods=["GET"]),
]
"""Operations that raise, to check the 500 path."""
