"""The voucher adapter against its sandbox over real loopback HTTP, with real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from adapters.errors import (
    AuthenticationError,
    NotFoundError,
    RejectedError,
)
from adapters.models import Money, OrderLine, Product, UpstreamOrderState
from adapters.vouchers import VouchersAdapter
from adapters.vouchers.catalog_data import CatalogProduct
from adapters.vouchers.sandbox import create_sandbox

Serve = Callable[..., Any]
MakeAdapter = Callable[..., VouchersAdapter]


async def _catalog(adapter: VouchersAdapter) -> list[Product]:
    return [product async for page in adapter.iter_catalog() for product in page.products]


def _pick(app: Any, test: Callable[[CatalogProduct], bool]) -> CatalogProduct:
    return next(p for p in app.state.sandbox.products.values() if test(p))


def _fixed(currency: str = "USD") -> Callable[[CatalogProduct], bool]:
    return lambda p: p.currency == currency and not any(d.is_range for d in p.denominations)


def _ranged(currency: str = "USD") -> Callable[[CatalogProduct], bool]:
    return lambda p: p.currency == currency and any(d.is_range for d in p.denominations)


def _fixed_variant(product: CatalogProduct) -> str:
    face = product.denominations[0].min_value
    exponent = 0 if product.currency == "JPY" else 2
    return f"vouchers:{product.id}:fv{int(face.scaleb(exponent))}"


async def _control(server: Any, method: str, path: str, **kwargs: Any) -> Any:
    """Drive the sandbox's ``/_sandbox`` control plane over HTTP."""
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.request(method, f"/_sandbox{path}", **kwargs)
    response.raise_for_status()
    return response.json()


# ---------------------------------------------------------------------- catalog


