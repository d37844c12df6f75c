"""The voucher sandbox behaves as the supplier's documents say (in-process, ASGITransport)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from adapters.vouchers.catalog_data import CURRENCY_IDS, CatalogProduct, generate_catalog
from adapters.vouchers.sandbox import SANDBOX_API_KEY, SANDBOX_API_SECRET, create_sandbox


def _error(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    assert set(error) == {"name", "code", "message"}
    return response.status_code, error["code"], error["message"]


def _product(app: Any, test: Callable[[CatalogProduct], bool]) -> CatalogProduct:
    return next(p for p in app.state.sandbox.products.values() if test(p))


def _fixed(p: CatalogProduct) -> bool:
    return not any(d.is_range for d in p.denominations)


def _ranged(p: CatalogProduct) -> bool:
    return any(d.is_range for d in p.denominations)


# ---------------------------------------------------------------- authentication


async def test_login_returns_tokens_lifetimes_and_client_id(connect: Any) -> None:
    client = connect(create_sandbox(catalog_size=10))
    response = await client.post(
        "/auth/login", json={"username": SANDBOX_API_KEY, "password": SANDBOX_API_SECRET}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["refresh_expires_in"] == pytest.approx(7 * 86400, abs=5)
    assert body["client_id"] == 4217
    assert body["access_token"] and body["refresh_token"]
    assert body["access_token"] != body["refresh_token"]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"username": SANDBOX_API_KEY, "password": "wrong"}, (401, "UNAUTHORIZED")),
        ({"username": "nobody", "password": SANDBOX_API_SECRET}, (401, "UNAUTHORIZED")),
        ({"username": SANDBOX_API_KEY}, (400, "VALIDATION_FAILURE")),
        (["not", "an", "object"], (400, "VALIDATION_FAILURE")),
    ],
)
async def test_bad_logins_are_refused_in_the_upstream_shape(
    connect: Any, payload: Any, expected: tuple[int, str]
) -> None:
    client = connect(create_sandbox(catalog_size=10))
    response = await client.post("/auth/login", json=payload)
    status, code, _ = _error(response)
    assert (status, code) == expected
    assert "access_token" not in response.text


@pytest.mark.parametrize(
    "authorization", [None, "Bearer", "Bearer not-a-token", "Basic dXNlcjpwYXNz"]
)
async def test_calls_without_a_valid_bearer_are_401(
    connect: Any, authorization: str | None
) -> None:
    client = connect(create_sandbox(catalog_size=10))
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.get("/api/v1/products", headers=headers)
    assert _error(response)[:2] == (401, "UNAUTHORIZED")
    assert response.json()["error"]["name"] == "UnauthorizedError"


async def test_access_token_expires_and_refresh_renews_it(connect: Any) -> None:
    client = connect(create_sandbox(catalog_size=10, access_ttl=0.2))
    tokens = (
        await client.post(
            "/auth/login", json={"username": SANDBOX_API_KEY, "password": SANDBOX_API_SECRET}
        )
    ).json()
    old = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await client.get("/api/v1/products", headers=old)).status_code == 200
    await asyncio.sleep(0.3)  # past the token's 0.2 s lifetime: the expiry is what is tested
    assert _error(await client.get("/api/v1/products", headers=old))[:2] == (
        401,
        "UNAUTHORIZED",
    )

    refreshed = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    new = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    assert refreshed.json()["refresh_token"] == tokens["refresh_token"]
    assert (await client.get("/api/v1/products", headers=new)).status_code == 200

    bad = await client.post("/auth/refresh", json={"refresh_token": "forged"})
    assert _error(bad)[:2] == (401, "UNAUTHORIZED")
    missing = await client.post("/auth/refresh", json={})
    assert _error(missing)[:2] == (400, "VALIDATION_FAILURE")


async def test_refresh_retires_the_previous_access_token(connect: Any, authed: Any) -> None:
    client = connect(create_sandbox(catalog_size=10))
    login = await client.post(
        "/auth/login", json={"username": SANDBOX_API_KEY, "password": SANDBOX_API_SECRET}
    )
    tokens = login.json()
    await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    stale = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await client.get("/api/v1/products", headers=stale)).status_code == 401


async def test_logout_ends_the_session(connect: Any) -> None:
    client = connect(create_sandbox(catalog_size=10))
    tokens = (
        await client.post(
            "/auth/login", json={"username": SANDBOX_API_KEY, "password": SANDBOX_API_SECRET}
        )
    ).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await client.post("/auth/logout", headers=headers)).status_code == 200
    assert (await client.get("/api/v1/products", headers=headers)).status_code == 401
    again = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 401


async def test_ip_allowlist_applies_to_login_and_everything_else(connect: Any, authed: Any) -> None:
    app = create_sandbox(catalog_size=10, ip_allowlist=["10.0.0.0/8", "192.0.2.7"])
    outsider = connect(app, ip="127.0.0.1")
    response = await outsider.post(
        "/auth/login", json={"username": SANDBOX_API_KEY, "password": SANDBOX_API_SECRET}
    )
    assert _error(response) == (403, "FORBIDDEN", "IP address not authorized")
    assert response.json()["error"]["name"] == "ForbiddenError"
    assert (await outsider.get("/api/v1/products/1")).status_code == 403
    # The control plane is not the upstream's: it stays reachable for tests.
    assert (await outsider.get("/_sandbox/stats")).status_code == 200

    for ip in ("10.20.30.40", "192.0.2.7"):
        insider = connect(app, ip=ip)
        headers = await authed(insider)
        assert (await insider.get("/api/v1/products", headers=headers)).status_code == 200


async def test_feature_flag_off_is_invalid_feature(connect: Any, authed: Any) -> None:
    client = connect(create_sandbox(catalog_size=10, vouchers_feature_enabled=False))
    headers = await authed(client)  # login itself is not a voucher feature
    for method, path in (
        ("GET", "/api/v1/products"),
        ("GET", "/api/v1/products/1"),
        ("POST", "/api/v1/orders"),
        ("GET", "/api/v1/orders"),
    ):
        response = await client.request(method, path, headers=headers, json={})
        assert _error(response) == (
            400,
            "INVALID_FEATURE",
            "The requested feature is not enabled for this client",
        )


# ---------------------------------------------------------------------- catalog


async def test_pagination_headers_walk_every_product_once(connect: Any, authed: Any) -> None:
    app = create_sandbox(catalog_size=100)
    client = connect(app)
    headers = await authed(client)
    seen: list[int] = []
    page = 1
    while True:
        response = await client.get(
            "/api/v1/products", params={"page": page, "limit": 37}, headers=headers
        )
        assert response.status_code == 200
        items = response.json()
        assert isinstance(items, list)
        assert response.headers["X-Page"] == str(page)
        assert response.headers["X-Per-Page"] == "37"
        assert response.headers["X-Total-Count"] == "100"
        assert response.headers["X-Total-Pages"] == "3"
        assert response.headers["X-Page-Size"] == str(len(items))
        seen += [item["id"] for item in items]
        if response.headers["X-Has-More"] == "false":
            break
        assert response.headers["X-Has-More"] == "true"
        page += 1
    assert page == 3
    assert len(seen) == len(set(seen)) == 100 == app.state.control.info["products"]

    beyond = await client.get("/api/v1/products", params={"page": 4, "limit": 37}, headers=headers)
    assert beyond.json() == []
    assert beyond.headers["X-Has-More"] == "false"
    assert beyond.headers["X-Page-Size"] == "0"


async def test_default_page_is_ten_products(connect: Any, authed: Any) -> None:
    client = connect(create_sandbox(catalog_size=25))
    response = await client.get("/api/v1/products", headers=await authed(client))
    assert len(response.json()) == 10
    assert response.headers["X-Page"] == "1"
    assert response.headers["X-Per-Page"] == "10"


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "ten"},
        {"page": "0"},
        {"page": "-1"},
        {"sort_by": "price"},
        {"sort_dir": "up"},
        {"country_id": "USA"},
        {"currency_id": "1.5"},
        {"category": ""},
    ],
)
async def test_invalid_query_parameters(connect: Any, authed: Any, params: dict[str, str]) -> None:
    client = connect(create_sandbox(catalog_size=10))
    response = await client.get("/api/v1/products", params=params, headers=await authed(client))
    assert _error(response) == (400, "BAD_REQUEST", "Invalid query parameters")
    assert response.json()["error"]["name"] == "BadRequestError"


async def test_filters_and_search(connect: Any, authed: Any) -> None:
    app = create_sandbox()
    client = connect(app)
    headers = await authed(client)
    catalog = list(app.state.sandbox.products.values())

    async def ids(**params: Any) -> set[int]:
        response = await client.get(
            "/api/v1/products", params={"limit": 500, **params}, headers=headers
        )
        assert response.status_code == 200
        return {item["id"] for item in response.json()}

    assert await ids(category="Gaming") == {p.id for p in catalog if p.category == "Gaming"}
    assert await ids(category="gaming") == set()  # exact match
    assert await ids(country_id=6) == {p.id for p in catalog if p.country.alpha3 == "JPN"}
    eur = await ids(currency_id=CURRENCY_IDS["EUR"])
    assert eur == {p.id for p in catalog if p.currency == "EUR"}
    assert {app.state.sandbox.products[i].country.alpha3 for i in eur} >= {"DEU", "FRA"}
    steam = await ids(search="sTeAm WALLET")
    assert steam == {p.id for p in catalog if "steam wallet" in p.name.lower()}
    assert steam
    both = await ids(search="steam", country_id=1)
    assert both == {p.id for p in catalog if "steam" in p.name.lower() and p.country.id == 1}


async def test_sorting(connect: Any, authed: Any) -> None:
    client = connect(create_sandbox(catalog_size=80))
    headers = await authed(client)

    async def listing(**params: Any) -> list[dict[str, Any]]:
        response = await client.get(
            "/api/v1/products", params={"limit": 500, **params}, headers=headers
        )
        return list(response.json())

    names = [p["name"].casefold() for p in await listing()]
    assert names == sorted(names)
    desc = [p["name"].casefold() for p in await listing(sort_dir="desc")]
    assert desc == sorted(names, reverse=True)
    categories = [p["category"] for p in await listing(sort_by="category")]
    assert categories == sorted(categories)
    assert len(set(categories)) > 3


async def test_list_items_have_the_documented_fields(connect: Any, authed: Any) -> None:
    client = connect(create_sandbox(catalog_size=20))
    response = await client.get("/api/v1/products", headers=await authed(client))
    for item in response.json():
        assert set(item) == {
            "id",
            "name",
            "category",
            "sub_category",
            "country_code",
            "currency_code",
            "image_url",
            "delivery_mode",
            "delivery_time",
            "validity",
            "available_denominations",
        }
        for denomination in item["available_denominations"]:
            assert set(denomination) == {"min_value", "max_value", "discount"}
            assert denomination["min_value"] <= denomination["max_value"]


async def test_product_detail_and_its_errors(connect: Any, authed: Any) -> None:
    catalog = generate_catalog(50, 42)
    hidden = catalog[0].id
    app = create_sandbox(catalog_size=50, blacklisted_product_ids=[hidden])
    client = connect(app)
    headers = await authed(client)
    shown = catalog[1]

    detail = (await client.get(f"/api/v1/products/{shown.id}", headers=headers)).json()
    assert detail["id"] == shown.id
    assert detail["terms"] and detail["details"] and detail["how_to_use"]

    for bad in ("abc", "0", "-5", "1.5"):
        response = await client.get(f"/api/v1/products/{bad}", headers=headers)
        assert _error(response) == (400, "BAD_REQUEST", "Invalid product ID")
    for missing in (hidden, 99_999_999):
        response = await client.get(f"/api/v1/products/{missing}", headers=headers)
        assert _error(response) == (404, "NOT_FOUND", "Product not found")

    listed = await client.get("/api/v1/products", params={"limit": 500}, headers=headers)
    assert hidden not in {p["id"] for p in listed.json()}
    assert app.state.control.info["products"] == 49 == int(listed.headers["X-Total-Count"])


def test_catalog_is_deterministic_and_covers_the_money_cases() -> None:
    first, again, other = (
        generate_catalog(300, 42),
        generate_catalog(300, 42),
        generate_catalog(300, 7),
    )
    assert first == again
    assert first != other
    assert len({p.id for p in first}) == 300
    currencies = {p.currency for p in first}
    assert {"USD", "GBP", "EUR", "CAD", "JPY", "AED", "BHD"} <= currencies
    for product in first:
        assert product.denominations
        if product.currency == "JPY":
            assert all(
                d.min_value == d.min_value.to_integral_value() for d in product.denominations
            )
    assert any(_ranged(p) for p in first)
    assert sum(_fixed(p) for p in first) > len(first) / 2
    assert any(d.discount == Decimal("3.5") for p in first for d in p.denominations)
    assert {p.delivery_mode for p in first} == {"Code", "Code with PIN", "URL"}
    assert {p.delivery_time for p in first} == {"Instant", "Delayed"}


# ----------------------------------------------------------------------- orders


async def _order(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post("/api/v1/orders", json=body, headers=headers)


async def test_small_order_is_delivered_inline(connect: Any, authed: Any) -> None:
    app = create_sandbox(catalog_size=50)
    client = connect(app)
    headers = await authed(client)
    product = _product(app, lambda p: p.delivery_mode == "Code with PIN" and _fixed(p))
    face = product.denominations[0].min_value
    response = await _order(
        client,
        headers,
        product_id=product.id,
        denomination=float(face),
        quantity=2,
        client_reference="inline-1",
        email="buyer@example.com",
    )
    assert response.status_code == 201
    order = response.json()
    assert order["status"] == "DELIVERED"
    assert order["client_reference"] == "inline-1"
    assert order["product_name"] == product.name
    assert order["base_currency"] == product.currency
    assert len(order["vouchers"]) == 2
    codes = set()
    for voucher in order["vouchers"]:
        assert voucher["card_number"].isdigit() and len(voucher["card_number"]) == 16
        assert voucher["pin_code"].isdigit()
        assert voucher["voucher_reference_number"]
        codes.add(voucher["card_number"])
    assert len(codes) == 2
    log = app.state.control.orders
    assert [entry["reference"] for entry in log] == ["inline-1"]
    (line,) = log[0]["lines"]
    assert (line["product_id"], Decimal(line["denomination"]), line["quantity"]) == (
        product.id,
        face,
        2,
    )


async def test_large_order_is_pending_then_delivered(connect: Any, authed: Any) -> None:
    app = create_sandbox(catalog_size=50, fulfil_delay=0.2)
    client = connect(app)
    headers = await authed(client)
    product = _product(app, lambda p: p.delivery_mode == "URL" and _fixed(p))
    face = float(product.denominations[0].min_value)
    created = await _order(client, headers, product_id=product.id, denomination=face, quantity=8)
    order = created.json()
    assert (order["status"], order["vouchers"]) == ("PENDING", [])

    early = (await client.get(f"/api/v1/orders/{order['id']}", headers=headers)).json()
    assert early["status"] == "PENDING"
    await asyncio.sleep(0.3)  # past the 0.2 s fulfilment delay (wall clock, read on GET)
    done = (await client.get(f"/api/v1/orders/{order['id']}", headers=headers)).json()
    assert done["status"] == "DELIVERED"
    assert len(done["vouchers"]) == 8
    assert all(v["claim_url"].startswith("https://") for v in done["vouchers"])
    again = (await client.get(f"/api/v1/orders/{order['id']}", headers=headers)).json()
    assert again["vouchers"] == done["vouchers"]  # codes are fixed once delivered


async def test_duplicate_client_reference_is_refused_not_replayed(
    connect: Any, authed: Any
) -> None:
    app = create_sandbox(catalog_size=20)
    client = connect(app)
    headers = await authed(client)
    product = _product(app, _fixed)
    body = {
        "product_id": product.id,
        "denomination": float(product.denominations[0].min_value),
        "quantity": 1,
        "client_reference": "ref-dup",
    }
    first = await _order(client, headers, **body)
    assert first.status_code == 201
    second = await _order(client, headers, **body)
    assert _error(second) == (400, "BAD_REQUEST", "Duplicate client_reference")
    assert "vouchers" not in second.text
    assert len(app.state.control.orders) == 1

    found = await client.get(
        "/api/v1/orders", params={"client_reference": "ref-dup"}, headers=headers
    )
    assert [o["id"] for o in found.json()] == [first.json()["id"]]
    assert found.headers["X-Total-Count"] == "1"
    none = await client.get("/api/v1/orders", params={"client_reference": "nope"}, headers=headers)
    assert none.json() == []


async def test_order_validation(connect: Any, authed: Any) -> None:
    app = create_sandbox(catalog_size=300, bulk_limit=20)
    client = connect(app)
    headers = await authed(client)
    fixed = _product(app, lambda p: _fixed(p) and p.currency == "USD")
    ranged = _product(app, lambda p: _ranged(p) and p.currency == "USD")
    face = float(fixed.denominations[0].min_value)

    async def refused(**body: Any) -> tuple[int, str, str]:
        return _error(await _order(client, headers, **body))

    assert (await refused(product_id=fixed.id, denomination=face + 1, quantity=1))[:2] == (
        400,
        "BAD_REQUEST",
    )
    assert (await refused(product_id=fixed.id, denomination=10.005, quantity=1))[:2] == (
        400,
        "BAD_REQUEST",
    )
    assert (await refused(product_id=fixed.id, denomination=face, quantity=21)) == (
        400,
        "BAD_REQUEST",
        "Quantity exceeds your bulk limit",
    )
    for quantity in (0, 5001, "2", 1.5):
        assert (await refused(product_id=fixed.id, denomination=face, quantity=quantity))[:2] == (
            400,
            "VALIDATION_FAILURE",
        )
    assert (await refused(denomination=face, quantity=1))[:2] == (400, "VALIDATION_FAILURE")
    for reference in ("é-not-ascii", "x" * 256, "", "tab\there"):
        assert (
            await refused(
                product_id=fixed.id, denomination=face, quantity=1, client_reference=reference
            )
        )[:2] == (400, "VALIDATION_FAILURE")
    assert (await refused(product_id=99_999_999, denomination=face, quantity=1))[:2] == (
        404,
        "NOT_FOUND",
    )
    assert (await refused(product_id=fixed.id, denomination=face, quantity=1, wallet_id=99))[
        :2
    ] == (400, "BAD_REQUEST")
    assert app.state.control.orders == []

    # Inside a range any amount in the currency's minor unit goes, printable ASCII
    # (space included) is a valid reference.
    ok = await _order(
        client,
        headers,
        product_id=ranged.id,
        denomination=12.34,
        quantity=1,
        client_reference="range ok #1",
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["denomination"] == 12.34


async def test_fulfilment_failure_is_final_and_refunded(connect: Any, authed: Any) -> None:
    app = create_sandbox(catalog_size=20, fulfil_delay=0.05)
    client = connect(app)
    headers = await authed(client)
    await client.put("/_sandbox/faults", json={"fulfilment_failure_rate": 1.0})
    product = _product(app, _fixed)
    face = float(product.denominations[0].min_value)
    inline = await _order(client, headers, product_id=product.id, denomination=face, quantity=1)
    assert inline.json()["status"] == "FAILED"
    assert inline.json()["vouchers"] == []
    assert "refunded" in inline.json()["message"]
    pending = (
        await _order(client, headers, product_id=product.id, denomination=face, quantity=6)
    ).json()
    assert pending["status"] == "PENDING"
    await asyncio.sleep(0.1)  # past the 0.05 s fulfilment delay (wall clock, read on GET)
    failed = (await client.get(f"/api/v1/orders/{pending['id']}", headers=headers)).json()
    assert (failed["status"], failed["vouchers"]) == ("FAILED", [])


async def test_partial_delivery(connect: Any, authed: Any) -> None:
    app = create_sandbox(catalog_size=20, fulfil_delay=0.0, partial_delivery_rate=1.0)
    client = connect(app)
    headers = await authed(client)
    product = _product(app, _fixed)
    face = float(product.denominations[0].min_value)
    order = (
        await _order(client, headers, product_id=product.id, denomination=face, quantity=8)
    ).json()
    got = (await client.get(f"/api/v1/orders/{order['id']}", headers=headers)).json()
    assert got["status"] == "PARTIALLY_DELIVERED"
    assert len(got["vouchers"]) == 4


async def test_order_list_pagination_and_validation(connect: Any, authed: Any) -> None:
    app = create_sandbox(catalog_size=20)
    client = connect(app)
    headers = await authed(client)
    product = _product(app, _fixed)
    face = float(product.denominations[0].min_value)
    for n in range(3):
        await _order(
            client, headers, product_id=product.id, denomination=face, quantity=1,
            client_reference=f"list-{n}",
        )  # fmt: skip
    page = await client.get("/api/v1/orders", params={"limit": 2}, headers=headers)
    assert [o["client_reference"] for o in page.json()] == ["list-2", "list-1"]
    assert page.headers["X-Has-More"] == "true"
    for params in ({"limit": "0"}, {"page": "x"}, {"status": "SHIPPED"}):
        response = await client.get("/api/v1/orders", params=params, headers=headers)
        assert _error(response) == (400, "BAD_REQUEST", "Invalid query parameters")
    for bad in ("abc", "0"):
        response = await client.get(f"/api/v1/orders/{bad}", headers=headers)
        assert _error(response) == (400, "BAD_REQUEST", "Invalid order ID")
    unknown = await client.get("/api/v1/orders/123456789", headers=headers)
    assert _error(unknown) == (404, "NOT_FOUND", "Order not found")


async def test_charges_quote_with_and_without_conversion(connect: Any, authed: Any) -> None:
    app = create_sandbox(catalog_size=300, wallets={1: "USD"}, bulk_limit=40)
    client = connect(app)
    headers = await authed(client)
    usd = _product(app, lambda p: _fixed(p) and p.currency == "USD")
    denomination = usd.denominations[0]
    response = await client.post(
        f"/api/v1/products/{usd.id}/charges",
        json={"denomination": float(denomination.min_value), "quantity": 3},
        headers=headers,
    )
    body = response.json()
    gross = denomination.min_value * 3
    discount = (gross * denomination.discount / 100).quantize(Decimal("0.01"))
    assert Decimal(str(body["non_discounted_total"])) == gross
    assert Decimal(str(body["discount_amount"])) == discount
    assert Decimal(str(body["total_payable"])) == gross - discount
    assert body["max_quantity"] == 40
    assert body["charges_details"] == {
        "source_currency": "USD",
        "destination_currency": "USD",
        "forex_rate": 1.0,
        "conversion_fee": 0.0,
    }

    gbp = _product(app, lambda p: _fixed(p) and p.currency == "GBP")
    converted = await client.post(
        f"/api/v1/products/{gbp.id}/charges",
        json={"denomination": float(gbp.denominations[0].min_value), "quantity": 1},
        headers=headers,
    )
    details = converted.json()["charges_details"]
    assert (details["source_currency"], details["destination_currency"]) == ("GBP", "USD")
    assert details["forex_rate"] == 1.27
    assert details["conversion_fee"] > 0

    off = await client.post(
        f"/api/v1/products/{usd.id}/charges",
        json={"denomination": 0.5, "quantity": 1},
        headers=headers,
    )
    assert _error(off)[:2] == (400, "BAD_REQUEST")


async def test_availability(connect: Any, authed: Any) -> None:
    catalog = generate_catalog(10, 42)
    app = create_sandbox(catalog_size=10, unavailable_product_ids=[catalog[0].id])
    client = connect(app)
    headers = await authed(client)
    off = await client.get(f"/api/v1/products/{catalog[0].id}/availability", headers=headers)
    on = await client.get(f"/api/v1/products/{catalog[1].id}/availability", headers=headers)
    assert (off.json(), on.json()) == ({"is_available": False}, {"is_available": True})
    missing = await client.get("/api/v1/products/99999999/availability", headers=headers)
    assert _error(missing)[:2] == (404, "NOT_FOUND")


# ----------------------------------------------------------- limits, request ids


async def test_rate_limit_per_bucket_with_retry_after(connect: Any, authed: Any) -> None:
    app = create_sandbox(catalog_size=10, rate_limits={"reads": (3, 60), "login": (2, 60)})
    client = connect(app)
    headers = await authed(client)
    for _ in range(3):
        assert (await client.get("/api/v1/products", headers=headers)).status_code == 200
    limited = await client.get("/api/v1/products", headers=headers)
    assert _error(limited) == (429, "TOO_MANY_REQUESTS", "Too many requests")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.headers["X-Request-Id"]
    # Other buckets keep their own budget: a quote is not a read.
    product = next(iter(app.state.sandbox.products.values()))
    charges = await client.post(
        f"/api/v1/products/{product.id}/charges",
        json={"denomination": float(product.denominations[0].min_value), "quantity": 1},
        headers=headers,
    )
    assert charges.status_code == 200

    # Login is counted per IP: the first login used one of two.
    await authed(client)
    third = await client.post(
        "/auth/login", json={"username": SANDBOX_API_KEY, "password": SANDBOX_API_SECRET}
    )
    assert _error(third)[:2] == (429, "TOO_MANY_REQUESTS")
    other_ip = connect(app, ip="10.9.8.7")
    assert (await authed(other_ip))["Authorization"].startswith("Bearer ")
    assert app.state.control.stats["rate_limited"] == 2


async def test_every_response_carries_a_request_id(connect: Any, authed: Any) -> None:
    app = create_sandbox(catalog_size=10, ip_allowlist=["127.0.0.1"])
    client = connect(app)
    headers = await authed(client)
    responses = [
        await client.get("/api/v1/products", headers=headers),
        await client.get("/api/v1/products/abc", headers=headers),
        await client.get("/api/v1/products"),
        await client.get("/no/such/route"),
        await connect(app, ip="10.0.0.1").get("/api/v1/products"),
        await client.delete("/api/v1/products"),
    ]
    assert [r.status_code for r in responses] == [200, 400, 401, 404, 403, 405]
    ids = [r.headers["X-Request-Id"] for r in responses]
    assert all(ids) and len(set(ids)) == len(ids)
    echoed = await client.get(
        "/api/v1/products", headers={**headers, "X-Request-Id": "trace-abc-123"}
    )
    assert echoed.headers["X-Request-Id"] == "trace-abc-123"
