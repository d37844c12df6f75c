"""Gaming Goods reconciliation against the sandbox on loopback with real Redis: which
references can own an upstream order, strict claims, what a reconciliation costs, and
the resend a platform that honours ``Idempotency-Key`` allows."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from gaming_goods_helpers import AUTH, adapter_settings, small_sandbox
from starlette.applications import Starlette

from adapters.errors import AmbiguousOutcomeError, RetriableError, UpstreamBusyError
from adapters.gaming_goods import GamingGoodsAdapter
from adapters.models import OrderLine
from adapters.sandbox_server import BackgroundServer


def line(product_id: str, quantity: int = 1) -> OrderLine:
    return OrderLine(variant_id=f"gaming_goods:{product_id}:std", quantity=quantity)


def stocked(app: Starlette, skip: int = 0) -> Any:
    return [p for p in app.state.sandbox.listed if p.quantity >= 3][skip]


async def purchases(http: httpx.AsyncClient, server: BackgroundServer) -> list[dict[str, Any]]:
    return list((await http.get(f"{server.url}/_sandbox/orders")).json()["orders"])


async def buy_directly(http: httpx.AsyncClient, server: BackgroundServer, product_id: str) -> str:
    """An order on the platform whose answer never reached its reference."""
    body = {"source": "lines", "lines": [{"product_id": product_id, "quantity": 1}]}
    response = await http.post(f"{server.url}/checkout", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    return str(response.json()["orders"][0]["id"])


async def sent(adapter: GamingGoodsAdapter, reference: str, product_id: str, **kw: Any) -> None:
    ledger = adapter._require_ledger()
    await ledger.record_intent(reference, [{"product_id": product_id, "quantity": 1}])
    await ledger.mark_sent(reference, **kw)


class Paths:
    """Every request path the adapter sends (an httpx event hook)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, request: httpx.Request) -> None:
        self.seen.append((request.method, request.url.path))

    def count(self, method: str, prefix: str) -> int:
        return sum(1 for m, p in self.seen if m == method and p.startswith(prefix))


async def test_a_checkout_never_sent_neither_owns_nor_blocks_an_order(
    app: Starlette, adapter: GamingGoodsAdapter, server: BackgroundServer, http: httpx.AsyncClient
) -> None:
    product = stocked(app)
    ledger = adapter._require_ledger()
    # ref-waiting is recorded but still waits for a rate-limit slot: nothing was sent.
    await ledger.record_intent("ref-waiting", [{"product_id": product.id, "quantity": 1}])
    await sent(adapter, "ref-lost", product.id)
    order_id = await buy_directly(http, server, product.id)
    found = await adapter.find_order("ref-lost")
    assert found is not None and found.upstream_id == order_id
    assert await adapter.find_order("ref-waiting") is None


async def test_a_checkout_refused_a_slot_is_not_sent_and_leaves_no_trace(
    app: Starlette, server: BackgroundServer, http: httpx.AsyncClient, redis: Any, key_prefix: str
) -> None:
    settings = adapter_settings(
        server.url,
        rate_limits={"default": {"limit": 1, "period_seconds": 60}},
        rate_limit_safety=1.0,
        order_reserve=0,
        limiter_max_wait_seconds=0.2,
    )
    adapter = GamingGoodsAdapter(settings, http=http, redis=redis, key_prefix=key_prefix)
    product = stocked(app)
    await adapter.place_order("ref-first", [line(product.id)])
    # The next slot is a minute away: far beyond the wait an order call accepts.
    with pytest.raises(UpstreamBusyError) as caught:
        await adapter.place_order("ref-second", [line(product.id)])
    assert isinstance(caught.value, RetriableError)  # the worker retries it later
    assert caught.value.retry_after is not None and caught.value.retry_after > 50
    assert [p["reference"] for p in await purchases(http, server)] == ["ref-first"]
    ledger = adapter._require_ledger()
    assert await ledger.intent("ref-second") is None
    assert await ledger.other_pending("nobody") == []


async def test_a_reference_sent_after_an_order_was_created_is_no_rival(
    app: Starlette, adapter: GamingGoodsAdapter, server: BackgroundServer, http: httpx.AsyncClient
) -> None:
    product = stocked(app)
    await sent(adapter, "ref-early", product.id, now=time.time() - 1)
    order_id = await buy_directly(http, server, product.id)
    skew = adapter.config.reconcile_skew_seconds
    await sent(adapter, "ref-later", product.id, now=time.time() + skew + 2)
    found = await adapter.find_order("ref-early")
    assert found is not None and found.upstream_id == order_id