@pytest.mark.parametrize("page_size", [500, 37])
async def test_full_iteration_reaches_every_product_once(
    serve: Serve, make_adapter: MakeAdapter, page_size: int
) -> None:
    app, server = serve()
    adapter = make_adapter(server, page_size=page_size)
    pages = [page async for page in adapter.iter_catalog()]
    products = [product for page in pages for product in page.products]
    expected = app.state.control.info["products"]
    assert len(products) == expected == 300
    assert len({p.id for p in products}) == expected
    assert [page.page for page in pages] == list(range(1, len(pages) + 1))
    assert len(pages) == -(-expected // page_size)
    assert all(page.total == expected for page in pages)
    # Stable ids: a second run yields exactly the same products.
    assert await _catalog(adapter) == products
    assert adapter.stats["logins"] == 1


async def test_catalog_maps_yen_and_ranges(serve: Serve, make_adapter: MakeAdapter) -> None:
    app, server = serve(catalog_size=120)
    adapter = make_adapter(server)
    products = {p.id: p for p in await _catalog(adapter)}
    jpy = _pick(app, _fixed("JPY"))
    mapped = products[f"vouchers:{jpy.id}"]
    assert mapped.currency == "JPY"
    assert [v.face_value.amount for v in mapped.variants if v.face_value] == [
        int(d.min_value) for d in jpy.denominations
    ]
    ranged = _pick(app, _ranged("USD"))
    assert any(v.is_range for v in products[f"vouchers:{ranged.id}"].variants)


async def test_get_product_detail_and_not_found(serve: Serve, make_adapter: MakeAdapter) -> None:
    app, server = serve(catalog_size=30)
    adapter = make_adapter(server)
    product = next(iter(app.state.sandbox.products.values()))
    detail = await adapter.get_product(str(product.id))
    assert detail.id == f"vouchers:{product.id}"
    assert detail.terms and detail.how_to_use and detail.description
    assert detail.available is True
    for missing in ("99999999", "abc", "0"):
        with pytest.raises(NotFoundError):
            await adapter.get_product(missing)


# ------------------------------------------------------------------------ auth


async def test_concurrent_first_calls_share_one_login(
    serve: Serve, make_adapter: MakeAdapter
) -> None:
    app, server = serve(catalog_size=30)
    adapter = make_adapter(server)
    ids = [str(p.id) for p in list(app.state.sandbox.products.values())[:15]]
    details = await asyncio.gather(*(adapter.get_product(i) for i in ids))
    assert [d.upstream_id for d in details] == ids
    assert app.state.control.stats["logins"] == 1
    assert adapter.stats["logins"] == 1


async def test_token_expiry_mid_run_renews_before_the_supplier_refuses(
    serve: Serve, make_adapter: MakeAdapter
) -> None:
    app, server = serve(access_ttl=1.0)
    adapter = make_adapter(server, page_size=50, token_refresh_margin_seconds=0.2)
    seen: list[str] = []
    async for page in adapter.iter_catalog():
        seen += [p.id for p in page.products]
        if page.page == 2:
            await asyncio.sleep(1.0)  # the token dies while we hold the iterator
    assert len(seen) == len(set(seen)) == app.state.control.info["products"]
    stats = app.state.control.stats
    assert (stats["logins"], stats["refreshes"]) == (1, 1)
    assert stats["unauthorized"] == 0  # renewed ahead of expiry, never refused


async def test_revoked_token_is_renewed_once_for_all_concurrent_callers(
    serve: Serve, make_adapter: MakeAdapter
) -> None:
    app, server = serve(catalog_size=30)
    adapter = make_adapter(server)
    ids = [str(p.id) for p in list(app.state.sandbox.products.values())[:12]]
    await adapter.get_product(ids[0])
    assert (await _control(server, "POST", "/tokens/revoke"))["revoked"] == 1
    # Latency keeps the requests in flight together, so several meet the dead token.
    await _control(server, "PUT", "/faults", json={"latency_ms": 100})

    details = await asyncio.gather(*(adapter.get_product(i) for i in ids))
    assert len(details) == 12
    stats = app.state.control.stats
    assert stats["unauthorized"] >= 2
    assert (stats["logins"], stats["refreshes"]) == (1, 1)


async def test_refused_refresh_token_falls_back_to_login(
    serve: Serve, make_adapter: MakeAdapter
) -> None:
    app, server = serve(catalog_size=10)
    adapter = make_adapter(server)
    product_id = str(next(iter(app.state.sandbox.products)))
    await adapter.get_product(product_id)
    await _control(server, "POST", "/tokens/revoke", params={"refresh": "true"})
    await adapter.get_product(product_id)
    assert app.state.control.stats["logins"] == 2
    assert adapter.stats["token_refreshes"] == 0


@pytest.mark.parametrize(
    ("sandbox_options", "settings", "code"),
    [
        ({}, {"api_secret": "not-the-secret"}, "UNAUTHORIZED"),
        ({"ip_allowlist": ["203.0.113.0/24"]}, {}, "FORBIDDEN"),
        ({"vouchers_feature_enabled": False}, {}, "INVALID_FEATURE"),
    ],
)
async def test_refused_access_is_an_authentication_error(
    serve: Serve,
    make_adapter: MakeAdapter,
    sandbox_options: dict[str, Any],
    settings: dict[str, Any],
    code: str,
) -> None:
    app, server = serve(catalog_size=10, **sandbox_options)
    adapter = make_adapter(server, **settings)
    with pytest.raises(AuthenticationError) as caught:
        await _catalog(adapter)
    assert caught.value.upstream_code == code
    assert "[request " in str(caught.value)  # the supplier's X-Request-Id, for support
    assert app.state.control.orders == []


async def test_aclose_logs_out(serve: Serve, make_adapter: MakeAdapter) -> None:
    app, server = serve(catalog_size=10)
    adapter = make_adapter(server)
    await _catalog(adapter)
    sessions = app.state.sandbox.sessions
    assert len(sessions._by_access) == 1
    await adapter.aclose()
    assert len(sessions._by_access) == 0


# ---------------------------------------------------------------------- orders


async def test_order_of_two_is_delivered_inline_with_codes(
    serve: Serve, make_adapter: MakeAdapter
) -> None:
    app, server = serve(catalog_size=120)
    adapter = make_adapter(server)
    product = _pick(app, lambda p: _fixed("USD")(p) and p.delivery_mode == "Code with PIN")
    variant_id = _fixed_variant(product)
    order = await adapter.place_order("gw-inline-1", [OrderLine(variant_id=variant_id, quantity=2)])
    assert order.state is UpstreamOrderState.DELIVERED
    assert order.reference == "gw-inline-1"
    assert len(order.codes) == 2
    assert all(code.code and code.pin and code.serial for code in order.codes)
    face = product.denominations[0].min_value
    discount = product.denominations[0].discount
    gross = face * 2
    expected = gross - (gross * discount / 100).quantize(Decimal("0.01"))
    assert order.total == Money(amount=int(expected * 100), currency="USD")
    log = app.state.control.orders
    assert [(e["reference"], e["lines"][0]["quantity"]) for e in log] == [("gw-inline-1", 2)]


async def test_order_of_eight_is_pending_then_delivered(
    serve: Serve, make_adapter: MakeAdapter
) -> None:
    app, server = serve(catalog_size=60, fulfil_delay=0.3)
    adapter = make_adapter(server)
    product = _pick(app, _fixed("EUR"))
    order = await adapter.place_order(
        "gw-async-8", [OrderLine(variant_id=_fixed_variant(product), quantity=8)]
    )
    assert order.state is UpstreamOrderState.PENDING
    assert order.codes == ()
    assert (await adapter.get_order(order.upstream_id)).state is UpstreamOrderState.PENDING
    await asyncio.sleep(0.4)  # past the 0.3 s fulfilment delay (wall clock, read on GET)
    done = await adapter.get_order(order.upstream_id)
    assert done.state is UpstreamOrderState.DELIVERED
    assert len(done.codes) == 8
    assert len({c.code for c in done.codes}) == 8
    with pytest.raises(NotFoundError):
        await adapter.get_order("123456789")


async def test_commit_then_drop_is_reconciled_by_client_reference(
    serve: Serve, make_adapter: MakeAdapter
) -> None:
    app, server = serve(catalog_size=60)
    adapter = make_adapter(server)
    await _control(
        server, "PUT", "/faults", json={"commit_then_drop_rate": 1.0, "paths": ["/api/v1/orders"]}
    )
    product = _pick(app, _fixed("GBP"))
    order = await adapter.place_order(
        "gw-dropped-1", [OrderLine(variant_id=_fixed_variant(product), quantity=1)]
    )
    assert order.state is UpstreamOrderState.DELIVERED
    assert order.reference == "gw-dropped-1"
    assert len(order.codes) == 1
    log = app.state.control.orders
    assert len(log) == 1 and log[0]["reference"] == "gw-dropped-1"
    assert app.state.control.stats["drops"] == 1


async def test_error_after_commit_is_reconciled_not_resent(
    serve: Serve, make_adapter: MakeAdapter
) -> None:
    app, server = serve(catalog_size=60)
    adapter = make_adapter(server)
    await _control(server, "PUT", "/faults", json={"error_after_commit_rate": 1.0})
    product = _pick(app, _fixed("USD"))
    order = await adapter.place_order(
        "gw-500-1", [OrderLine(variant_id=_fixed_variant(product), quantity=3)]
    )
    assert order.reference == "gw-500-1"
    assert len(app.state.control.orders) == 1


async def test_reusing_a_reference_returns_the_original_order(
    serve: Serve, make_adapter: MakeAdapter
) -> None:
    app, server = serve(catalog_size=60)
    adapter = make_adapter(server)
    line = OrderLine(variant_id=_fixed_variant(_pick(app, _fixed("USD"))), quantity=1)
    first = await adapter.place_order("gw-twice", [line])
    second = await adapter.place_order("gw-twice", [line])
    assert second.upstream_id == first.upstream_id
    assert second.codes == first.codes
    assert len(app.state.control.orders) == 1
    assert await adapter.find_order("gw-never-used") is None


async def test_range_variant_orders_need_a_face_value_inside_the_range(
    serve: Serve, make_adapter: MakeAdapter
) -> None:
    app, server = serve(catalog_size=300)
    adapter = make_adapter(server)
    product = _pick(app, _ranged("USD"))
    rng = next(d for d in product.denominations if d.is_range)
    variant_id = f"vouchers:{product.id}:r{int(rng.min_value * 100)}-{int(rng.max_value * 100)}"

    before = (await _control(server, "GET", "/stats"))["requests"]
    for face in (None, Money(amount=int(rng.max_value * 100) + 1, currency="USD")):
        with pytest.raises(RejectedError):
            await adapter.place_order(
                "gw-range-bad", [OrderLine(variant_id=variant_id, quantity=1, face_value=face)]
            )
    assert (await _control(server, "GET", "/stats"))[
        "requests"
    ] == before  # refused before any call

    with pytest.raises(RejectedError):  # right amount, wrong currency
        await adapter.place_order(
            "gw-range-eur",
            [
                OrderLine(
                    variant_id=variant_id, quantity=1, face_value=Money(amount=1234, currency="EUR")
                )
            ],
        )
    order = await adapter.place_order(
        "gw-range-ok",
        [
            OrderLine(
                variant_id=variant_id, quantity=1, face_value=Money(amount=1234, currency="USD")
            )
        ],
    )
    assert order.state is UpstreamOrderState.DELIVERED
    assert [Decimal(e["lines"][0]["denomination"]) for e in app.state.control.orders] == [
        Decimal("12.34")
    ]


async def test_jpy_orders_send_whole_yen(serve: Serve, make_adapter: MakeAdapter) -> None:
    app, server = serve(catalog_size=120)
    adapter = make_adapter(server)
    product = _pick(app, _fixed("JPY"))
    quote = await adapter.quote(_fixed_variant(product), 2)
    order = await adapter.place_order(
        "gw-yen", [OrderLine(variant_id=_fixed_variant(product), quantity=2)]
    )
    (entry,) = app.state.control.orders
    assert Decimal(entry["lines"][0]["denomination"]) == product.denominations[0].min_value
    assert quote.face_total == Money(
        amount=int(product.denominations[0].min_value) * 2, currency="JPY"
    )
    assert order.total is not None and order.total.currency == quote.total_payable.currency


async def test_quote_matches_what_the_order_charges(
    serve: Serve, make_adapter: MakeAdapter
) -> None:
    app, server = serve(catalog_size=120, bulk_limit=50)
    adapter = make_adapter(server)
    product = _pick(app, _fixed("USD"))
    variant_id = _fixed_variant(product)
    quote = await adapter.quote(variant_id, 3)
    assert quote.max_quantity == 50
    assert quote.total_payable.currency == "USD"
    order = await adapter.place_order("gw-quoted", [OrderLine(variant_id=variant_id, quantity=3)])
    assert order.total == quote.total_payable
    # The catalog cost is rounded up: it never under-states what the supplier charges.
    variant = next(
        v for p in await _catalog(adapter) if p.upstream_id == str(product.id) for v in p.variants
        if v.id == variant_id
    )  # fmt: skip
    assert variant.cost is not None
    assert variant.cost.amount * 3 >= quote.total_payable.amount
    with pytest.raises(RejectedError):
        await adapter.quote(variant_id, 51)
    with pytest.raises(ValueError):
        await adapter.quote(variant_id, 0)


async def test_upstream_refusals_are_rejections_without_an_order(
    serve: Serve, make_adapter: MakeAdapter
) -> None:
    app, server = serve(catalog_size=60, bulk_limit=10)
    adapter = make_adapter(server)
    product = _pick(app, _fixed("USD"))
    line = OrderLine(variant_id=_fixed_variant(product), quantity=11)
    with pytest.raises(RejectedError) as caught:
        await adapter.place_order("gw-too-many", [line])
    assert caught.value.upstream_code == "BAD_REQUEST"
    assert app.state.control.orders == []

    with pytest.raises(RejectedError):  # a face value the product does not offer
        await adapter.place_order(
            "gw-no-face", [OrderLine(variant_id=f"vouchers:{product.id}:fv123", quantity=1)]
        )
    with pytest.raises(RejectedError):  # the product is gone
        await adapter.place_order(
            "gw-gone", [OrderLine(variant_id="vouchers:99999999:fv1000", quantity=1)]
        )
    with pytest.raises(NotFoundError):
        await adapter.place_order("gw-bad-id", [OrderLine(variant_id="vouchers:1:std", quantity=1)])
    with pytest.raises(ValueError):
        await adapter.place_order("gw-two-lines", [line, line])
    assert app.state.control.orders == []


async def test_unavailable_product_is_rejected_before_ordering(
    serve: Serve, make_adapter: MakeAdapter
) -> None:
    product = _pick(create_sandbox(catalog_size=60), _fixed("USD"))
    app, server = serve(catalog_size=60, unavailable_product_ids=[product.id])
    adapter = make_adapter(server)
    assert (await adapter.get_product(str(product.id))).available is False
    with pytest.raises(RejectedError):
        await adapter.place_order(
            "gw-unavailable", [OrderLine(variant_id=_fixed_variant(product), quantity=1)]
        )
    assert app.state.control.orders == []


async def test_a_429_is_waited_out_and_retried(serve: Serve, make_adapter: MakeAdapter) -> None:
    _, server = serve(catalog_size=20)
    adapter = make_adapter(server)
    await _control(server, "PUT", "/faults", json={"rate_limit_burst": 1})
    products = await _catalog(adapter)
    assert len(products) == 20
    assert adapter.stats["rate_limited"] == 1
