"""The adapter against the sandbox on a real loopback port, with real Redis."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from gaming_goods_helpers import AUTH, adapter_settings, small_sandbox
from starlette.applications import Starlette

from adapters.errors import (
    AmbiguousOutcomeError,
    AuthenticationError,
    FatalError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
)
from adapters.gaming_goods import GamingGoodsAdapter
from adapters.models import OrderLine, UpstreamOrder, UpstreamOrderState
from adapters.sandbox_server import BackgroundServer


def line(product_id: str, quantity: int = 1) -> OrderLine:
    return OrderLine(variant_id=f"gaming_goods:{product_id}:std", quantity=quantity)


def stocked(app: Starlette, minimum: int = 3, skip: int = 0) -> Any:
    return [p for p in app.state.sandbox.listed if p.quantity >= minimum][skip]


async def set_faults(http: httpx.AsyncClient, server: BackgroundServer, **faults: Any) -> None:
    response = await http.put(f"{server.url}/_sandbox/faults", json=faults)
    assert response.status_code == 200, response.text


async def sandbox_orders(http: httpx.AsyncClient, server: BackgroundServer) -> list[dict[str, Any]]:
    return (await http.get(f"{server.url}/_sandbox/orders")).json()["orders"]


async def until_final(adapter: GamingGoodsAdapter, upstream_id: str) -> UpstreamOrder:
    for _ in range(100):
        order = await adapter.get_order(upstream_id)
        if order.state.is_final:
            return order
        await asyncio.sleep(0.05)
    raise AssertionError("order never reached a final state")


async def sent_intent(
    adapter: GamingGoodsAdapter, reference: str, product_id: str, quantity: int = 1, **kw: Any
) -> None:
    """A checkout of ours that was sent (``now=``: when) and whose answer we never got."""
    ledger = adapter._require_ledger()
    await ledger.record_intent(reference, [{"product_id": product_id, "quantity": quantity}])
    await ledger.mark_sent(reference, **kw)


async def checkout_directly(
    http: httpx.AsyncClient, server: BackgroundServer, product_id: str, quantity: int = 1
) -> str:
    """An order placed on the platform by someone else (or by an earlier attempt)."""
    body = {"source": "lines", "lines": [{"product_id": product_id, "quantity": quantity}]}
    response = await http.post(f"{server.url}/checkout", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    return str(response.json()["orders"][0]["id"])


# ---------------------------------------------------------------------- catalog


async def test_iter_catalog_reaches_the_end_once_per_product(
    app: Starlette, adapter: GamingGoodsAdapter
) -> None:
    pages = [page async for page in adapter.iter_catalog()]
    ids = [p.id for page in pages for p in page.products]
    assert len(ids) == len(set(ids)) == app.state.control.info["products"]
    assert len(pages) == -(-len(ids) // 25)  # page_size 25
    assert [page.page for page in pages] == list(range(1, len(pages) + 1))
    assert all(page.total == len(ids) for page in pages)
    again = [p.id async for page in adapter.iter_catalog() for p in page.products]
    assert again == ids


async def test_full_default_size_catalog_is_iterated() -> None:
    """The document's ~1500 products, in pages of the maximum 100."""
    app = small_sandbox(catalog_size=1500, inactive_share=0.03)
    with BackgroundServer(app) as server:
        async with httpx.AsyncClient() as http:
            adapter = GamingGoodsAdapter(
                adapter_settings(server.url, page_size=100), http=http, redis=None
            )
            ids = [p.id async for page in adapter.iter_catalog() for p in page.products]
    assert len(ids) == len(set(ids)) == app.state.control.info["products"] > 1400
    assert app.state.control.stats["requests"] == -(-len(ids) // 100)


async def test_get_product_detail_and_404s(app: Starlette, adapter: GamingGoodsAdapter) -> None:
    first = app.state.sandbox.listed[0]
    detail = await adapter.get_product(first.id)
    assert detail.id == f"gaming_goods:{first.id}" and detail.name == first.title
    assert detail.description and detail.activation_details
    assert {s.key for s in detail.specifications} >= {"platform", "region"}
    inactive = next(p for p in app.state.sandbox.by_id.values() if not p.active)
    with pytest.raises(NotFoundError):
        await adapter.get_product(inactive.id)
    with pytest.raises(NotFoundError):  # an id cannot smuggle a path
        await adapter.get_product("../orders")


async def test_brands_and_categories(app: Starlette, adapter: GamingGoodsAdapter) -> None:
    brands = await adapter.list_brands()
    assert sum(b["product_count"] for b in brands) == app.state.control.info["products"]
    categories = await adapter.list_brand_categories(brands[0]["brand"])
    assert sum(c["product_count"] for c in categories) == brands[0]["product_count"]


async def test_wrong_api_key_is_an_authentication_error(
    server: BackgroundServer, http: httpx.AsyncClient, redis: Any, key_prefix: str
) -> None:
    adapter = GamingGoodsAdapter(
        adapter_settings(server.url, api_key="pk_live_wrong"),
        http=http,
        redis=redis,
        key_prefix=key_prefix,
    )
    with pytest.raises(AuthenticationError):
        [page async for page in adapter.iter_catalog()]


async def test_upstream_429_becomes_rate_limited_with_its_wait(
    http: httpx.AsyncClient, redis: Any, key_prefix: str
) -> None:
    app = small_sandbox(rate_limits={"default": (1, 3600.0)})
    with BackgroundServer(app) as server:
        adapter = GamingGoodsAdapter(
            adapter_settings(server.url, retries={"max_attempts": 1}),
            http=http,
            redis=redis,
            key_prefix=key_prefix,
        )
        await adapter.get_product(app.state.sandbox.listed[0].id)
        with pytest.raises(RateLimitedError) as caught:
            await adapter.get_product(app.state.sandbox.listed[1].id)
    assert caught.value.retry_after is not None and caught.value.retry_after > 0


# ----------------------------------------------------------------------- orders


async def test_place_order_then_delivered_with_one_code_per_unit(
    app: Starlette, adapter: GamingGoodsAdapter, server: BackgroundServer, http: httpx.AsyncClient
) -> None:
    product = stocked(app)
    before = product.quantity
    placed = await adapter.place_order("order-1", [line(product.id, 2)])
    assert placed.state is UpstreamOrderState.PENDING and placed.reference == "order-1"
    assert placed.total is not None and placed.total.amount == 2 * product.price
    delivered = await until_final(adapter, placed.upstream_id)
    assert delivered.state is UpstreamOrderState.DELIVERED
    assert len(delivered.codes) == 2 and all(c.code for c in delivered.codes)
    assert delivered.reference == "order-1"
    assert product.quantity == before - 2
    (logged,) = await sandbox_orders(http, server)
    assert logged["reference"] == "order-1"  # sent as the Idempotency-Key


@pytest.mark.parametrize("honour", [True, False])
async def test_same_reference_never_orders_twice(
    honour: bool, http: httpx.AsyncClient, redis: Any, key_prefix: str
) -> None:
    app = small_sandbox(honour_idempotency_key=honour)
    with BackgroundServer(app) as server:
        adapter = GamingGoodsAdapter(
            adapter_settings(server.url), http=http, redis=redis, key_prefix=key_prefix
        )
        product = stocked(app)
        first = await adapter.place_order("ref-twice", [line(product.id)])
        second = await adapter.place_order("ref-twice", [line(product.id)])
        assert second.upstream_id == first.upstream_id
        assert len(await sandbox_orders(http, server)) == 1
        with pytest.raises(FatalError, match="other lines"):
            await adapter.place_order("ref-twice", [line(product.id, 2)])


@pytest.mark.parametrize("honour", [True, False])
@pytest.mark.parametrize("fault", ["commit_then_drop_rate", "error_after_commit_rate"])
async def test_lost_answer_is_reconciled_to_exactly_one_order(
    honour: bool, fault: str, http: httpx.AsyncClient, redis: Any, key_prefix: str
) -> None:
    app = small_sandbox(honour_idempotency_key=honour)
    with BackgroundServer(app) as server:
        adapter = GamingGoodsAdapter(
            adapter_settings(server.url), http=http, redis=redis, key_prefix=key_prefix
        )
        product = stocked(app)
        await set_faults(http, server, **{fault: 1.0})
        found = await adapter.place_order("ref-drop", [line(product.id, 2)])
        await set_faults(http, server)
        (logged,) = await sandbox_orders(http, server)
        assert found.upstream_id == logged["id"] and found.reference == "ref-drop"
        assert app.state.control.stats["drops" if "drop" in fault else "errors"] == 1
        # The reference now resolves without another walk, and never orders again.
        assert (await adapter.find_order("ref-drop")) is not None
        again = await adapter.place_order("ref-drop", [line(product.id, 2)])
        assert again.upstream_id == logged["id"]
        assert len(await sandbox_orders(http, server)) == 1
        assert (await until_final(adapter, found.upstream_id)).state is UpstreamOrderState.DELIVERED


async def test_unknown_outcome_with_no_order_is_resent_under_the_same_reference(
    app: Starlette,
    adapter: GamingGoodsAdapter,
    server: BackgroundServer,
    http: httpx.AsyncClient,
) -> None:
    product = stocked(app)
    # A 500 before anything is committed: the outcome looks unknown, the order is absent.
    await set_faults(http, server, error_rate=1.0, paths=["/checkout"])
    with pytest.raises(AmbiguousOutcomeError):
        await adapter.place_order("ref-absent", [line(product.id)])
    assert await sandbox_orders(http, server) == []
    sends = app.state.control.stats["errors"]
    assert sends == adapter.settings.reconcile_attempts  # one send per proven absence
    await set_faults(http, server)
    placed = await adapter.place_order("ref-absent", [line(product.id)])
    (logged,) = await sandbox_orders(http, server)
    assert placed.upstream_id == logged["id"] and logged["reference"] == "ref-absent"


async def test_refused_order_is_rejected_and_leaves_no_trace(
    app: Starlette, adapter: GamingGoodsAdapter, server: BackgroundServer, http: httpx.AsyncClient
) -> None:
    product = stocked(app)
    with pytest.raises(RejectedError) as caught:
        await adapter.place_order("ref-big", [line(product.id, product.quantity + 1)])
    assert caught.value.upstream_code == "out_of_stock"
    assert await adapter.find_order("ref-big") is None
    with pytest.raises(NotFoundError):
        await adapter.place_order("ref-gone", [line("00000000-0000-0000-0000-000000000000")])
    assert await sandbox_orders(http, server) == []


async def test_find_order_without_intent_is_none(adapter: GamingGoodsAdapter) -> None:
    assert await adapter.find_order("never-sent") is None


async def test_reconciliation_skips_orders_claimed_by_other_references(
    app: Starlette, adapter: GamingGoodsAdapter
) -> None:
    product = stocked(app)
    await sent_intent(adapter, "ref-b", product.id)
    # ref-a orders the same thing and succeeds; ref-b's checkout never arrived.
    await adapter.place_order("ref-a", [line(product.id)])
    assert await adapter.find_order("ref-b") is None


async def test_several_matching_orders_need_a_human(
    app: Starlette, adapter: GamingGoodsAdapter, server: BackgroundServer, http: httpx.AsyncClient
) -> None:
    product = stocked(app)
    await sent_intent(adapter, "ref-x", product.id)
    first = await checkout_directly(http, server, product.id)
    second = await checkout_directly(http, server, product.id)
    with pytest.raises(AmbiguousOutcomeError) as caught:
        await adapter.find_order("ref-x")
    assert first in str(caught.value) and second in str(caught.value)


async def test_a_match_another_pending_reference_could_own_needs_a_human(
    app: Starlette, adapter: GamingGoodsAdapter, server: BackgroundServer, http: httpx.AsyncClient
) -> None:
    product = stocked(app)
    await sent_intent(adapter, "ref-1", product.id)
    await sent_intent(adapter, "ref-2", product.id)
    await checkout_directly(http, server, product.id)
    with pytest.raises(AmbiguousOutcomeError, match="ref-2"):
        await adapter.find_order("ref-1")
    # A pending reference with other lines is no rival.
    other = stocked(app, skip=1)
    await sent_intent(adapter, "ref-3", other.id)
    await sent_intent(adapter, "ref-4", other.id, 2)
    order_id = await checkout_directly(http, server, other.id)
    found = await adapter.find_order("ref-3")
    assert found is not None and found.upstream_id == order_id and found.reference == "ref-3"


async def test_orders_older_than_the_send_time_are_not_matched(
    app: Starlette, adapter: GamingGoodsAdapter, server: BackgroundServer, http: httpx.AsyncClient
) -> None:
    product = stocked(app)
    await checkout_directly(http, server, product.id)
    skew = adapter.config.reconcile_skew_seconds
    await sent_intent(adapter, "ref-late", product.id, now=time.time() + skew + 5)
    assert await adapter.find_order("ref-late") is None


async def test_reconciliation_gives_up_rather_than_guess(
    app: Starlette, http: httpx.AsyncClient, server: BackgroundServer, redis: Any, key_prefix: str
) -> None:
    adapter = GamingGoodsAdapter(
        adapter_settings(server.url, page_size=1, reconcile_max_pages=2),
        http=http,
        redis=redis,
        key_prefix=key_prefix,
    )
    product = stocked(app)
    await sent_intent(adapter, "ref-deep", product.id, now=time.time() - 60)
    for _ in range(3):
        await checkout_directly(http, server, stocked(app, skip=1).id)
    with pytest.raises(AmbiguousOutcomeError, match="gave up"):
        await adapter.find_order("ref-deep")


async def test_fulfilment_failure_is_reported(
    app: Starlette, adapter: GamingGoodsAdapter, server: BackgroundServer, http: httpx.AsyncClient
) -> None:
    await set_faults(http, server, fulfilment_failure_rate=1.0)
    placed = await adapter.place_order("ref-fail", [line(stocked(app).id)])
    failed = await until_final(adapter, placed.upstream_id)
    assert failed.state is UpstreamOrderState.FAILED and failed.codes == ()


async def test_get_unknown_order_is_not_found(adapter: GamingGoodsAdapter) -> None:
    with pytest.raises(NotFoundError):
        await adapter.get_order("00000000-0000-0000-0000-000000000000")


# ------------------------------------------------- upstream behaviours the sandbox lacks


async def test_a_checkout_split_into_several_orders_is_held_for_review(
    redis: Any, key_prefix: str
) -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        assert request.headers["Idempotency-Key"] == "ref-split"
        assert request.headers["X-API-Key"] == "pk_test_gaming_goods_sandbox"
        orders = [
            {"id": "o-1", "status": "created", "total": 100, "currency": "EUR"},
            {"id": "o-2", "status": "created", "total": 200, "currency": "EUR"},
        ]
        return httpx.Response(201, json={"orders": orders})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        adapter = GamingGoodsAdapter(
            adapter_settings("http://gg.test"), http=http, redis=redis, key_prefix=key_prefix
        )
        with pytest.raises(AmbiguousOutcomeError) as caught:
            await adapter.place_order("ref-split", [line("p1"), line("p2")])
        reason = str(caught.value.__cause__)
        assert "2 upstream orders" in reason and "o-1" in reason and "o-2" in reason
        assert len(requests) == 1  # held for review, never resent
        # Both are recorded and claimed: later look-ups say the same, nothing is resent.
        with pytest.raises(AmbiguousOutcomeError, match="o-2"):
            await adapter.find_order("ref-split")
        owners = await adapter._require_ledger().owners(["o-1", "o-2"])
        assert owners == {"o-1": "ref-split", "o-2": "ref-split"}


async def test_catalog_that_shifts_between_pages_yields_each_product_once(
    redis: Any, key_prefix: str
) -> None:
    catalog = [{"id": f"p{n}", "title": f"Game {n}", "price": 100 + n} for n in range(5)]

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        limit = int(request.url.params["limit"])
        if offset > 0 and catalog[0]["id"] != "new":
            catalog.insert(0, {"id": "new", "title": "New", "price": 1})  # lands mid-sync
        page = catalog[offset : offset + limit]
        return httpx.Response(200, json={"items": page, "total": len(catalog), "limit": limit})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        adapter = GamingGoodsAdapter(
            adapter_settings("http://gg.test", page_size=2), http=http, redis=None
        )
        ids = [p.upstream_id async for page in adapter.iter_catalog() for p in page.products]
    assert len(ids) == len(set(ids))
    assert set(ids) == {"p0", "p1", "p2", "p3", "p4"}  # "new" came before our offset


async def test_malformed_items_are_skipped_not_fatal(redis: Any, key_prefix: str) -> None:
    items = [
        {"id": "ok", "title": "Fine", "price": 100},
        {"id": "bad", "title": "Euro float", "price": 1.5},
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": items, "total": 2, "limit": 100, "offset": 0})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        adapter = GamingGoodsAdapter(adapter_settings("http://gg.test"), http=http, redis=None)
        ids = [p.upstream_id async for page in adapter.iter_catalog() for p in page.products]
    assert ids == ["ok"] and adapter.stats["malformed_products"] == 1


async def test_intent_is_recorded_before_sending(redis: Any, key_prefix: str) -> None:
    seen: dict[str, Any] = {}

    async def handler(request: httpx.Request) -> httpx.Response:
        key = f"{key_prefix}:adapter:{{gaming_goods}}:checkout:ref-intent"
        seen["intent"] = json.loads(await redis.get(key))
        seen["ttl"] = await redis.ttl(key)
        seen["sent"] = float(await redis.get(key.replace(":checkout:", ":sent:")))
        raise httpx.ReadTimeout("upstream silent", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        adapter = GamingGoodsAdapter(
            adapter_settings("http://gg.test", reconcile_attempts=1),
            http=http,
            redis=redis,
            key_prefix=key_prefix,
        )
        with pytest.raises(AmbiguousOutcomeError):
            await adapter._place_order("ref-intent", [line("p1", 2)])
    assert seen["intent"]["lines"] == [{"product_id": "p1", "quantity": 2}]
    assert abs(seen["sent"] - time.time()) < 30
    assert seen["ttl"] > 24 * 3600


async def test_an_answered_order_claimed_by_another_reference_is_never_resent(
    redis: Any, key_prefix: str
) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        order = {"id": "o-9", "status": "created", "total": 100, "currency": "EUR"}
        return httpx.Response(201, json={"orders": [order]})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        adapter = GamingGoodsAdapter(
            adapter_settings("http://gg.test"), http=http, redis=redis, key_prefix=key_prefix
        )
        assert (await adapter._require_ledger().claim("ref-other", ["o-9"])).ok
        with pytest.raises(AmbiguousOutcomeError) as caught:
            await adapter.place_order("ref-me", [line("p1")])
        assert "ref-other" in str(caught.value.__cause__)
        assert len(sent) == 1
        with pytest.raises(AmbiguousOutcomeError, match="ref-other"):
            await adapter.find_order("ref-me")


async def test_an_unreadable_candidate_proves_nothing(redis: Any, key_prefix: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/orders"):
            item = {"id": "o-1", "status": "created", "total": 1, "currency": "EUR"}
            return httpx.Response(200, json={"items": [item], "total": 1, "limit": 100})
        return httpx.Response(200, json={"id": "o-1", "status": "created", "items": "?"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        adapter = GamingGoodsAdapter(
            adapter_settings("http://gg.test"), http=http, redis=redis, key_prefix=key_prefix
        )
        await sent_intent(adapter, "ref-u", "p1")
        with pytest.raises(AmbiguousOutcomeError, match="unreadable"):
            await adapter.find_order("ref-u")
