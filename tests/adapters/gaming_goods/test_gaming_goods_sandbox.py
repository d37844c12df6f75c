"""The Partner API sandbox behaves as the document says (in-process, ASGITransport)."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import pytest
from gaming_goods_helpers import AUTH, small_sandbox
from starlette.applications import Starlette

from adapters.gaming_goods.catalog_data import generate_catalog
from adapters.gaming_goods.sandbox import create_sandbox

CODE = re.compile(r"^[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}$")


def in_process(app: Starlette, headers: dict[str, str] | None = AUTH) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sandbox", headers=headers
    )


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def sandbox_state(app: Starlette) -> Any:
    return app.state.sandbox


def in_stock(app: Starlette, minimum: int = 3) -> Any:
    return next(p for p in sandbox_state(app).listed if p.quantity >= minimum)


# ------------------------------------------------------------------ auth, headers


async def test_missing_and_wrong_api_key_are_refused_in_the_error_shape(app: Starlette) -> None:
    async with in_process(app, headers=None) as anonymous:
        assert_error(await anonymous.get("/products"), 401, "unauthorized")
        assert_error(
            await anonymous.get("/products", headers={"X-API-Key": "pk_live_wrong"}),
            401,
            "unauthorized",
        )
        # Control endpoints need no key.
        assert (await anonymous.get("/_sandbox/stats")).status_code == 200


async def test_every_answer_carries_rate_limit_headers(app: Starlette) -> None:
    async with in_process(app, headers=None) as anonymous:
        refused = await anonymous.get("/products")
    async with in_process(app) as client:
        ok = await client.get("/products")
        missing = await client.get("/products/nope")
    for response in (refused, ok, missing):
        assert response.headers["X-RateLimit-Limit"] == "100000"
        assert int(response.headers["X-RateLimit-Remaining"]) >= 0
        assert int(response.headers["X-RateLimit-Reset"]) > time.time()


async def test_documented_limit_is_100_per_minute_per_ip_by_default() -> None:
    async with in_process(create_sandbox(catalog_size=5)) as client:
        first = await client.get("/products")
        second = await client.get("/brands")
    assert first.headers["X-RateLimit-Limit"] == "100"
    assert int(first.headers["X-RateLimit-Remaining"]) == 99
    if second.headers["X-RateLimit-Reset"] == first.headers["X-RateLimit-Reset"]:
        assert int(second.headers["X-RateLimit-Remaining"]) == 98  # one bucket, every path
    reset = int(first.headers["X-RateLimit-Reset"])
    assert reset % 60 == 0 and 0 < reset - time.time() <= 60


async def test_429_after_the_window_limit_with_retry_after() -> None:
    app = small_sandbox(rate_limits={"default": (3, 3600.0)})
    async with in_process(app) as client:
        statuses = [(await client.get("/products")).status_code for _ in range(3)]
        limited = await client.get("/orders")
    assert statuses == [200, 200, 200]
    assert_error(limited, 429, "rate_limited")
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(limited.headers["Retry-After"]) <= 3600
    assert app.state.control.stats["rate_limited"] == 1


def test_unknown_rate_bucket_is_refused() -> None:
    with pytest.raises(ValueError, match="default"):
        create_sandbox(catalog_size=1, rate_limits={"checkout": (1, 60.0)})


async def test_unknown_route_and_method_answer_in_the_error_shape(
    client: httpx.AsyncClient,
) -> None:
    assert_error(await client.get("/nowhere"), 404, "not_found")
    assert_error(await client.delete("/products"), 405, "method_not_allowed")


async def test_injected_server_error_uses_the_error_shape(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    await client.put("/_sandbox/faults", json={"error_rate": 1.0, "paths": ["/brands"]})
    assert_error(await client.get("/brands"), 500, "internal_error")
    assert (await client.get("/products")).status_code == 200


# ---------------------------------------------------------------------- catalog


async def test_products_paginate_to_the_documented_total(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    default = (await client.get("/products")).json()
    assert set(default) == {"items", "total", "limit", "offset"}
    assert (default["limit"], default["offset"], len(default["items"])) == (20, 0, 20)
    seen: list[str] = []
    offset = 0
    while True:
        page = (await client.get("/products", params={"limit": 7, "offset": offset})).json()
        if not page["items"]:
            break
        seen += [item["id"] for item in page["items"]]
        offset += len(page["items"])
    assert len(seen) == len(set(seen)) == default["total"] == app.state.control.info["products"]
    item = default["items"][0]
    assert set(item) == {
        "id", "title", "brand", "category", "price", "currency", "quantity", "is_available",
        "delivery_type", "product_type", "images", "short_description",
    }  # fmt: skip
    assert isinstance(item["price"], int) and item["currency"] == "EUR"


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"offset": "-1"},
        {"offset": "1.5"},
    ],
)
async def test_invalid_pagination_is_400_invalid_request(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    for path in ("/products", "/brands", "/orders"):
        assert_error(await client.get(path, params=params), 400, "invalid_request")


async def test_limit_100_is_the_maximum_page(client: httpx.AsyncClient) -> None:
    async with in_process(small_sandbox(catalog_size=150)) as big:
        page = (await big.get("/products", params={"limit": 100})).json()
    assert len(page["items"]) == 100 and page["total"] > 100


async def test_catalog_is_deterministic_by_seed() -> None:
    async def ids(seed: int) -> list[str]:
        async with in_process(small_sandbox(seed=seed)) as c:
            return [
                i["id"] for i in (await c.get("/products", params={"limit": 100})).json()["items"]
            ]

    assert await ids(7) == await ids(7)
    assert await ids(7) != await ids(8)
    # A bigger catalog with the same seed keeps the ids of the smaller one.
    assert [p.id for p in generate_catalog(30, seed=7)] == [
        p.id for p in generate_catalog(90, seed=7)[:30]
    ]


async def test_brand_and_category_filters(client: httpx.AsyncClient) -> None:
    steam = (await client.get("/products", params={"brand": "steam", "limit": 100})).json()
    assert steam["total"] > 0 and all(i["brand"] == "Steam" for i in steam["items"])
    keys = (
        await client.get(
            "/products", params={"brand": "Steam", "category": "Game Keys", "limit": 100}
        )
    ).json()
    assert 0 < keys["total"] <= steam["total"]
    assert all(i["category"] == "Game Keys" for i in keys["items"])
    none = (await client.get("/products", params={"brand": "Sega"})).json()
    assert none == {"items": [], "total": 0, "limit": 20, "offset": 0}


async def test_brands_and_brand_categories_count_listed_products(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    brands = (await client.get("/brands", params={"limit": 100})).json()
    assert set(brands) == {"items", "limit", "offset", "total"}
    assert sum(b["product_count"] for b in brands["items"]) == app.state.control.info["products"]
    steam = next(b for b in brands["items"] if b["brand"] == "Steam")
    cats = (await client.get("/brands/Steam/categories")).json()
    assert cats["brand"] == "Steam"
    assert sum(c["product_count"] for c in cats["categories"]) == steam["product_count"]
    assert_error(await client.get("/brands/Sega/categories"), 404, "not_found")


async def test_product_detail_adds_description_and_specifications(
    client: httpx.AsyncClient,
) -> None:
    first = (await client.get("/products")).json()["items"][0]
    assert first["title"] == "Cyberpunk 2077 Steam Key"
    detail = (await client.get(f"/products/{first['id']}")).json()
    assert {k: detail[k] for k in first} == first
    assert detail["description"]
    keys = {s["key"] for s in detail["specifications"]}
    assert {"platform", "region", "activation"} <= keys


async def test_inactive_and_unknown_products_are_404(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    app_state = sandbox_state(app)
    inactive = [p for p in app_state.by_id.values() if not p.active]
    assert inactive, "the 60-product catalog should hold an inactive product"
    listed = {
        i["id"] for i in (await client.get("/products", params={"limit": 100})).json()["items"]
    }
    assert inactive[0].id not in listed
    assert_error(await client.get(f"/products/{inactive[0].id}"), 404, "not_found")
    assert_error(
        await client.get("/products/00000000-0000-0000-0000-000000000000"), 404, "not_found"
    )


def test_quantity_zero_means_unavailable() -> None:
    products = generate_catalog(400, seed=3)
    empty = [p for p in products if p.quantity == 0]
    assert empty and all(p.list_item()["is_available"] is False for p in empty)
    assert all(0 <= p.quantity <= 50 for p in products)


# --------------------------------------------------------------------- checkout


async def checkout(client: httpx.AsyncClient, lines: list[dict[str, Any]], **kw: Any) -> Any:
    return await client.post("/checkout", json={"source": "lines", "lines": lines}, **kw)


async def test_checkout_creates_an_order_and_takes_stock(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    product = in_stock(app)
    before = product.quantity
    response = await checkout(client, [{"product_id": product.id, "quantity": 2}])
    assert response.status_code == 201
    (order,) = response.json()["orders"]
    assert order == {
        "id": order["id"],
        "status": "created",
        "total": 2 * product.price,
        "currency": "EUR",
    }
    detail = (await client.get(f"/products/{product.id}")).json()
    assert detail["quantity"] == before - 2
    (logged,) = app.state.control.orders
    assert logged["id"] == order["id"] and logged["reference"] is None
    assert logged["lines"] == [{"product_id": product.id, "quantity": 2}]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"source": "cart"}, 400, "invalid_request"),
        ({"source": "wishlist"}, 400, "invalid_request"),
        ({"source": "lines", "lines": []}, 400, "invalid_request"),
        ({"source": "lines", "lines": [{"quantity": 1}]}, 400, "invalid_request"),
        (
            {"source": "lines", "lines": [{"product_id": "P", "quantity": 0}]},
            400,
            "invalid_request",
        ),
        (
            {"source": "lines", "lines": [{"product_id": "P", "quantity": "1"}]},
            400,
            "invalid_request",
        ),
        ({"source": "lines", "lines": [{"product_id": "nope", "quantity": 1}]}, 404, "not_found"),
        (
            {"source": "lines", "lines": [{"product_id": "P", "quantity": 10_000}]},
            409,
            "out_of_stock",
        ),
        (["not", "an", "object"], 400, "invalid_request"),
    ],
)
async def test_checkout_validation(
    app: Starlette, client: httpx.AsyncClient, body: Any, status: int, code: str
) -> None:
    product = in_stock(app)
    raw = repr(body).replace("'P'", repr(product.id)).replace("'", '"')
    response = await client.post(
        "/checkout", content=raw, headers={"Content-Type": "application/json"}
    )
    assert_error(response, status, code)
    assert app.state.control.orders == []
    assert product.quantity == (await client.get(f"/products/{product.id}")).json()["quantity"]


async def test_checkout_refuses_a_body_that_is_not_json(client: httpx.AsyncClient) -> None:
    assert_error(await client.post("/checkout", content=b"{oops"), 400, "invalid_request")


async def test_checkout_of_an_inactive_product_is_404(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    inactive = next(p for p in sandbox_state(app).by_id.values() if not p.active)
    response = await checkout(client, [{"product_id": inactive.id, "quantity": 1}])
    assert_error(response, 404, "not_found")


async def test_stock_is_checked_across_repeated_lines(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    product = in_stock(app)
    half = product.quantity // 2 + 1
    lines = [{"product_id": product.id, "quantity": half}] * 2
    assert_error(await checkout(client, lines), 409, "out_of_stock")


# ------------------------------------------------------------------ idempotency


async def test_idempotency_key_replays_the_same_answer(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    product = in_stock(app)
    lines = [{"product_id": product.id, "quantity": 1}]
    first = await checkout(client, lines, headers={"Idempotency-Key": "ref-1"})
    again = await checkout(client, lines, headers={"Idempotency-Key": "ref-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(app.state.control.orders) == 1
    assert app.state.control.orders[0]["reference"] == "ref-1"


async def test_idempotency_key_with_another_body_is_422(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    product = in_stock(app)
    await checkout(
        client, [{"product_id": product.id, "quantity": 1}], headers={"Idempotency-Key": "k"}
    )
    conflict = await checkout(
        client, [{"product_id": product.id, "quantity": 2}], headers={"Idempotency-Key": "k"}
    )
    assert_error(conflict, 422, "idempotency_conflict")
    assert len(app.state.control.orders) == 1


async def test_a_platform_ignoring_the_key_creates_duplicates() -> None:
    app = small_sandbox(honour_idempotency_key=False)
    product = in_stock(app)
    async with in_process(app) as client:
        for _ in range(2):
            response = await checkout(
                client,
                [{"product_id": product.id, "quantity": 1}],
                headers={"Idempotency-Key": "k"},
            )
            assert response.status_code == 201
    assert len({o["id"] for o in app.state.control.orders}) == 2


async def test_overlong_idempotency_key_is_refused(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    product = in_stock(app)
    response = await checkout(
        client, [{"product_id": product.id, "quantity": 1}], headers={"Idempotency-Key": "x" * 256}
    )
    assert_error(response, 400, "invalid_request")


# ---------------------------------------------------------------------- orders


async def test_order_is_created_then_completed_with_one_code_per_unit(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    product = in_stock(app)
    order_id = (await checkout(client, [{"product_id": product.id, "quantity": 3}])).json()[
        "orders"
    ][0]["id"]
    early = (await client.get(f"/orders/{order_id}")).json()
    assert early["status"] == "created" and early["delivery"]["codes"] == []
    assert set(early) == {
        "id", "buyer_id", "status", "items", "amounts", "payment", "delivery",
        "created_at", "updated_at",
    }  # fmt: skip
    assert early["items"] == [
        {
            "product_id": product.id,
            "title": product.title,
            "unit_price": product.price,
            "quantity": 3,
        }
    ]
    assert early["amounts"] == {"buyer_total": 3 * product.price, "platform_fee": 0}
    await asyncio.sleep(0.15)  # past the 0.1 s fulfilment delay (wall clock, read on GET)
    done = (await client.get(f"/orders/{order_id}")).json()
    assert done["status"] == "completed"
    codes = done["delivery"]["codes"]
    assert len(codes) == len(set(codes)) == 3 and all(CODE.match(c) for c in codes)
    assert done["updated_at"] >= done["created_at"]


async def test_codes_differ_between_identical_sandboxes() -> None:
    async def codes() -> list[str]:
        app = small_sandbox(fulfil_delay=0)
        async with in_process(app) as client:
            product = in_stock(app)
            oid = (await checkout(client, [{"product_id": product.id, "quantity": 1}])).json()[
                "orders"
            ][0]["id"]
            return (await client.get(f"/orders/{oid}")).json()["delivery"]["codes"]

    assert await codes() != await codes()


async def test_fulfilment_failure_injection_fails_without_codes(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    await client.put(
        "/_sandbox/faults", json={"fulfilment_failure_rate": 1.0, "fulfil_delay_seconds": 0}
    )
    product = in_stock(app)
    oid = (await checkout(client, [{"product_id": product.id, "quantity": 1}])).json()["orders"][0][
        "id"
    ]
    detail = (await client.get(f"/orders/{oid}")).json()
    assert detail["status"] == "failed"
    assert detail["delivery"]["codes"] == []
    assert detail["payment"]["state"] == "refunded"


async def test_order_list_is_newest_first_and_paginated(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    product = in_stock(app, minimum=3)
    ids = []
    for _ in range(3):
        response = await checkout(client, [{"product_id": product.id, "quantity": 1}])
        ids.append(response.json()["orders"][0]["id"])
    page = (await client.get("/orders", params={"limit": 2})).json()
    assert set(page) == {"items", "limit", "offset", "total"}
    assert page["total"] == 3 and [i["id"] for i in page["items"]] == ids[:0:-1]
    rest = (await client.get("/orders", params={"limit": 2, "offset": 2})).json()
    assert [i["id"] for i in rest["items"]] == [ids[0]]
    item = page["items"][0]
    assert set(item) == {"id", "status", "total", "currency", "created_at"}
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", item["created_at"])


async def test_unknown_order_is_404(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/orders/nope"), 404, "not_found")