async def test_a_held_reference_resolves_once_its_rival_has(
    app: Starlette, adapter: GamingGoodsAdapter, server: BackgroundServer, http: httpx.AsyncClient
) -> None:
    product = stocked(app)
    await sent(adapter, "ref-1", product.id)
    await sent(adapter, "ref-2", product.id)
    first = await buy_directly(http, server, product.id)
    with pytest.raises(AmbiguousOutcomeError, match="ref-2"):
        await adapter.find_order("ref-1")
    # ref-2's own answer arrives late: its order is another one, so ref-1's is settled.
    second = await buy_directly(http, server, product.id)
    assert (await adapter._require_ledger().claim("ref-2", [second])).ok
    found = await adapter.find_order("ref-1")
    assert found is not None and found.upstream_id == first


async def test_an_order_is_claimed_by_one_reference_and_a_reference_keeps_its_order(
    adapter: GamingGoodsAdapter,
) -> None:
    ledger = adapter._require_ledger()
    claims = await asyncio.gather(*(ledger.claim(f"ref-{n}", ["o-1"]) for n in range(20)))
    winners = [n for n, claim in enumerate(claims) if claim.ok]
    assert len(winners) == 1
    owner = f"ref-{winners[0]}"
    assert all(c.taken == {"o-1": owner} for c in claims if not c.ok)
    assert await ledger.owners(["o-1"]) == {"o-1": owner}
    # A resolved reference cannot take a second order, and nothing is written.
    again = await ledger.claim(owner, ["o-2"])
    assert again.mapped == ["o-1"] and await ledger.owners(["o-2"]) == {"o-2": None}
    assert (await ledger.claim(owner, ["o-1"])).ok  # the same claim is idempotent


async def test_each_candidate_order_is_read_once_across_reconciliations(
    app: Starlette, server: BackgroundServer, redis: Any, key_prefix: str
) -> None:
    paths = Paths()
    async with httpx.AsyncClient(event_hooks={"request": [paths]}) as http:
        adapter = GamingGoodsAdapter(
            adapter_settings(server.url), http=http, redis=redis, key_prefix=key_prefix
        )
        wanted, other = stocked(app), stocked(app, skip=1)
        for reference in ("ref-a", "ref-b", "ref-c"):
            await sent(adapter, reference, wanted.id)
        for _ in range(4):
            await buy_directly(http, server, other.id)  # candidates that match nobody
        for reference in ("ref-a", "ref-b", "ref-c"):
            assert await adapter.find_order(reference) is None
    details = paths.count("GET", "/orders/")
    assert details == 4, f"{details} order details read for 4 candidates"
    assert paths.count("GET", "/orders") - details == 3  # one list page per look-up


@pytest.mark.parametrize("fault", ["commit_then_drop_rate", "error_after_commit_rate"])
async def test_with_a_key_the_platform_honours_a_lost_answer_is_resent_not_matched(
    fault: str, redis: Any, key_prefix: str
) -> None:
    app = small_sandbox(honour_idempotency_key=True)
    paths = Paths()
    with BackgroundServer(app) as server:
        async with httpx.AsyncClient(event_hooks={"request": [paths]}) as http:
            settings = adapter_settings(server.url, idempotency_key_honoured=True)
            adapter = GamingGoodsAdapter(settings, http=http, redis=redis, key_prefix=key_prefix)
            product = stocked(app)
            # Another reference with the same lines is unresolved: matching could not tell.
            await sent(adapter, "ref-rival", product.id)
            await buy_directly(http, server, product.id)
            await http.put(f"{server.url}/_sandbox/faults", json={fault: 1.0})
            paths.seen.clear()
            placed = await adapter.place_order("ref-key", [line(product.id)])
            logged = await purchases(http, server)
    mine = [p for p in logged if p["reference"] == "ref-key"]
    assert len(mine) == 1 and placed.upstream_id == mine[0]["id"]
    assert paths.count("POST", "/checkout") == 2  # the lost answer, then its replay
    assert paths.count("GET", "/orders") == 0  # no walk of the order list
